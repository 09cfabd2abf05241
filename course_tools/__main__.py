"""The course's one command line: ``python -m course_tools COMMAND [ARGS]`` (the Makefile's targets call it).

``python -m course_tools --help`` lists the commands; ``python -m course_tools COMMAND --help``
gives each one's options. Each command is implemented in the module named in :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

PROG = "python -m course_tools"


@dataclass(frozen=True)
class Command:
    """A command: the ``module:function`` that implements it, the argv words put before the user's, a summary."""

    target: str
    summary: str
    prefix: tuple[str, ...] = ()

    def run(self, name: str, argv: list[str]) -> int:
        module_name, function_name = self.target.split(":")
        main: Callable[..., int] = getattr(importlib.import_module(module_name), function_name)
        prog = f"{PROG} {name}" if not self.prefix else PROG
        return int(main([*self.prefix, *argv], prog=prog) or 0)


COMMANDS: dict[str, Command] = {
    "sync": Command("course_tools.notebooks.execute:main", "write the .ipynb twin of every lecture and solution source",
                    ("sync",)),
    "execute": Command("course_tools.notebooks.execute:main",
                       "execute notebooks (smoke, or --full) into build/executed and print a timing table",
                       ("execute",)),
    "site": Command("course_tools.site.build:main", "build the website from the executed notebooks (site build|check)"),
    "syllabus": Command("course_tools.syllabus:main", "regenerate (or --check) README.md's syllabus table"),
    "bench": Command("course_tools.benchmarking:main", "run the benchmark scripts, then regenerate benchmarks/RESULTS.md"),
    "release": Command("course_tools.grading.cli:main", "regenerate assignments/ from solutions/", ("release",)),
    "check-release": Command("course_tools.grading.cli:main", "exit 1 if assignments/ is not what solutions/ generates",
                             ("check-release",)),
    "collect": Command("course_tools.grading.cli:main", "copy submissions (FROM/<student>/*.ipynb) into grading/submitted",
                       ("collect",)),
    "autograde": Command("course_tools.grading.cli:main", "grade every collected submission (sandboxed, parallel, resumable)",
                         ("autograde",)),
    "feedback": Command("course_tools.grading.cli:main", "write feedback HTML per student into grading/feedback",
                        ("feedback",)),
    "export": Command("course_tools.grading.cli:main", "write grading/grades.csv", ("export",)),
    "similarity": Command("course_tools.grading.similarity:main",
                          "pairwise similarity of the answer cells of collected submissions, and against the references"),
    "lab": Command("course_tools.lab:main", "JupyterLab for students (--role instructor: with formgrader and "
                   "Create Assignment)"),
    "validate": Command("course_tools.grading.validate:main",
                        "student: run an assignment notebook's tests as the Validate button does; exit 1 if any fails"),
    "new-lecture": Command("course_tools.scaffold:main",
                           "scaffold lecture NN TOPIC: lecture, assignment, course_lib module, test, benchmark, syllabus"),
    "student-release": Command("course_tools.student_release.build:main",
                               "build what students receive on a date: released lectures/assignments, answers stubbed"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [ARGS]   ({PROG} COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"{PROG}: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return COMMANDS[name].run(name, rest)


if __name__ == "__main__":
    raise SystemExit(main())
