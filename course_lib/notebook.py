"""Helpers every course notebook uses: smoke mode, seeds, device, stated results, figures.

The conventions below are the ones every lecture (``lectures/NN-topic/NN-topic.py``) follows; the
tests in ``tests/tools/test_notebook_sources.py`` and ``tests/tools/test_executed_notebooks.py``
enforce them.

**Start.** The first code cell is tagged ``parameters`` and holds ``SMOKE = False``; the next one
reads ``SMOKE = setup_notebook(SMOKE)``, which honours ``COURSE_SMOKE=1`` (set by CI, ``make test``
and the executor), seeds everything and sets the figure defaults.

**Skeleton.** A lecture is: a title ``# Lecture NN · Title``; an introduction with a
``**Learning goals**`` list; numbered sections ``## 1. …``, ``## 2. …``; a ``## Summary``; and a
``## Where to go next`` (any heading starting with "Where to go next") that links the assignment
(``assignments/NN-topic/``), the library modules (``course_lib.xxx``, see the API reference) and the
benchmark (``benchmarks/….py``) where the lecture has them.

**Stated results.** A sentence that states a *measured* result (a percentage, "the CNN beats the
MLP", "Adam converges faster", "the loss diverges") never types its numbers by hand:

- the numbers come from variables, printed by the code cell or rendered with :func:`md`
  (``md(f"The CNN reaches **{acc:.1f} %**")``), and
- the statement sits next to a :func:`claim` in the same or one of the following code cells::

      claim(cnn_acc > mlp_acc, "the small CNN beats the large MLP at every shift")

  In full mode (``SMOKE = False``) a false claim raises ``AssertionError`` naming the statement,
  so a full build of the site can never contradict its own text; in smoke mode it prints, visibly,
  that the claim is *not checked at smoke size* (and whether it happened to hold).
- Markdown that only *narrates* (theory, "a larger learning rate gives a lower loss in general")
  carries the marker ``<!-- narrative -->`` (or ``<!-- narrative: why -->``, e.g. "restates the
  claims of §8") in its paragraph; the heuristic test then leaves it alone. The marker is an HTML comment: invisible in JupyterLab and on the website.

**Figures.** Draw with :func:`subplots` (constrained layout, readable fonts) and end the cell with
:func:`show` (``show(fig, "caption")``): it checks the figure (:func:`figure_problems`: overlapping
or clipped text, axes without labels, one-point "curves"), displays it with a numbered caption and
records it in :data:`FIGURES`. In smoke mode plot curves with markers (``marker="o"``) so that short
runs still read; skip a plot (and say so) when it would have a single point.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np

SMOKE_ENV_VAR = "COURSE_SMOKE"

#: the text a claim prints; ``course_tools`` counts claims in executed notebooks by these marks
CLAIM_CHECKED_MARK = "✔ checked:"
CLAIM_UNCHECKED_MARK = "⚠ not checked at smoke size:"
CLAIM_FAILED_MARK = "✘ CLAIM FAILED in full mode:"
#: ``COURSE_CLAIMS=audit``: a full-mode claim that does not hold is printed (``CLAIM_FAILED_MARK``)
#: instead of raised, so that one run counts every claim of a notebook (``execute --audit-claims``)
CLAIMS_ENV_VAR = "COURSE_CLAIMS"
#: the text :func:`show` prints under a figure that fails :func:`figure_problems`
FIGURE_PROBLEM_MARK = "FIGURE PROBLEM:"
#: the Markdown marker that exempts a paragraph from the stated-result heuristic
NARRATIVE_MARK = "<!-- narrative"  # ``<!-- narrative -->`` or ``<!-- narrative: reason -->``

#: readable default font sizes (points) at the notebook's dpi
FONT_SIZES = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
              "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 13}

_STATE = {"smoke": None}


def smoke_mode(smoke: bool = False) -> bool:
    """Return True when the notebook should run in smoke mode.

    Smoke mode is on when the notebook's own ``SMOKE`` parameter is true (papermill ``-p SMOKE
    True``) or when the environment variable ``COURSE_SMOKE`` is ``1``/``true``/``yes``.
    """
    env = os.environ.get(SMOKE_ENV_VAR, "").strip().lower()
    return bool(smoke) or env in {"1", "true", "yes", "on"}


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the course
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_device():
    """The ``torch.device`` a notebook should use: CUDA where available, else CPU."""
    import torch

    from course_lib.gpu import cuda_available

    return torch.device("cuda" if cuda_available() else "cpu")


def setup_notebook(smoke: bool = False, seed: int = 0, *, dpi: int = 100) -> bool:
    """Prepare a notebook: resolve smoke mode, seed everything, set matplotlib defaults.

    Returns the resolved smoke flag, so the second cell of a notebook reads
    ``SMOKE = setup_notebook(SMOKE)``. The flag is also remembered for :func:`claim`. Figures get
    constrained layout (titles and labels never overlap their neighbours) and :data:`FONT_SIZES`.
    """
    seed_everything(seed)
    resolved = smoke_mode(smoke)
    _STATE["smoke"] = resolved
    FIGURES.clear()
    try:
        import matplotlib

        matplotlib.rcParams.update(
            {"figure.dpi": dpi, "figure.figsize": (6.4, 4.0), "axes.grid": True, "grid.alpha": 0.3,
             "figure.constrained_layout.use": True, **FONT_SIZES}
        )
    except ImportError:  # pragma: no cover
        pass
    return resolved


def _smoke_now() -> bool:
    return _STATE["smoke"] if _STATE["smoke"] is not None else smoke_mode()


# --------------------------------------------------------------------------------------------
# stated results


class _Displayable:
    """Text shown as Markdown in Jupyter and as plain text elsewhere."""

    text: str
    markdown: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.markdown


@dataclass
class Claim(_Displayable):
    """The outcome of :func:`claim`: the statement, whether it held, and whether it was checked."""

    statement: str
    held: bool
    checked: bool
    shown: bool = False

    @property
    def text(self) -> str:  # type: ignore[override]
        if self.checked and not self.held:
            return f"{CLAIM_FAILED_MARK} {self.statement}"
        if self.checked:
            return f"{CLAIM_CHECKED_MARK} {self.statement}"
        outcome = "holds in this run" if self.held else "does not hold in this run"
        return f"{CLAIM_UNCHECKED_MARK} {self.statement} ({outcome}; full mode asserts it)"

    @property
    def markdown(self) -> str:  # type: ignore[override]
        return self.text

    def __bool__(self) -> bool:
        return self.held

    def _ipython_display_(self) -> None:
        # claim() already printed the line; a claim left last in a cell must not show twice
        if not self.shown:
            print(self.text)
            self.shown = True


#: every claim made since :func:`setup_notebook`, in order
CLAIMS: list[Claim] = []


def claim(condition, statement: str, *, smoke: bool | None = None) -> Claim:
    """State a measured result next to the sentence that states it; assert it in full mode.

    ``condition`` is the check (a bool, numpy bool or 0-d tensor); ``statement`` the sentence as
    the reader should read it ("the CNN beats the MLP at every shift"). In full mode a false
    condition raises ``AssertionError`` naming the statement; in smoke mode (``smoke``, default:
    the flag :func:`setup_notebook` resolved) nothing is asserted and a visible line says the
    claim is not checked at smoke size, and whether it held in this run. Either way the line is
    printed (so it shows wherever the call sits in a cell) and the :class:`Claim` is returned and
    recorded in :data:`CLAIMS`. With ``COURSE_CLAIMS=audit`` in the environment a false full-mode
    claim does not raise: its line says it failed, and the run goes on (for measuring a notebook).
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("claim(condition, statement): statement must be the sentence being checked, as text")
    held = bool(condition.item() if hasattr(condition, "item") else condition)
    smoke = _smoke_now() if smoke is None else bool(smoke)
    result = Claim(statement.strip(), held, checked=not smoke)
    CLAIMS.append(result)
    audit = os.environ.get(CLAIMS_ENV_VAR, "").strip().lower() == "audit"
    if not smoke and not held and not audit:
        raise AssertionError(f"claim failed in full mode: {result.statement!r} does not hold. Fix the text that "
                             "states it, or the experiment that should show it.")
    print(result.text)
    result.shown = True
    return result


