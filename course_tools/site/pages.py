"""The website's page records and its error type, shared by the builder and the checks."""

from __future__ import annotations

from dataclasses import dataclass


class SiteError(RuntimeError):
    """The website could not be built; the message says which input or step failed."""


@dataclass
class Page:
    """One page of the site: ``docname`` is its path in the staging folder without suffix."""

    kind: str  # "lecture", "assignment", "book" or "api"
    docname: str
    source: str  # where its content came from (repo-relative)
    number: str = ""
