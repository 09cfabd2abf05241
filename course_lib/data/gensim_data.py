"""The evaluation sets and small corpora that ship inside gensim's wheel (``gensim/test/test_data``).

No download and no mirror: the files are found in the installed gensim package. Useful names:

===========================  =====================================================================
``questions-words.txt``      Mikolov's 19,544 analogy questions in 14 sections (``: name`` headers)
``wordsim353.tsv``           WordSim353: 353 word pairs with mean human similarity (``#`` comments)
``simlex999.txt``            SimLex-999 pairs
``lee_background.cor``       Lee corpus: 300 news documents, one per line (gensim's doc2vec tutorial)
``lee.cor``                  the 50 Lee test documents
===========================  =====================================================================
"""

from __future__ import annotations

from pathlib import Path

from course_lib.data.store import DataNotFoundError

__all__ = ["gensim_test_data_dir", "gensim_test_file", "load_lee_corpus"]


def gensim_test_data_dir() -> Path:
    """The folder ``gensim/test/test_data`` of the installed gensim (raises if gensim is missing)."""
    try:
        import gensim
    except ImportError as exc:  # pragma: no cover - gensim is a pinned dependency
        raise DataNotFoundError(
            "gensim is not installed, so its bundled test data (questions-words.txt, wordsim353.tsv, "
            "lee_background.cor) cannot be found: pip install gensim==4.4.0"
        ) from exc
    return Path(gensim.__file__).resolve().parent / "test" / "test_data"


def gensim_test_file(name: str) -> Path:
    """Path of one file of gensim's bundled test data, e.g. ``gensim_test_file("wordsim353.tsv")``.

    Raises :class:`~course_lib.data.DataNotFoundError` naming the folder searched when the file is
    not there (some repackaged gensim builds strip the test data).
    """
    folder = gensim_test_data_dir()
    path = folder / name
    if not path.is_file():
        known = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        hint = f"; files there include {', '.join(known[:8])}" if known else " (the folder does not exist)"
        raise DataNotFoundError(f"{name!r} is not in gensim's bundled test data at {folder}{hint}")
    return path


def load_lee_corpus(which: str = "background") -> list[str]:
    """The Lee news corpus bundled with gensim: one raw document per line.

    ``which="background"`` gives the 300 documents of ``lee_background.cor`` (about 60,000 words),
    ``"test"`` the 50 documents of ``lee.cor``. Latin-1 text, returned as ``str`` lines without
    the trailing newline (tokenise with :func:`course_lib.text.tokenize`).
    """
    files = {"background": "lee_background.cor", "test": "lee.cor"}
    if which not in files:
        raise ValueError(f"which must be one of {sorted(files)}, got {which!r}")
    text = gensim_test_file(files[which]).read_bytes().decode("latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]
