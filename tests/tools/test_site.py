"""The course website (course_tools.site): built offline with Jupyter Book, checked in headless Chromium.

The site is built from the executed lecture notebooks that already exist under build/executed
(``make test``'s nbval run writes them; nothing is executed twice). Where even the pilot lecture's
executed notebook is missing, the fixture produces it with the course's executor. The build goes
to build/site; screenshots of the landing page and of a lecture page go to build/site-screenshots/.

The first tests check the builder's pieces on small inputs made here (their oracle is the input
itself: a CDN script planted in a page must be reported, a missing anchor must be reported, ...);
the rest check the real built site, in the HTML and in a real browser.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import chromium_client  # tests/tools/chromium_client.py, the headless-Chromium client (pytest puts this folder on sys.path)
import nbformat
import pytest

from course_lib.gpu import SKIP_MESSAGE
from course_tools import site, syllabus
from course_tools.grading.leaks import html_text
from course_tools.layout import REPO_ROOT
from course_tools.site.build import run_note

ROOT = REPO_ROOT
EXECUTED = ROOT / "build" / "executed"
SITE = ROOT / "build" / "site"
SHOTS = ROOT / "build" / "site-screenshots"
PILOT = "01-neural-networks"
GLOSSARY = ROOT / "book" / "glossary.md"


# --------------------------------------------------------------------------------------------
# the builder's pieces, on inputs made here


def test_glossary_has_at_least_60_russian_english_terms_each_tied_to_a_syllabus_lecture():
    rows = site.glossary_terms(GLOSSARY.read_text(encoding="utf-8"))
    numbers = {lec.number for lec in syllabus.load()}
    assert len(rows) >= 60, f"book/glossary.md has {len(rows)} terms; the issue asks for at least 60"
    assert len({(ru, en) for ru, en, _ in rows}) == len(rows), "a term is listed twice"
    for ru, en, number in rows:
        assert re.search("[а-яё]", ru, re.I), f"{ru!r} (Russian column) has no Cyrillic letter"
        assert not re.search("[а-яё]", en, re.I) and re.search("[a-z]", en, re.I), f"{en!r} is not an English term"
        assert number in numbers, f"{en!r} links to lecture {number}, which syllabus.toml does not list"
    # the terms the issue names are there
    pairs = {(ru.split(",")[0].split("(")[0].strip(), en.split("(")[0].strip()) for ru, en, _ in rows}
    for expected in [("дообучение", "fine-tuning"), ("свёртка", "convolution"), ("поле восприятия", "receptive field"),
                     ("автокодировщик", "autoencoder"), ("негативное сэмплирование", "negative sampling")]:
        assert expected in pairs, f"glossary lacks {expected}"
    assert len({n for _, _, n in rows}) >= 15, "the glossary should cover (nearly) every lecture"


def test_glossary_links_go_to_the_lecture_page_or_else_to_its_syllabus_entry():
    text = "| свёртка | convolution | {lecture}`03` |\n| нейрон | neuron | {lecture}`01` |\n"
    out = site.glossary_page(text, ROOT, lectures_on_site={PILOT})
    assert "{doc}`01 · Neural networks <lectures/01-neural-networks>`" in out
    assert "{ref}`03 · Convolutions (planned) <syllabus-03>`" in out
    with pytest.raises(site.SiteError, match="lecture 99"):
        site.glossary_page("| x | y | {lecture}`99` |", ROOT, lectures_on_site=set())


def _widget_nb(with_state: bool):
    nb = nbformat.v4.new_notebook()
    bar = nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2, "version_minor": 0},
        "text/plain": "epochs:   0%|          | 0/3 [00:00<?, ?it/s]"})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lecture 98 · Demo\n\nIntro with $x^2$."),
        nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("# Parameters\nSMOKE = True\n", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("x = torch.ones(3, device='cuda')", metadata={"tags": ["gpu"]},
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text=SKIP_MESSAGE)]),
        nbformat.v4.new_code_cell("for _ in tqdm(range(3)): pass", outputs=[bar]),
    ]
    if with_state:
        def model(name, **state):
            return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
            "box": model("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]),
            "a": model("HTMLModel", value="epochs:\u2007100%"),
            "b": model("FloatProgressModel", value=3.0, max=3.0),
            "c": model("HTMLModel", value="\u20073/3\u2007[00:01&lt;00:00,\u2007\u20072.00it/s]"),
        }, "version_major": 2, "version_minor": 0}}
    nb.metadata["papermill"] = {"parameters": {"SMOKE": True}}
    return nb


def test_prepare_lecture_notes_gpu_cells_and_mode_drops_injected_parameters_and_flattens_progress_bars():
    nb = _widget_nb(with_state=True)
    out = site.prepare_lecture(nb)
    sources = [c["source"] for c in out["cells"]]
    assert sources[0].startswith("# Lecture 98"), "the title stays first"
    assert "smoke mode" in sources[1], "a note under the title names the execution mode"
    assert not any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in out["cells"])
    gpu_index = next(i for i, c in enumerate(out["cells"]) if "gpu" in c.get("metadata", {}).get("tags", []))
    assert "Needs a GPU" in out["cells"][gpu_index - 1]["source"], "a visible note precedes a skipped gpu cell"
    assert out["cells"][gpu_index]["outputs"][0]["text"] == SKIP_MESSAGE
    bar = out["cells"][-1]["outputs"][0]["data"]
    assert bar == {"text/plain": "epochs: 100%|██████████| 3/3 [00:01<00:00,  2.00it/s]"}
    assert "widgets" not in out["metadata"] and "papermill" not in out["metadata"]
    assert nb["cells"][-1]["outputs"][0]["data"].get("application/vnd.jupyter.widget-view+json"), "input untouched"
    nbformat.validate(nbformat.from_dict(out))
    # nbval keeps no widget state: the bar's "0%" text would mislead, so it goes; full mode is named too
    bare = _widget_nb(with_state=False)
    bare.metadata["papermill"]["parameters"]["SMOKE"] = False
    out = site.prepare_lecture(bare)
    assert out["cells"][-1]["outputs"] == []
    assert "full size" in out["cells"][1]["source"]


def test_prepare_assignment_puts_a_download_link_under_the_title():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Assignment 98"), nbformat.v4.new_code_cell("raise NotImplementedError()")]
    out = site.prepare_assignment(nb, "files/98-demo.ipynb")
    assert out["cells"][0]["source"] == "# Assignment 98"
    assert "{download}`Download 98-demo.ipynb <files/98-demo.ipynb>`" in out["cells"][1]["source"]
    assert len(out["cells"]) == 3


def test_plot_detection_reads_the_code_and_counts_image_outputs():
    nb = nbformat.v4.new_notebook()
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("fig, ax = plt.subplots()\nplt.show()"),
                nbformat.v4.new_code_cell("plt.imshow(img)", metadata={"tags": ["gpu"]})]
    assert site.plotting_cells(nb) == [1]
    assert site.image_outputs(nb) == 0
    nb.cells[1]["outputs"] = [png]
    assert site.image_outputs(nb) == 1


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_external_asset_check_flags_cdn_scripts_styles_fonts_and_images_but_not_plain_links(tmp_path):
    _write(tmp_path / "index.html", '<html><head><link rel="stylesheet" href="_static/a.css">'
           '<script src="_static/a.js"></script><link rel="canonical" href="https://example.org/"></head>'
           '<body><a href="https://nbgrader.readthedocs.io">docs</a><img src="_images/p.png"></body></html>')
    _write(tmp_path / "_static" / "a.css", "@font-face { src: url(../fonts/x.woff2); }")
    assert site.external_references(tmp_path) == []
    _write(tmp_path / "bad.html", '<html><head><script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js">'
           '</script><link href="//fonts.googleapis.com/css?family=Lato" rel="stylesheet"></head><body>'
           '<img srcset="a.png 1x, https://img.example/b.png 2x"><div style="background: url(http://x.org/y.png)">'
           '</div></body></html>')
    _write(tmp_path / "_static" / "b.css", "@import 'https://fonts.googleapis.com/css2?family=Inter';\n"
           "@font-face { src: url('https://fonts.gstatic.com/x.woff2') }")
    found = "\n".join(site.external_references(tmp_path))
    for needle in ["cdn.jsdelivr.net", "fonts.googleapis.com/css?family", "img.example", "x.org/y.png",
                   "family=Inter", "fonts.gstatic.com"]:
        assert needle in found, f"{needle} not reported:\n{found}"
    assert "nbgrader.readthedocs.io" not in found and "example.org" not in found


def test_link_check_reports_missing_pages_files_and_anchors(tmp_path):
    _write(tmp_path / "a.html", '<p id="top">x</p><a href="b.html#sec">ok</a><a href="#top">self</a>'
           '<a href="sub/">dir</a><img src="_images/p.png"><a href="https://x.org/missing">ext</a>')
    _write(tmp_path / "b.html", '<h2 id="sec">s</h2><a href="a.html">back</a>')
    _write(tmp_path / "sub" / "index.html", "<p>sub</p>")
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "p.png").write_bytes(b"\x89PNG")
    assert site.broken_links(tmp_path) == []
    _write(tmp_path / "c.html", '<a href="b.html#nope">1</a><a href="gone.html">2</a><script src="_static/x.js"></script>'
           '<a href="#missing">3</a>')
    problems = site.broken_links(tmp_path)
    assert len(problems) == 4, problems
    assert sum("missing anchor" in p for p in problems) == 2 and sum("missing file" in p for p in problems) == 2


SOURCE = '''# %% [markdown]
# # Assignment 98

# %% nbgrader={"grade": false, "grade_id": "f", "locked": false, "solution": true, "schema_version": 3}
def f(x):
    ### BEGIN SOLUTION
    return x * 41 + 1
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "t", "locked": true, "points": 1, "solution": false, "schema_version": 3}
assert f(0) == 1
### BEGIN HIDDEN TESTS
assert f(2) == 83, "hidden"
### END HIDDEN TESTS
'''


def test_leak_check_flags_solution_and_hidden_test_lines_on_a_built_assignment_page(tmp_path):
    _write(tmp_path / "solutions" / "98-demo" / "98-demo.py", SOURCE)
    out = tmp_path / "site"
    page = site.Page("assignment", "assignments/98-demo", "assignments/98-demo/98-demo.ipynb")
    clean = "<pre>def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\nassert f(0) == 1\n</pre>"
    _write(out / "assignments" / "98-demo.html", clean)
    assert site.assignment_leaks(out, [page], root=tmp_path) == []
    _write(out / "assignments" / "98-demo.html", clean + "<pre>    return x * 41 + 1</pre>")
    assert [p for p in site.assignment_leaks(out, [page], root=tmp_path) if "solution line" in p]
    _write(out / "assignments" / "98-demo.html", clean + "<span>assert f(2) == 83, &quot;hidden&quot;</span>")
    assert [p for p in site.assignment_leaks(out, [page], root=tmp_path) if "hidden test line" in p]
    # the downloadable notebook is checked too
    _write(out / "assignments" / "98-demo.html", clean)
    leaked = nbformat.v4.new_notebook()
    leaked.cells = [nbformat.v4.new_code_cell("def f(x):\n    return x * 41 + 1")]
    _write(out / "_downloads" / "abc" / "98-demo.ipynb", nbformat.writes(leaked))
    assert any("_downloads" in p for p in site.assignment_leaks(out, [page], root=tmp_path))


def test_syllabus_table_links_only_to_pages_that_exist_on_the_site():
    table = site._syllabus_links(syllabus.table(ROOT), {PILOT}, set())
    links = re.findall(r"\]\(([^)]+)\)", table)
    assert links == [f"lectures/{PILOT}.ipynb"], links


def test_chromium_lookup_honours_the_environment_and_reports_why_it_has_none(tmp_path, monkeypatch):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert chromium_client.find_chromium() == str(fake)
    monkeypatch.delenv("CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert chromium_client.find_chromium() is None
    with pytest.raises(chromium_client.BrowserSetupError, match="no Chromium on PATH"):
        chromium_client.ensure_chromium(install=False)


# --------------------------------------------------------------------------------------------
# the real site


@pytest.fixture(scope="module")
def built():
    """Build build/site from the executed notebooks there are (executing the pilot lecture only if missing)."""
    pilot = EXECUTED / "lectures" / PILOT / f"{PILOT}.ipynb"
    if not pilot.exists():
        proc = subprocess.run([sys.executable, "-m", "course_tools.notebooks.execute", "execute", "--jobs", "1",
                               str(ROOT / "lectures" / PILOT / f"{PILOT}.py")],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 and pilot.exists(), f"could not execute the pilot lecture:\n{proc.stdout}\n{proc.stderr}"
    report = site.build(EXECUTED, SITE)
    print(f"site built in {report.seconds:.1f} s: {[p.docname for p in report.pages]}; left out: {report.skipped}")
    return report


def test_site_builds_and_passes_its_own_post_checks(built):
    assert (SITE / "index.html").exists()
    assert built.problems == [], "site problems:\n" + "\n".join(built.problems)


def test_no_page_loads_an_external_script_stylesheet_font_or_image(built):
    assert site.external_references(SITE) == []
    # and the offline MathJax is really there
    assert (SITE / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_no_internal_link_or_anchor_is_broken(built):
    problems = site.broken_links(SITE)
    assert problems == [], "\n".join(problems)
    pages = [p for p in SITE.rglob("*.html") if p.relative_to(SITE).parts[0] not in {"_static", "_sources"}]
    assert len(pages) >= len(built.pages), "the crawl saw fewer pages than were built"


def test_assignment_pages_leak_no_solution_or_hidden_test(built):
    assert built.assignment_pages(), "no assignment page was built"
    assert site.assignment_leaks(SITE, built.assignment_pages()) == []


def test_every_executed_lecture_and_every_released_assignment_has_a_page(built):
    for lec in syllabus.load():
        if (EXECUTED / "lectures" / lec.folder / f"{lec.folder}.ipynb").exists():
            assert (SITE / "lectures" / f"{lec.folder}.html").exists(), f"lecture {lec.folder} has no page"
    for released in sorted((ROOT / "assignments").glob("*/*.ipynb")):
        if released.stem == released.parent.name:
            assert (SITE / "assignments" / f"{released.stem}.html").exists(), f"{released} has no page"


def test_assignment_pages_offer_the_released_notebook_for_download(built):
    for page in built.assignment_pages():
        folder = page.docname.split("/", 1)[1]
        html_path = SITE / f"{page.docname}.html"
        hrefs = re.findall(r'href="([^"]*_downloads/[^"]*\.ipynb)"', html_path.read_text(encoding="utf-8"))
        assert hrefs, f"{html_path} has no download link"
        target = (html_path.parent / hrefs[0]).resolve()
        assert target.read_bytes() == (ROOT / "assignments" / folder / f"{folder}.ipynb").read_bytes()


def test_skipped_gpu_cells_show_a_needs_a_gpu_note_and_no_page_shows_a_traceback(built):
    for page in built.lecture_pages():
        nb = json.loads((ROOT / page.source).read_text(encoding="utf-8"))
        skipped = sum(1 for c in nb["cells"] for o in c.get("outputs", [])
                      if o.get("output_type") == "stream" and SKIP_MESSAGE.strip() in "".join(o.get("text", "")))
        text = (SITE / f"{page.docname}.html").read_text(encoding="utf-8")
        assert text.count("Needs a GPU") == skipped, page.docname
        assert "Traceback (most recent call last)" not in text, f"{page.docname} shows a traceback"


def test_built_glossary_links_each_term_to_its_lecture_page_or_syllabus_entry(built):
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", (SITE / "glossary.html").read_text(encoding="utf-8"), re.S)
    on_site = {p.docname.split("/", 1)[1] for p in built.lecture_pages()}
    folders = {lec.number: lec.folder for lec in syllabus.load()}
    linked = 0
    for row in rows[1:]:
        hrefs = re.findall(r'href="([^"]+)"', row)
        assert len(hrefs) == 1, row
        number = re.search(r">(\d\d) · ", row).group(1)
        expected = (f"lectures/{folders[number]}.html" if folders[number] in on_site else f"syllabus.html#syllabus-{number}")
        assert hrefs[0] == expected, f"{row}: expected a link to {expected}"
        linked += 1
    assert linked >= 60


# --------------------------------------------------------------------------------------------
# in headless Chromium


@pytest.fixture(scope="module")
def browser():
    try:
        binary = chromium_client.ensure_chromium(install=True)
    except chromium_client.BrowserSetupError as exc:
        pytest.skip(f"!!! BROWSER TESTS SKIPPED: no Chromium and it could not be installed: {exc}")
    with chromium_client.Chromium(binary, width=1280, height=900) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def served(built):
    with chromium_client.serve(SITE) as base:
        yield base


def _local(url: str, base: str) -> bool:
    return url.startswith(base) or urlsplit(url).scheme in {"data", "blob", "about", "chrome-error"}


def _open(browser, url: str) -> str:
    browser.reset_log()
    final = browser.goto(url)
    browser.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true", timeout=60)
    return final


def test_landing_page_loads_without_console_errors_or_external_requests(browser, served):
    final = browser.goto(served + "index.html",
                         ready="document.readyState === 'complete' && location.pathname.endsWith('/intro.html')")
    browser.reset_log()
    final = _open(browser, final)  # the landing page itself (index.html redirects to it)
    assert browser.evaluate("document.querySelector('h1').innerText").startswith("Foundations of Deep Learning")
    assert browser.evaluate("document.querySelectorAll('table tbody tr').length") == len(syllabus.load())
    browser.screenshot(SHOTS / "landing.png")
    assert browser.console_errors == [], browser.console_errors
    assert browser.failed_requests == [], browser.failed_requests
    assert [u for u in browser.requests if not _local(u, served)] == []
    assert (SHOTS / "landing.png").stat().st_size > 10_000


def test_every_lecture_page_is_reachable_from_the_navigation(browser, served, built):
    _open(browser, served + "intro.html")
    nav = set(browser.evaluate("Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => a.href)"))
    expected = [urljoin(served, f"{p.docname}.html") for p in built.pages if p.docname != "intro"]
    assert [u for u in expected if u not in nav] == [], f"sidebar links: {sorted(nav)}"
    # the "next" arrows walk through every page in the order of the table of contents
    visited, url = [], served + "intro.html"
    while url and len(visited) <= len(built.pages):
        visited.append(url)
        _open(browser, url)
        url = browser.evaluate("(document.querySelector('a.right-next') || {}).href || ''")
    assert visited == [urljoin(served, f"{p.docname}.html") for p in built.pages]
    assert browser.console_errors == [], browser.console_errors


IMAGE_STATS = """Array.from(document.querySelectorAll('.cell_output img')).map(img => {
  if (!img.complete || !img.naturalWidth) return {src: img.src, w: 0, colours: 0};
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data; const seen = new Set();
  for (let i = 0; i < px.length && seen.size < 64; i += 4 * 97) seen.add(px[i] << 16 | px[i + 1] << 8 | px[i + 2]);
  return {src: img.src, w: img.naturalWidth, colours: seen.size};
})"""
RAW_TEX = r"""Array.from(document.querySelectorAll('article p, article li, article td'))
  .map(e => e.innerText).filter(t => /\$\$|\\(frac|sum|mathbb|left|right|sigma)\b/.test(t))"""


def test_lecture_pages_typeset_math_and_show_their_plots(browser, served, built):
    assert built.lecture_pages(), "no lecture page was built"
    for i, page in enumerate(built.lecture_pages()):
        nb = json.loads((ROOT / page.source).read_text(encoding="utf-8"))
        _open(browser, urljoin(served, f"{page.docname}.html"))
        markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        if "$" in markdown:
            assert browser.evaluate("document.querySelectorAll('mjx-container').length") > 0, f"{page.docname}: no math"
            assert browser.evaluate("document.querySelectorAll('mjx-merror').length") == 0, f"{page.docname}: TeX errors"
            assert browser.evaluate(RAW_TEX) == [], f"{page.docname}: TeX left unrendered"
        if site.plotting_cells(nb):
            images = browser.evaluate(IMAGE_STATS)
            good = [im for im in images if im["w"] > 0 and im["colours"] >= 3]
            assert good, f"{page.docname} draws figures but shows no non-empty plot image: {images}"
            assert len(good) == len(images), f"{page.docname}: broken or blank images {images}"
        if i == 0:  # the top of the page, and all of it (plots included) for a person to look at
            browser.screenshot(SHOTS / f"lecture-{page.docname.split('/', 1)[1]}.png")
            browser.screenshot(SHOTS / f"lecture-{page.docname.split('/', 1)[1]}-full.png", full_page=True)
        assert browser.console_errors == [], f"{page.docname}: {browser.console_errors}"
        assert [u for u in browser.requests if not _local(u, served)] == []


def _search(browser, served, query: str) -> list[str]:
    _open(browser, served + f"search.html?q={query}")
    browser.wait_for("document.querySelector('#search-results') && "
                     "(document.querySelectorAll('#search-results ul.search li').length > 0 || "
                     "/Search finished|did not match/.test(document.querySelector('#search-results').innerText))",
                     timeout=30)
    return browser.evaluate("Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.href)")


def test_search_finds_lecture_terms_in_english_and_russian(browser, served, built):
    page = built.lecture_pages()[0]
    number = page.number
    text = html_text(SITE / f"{page.docname}.html").lower()
    terms = [(ru, en) for ru, en, n in site.glossary_terms(GLOSSARY.read_text(encoding="utf-8")) if n == number]
    single = [(ru, en) for ru, en in terms if re.fullmatch(r"[a-z]{5,}", en) and en in text]
    assert single, f"no one-word glossary term of lecture {number} occurs on its page"
    ru, en = single[0]
    hits = _search(browser, served, en)
    assert urljoin(served, f"{page.docname}.html") in [h.split("?")[0].split("#")[0] for h in hits], (en, hits)
    word = ru.split(",")[0].split("(")[0].strip().split()[0]
    hits = _search(browser, served, word)
    assert urljoin(served, "glossary.html") in [h.split("?")[0].split("#")[0] for h in hits], (word, hits)
    assert browser.console_errors == [], browser.console_errors


def test_the_download_link_serves_the_released_notebook(browser, served, built):
    page = built.assignment_pages()[0]
    _open(browser, urljoin(served, f"{page.docname}.html"))
    href = browser.evaluate("document.querySelector('a.download.reference').href")
    nb = browser.evaluate(f"fetch({json.dumps(href)}).then(r => r.ok ? r.json() : null)")
    assert nb is not None and nb["nbformat"] == 4 and nb["cells"], href
    assert browser.console_errors == [], browser.console_errors


def test_api_reference_has_a_page_per_public_module_in_the_sidebar_and_a_nonempty_index(built):
    from course_tools.site import api

    modules = api.public_modules()
    assert {"course_lib.conv", "course_lib.layers", "course_lib.notebook", "course_lib.data.loaders"} <= set(modules)
    for name in modules:
        assert (SITE / "api" / f"{name}.html").exists(), f"no reference page for {name}"
    landing = (SITE / "intro.html").read_text(encoding="utf-8")
    assert 'href="api/index.html"' in landing, "the API reference is not in the sidebar"
    index = html_text(SITE / "genindex.html")
    assert "conv2d_im2col" in index and "grad_check" in index, "genindex.html does not list course_lib's functions"
    lecture = (SITE / "lectures" / "03-convolutions.html").read_text(encoding="utf-8")
    assert 'href="../api/course_lib.conv.html"' in lecture, "lecture 03 does not link its module's reference page"


def test_api_page_lists_conv2d_im2col_with_its_signature_and_math_and_search_finds_it(browser, served, built):
    _open(browser, served + "api/course_lib.conv.html")
    signature = browser.evaluate("(document.getElementById('course_lib.conv.conv2d_im2col') || {}).innerText || ''")
    for part in ("conv2d_im2col", "x: Tensor", "w: Tensor", "padding_mode: str = 'zeros'"):
        assert part in signature.replace("\n", ""), f"{part!r} missing from the signature {signature!r}"
    assert browser.evaluate("document.querySelectorAll('article mjx-container').length") > 0, "docstring math not typeset"
    hits = _search(browser, served, "conv2d_im2col")
    assert any(h.split("#")[0].split("?")[0] == served + "api/course_lib.conv.html" for h in hits), hits
    snippets = browser.evaluate("Array.from(document.querySelectorAll('#search-results p.context')).map(p => p.innerText)")
    assert snippets and not [s for s in snippets if ".pdf" in s[:12]], snippets
    assert browser.console_errors == [], browser.console_errors


def test_no_page_scrolls_sideways_at_1280_px(browser, served, built):
    """Neither the document nor the article is wider than the window; nor is a displayed equation."""
    wide = []
    pages = [p for p in SITE.rglob("*.html") if "_static" not in p.parts
             and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8")[:500]]  # index.html redirects
    assert len(pages) > 20
    for page in sorted(p.relative_to(SITE).as_posix() for p in pages):
        _open(browser, served + page)
        sizes = browser.evaluate(
            "(() => { const d = document.documentElement, a = document.querySelector('article.bd-article');"
            " const eqs = Array.from(document.querySelectorAll('article mjx-container[display=\"true\"]'))"
            "   .filter(e => e.scrollWidth > a.clientWidth + 1).map(e => e.textContent.slice(0, 60));"
            " return {doc: [d.scrollWidth, d.clientWidth], article: a ? [a.scrollWidth, a.clientWidth] : [0, 0], eqs}; })()")
        if sizes["doc"][0] > sizes["doc"][1] or sizes["article"][0] > sizes["article"][1] + 1 or sizes["eqs"]:
            wide.append(f"{page}: {sizes}")
    assert wide == [], "pages wider than a 1280 px window:\n" + "\n".join(wide)


def test_run_note_states_the_claims_a_full_run_checked_and_those_that_failed():
    nb = nbformat.v4.new_notebook()
    nb.metadata["course"] = {"mode": "full", "seconds": 12.0, "claims_checked": 7, "claims_failed": 0}
    assert run_note(nb, "full").endswith("Claims checked: 7 held.")
    nb.metadata["course"]["claims_failed"] = 2
    assert "**2 did not hold**" in run_note(nb, "full")
    nb.metadata["course"] = {"mode": "smoke", "claims_unchecked": 5}
    assert "Claims" not in run_note(nb, "smoke")
