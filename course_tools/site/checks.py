"""Post-build checks of the website: offline assets, internal links and anchors, no leaked solutions.

:func:`check_site` runs them all; ``python -m course_tools site check`` calls it on a built site.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from course_tools.layout import ASSIGNMENTS, REPO_ROOT, SOLUTIONS
from course_tools.site.pages import Page

# --------------------------------------------------------------------------------------------
# checks of the built HTML

ASSET_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "track": ("src",),
    "input": ("src",),
}
NON_ASSET_LINK_RELS = {"canonical", "alternate", "author", "license", "help", "search", "index", "next", "prev",
                       "top", "up", "first", "last", "bookmark", "external", "nofollow", "noreferrer", "noopener"}
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", re.I)


class _Collector(HTMLParser):
    """Collects (tag, attribute, value) of every URL-valued attribute, ids, and inline CSS."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str, dict]] = []
        self.ids: set[str] = set()
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src", "srcset", "poster", "data"):
            if key in attrs:
                self.urls.append((tag, key, attrs[key], attrs))
        if attrs.get("style"):
            self.css.append(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


def _parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8", errors="replace"))
    return collector


def is_external(url: str) -> bool:
    url = url.strip()
    return url.startswith("//") or urlsplit(url).scheme.lower() in {"http", "https", "ftp", "ws", "wss"}


def _srcset_urls(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


def _asset_urls(collector: _Collector) -> list[tuple[str, str]]:
    """(description, url) of everything a page loads by itself: scripts, styles, fonts, images, frames."""
    found = []
    for tag, key, value, attrs in collector.urls:
        if tag == "link" and key == "href":
            rels = set(attrs.get("rel", "").lower().split())
            if rels and rels <= NON_ASSET_LINK_RELS:
                continue
            found.append((f"<link rel={attrs.get('rel', '')!r}>", value))
        elif key in ASSET_ATTRS.get(tag, ()):
            for url in _srcset_urls(value) if key == "srcset" else [value]:
                found.append((f"<{tag} {key}>", url))
    for css in collector.css:
        found += [("inline CSS url()", u) for u in CSS_URL.findall(css)]
    return found


def external_references(out: Path) -> list[str]:
    """Every script, stylesheet, font, image or frame a built page or stylesheet loads from another host."""
    out = Path(out)
    problems = []
    for page in sorted(out.rglob("*.html")):
        for what, url in _asset_urls(_parse(page)):
            if is_external(url):
                problems.append(f"{page.relative_to(out)}: {what} loads {url}")
    for css in sorted(out.rglob("*.css")):
        for url in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
            if is_external(url):
                problems.append(f"{css.relative_to(out)}: url() loads {url}")
    return problems


def broken_links(out: Path) -> list[str]:
    """Internal links, assets and ``#anchors`` of every built page that point at nothing."""
    out = Path(out).resolve()
    ids: dict[Path, set[str]] = {}
    # pages only: _static/ holds the themes' Jinja macro files, _sources/ the page sources
    parsed = {page: _parse(page) for page in sorted(out.rglob("*.html"))
              if page.relative_to(out).parts[0] not in {"_static", "_sources"}}
    for page, collector in parsed.items():
        ids[page] = collector.ids
    problems = []
    for page, collector in parsed.items():
        for tag, key, value, _attrs in collector.urls:
            if key not in {"href", "src"} or tag in {"form"}:
                continue
            url = value.strip()
            if not url or is_external(url) or urlsplit(url).scheme in {"mailto", "data", "javascript", "blob", "tel"}:
                continue
            parts = urlsplit(url)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(out)}: <{tag} {key}={url!r}>"
            if not target.exists():
                problems.append(f"{where} points at a missing file")
                continue
            if parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = _parse(target).ids
                if unquote(parts.fragment) not in ids[target]:
                    problems.append(f"{where} points at a missing anchor")
    return problems


def assignment_leaks(out: Path, assignments: list[Page], root: Path = REPO_ROOT) -> list[str]:
    """Solution or hidden-test lines (or nbgrader markers) on built assignment pages and their downloads."""
    import nbformat

    from course_tools.grading.leaks import find_leaks, html_text, markers_in, released_notebook_text
    from course_tools.notebooks.convert import read_source

    out = Path(out)
    problems = []
    for page in assignments:
        folder = page.docname.split("/", 1)[1]
        html_page = out / f"{page.docname}.html"
        if not html_page.exists():
            problems.append(f"assignment page {page.docname}.html was not built")
            continue
        sources = sorted((root / SOLUTIONS / folder).glob("*.py"))
        if not sources:
            problems.append(f"assignment {folder} has no source in solutions/{folder}/ to check the page against")
            continue
        texts = [(str(html_page.relative_to(out)), html_text(html_page))]
        for download in sorted(out.glob(f"_downloads/*/{folder}.ipynb")):
            texts.append((str(download.relative_to(out)), released_notebook_text(nbformat.read(download, as_version=4))))
        for src in sources:
            source_nb = read_source(src)
            for where, text in texts:
                if markers_in(text):
                    problems.append(f"{where} contains nbgrader markers {markers_in(text)}")
                problems += [f"{lk.where} leaks a {lk.kind} line: {lk.line}" for lk in find_leaks(source_nb, text, where)]
    return problems


def check_site(out: Path, *, root: Path = REPO_ROOT, assignments: list[Page] | None = None) -> list[str]:
    """All post-build checks of a built site; an empty list means it passed."""
    out = Path(out)
    if not (out / "index.html").exists():
        return [f"{out}/index.html does not exist: the site was not built"]
    if assignments is None:
        assignments = [Page("assignment", f"assignments/{p.stem}", str(p)) for p in sorted((out / ASSIGNMENTS).glob("*.html"))]
    return external_references(out) + broken_links(out) + assignment_leaks(out, assignments, root)


