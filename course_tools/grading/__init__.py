"""Assignments on top of nbgrader: the release, the leak scan, collection, the sandboxed autograder, feedback.

- :mod:`course_tools.grading.release`        regenerate ``assignments/`` from ``solutions/`` (and check it is current)
- :mod:`course_tools.grading.leaks`          find solution or hidden-test lines in released material
- :mod:`course_tools.grading.nbgrader_cli`   collect and export through nbgrader
- :mod:`course_tools.grading.autograde`      the robust autograder: sandboxed kernels, limits, parallel
  workers, resumable runs, reports, feedback with hidden tests redacted
- :mod:`course_tools.grading.scheduler`      where submissions are graded: a local process pool or a Dask cluster
- :mod:`course_tools.grading.evaluator`      the trusted evaluator test cells run in, proxies of student objects
- :mod:`course_tools.grading.wire`           the plain-data protocol, and the agent that serves it inside the kernel
- :mod:`course_tools.grading.kernel`         the sandboxed kernel session (start, execute, interrupt, kill)
- :mod:`course_tools.grading.config`         limits and switches of a run, folder names, constants
- :mod:`course_tools.grading.sandbox`        the kernel sandbox (bubblewrap or unshare) and its probe
- :mod:`course_tools.grading.preprocessors`  nbgrader preprocessors for ``gpu`` cells
- :mod:`course_tools.grading.cli`            the grading commands of ``python -m course_tools``
"""
