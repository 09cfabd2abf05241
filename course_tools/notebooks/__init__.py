"""Notebook sources and their execution.

- :mod:`course_tools.notebooks.convert`  jupytext percent ``.py`` -> ``.ipynb`` with stable cell ids
- :mod:`course_tools.notebooks.execute`  run notebooks with papermill (smoke or full), in parallel, with timeouts
"""
