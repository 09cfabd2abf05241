"""The course website (Jupyter Book 1), built offline from the executed notebooks.

- :mod:`course_tools.site.build`   stage ``book/``, the executed lectures, the released assignments,
  the syllabus and the benchmark results, then run ``jupyter-book build``
- :mod:`course_tools.site.checks`  post-build checks: no external assets, no broken links, no leaks
"""

from course_tools.site.build import (
    BOOK_DIR,
    EXECUTED_DIR,
    GPU_NOTE,
    SITE_DIR,
    STAGING_DIR,
    SiteReport,
    _syllabus_links,
    benchmarks_page,
    build,
    error_outputs,
    flatten_widgets,
    glossary_page,
    glossary_terms,
    image_outputs,
    main,
    notebook_mode,
    plotting_cells,
    prepare_assignment,
    prepare_lecture,
    run_jupyter_book,
    stage,
    syllabus_page,
    toc_yaml,
)
from course_tools.site.checks import assignment_leaks, broken_links, check_site, external_references, is_external
from course_tools.site.pages import Page, SiteError

__all__ = [
    "BOOK_DIR",
    "EXECUTED_DIR",
    "GPU_NOTE",
    "Page",
    "SITE_DIR",
    "STAGING_DIR",
    "SiteError",
    "SiteReport",
    "_syllabus_links",
    "assignment_leaks",
    "benchmarks_page",
    "broken_links",
    "build",
    "check_site",
    "error_outputs",
    "external_references",
    "flatten_widgets",
    "glossary_page",
    "glossary_terms",
    "image_outputs",
    "is_external",
    "main",
    "notebook_mode",
    "plotting_cells",
    "prepare_assignment",
    "prepare_lecture",
    "run_jupyter_book",
    "stage",
    "syllabus_page",
    "toc_yaml",
]
