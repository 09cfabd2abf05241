"""The grading commands of ``python -m course_tools`` (release, check-release, collect, autograde, feedback, export)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_tools.grading import autograde as autograder
from course_tools.grading import nbgrader_cli
from course_tools.grading.release import GradingError, assignment_names, check_release, generate
from course_tools.layout import REPO_ROOT


def main(argv: list[str] | None = None, prog: str = "python -m course_tools") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="course assignment tooling")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("names", nargs="*", help="assignments (default: all), e.g. 01-neural-networks")
    sub.add_parser("check-release", help="exit 1 if assignments/ is not what solutions/ generates")
    p = sub.add_parser("collect", help="copy submissions (FROM/<student>/*.ipynb) into grading/submitted")
    p.add_argument("name")
    p.add_argument("--from", dest="from_dir", type=Path, required=True)
    p = sub.add_parser("autograde", help="grade every collected submission (sandboxed, parallel, resumable)")
    autograder.add_arguments(p)
    p = sub.add_parser("feedback", help="write feedback HTML per student into grading/feedback")
    p.add_argument("name")
    p = sub.add_parser("export", help="write grading/grades.csv")
    p.add_argument("--to", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            for name in args.names or assignment_names():
                print(f"released {generate(name).relative_to(REPO_ROOT)}")
        elif args.command == "check-release":
            problems = check_release()
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                print("run `make release` and commit assignments/", file=sys.stderr)
                return 1
            print("assignments/ is up to date")
        elif args.command == "collect":
            print(nbgrader_cli.collect(args.name, args.from_dir).describe())
        elif args.command == "autograde":
            return autograder.run_from_args(args)
        elif args.command == "feedback":  # from the redacted notebooks: no hidden test code
            print(autograder.generate_feedback(args.name))
        elif args.command == "export":
            print(f"wrote {nbgrader_cli.export(to=args.to)}")
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
