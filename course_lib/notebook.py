"""Helpers every course notebook uses: smoke mode, seeds, device choice and plot defaults.

A notebook starts with a papermill ``parameters`` cell holding ``SMOKE = False`` and then calls
:func:`setup_notebook`, which honours ``COURSE_SMOKE=1`` (set by CI, ``make test`` and the
executor) so that nbval and plain Jupyter runs can use smoke mode too.
"""

from __future__ import annotations

import os
import random

import numpy as np

SMOKE_ENV_VAR = "COURSE_SMOKE"


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
    ``SMOKE = setup_notebook(SMOKE)``.
    """
    seed_everything(seed)
    try:
        import matplotlib

        matplotlib.rcParams.update(
            {"figure.dpi": dpi, "figure.figsize": (6.4, 4.0), "axes.grid": True, "grid.alpha": 0.3}
        )
    except ImportError:  # pragma: no cover
        pass
    return smoke_mode(smoke)


__all__ = ["SMOKE_ENV_VAR", "get_device", "seed_everything", "setup_notebook", "smoke_mode"]
