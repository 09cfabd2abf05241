"""What students receive, week by week: the released lectures and assignments and a ``course_lib``
whose answers to open assignments are stubs (``python -m course_tools student-release``).

- :mod:`course_tools.student_release.stubs`: which ``course_lib`` code is hidden on a given day,
  and the AST rewrite that replaces it by stubs;
- :mod:`course_tools.student_release.build`: the bundle (plan, pre-executed lectures, student files);
- :mod:`course_tools.student_release.scan`: the leak scan of a finished bundle;
- :mod:`course_tools.student_release.templates`: the student README, Makefile and environment files.
"""

from course_tools.student_release.build import Plan, ReleaseError, build, bundle_digest, plan, release_date
from course_tools.student_release.scan import scan_bundle

__all__ = ["Plan", "ReleaseError", "build", "bundle_digest", "plan", "release_date", "scan_bundle"]
