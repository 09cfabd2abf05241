"""Assignment tooling on top of nbgrader: release generation, leak scanning and grading.

- :mod:`course_lib.grading.release`  regenerate ``assignments/`` from ``solutions/`` (and check it is current)
- :mod:`course_lib.grading.leaks`    find solution or hidden-test lines in released material
- :mod:`course_lib.grading.nbgrader_cli`  collect, autograde, feedback and export through nbgrader
- ``python -m course_lib.grading --help``  the instructor's command line (the Makefile calls it)
"""