@dataclass
class Markdown(_Displayable):
    """Markdown rendered from variables (see :func:`md`)."""

    markdown: str

    @property
    def text(self) -> str:  # type: ignore[override]
        return self.markdown


def md(text: str) -> Markdown:
    """Markdown built from variables, shown rendered (``md(f"accuracy **{acc:.1f} %**")``).

    Put it last in a code cell (or pass it to ``display``); numbers quoted in a lecture's prose
    come from here rather than being typed into a Markdown cell.
    """
    return Markdown(str(text))


# --------------------------------------------------------------------------------------------
# figures


@dataclass
class FigureRecord:
    """A figure shown by :func:`show`: its number, caption and the problems the check found."""

    number: int
    caption: str
    problems: list[str] = field(default_factory=list)


#: the figures shown since :func:`setup_notebook`
FIGURES: list[FigureRecord] = []


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` with constrained layout: what lectures draw with (returns ``fig, axes``)."""
    import matplotlib.pyplot as plt

    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)


def _drawn_ticks(axis):
    """The ticks matplotlib draws (its locators also return ticks outside the view limits)."""
    try:
        return axis._update_ticks()  # what Axis.draw itself uses
    except AttributeError:  # pragma: no cover - a matplotlib without the private helper
        lo, hi = sorted(axis.get_view_interval())
        return [t for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi]


def _texts(fig):
    """(description, Text) of every visible, non-empty text artist of ``fig``."""
    found = []
    seen = set()

    def add(where, text):
        if text is None or id(text) in seen or not text.get_visible() or not text.get_text().strip():
            return
        seen.add(id(text))
        found.append((where, text))

    add("figure title", getattr(fig, "_suptitle", None))
    add("figure x label", getattr(fig, "_supxlabel", None))
    add("figure y label", getattr(fig, "_supylabel", None))
    for text in fig.texts:
        add("figure text", text)
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = f"axes {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        for title in (ax.title, ax._left_title, ax._right_title):
            add(f"{name} title", title)
        if ax.axison:
            add(f"{name} x label", ax.xaxis.label)
            add(f"{name} y label", ax.yaxis.label)
            for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                for tick in _drawn_ticks(axis):
                    add(f"{name} {which} tick", tick.label1)
                    add(f"{name} {which} tick", tick.label2)
        for text in ax.texts:
            add(f"{name} text", text)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            add(f"{name} legend title", legend.get_title())
            for text in legend.get_texts():
                add(f"{name} legend", text)
    for legend in fig.legends:
        for text in legend.get_texts():
            add("figure legend", text)
    return found


def _labelled(ax, which: str) -> bool:
    """Whether ``ax``'s x or y axis is labelled: its own label, a shared sibling's, or the figure's."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    if axis.label.get_text().strip():
        return True
    fig = ax.figure
    sup = getattr(fig, "_supxlabel" if which == "x" else "_supylabel", None)
    if sup is not None and sup.get_text().strip():
        return True
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    siblings = shared.get_siblings(ax)
    return any((s.xaxis if which == "x" else s.yaxis).label.get_text().strip() for s in siblings if s is not ax)


def figure_problems(fig, *, tolerance: float = 1.0) -> list[str]:
    """What makes ``fig`` hard to read; an empty list means none was found.

    - two text artists (titles, axis and tick labels, legend entries, annotations) overlap;
    - a text artist sticks out of the figure (it would be clipped);
    - a plotting axes (one that shows its axis and no image) lacks an x or a y label (a label of a
      shared axis or the figure's ``supxlabel``/``supylabel`` counts);
    - a line has a single data point and no marker (an invisible "curve", typical of smoke mode).

    ``tolerance`` (pixels) shrinks each text box before the overlap test, so that boxes which only
    touch are not reported.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    width, height = fig.bbox.width, fig.bbox.height
    boxes = []
    for where, text in _texts(fig):
        box = text.get_window_extent(renderer)
        if box.width <= 0 or box.height <= 0:
            continue
        label = f"{where} {text.get_text()!r}"
        if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance or box.y1 > height + tolerance:
            problems.append(f"{label} sticks out of the figure (clipped)")
        boxes.append((label, box.expanded(1, 1).padded(-tolerance)))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (a_label, a), (b_label, b) = boxes[i], boxes[j]
            if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1:
                problems.append(f"{a_label} overlaps {b_label}")
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison or ax.images or getattr(ax, "_colorbar", None) is not None \
                or ax.get_label() == "<colorbar>":
            continue
        name = f"axes {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        missing = [w for w in ("x", "y") if not _labelled(ax, w)]
        if missing:
            problems.append(f"{name} has no {' and no '.join(m + ' label' for m in missing)}")
        for line in ax.get_lines():
            if len(line.get_xdata()) == 1 and line.get_marker() in {None, "None", "none", "", " "}:
                problems.append(f"{name}: line {line.get_label()!r} has a single point and no marker (invisible)")
    return problems


#: offsets (in points) tried, in order, for a point's label by :func:`label_points`
LABEL_OFFSETS = ((4, 4), (4, -10), (-4, 4), (-4, -10), (8, 12), (8, -18), (-8, 12), (-8, -18))


def label_points(ax, xy, labels, *, fontsize: float = 9, offsets=LABEL_OFFSETS) -> list[str]:
    """Label the points ``xy`` ((N, 2) data coordinates) of ``ax`` with ``labels`` without overlaps.

    Each label is tried at the offsets of ``offsets`` around its point; one that overlaps an earlier
    label, a tick label or the axes' edge at every offset is left out. Returns the labels left out
    (a caller can say so in the caption), so a scatter of words or faces stays readable whatever
    the data (the figure check of :func:`show` fails on overlapping text).
    """
    import numpy as np

    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(labels):
        raise ValueError(f"label_points needs xy of shape (N, 2) and N labels; got {xy.shape} and {len(labels)} labels")
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    taken = [text.get_window_extent(renderer) for _, text in _texts(fig)]
    dropped = []
    for (x, y), label in zip(xy, labels):
        for dx, dy in offsets:
            text = ax.annotate(str(label), (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1 and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1
            if inside and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            text.remove()
        else:
            dropped.append(str(label))
    return dropped


def show(fig=None, caption: str = "") -> None:
    """Check ``fig`` (default: the current figure), display it with a numbered caption, close it.

    The problems :func:`figure_problems` finds are printed under the figure, each line starting
    with :data:`FIGURE_PROBLEM_MARK` (the executed-notebook test fails on them), and kept in the
    :class:`FigureRecord` appended to :data:`FIGURES`. Returns nothing, so it can end a cell.
    """
    import matplotlib.pyplot as plt

    fig = fig if fig is not None else plt.gcf()
    problems = figure_problems(fig)
    record = FigureRecord(len(FIGURES) + 1, caption.strip(), problems)
    FIGURES.append(record)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(fig)
        plt.close(fig)
        if record.caption:
            display(Markdown(f"**Figure {record.number}.** {record.caption}"))
    else:
        if record.caption:
            print(f"Figure {record.number}. {record.caption}")
        plt.close(fig)
    for problem in problems:
        print(f"{FIGURE_PROBLEM_MARK} {problem}")
    return None


__all__ = [
    "CLAIMS",
    "CLAIM_CHECKED_MARK",
    "CLAIM_FAILED_MARK",
    "CLAIMS_ENV_VAR",
    "CLAIM_UNCHECKED_MARK",
    "FIGURES",
    "FIGURE_PROBLEM_MARK",
    "FONT_SIZES",
    "NARRATIVE_MARK",
    "SMOKE_ENV_VAR",
    "Claim",
    "FigureRecord",
    "Markdown",
    "claim",
    "label_points",
    "figure_problems",
    "get_device",
    "md",
    "seed_everything",
    "setup_notebook",
    "show",
    "smoke_mode",
    "subplots",
]
