"""course_lib.notebook's claim() and figure checks, on inputs made here (fast; matplotlib's Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from course_lib import notebook  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_rcparams():
    """setup_notebook changes matplotlib's global defaults: give them back to the next test."""
    with matplotlib.rc_context():
        yield


def test_claim_asserts_in_full_mode_and_reports_unchecked_in_smoke_mode(capsys):
    ok = notebook.claim(2 > 1, "two beats one", smoke=False)
    assert ok and ok.checked and capsys.readouterr().out.startswith(notebook.CLAIM_CHECKED_MARK)
    with pytest.raises(AssertionError, match="one beats two"):
        notebook.claim(1 > 2, "one beats two", smoke=False)
    weak = notebook.claim(1 > 2, "one beats two", smoke=True)
    out = capsys.readouterr().out
    assert not weak and not weak.checked
    assert out.startswith(notebook.CLAIM_UNCHECKED_MARK) and "does not hold in this run" in out
    assert notebook.CLAIM_UNCHECKED_MARK in weak._repr_markdown_()
    with pytest.raises(ValueError, match="statement"):
        notebook.claim(True, "")


def test_claim_follows_the_mode_setup_notebook_resolved(monkeypatch, capsys):
    monkeypatch.setenv(notebook.SMOKE_ENV_VAR, "1")
    assert notebook.setup_notebook(False) is True
    assert not notebook.claim(False, "x", ).checked  # smoke: no AssertionError
    monkeypatch.delenv(notebook.SMOKE_ENV_VAR)
    assert notebook.setup_notebook(False) is False
    with pytest.raises(AssertionError):
        notebook.claim(False, "x")


def test_claim_audit_mode_prints_a_failed_full_mode_claim_and_goes_on(monkeypatch, capsys):
    monkeypatch.setenv(notebook.CLAIMS_ENV_VAR, "audit")
    failed = notebook.claim(1 > 2, "one beats two", smoke=False)
    out = capsys.readouterr().out
    assert not failed and failed.checked and out.startswith(notebook.CLAIM_FAILED_MARK) and "one beats two" in out
    held = notebook.claim(2 > 1, "two beats one", smoke=False)
    assert held and capsys.readouterr().out.startswith(notebook.CLAIM_CHECKED_MARK)
    monkeypatch.setenv(notebook.CLAIMS_ENV_VAR, "")
    with pytest.raises(AssertionError, match="one beats two"):
        notebook.claim(1 > 2, "one beats two", smoke=False)


def _labelled(ax):
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def test_a_clean_figure_has_no_problems():
    fig, axes = notebook.subplots(1, 2, figsize=(8, 3))
    for ax in axes:
        ax.plot([0, 1, 2], [1, 0, 1], label="curve")
        ax.set_title("short")
        ax.legend()
        _labelled(ax)
    assert notebook.figure_problems(fig) == []


def test_overlapping_titles_clipped_text_missing_labels_and_one_point_curves_are_reported():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(4, 2), layout="none")  # no layout engine: long titles collide
    for ax in axes:
        ax.set_title("a title much too long for its half of the figure")
        ax.plot([1.0], [2.0])
    problems = "\n".join(notebook.figure_problems(fig))
    assert "overlaps" in problems and "sticks out of the figure" in problems
    assert "has no x label and no y label" in problems
    assert "single point and no marker" in problems
    plt.close(fig)


def test_shared_axes_and_figure_labels_count_and_images_need_none():
    fig, axes = notebook.subplots(2, 2, sharex=True, sharey=True)
    for ax in axes.flat:
        ax.plot([0, 1], [0, 1], "o-")
    axes[1, 0].set_xlabel("x")
    axes[1, 0].set_ylabel("y")
    assert notebook.figure_problems(fig) == []
    fig, (a, b) = notebook.subplots(1, 2)
    a.imshow([[0, 1], [1, 0]])
    b.plot([0, 1], [0, 1])
    fig.supxlabel("x")
    fig.supylabel("y")
    assert notebook.figure_problems(fig) == []


def test_show_prints_problems_and_records_the_figure(capsys):
    notebook.setup_notebook(True)
    fig, ax = notebook.subplots()
    ax.plot([0, 1], [0, 1])
    notebook.show(fig, "An unlabelled line.")
    out = capsys.readouterr().out
    assert "Figure 1. An unlabelled line." in out and f"{notebook.FIGURE_PROBLEM_MARK} axes 0 has no x label" in out
    assert notebook.FIGURES[-1].number == 1 and notebook.FIGURES[-1].problems


def test_label_points_never_overlaps_and_reports_what_it_left_out():
    import numpy as np

    from course_lib.notebook import figure_problems, label_points, subplots

    rng = np.random.default_rng(0)
    xy = np.vstack([rng.normal(0, 0.01, size=(12, 2)), rng.uniform(-5, 5, size=(6, 2))])  # a tight cluster + spread
    labels = [f"word{i:02d}" for i in range(len(xy))]
    fig, ax = subplots(figsize=(4, 3))
    ax.scatter(xy[:, 0], xy[:, 1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    left_out = label_points(ax, xy, labels)
    shown = [t.get_text() for t in ax.texts]
    assert not [p for p in figure_problems(fig) if "overlaps" in p]
    assert left_out and sorted(shown + left_out) == sorted(labels), "every label is either shown or reported"
    with pytest.raises(ValueError, match="shape"):
        label_points(ax, xy[:, :1], labels)
