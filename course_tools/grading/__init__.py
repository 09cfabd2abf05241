"""Assignments on top of nbgrader: the release, the leak scan, collection, the sandboxed autograder, feedback.

- :mod:`course_tools.grading.release`        regenerate ``assignments/`` from ``solutions/`` (and check it is current)
- :mod:`course_tools.grading.leaks`          find solution or hidden-test lines in released material
- :mod:`course_tools.grading.nbgrader_cli`   collect and export through nbgrader
- :mod:`course_tools.grading.autograde`      the autograder's entry point (``autograde()``, the command line, the
  ``--worker`` process): sandboxed kernels, limits, parallel workers, resumable runs, feedback with hidden tests redacted
- :mod:`course_tools.grading.submission`     loading and checking a submission's notebooks, assembling them from the
  source, hashing and staging its files, redacting hidden tests
- :mod:`course_tools.grading.cells`          cell roles (an enum), nbgrader metadata, cell keys and sources
- :mod:`course_tools.grading.scan`           the static scan of the student's code (flags for review)
- :mod:`course_tools.grading.runner`         the notebook runner: kernel cells, evaluator test parts, restarts
- :mod:`course_tools.grading.reports`        typed reports and statuses (enums), rendered as text, HTML and CSV rows
- :mod:`course_tools.grading.gradebook`      nbgrader's gradebook, ``grades.csv``, feedback
- :mod:`course_tools.grading.rules`          the assignment's rules: static check, overrides
- :mod:`course_tools.grading.scheduler`      where submissions are graded: a local process pool or a Dask cluster
- :mod:`course_tools.grading.similarity`     the similarity report: winnowed answer cells between submissions and
  against the solution and ``course_lib``, the given code ignored (changes no score)
- :mod:`course_tools.grading.evaluator`      the trusted evaluator test cells run in, proxies of student objects
- :mod:`course_tools.grading.wire`           the plain-data protocol, and the agent that serves it inside the kernel
- :mod:`course_tools.grading.kernel`         the sandboxed kernel session (start, execute, interrupt, kill)
- :mod:`course_tools.grading.config`         limits and switches of a run, folder names, constants
- :mod:`course_tools.grading.sandbox`        the kernel sandbox (bubblewrap or unshare) and its probe
- :mod:`course_tools.grading.preprocessors`  nbgrader preprocessors for ``gpu`` cells
- :mod:`course_tools.grading.validate`       ``make validate``: a student's check of a notebook before submitting it
- :mod:`course_tools.grading.cli`            the grading commands of ``python -m course_tools``
"""
