"""The grader's configuration: limits and switches of a run, folder names, constants."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course_tools.grading import sandbox as sb
from course_tools.layout import CACHE_ENV_VAR, GPU_ENV_VAR, GRADING, MIRROR_ENV_VAR, SMOKE_ENV_VAR

GRADER_VERSION = "evaluator-3"  # 3: the rules' notes in the feedback
#: the environment variables passed on to a student kernel (nothing else of the grader's environment is)
KERNEL_ENV_VARS = (GPU_ENV_VAR, SMOKE_ENV_VAR, CACHE_ENV_VAR, MIRROR_ENV_VAR)
REPORTS_DIR = Path(GRADING) / "reports"
REDACTED_DIR = Path(GRADING) / "redacted"
SUBMITTED_DIR = Path(GRADING) / "submitted"
AUTOGRADED_DIR = Path(GRADING) / "autograded"
#: the instructor's per-student exceptions to the assignment's rules (README, "The assignment's rules")
RULE_OVERRIDES = Path(GRADING) / "rule-overrides.toml"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FAILED = "hidden test failed"
MAX_SUBMISSION_BYTES = 50 << 20
#: one notebook larger than this, or JSON nested deeper than this, is not graded (with a reason and a grades row)
MAX_NOTEBOOK_BYTES = 50 << 20
MAX_JSON_DEPTH = 200
#: seconds between sweeps when killing a kernel's leftover children
KILL_POLL_INTERVAL_S = 0.05
#: after a cell's execute_reply, how long to wait for the kernel's "idle" status before moving on
IDLE_AFTER_REPLY_TIMEOUT_S = 2.0
#: lines of a kernel traceback kept in a report, and characters of a worker's crash log
MAX_TRACEBACK_LINES = 60
MAX_LOG_TAIL_CHARS = 4000
#: kernel starts tried per notebook before it is reported "kernel start failed" (and left for the next run)
KERNEL_START_ATTEMPTS = 3
#: what a student id (a folder name under grading/submitted) may be: it names files, gradebook rows and feedback
STUDENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
STUDENT_ID_RULE = ("a student id is 1 to 64 letters, digits and . _ @ + -, starting with a letter or digit, "
                   "and not a name the grader uses itself")
RESERVED_STUDENT_IDS = frozenset({"grades", "distribution"})
#: seconds the evaluator waits for the kernel's agent to answer the start of a test
AGENT_READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class GradeConfig:
    """Limits and switches of one autograding run (all part of the submissions' cache key)."""

    cell_timeout: float = 120.0  # seconds per cell (a test cell: per visible/hidden part)
    notebook_timeout: float = 900.0  # seconds per notebook, restarts and replays included
    startup_timeout: float = 120.0  # kernel start + grader prelude
    interrupt_grace: float = 5.0  # after SIGINT, seconds before the kernel is killed
    max_restarts: int = 3  # kernel restarts per notebook
    output_cap: int = 100_000  # characters of output kept per cell in the graded notebook
    output_hard_cap: int = 20_000_000  # characters per cell after which a running cell is interrupted
    limits: sb.Limits = field(default_factory=sb.Limits)
    smoke: bool | None = None  # COURSE_SMOKE for the kernels (None: inherit the environment)

    def key(self) -> dict:
        """Everything that can change a grade, with numbers as floats (6 and 6.0 are the same limit)."""
        def norm(v):
            if isinstance(v, dict):
                return {k: norm(x) for k, x in v.items()}
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        return norm(asdict(self))


def config_from_dict(d: dict) -> GradeConfig:
    d = dict(d)
    d["limits"] = sb.Limits(**{k: int(v) for k, v in d["limits"].items()})
    d["max_restarts"] = int(d["max_restarts"])
    d["output_cap"], d["output_hard_cap"] = int(d["output_cap"]), int(d["output_hard_cap"])
    return GradeConfig(**d)
