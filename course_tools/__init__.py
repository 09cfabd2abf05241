"""course_tools: the instructor's and CI's tooling of the course — never imported by ``course_lib``.

One command line, ``python -m course_tools --help`` (the Makefile's targets call it):

- :mod:`course_tools.notebooks`   jupytext conversion of the ``.py`` sources and the notebook executor
- :mod:`course_tools.site`        the Jupyter Book website: staging, build, post-build checks
- :mod:`course_tools.grading`     release, leak scan, nbgrader glue, the sandboxed autograder
- :mod:`course_tools.syllabus`    ``syllabus.toml`` and the README's generated table
- :mod:`course_tools.benchmarking` the harness every script under ``benchmarks/`` reports through
- :mod:`course_tools.layout`      every folder and environment-variable name, in one place
"""

__version__ = "0.1.0"
