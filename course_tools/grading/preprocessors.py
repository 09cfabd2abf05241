"""nbgrader preprocessors of the course (configured in ``nbgrader_config.py``)."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from course_lib.gpu import GPU_TAG, cuda_available, mark_skipped_gpu_cells


class MarkSkippedGpuCells(Preprocessor):
    """After execution, give each skipped ``gpu`` cell the visible "skipped: needs a CUDA GPU" output."""

    enabled = Bool(True, help="mark skipped gpu cells in autograded notebooks").tag(config=True)

    def preprocess(self, nb, resources):
        if not cuda_available():
            mark_skipped_gpu_cells(nb)
        return nb, resources


class StripGpuTagFromGradedCells(Preprocessor):
    """Remove the ``gpu`` tag from graded cells of a submission before it is executed.

    Tags are not restored from the source by nbgrader, and a skipped graded cell scores full
    points, so a student could otherwise tag a failing test cell ``gpu`` on a CPU-only grader.
    """

    enabled = Bool(True, help="strip gpu tags from graded cells").tag(config=True)

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and GPU_TAG in cell.metadata.get("tags", []):
                cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != GPU_TAG]
        return nb, resources
