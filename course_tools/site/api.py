"""The website's API reference: one page per public ``course_lib`` module, written at staging time.

Every module (and sub-package) of ``course_lib`` whose name has no leading underscore gets a page
``api/<dotted.name>.md`` holding Sphinx's ``automodule`` (members in source order, signatures with
type hints, docstrings as reStructuredText: ``.. math::`` and ``:math:`` render through the site's
offline MathJax). The list is read from the package itself, so a new module is picked up by the
next ``site build`` without any edit here. ``api/index.md`` lists the modules with the first line
of their docstring; the lectures' "``course_lib.X``" mentions link to these pages
(:func:`link_modules`).
"""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

from course_tools.layout import REPO_ROOT

PACKAGE = "course_lib"
API_DIR = "api"
MODULE_MENTION = re.compile(r"(?<![\[\w])`(course_lib(?:\.[a-z_][a-z0-9_]*)+)`(?!\]|\()")
API_MENTION = re.compile(r"\bsee the API reference\b")


def public_modules(root: Path = REPO_ROOT) -> list[str]:
    """Dotted names of ``course_lib`` and its public modules and sub-packages, sorted."""
    package_dir = root / PACKAGE
    names = [PACKAGE]
    for info in pkgutil.walk_packages([str(package_dir)], prefix=PACKAGE + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def module_path(name: str, root: Path = REPO_ROOT) -> Path:
    base = root.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def summary(name: str, root: Path = REPO_ROOT) -> str:
    """The first line of a module's docstring (read without importing it)."""
    doc = ast.get_docstring(ast.parse(module_path(name, root).read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n", 1)[0].strip() or "(no module docstring)"


def docname(name: str) -> str:
    return f"{API_DIR}/{name}"


def module_page(name: str) -> str:
    return (f"# `{name}`\n\n"
            "```{eval-rst}\n"
            f".. automodule:: {name}\n"
            "   :members:\n"
            "   :show-inheritance:\n"
            "```\n")


def index_page(modules: list[str], root: Path = REPO_ROOT) -> str:
    rows = ["| [`{}`]({}.md) | {} |".format(m, m, summary(m, root).replace("|", "\\|")) for m in modules]
    return ("# API reference\n\n"
            "Every public function and class of `course_lib`, the library the lectures and assignments "
            "import, generated from its docstrings (shapes, formulas and the lecture each one implements). "
            "The {ref}`index <genindex>` lists every name.\n\n"
            "| module | what it holds |\n| --- | --- |\n" + "\n".join(rows) + "\n")


def pages(root: Path = REPO_ROOT) -> dict[str, str]:
    """``{relative path in the staging folder: text}`` of the reference pages."""
    modules = public_modules(root)
    out = {f"{API_DIR}/index.md": index_page(modules, root)}
    out.update({f"{docname(m)}.md": module_page(m) for m in modules})
    return out


def link_modules(markdown: str, modules: set[str], prefix: str = "../") -> str:
    """Turn ``course_lib.X`` inline-code mentions into links to their reference pages.

    ``prefix`` leads from the page to the site root (``../`` from ``lectures/NN-topic``). A
    mention of a name inside a module (``course_lib.conv.im2col``) links to the module's page.
    "see the API reference" links to the reference's index.
    """
    def repl(match: re.Match) -> str:
        name = match.group(1)
        module = name
        while module not in modules and "." in module:
            module = module.rsplit(".", 1)[0]
        if module not in modules:
            return match.group(0)
        return f"[`{name}`]({prefix}{docname(module)}.md)"

    text = MODULE_MENTION.sub(repl, markdown)
    return API_MENTION.sub(f"see the [API reference]({prefix}{API_DIR}/index.md)", text)


__all__ = ["API_DIR", "docname", "index_page", "link_modules", "module_page", "pages", "public_modules", "summary"]
