"""nbgrader configuration of the course (read by every `nbgrader` command run from this folder).

solutions/   nbgrader source: solutions + visible + hidden tests (generated .ipynb from the .py sources)
assignments/ nbgrader release: what students get (generated, committed)
grading/     submissions, autograded notebooks, feedback and the SQLite gradebook (git-ignored)
"""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - injected by nbgrader/traitlets

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from course_tools.layout import ASSIGNMENTS, SOLUTIONS, CourseLayout  # noqa: E402

_course = CourseLayout(Path(HERE))
c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "foundations-of-deep-learning"
c.CourseDirectory.source_directory = SOLUTIONS
c.CourseDirectory.release_directory = ASSIGNMENTS
c.CourseDirectory.submitted_directory = str(_course.grading.relative_to(_course.root) / "submitted")
c.CourseDirectory.autograded_directory = str(_course.grading.relative_to(_course.root) / "autograded")
c.CourseDirectory.feedback_directory = str(_course.grading.relative_to(_course.root) / "feedback")
c.CourseDirectory.db_url = "sqlite:///" + str(_course.gradebook)
_course.grading.mkdir(exist_ok=True)

# Only the generated .ipynb of a source assignment is a notebook; its .py twin is not released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# gpu-tagged cells: skipped where no CUDA device exists (the same decision as the executor and
# nbval; COURSE_GPU=0/1 overrides it without importing torch). Graded cells are never gpu cells:
# a skipped graded cell would score full points (tests/tools/test_notebook_sources.py enforces this).
from course_lib.gpu import skip_tag  # noqa: E402

_tag = skip_tag()
if _tag:
    c.Execute.skip_cells_with_tag = _tag

c.Execute.timeout = 300
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# After execution, skipped gpu cells get a visible "skipped: needs a CUDA GPU" output in the
# autograded notebook and the feedback.
from nbgrader.converters.autograde import Autograde  # noqa: E402

from course_tools.grading.preprocessors import MarkSkippedGpuCells, StripGpuTagFromGradedCells  # noqa: E402

_steps = list(Autograde.class_traits()["autograde_preprocessors"].make_dynamic_default())
_steps.insert(_steps.index(next(s for s in _steps if s.__name__ == "Execute")) + 1, MarkSkippedGpuCells)
c.Autograde.autograde_preprocessors = _steps

# A student could tag a failing graded cell `gpu` (tags are not restored from the source) and have
# it skipped - and a skipped graded cell scores full points. Strip the tag before execution.
c.Autograde.sanitize_preprocessors = [
    *Autograde.class_traits()["sanitize_preprocessors"].make_dynamic_default(),
    StripGpuTagFromGradedCells,
]
