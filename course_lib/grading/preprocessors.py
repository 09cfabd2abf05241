"""nbgrader preprocessors of the course (configured in ``nbgrader_config.py``)."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from course_lib.notebook.gpu import cuda_available, mark_skipped_gpu_cells


class MarkSkippedGpuCells(Preprocessor):
    """After execution, give each skipped ``gpu`` cell the visible "skipped: needs a CUDA GPU" output."""

    enabled = Bool(True, help="mark skipped gpu cells in autograded notebooks").tag(config=True)

    def preprocess(self, nb, resources):
        if not cuda_available():
            mark_skipped_gpu_cells(nb)
        return nb, resources
