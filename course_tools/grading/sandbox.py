"""Run an untrusted Jupyter kernel in the strongest isolation this machine offers.

The autograder (:mod:`course_tools.grading.autograde`) stays outside; only the kernel that executes
student code is started through :func:`kernel_command`. Three mechanisms, strongest first:

``bwrap``
    bubblewrap (``bwrap`` on ``PATH`` or ``$COURSE_BWRAP``): new user (unless root), network, pid,
    ipc and uts namespaces and a fresh root that holds only the paths the kernel needs.
``unshare``
    util-linux ``unshare`` plus a small init written here (``python sandbox.py --init``, see
    :func:`_init_main`): network, pid, ipc, uts and mount namespaces (and a user namespace when
    not root); the init builds the same minimal root as bwrap on a tmpfs (read-only binds of the
    system, the Python install, the venv, ``course_lib`` and the data mirror; a size-limited tmpfs
    for the working dir, ``/tmp`` and ``/dev/shm``), ``pivot_root``\\ s into it, drops privileges
    and stays as pid 1 reaping orphans. When only plain ``unshare -rn`` works (no mount or pid
    namespace) the variant ``unshare-net`` is used and :attr:`Isolation.hides_course` is False.
``none``
    no namespaces (only with ``--no-sandbox``): resource limits and, as root, a separate uid.

In every mode the kernel gets resource limits (:class:`Limits`, set with ``setrlimit`` in the
child before ``exec``): address space, CPU seconds, processes, file size, open files. Running as
root, the kernel runs under its own unprivileged uid (``uid_base + slot``, one per parallel job, so
one job's fork bomb cannot use up another job's process budget) and can read no root-only file;
``RLIMIT_NPROC`` is not enforced for root, so the uid drop is also what makes the process limit
bite. Each kernel dies with its launcher (``PR_SET_PDEATHSIG`` / ``--die-with-parent``), and the
pid namespace takes every process the kernel started with it.

Only the standard library is imported at module level: the file also runs as the sandbox's init
with ``python -I -S sandbox.py --init SPEC``.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# This file also runs *inside* the sandbox as a standalone script (where course_tools is not
# visible), so it imports nothing from the course and defines its own environment variables;
# course_tools.layout re-exports them.
UID_BASE_ENV = "COURSE_GRADER_UID_BASE"
BWRAP_ENV = "COURSE_BWRAP"
VARIANT_ENV = "COURSE_SANDBOX_VARIANT"  # force one variant (tests of the weaker variants)

DEFAULT_UID_BASE = 64000
KINDS = ("bwrap", "unshare", "none")

# prctl / mount constants (linux/prctl.h, linux/mount.h, linux/securebits.h)
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
MNT_DETACH = 2
SECURE_NOROOT_ALL = 0xFF  # noroot, no_setuid_fixup, keep_caps, no_cap_ambient_raise: set and locked
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "ppc64le": 203, "s390x": 217, "riscv64": 41}


class SandboxError(RuntimeError):
    """No isolation is available (and ``--no-sandbox`` was not given), or a probe failed."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one kernel (``setrlimit`` before exec; tmpfs sizes inside the sandbox)."""

    address_space: int = 4 << 30  # RLIMIT_AS, bytes: a memory bomb ends in MemoryError
    cpu_seconds: int = 1800  # RLIMIT_CPU: SIGXCPU kills a kernel that burns this much CPU
    processes: int = 64  # RLIMIT_NPROC: tasks (processes + threads) of the kernel's uid
    file_size: int = 64 << 20  # RLIMIT_FSIZE: largest file the kernel may write (EFBIG beyond)
    open_files: int = 1024  # RLIMIT_NOFILE
    workdir_size: int = 256 << 20  # tmpfs holding the working dir (sandboxed modes)
    tmp_size: int = 128 << 20  # tmpfs for /tmp and /dev/shm (sandboxed modes)

    def describe(self) -> str:
        return (f"address space {self.address_space / 2**30:.1f} GiB, CPU {self.cpu_seconds} s, "
                f"{self.processes} processes, files {self.file_size >> 20} MiB, "
                f"working dir {self.workdir_size >> 20} MiB")


@dataclass(frozen=True)
class Isolation:
    """What :func:`detect` found: the mechanism, its variant and what it guarantees."""

    kind: str  # "bwrap" | "unshare" | "none"
    variant: str  # e.g. "bwrap-root", "bwrap-user", "unshare-root", "unshare-user", "unshare-net", "none"
    bwrap: str | None = None
    drop_uid: bool = False  # the kernel runs under its own unprivileged uid
    network_isolated: bool = False
    pid_namespace: bool = False
    hides_course: bool = False  # only the listed paths exist inside (course, solutions, gradebook absent)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "none":
            text = "none: the kernel runs unsandboxed (--no-sandbox), with resource limits only"
        else:
            what = ["network" if self.network_isolated else None, "pid" if self.pid_namespace else None,
                    "mount" if self.hides_course else None]
            text = f"{self.variant} ({', '.join(w for w in what if w)} namespaces"
            text += "; private root with only the Python install, course_lib, data and the submission)" \
                if self.hides_course else "; the file system is NOT hidden)"
        text += "; kernel uid dropped to an unprivileged uid" if self.drop_uid else "; kernel keeps the grader's uid"
        for note in self.notes:
            text += f"; {note}"
        return text


@dataclass
class SandboxSpec:
    """One kernel's sandbox: its folders (same path inside and outside) and environment.

    ``stage``: read-only copy of the submission (the kernel copies it into ``workdir``);
    ``ipc``: writable folder for the connection file and the kernel's IPC sockets;
    ``workdir``: the kernel's cwd (a size-limited tmpfs in the sandboxed modes);
    ``newroot``: an empty folder the unshare init mounts its new root on.
    """

    stage: Path
    ipc: Path
    workdir: Path
    newroot: Path
    readonly: list[Path] = field(default_factory=list)
    uid: int | None = None
    env: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# what the kernel needs to see


def _python_paths() -> list[Path]:
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
    exe = Path(sys.executable)
    paths.add(exe.parent)
    paths.add(exe.resolve().parent.parent)
    return [p.resolve() for p in paths if p.exists()]


def _package_paths() -> list[Path]:
    """``course_lib`` itself (an editable install points outside site-packages)."""
    import importlib.util

    spec = importlib.util.find_spec("course_lib")
    out = []
    for loc in (spec.submodule_search_locations or []) if spec else []:
        out.append(Path(loc).resolve())
    return out


def _data_paths() -> list[Path]:
    out = []
    try:
        from course_lib.data.store import cache_dir, mirror_dir

        for p in (cache_dir(), mirror_dir()):
            if Path(p).is_dir():
                out.append(Path(p).resolve())
    except Exception:  # pragma: no cover - the data package is optional for grading
        pass
    return out


SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")


def default_readonly_paths() -> list[Path]:
    """Paths bound read-only into the sandbox: system dirs, the Python install, course_lib, data."""
    paths = [Path(p) for p in SYSTEM_DIRS if os.path.lexists(p)]
    paths += _python_paths() + _package_paths() + _data_paths()
    if Path("/sys/devices/system/cpu").is_dir():
        paths.append(Path("/sys/devices/system/cpu"))
    return _minimal(paths)


def _minimal(paths: list[Path]) -> list[Path]:
    """Drop duplicates and paths inside another listed (non-symlink) path, keep order."""
    out: list[Path] = []
    for p in sorted({Path(os.path.abspath(p)) for p in paths}, key=lambda x: (len(x.parts), str(x))):
        if any(not q.is_symlink() and (p == q or q in p.parents) for q in out):
            continue
        out.append(p)
    return out


def visible_paths(spec: SandboxSpec) -> list[Path]:
    return _minimal(list(spec.readonly) + [spec.stage, spec.ipc, spec.workdir])


def check_hidden(spec: SandboxSpec, hidden: list[Path]) -> list[str]:
    """Problems: hidden paths (solutions, gradebook) that a read-only bind would expose."""
    problems = []
    for h in hidden:
        h = Path(os.path.abspath(h))
        for v in visible_paths(spec):
            real = Path(os.path.realpath(v))
            if h == real or real in h.parents or h == v or v in h.parents:
                problems.append(f"{h} would be visible in the sandbox through {v}")
    return problems


# --------------------------------------------------------------------------------------------
# launching


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _uid_base() -> int:
    return int(os.environ.get(UID_BASE_ENV, DEFAULT_UID_BASE))


def kernel_uid(iso: Isolation, slot: int) -> int | None:
    """The uid the kernel of parallel slot ``slot`` runs under, or None (keeps the grader's uid)."""
    return _uid_base() + slot if iso.drop_uid else None


def _tasks_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}")
            if st.st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def preexec(iso: Isolation, limits: Limits, *, uid: int | None = None):
    """A ``preexec_fn`` for the launcher: new session, rlimits, (none mode) uid drop, death signal."""
    nproc = limits.processes
    if uid is None and os.geteuid() != 0:
        # RLIMIT_NPROC counts every task of the uid: leave room for what the grader's uid already runs
        nproc += _tasks_of_uid(os.geteuid())
    launcher = os.getpid()  # preexec_fn is built in the process that starts the kernel

    def fn() -> None:
        os.setsid()
        for res, value in ((resource.RLIMIT_AS, limits.address_space), (resource.RLIMIT_CPU, limits.cpu_seconds),
                           (resource.RLIMIT_FSIZE, limits.file_size), (resource.RLIMIT_NOFILE, limits.open_files),
                           (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                soft, hard = resource.getrlimit(res)
                resource.setrlimit(res, (min(value, hard) if hard != resource.RLIM_INFINITY else value, hard))
        if iso.kind == "none" and uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != launcher:  # the launcher died before the signal was armed: never start
            os._exit(1)

    return fn


def _bwrap_args(iso: Isolation, spec: SandboxSpec, limits: Limits) -> list[str]:
    args = [iso.bwrap or "bwrap", "--die-with-parent", "--new-session"]
    if iso.variant == "bwrap-root":
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-all"]
    made: set[str] = {"/"}

    def parents(path: Path) -> None:
        # bwrap creates missing parent folders with mode 0700: create them 0755 ourselves, so that
        # an unprivileged kernel can walk down to /work/main/.venv or /root/.pyenv/...
        for parent in reversed(path.parents):
            if str(parent) not in made:
                args.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(str(parent))
        made.add(str(path))

    # /tmp first: a venv or checkout that lives under /tmp is bound on top of it, not hidden by it
    args += ["--size", str(limits.tmp_size), "--perms", "1777", "--tmpfs", "/tmp"]
    made.add("/tmp")
    for p in spec.readonly:
        if p.is_symlink() and str(p.parent) == "/":
            args += ["--symlink", os.readlink(p), str(p)]
            made.add(str(p))
        elif p.exists():
            parents(p)
            args += ["--ro-bind", str(p), str(p)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    made |= {"/proc", "/dev"}
    parents(spec.stage)
    args += ["--ro-bind", str(spec.stage), str(spec.stage)]
    parents(spec.ipc)
    args += ["--bind", str(spec.ipc), str(spec.ipc)]
    parents(spec.workdir)
    args += ["--size", str(limits.workdir_size), "--perms", "0777", "--tmpfs", str(spec.workdir),
             "--remount-ro", "/", "--chdir", str(spec.workdir)]
    if iso.variant == "bwrap-root" and spec.uid is not None:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        args += ["--", setpriv, f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups", "--"]
    else:
        args += ["--"]
    return args


def _unshare_args(iso: Isolation, spec: SandboxSpec, limits: Limits, argv: list[str]) -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    if iso.variant == "unshare-net":
        return [unshare, "--user", "--map-root-user", "--net", "--"] + argv
    flags = ["--net", "--pid", "--fork", "--kill-child", "--mount", "--ipc", "--uts", "--propagation", "private"]
    if iso.variant == "unshare-user":
        flags = ["--user", "--map-root-user"] + flags
    init = {
        "newroot": str(spec.newroot),
        "readonly": [str(p) for p in spec.readonly],
        "stage": str(spec.stage),
        "ipc": str(spec.ipc),
        "workdir": str(spec.workdir),
        "workdir_size": limits.workdir_size,
        "tmp_size": limits.tmp_size,
        "uid": spec.uid,
        "argv": argv,
    }
    return [unshare, *flags, "--", sys.executable, "-I", "-S", os.path.abspath(__file__), "--init", json.dumps(init)]


def kernel_command(iso: Isolation, spec: SandboxSpec, argv: list[str], limits: Limits) -> list[str]:
    """The full command line that runs ``argv`` (the kernel) inside the sandbox ``spec``."""
    if iso.kind == "bwrap":
        return _bwrap_args(iso, spec, limits) + argv
    if iso.kind == "unshare":
        return _unshare_args(iso, spec, limits, argv)
    return list(argv)


def prepare_dirs(spec: SandboxSpec, *, host_access: bool = False) -> None:
    """Create the sandbox folders and give the kernel's uid the ones it writes.

    ``host_access``: the kernel sees the host's file system (modes ``none`` and ``unshare-net``), so
    its uid needs the staged files readable and their folders traversable on the host itself.
    """
    for d in (spec.stage, spec.ipc, spec.workdir, spec.newroot):
        d.mkdir(parents=True, exist_ok=True)
    if spec.uid is not None:
        for d in (spec.ipc, spec.workdir):
            os.chown(d, spec.uid, spec.uid)
        for dirpath, dirnames, filenames in os.walk(spec.stage):
            for name in dirnames + filenames:
                os.chmod(os.path.join(dirpath, name), 0o755 if name in dirnames else 0o644)
        os.chmod(spec.stage, 0o755)
        if not host_access:
            return
        os.chown(spec.workdir, spec.uid, spec.uid)
        # every ancestor of the folders must be traversable by the kernel's uid (outside bwrap/init)
        for d in (spec.stage, spec.ipc, spec.workdir):
            for parent in d.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    os.chmod(parent, mode | stat.S_IXOTH)


# --------------------------------------------------------------------------------------------
# detection

PROBE = r"""
import json, os, socket, sys
out = {"uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd()}
out["hidden_visible"] = os.path.exists(sys.argv[1])
out["prefix"] = sys.prefix
try:
    import ipykernel
    out["ipykernel"] = True
except Exception as exc:
    out["ipykernel"] = f"{type(exc).__name__}: {exc}"
s = socket.socket()
s.settimeout(2)
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    out["network"] = True
except OSError as exc:
    out["network"] = False
    out["network_error"] = exc.strerror or str(exc)
finally:
    s.close()
print("PROBE" + json.dumps(out))
"""


def _probe(iso: Isolation, limits: Limits) -> tuple[bool, dict | str]:
    import socket

    with tempfile.TemporaryDirectory(prefix="cg-probe-") as tmp:
        tmp_path = Path(tmp)
        secret = tmp_path / "secret.txt"
        secret.write_text("secret")
        os.chmod(tmp, 0o711)
        spec = SandboxSpec(stage=tmp_path / "stage", ipc=tmp_path / "ipc", workdir=tmp_path / "work",
                           newroot=tmp_path / "root", readonly=default_readonly_paths(),
                           uid=kernel_uid(iso, 0))
        prepare_dirs(spec)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.01)
        port = server.getsockname()[1]
        argv = [sys.executable, "-I", "-c", PROBE, str(secret), "127.0.0.1", str(port)]
        cmd = kernel_command(iso, spec, argv, limits)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=str(spec.stage),
                                  preexec_fn=preexec(iso, limits, uid=spec.uid))
        except (OSError, subprocess.SubprocessError) as exc:
            server.close()
            return False, f"{type(exc).__name__}: {exc}"
        try:
            conn, _ = server.accept()
            conn.close()
            accepted = True
        except OSError:
            accepted = False
        server.close()
        for line in proc.stdout.splitlines():
            if line.startswith("PROBE"):
                info = json.loads(line[5:])
                info["accepted"] = accepted
                return True, info
        return False, (proc.stderr or proc.stdout).strip()[-500:] or f"exit code {proc.returncode}"


def _bwrap_path() -> str | None:
    env = os.environ.get(BWRAP_ENV)
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which("bwrap")


def _candidates(force: str | None) -> list[Isolation]:
    root = os.geteuid() == 0
    cands = []
    bwrap = _bwrap_path()
    if bwrap and force in (None, "bwrap"):
        if root:
            cands.append(Isolation("bwrap", "bwrap-root", bwrap, drop_uid=bool(shutil.which("setpriv")),
                                   network_isolated=True, pid_namespace=True, hides_course=True))
        cands.append(Isolation("bwrap", "bwrap-user", bwrap, network_isolated=True, pid_namespace=True,
                               hides_course=True))
    if shutil.which("unshare") and force in (None, "unshare"):
        if root:
            cands.append(Isolation("unshare", "unshare-root", drop_uid=True, network_isolated=True,
                                   pid_namespace=True, hides_course=True))
        cands.append(Isolation("unshare", "unshare-user", network_isolated=True, pid_namespace=True,
                               hides_course=True))
        cands.append(Isolation("unshare", "unshare-net", network_isolated=True,
                               notes=("plain `unshare -rn`: no mount or pid namespace, so the course "
                                      "folder is readable wherever file permissions allow",)))
    forced = os.environ.get(VARIANT_ENV)
    if forced:
        cands = [c for c in cands if c.variant == forced]
    return cands


_DETECTED: dict[tuple, Isolation] = {}


def detect(*, allow_none: bool = False, force: str | None = None, limits: Limits | None = None,
           log=None) -> Isolation:
    """The strongest isolation that works here, verified by running a probe inside it.

    ``force`` limits the choice to one kind (``"bwrap"``, ``"unshare"`` or ``"none"``). Without a
    working sandbox, raise :class:`SandboxError` unless ``allow_none`` (the CLI's ``--no-sandbox``).
    A probe passes when the sandboxed process runs, cannot reach a server listening on the host's
    127.0.0.1 and (for the variants that claim it) cannot see a file outside its binds.
    """
    if force is not None and force not in KINDS:
        raise ValueError(f"isolation must be one of {KINDS}; got {force!r}")
    key = (allow_none, force, os.geteuid(), _bwrap_path(), os.environ.get(VARIANT_ENV))
    if key in _DETECTED:
        return _DETECTED[key]
    limits = limits or Limits()
    failures = []
    chosen = None
    if force == "none" and not allow_none:
        raise SandboxError("isolation 'none' runs student code unsandboxed: pass --no-sandbox to confirm")
    if force != "none":
        for cand in _candidates(force):
            ok, info = _probe(cand, limits)
            if not ok:
                failures.append(f"{cand.variant}: {info}")
                continue
            problems = []
            if info.get("network") or info.get("accepted"):
                problems.append("reached the host network")
            if cand.hides_course and info.get("hidden_visible"):
                problems.append("could see a file outside its binds")
            if cand.drop_uid and info.get("uid") in (0, None):
                problems.append("kept uid 0")
            if info.get("ipykernel") is not True or info.get("prefix") != sys.prefix:
                problems.append(f"cannot run this Python environment ({info.get('prefix')}, ipykernel: "
                                f"{info.get('ipykernel')})")
            if problems:
                failures.append(f"{cand.variant}: {'; '.join(problems)}")
                continue
            chosen = cand
            break
    if chosen is None:
        if not allow_none:
            raise SandboxError(
                "no working sandbox on this machine (tried: " + ("; ".join(failures) or "nothing available") +
                "). Install bubblewrap or allow user namespaces, or pass --no-sandbox to grade "
                "unsandboxed (student code then runs with your rights).")
        drop = os.geteuid() == 0 and _world_executable(Path(sys.executable))
        notes = ("NOT SANDBOXED: student code can read and write whatever this user can",)
        if os.geteuid() == 0 and not drop:
            notes += (f"uid not dropped: {sys.executable} is not reachable for other users",)
        chosen = Isolation("none", "none", drop_uid=drop, notes=notes)
    if failures and chosen.kind != "none":
        chosen = Isolation(**{**chosen.__dict__, "notes": chosen.notes + tuple(f"not available: {f}" for f in failures)})
    _DETECTED[key] = chosen
    if log:
        log(f"isolation: {chosen.describe()}")
    return chosen


def _world_executable(path: Path) -> bool:
    """True when every directory on the way to ``path`` (symlinks resolved) is traversable by others."""
    real = path.resolve()
    for parent in list(real.parents)[:-1]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(real.stat().st_mode & stat.S_IXOTH)


# --------------------------------------------------------------------------------------------
# the init of the unshare sandbox (runs as ``python -I -S sandbox.py --init SPEC``)


def _init_main(spec: dict) -> None:  # pragma: no cover - runs inside the namespaces
    libc = _libc()

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def mount(src, dst, fstype, flags, data=None):
        check(libc.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None,
                         ctypes.c_ulong(flags), data.encode() if data else None), f"mount {src} on {dst}")

    def locked_flags(path: str) -> int:
        f = os.statvfs(path).f_flag
        out = 0
        for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                                 (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                                 (getattr(os, "ST_RELATIME", 4096), MS_RELATIME)):
            if f & st_flag:
                out |= ms_flag
        return out

    root = spec["newroot"]

    def inside(path: str) -> str:
        return root + path

    def bind(src: str, ro: bool) -> None:
        dst = inside(src)
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            open(dst, "a").close()
        mount(src, dst, None, MS_BIND | MS_REC)
        extra = MS_RDONLY if ro else 0
        mount(None, dst, None, MS_BIND | MS_REMOUNT | extra | MS_NOSUID | MS_NODEV | locked_flags(src))

    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    # /tmp first: a venv or checkout that lives under /tmp is bound on top of it, not hidden by it
    os.makedirs(inside("/tmp"), exist_ok=True)
    mount("tmpfs", inside("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec['tmp_size']}")
    for path in spec["readonly"]:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            os.symlink(os.readlink(path), inside(path))
        elif os.path.exists(path):
            bind(path, ro=True)
    bind(spec["stage"], ro=True)
    bind(spec["ipc"], ro=False)
    os.makedirs(inside(spec["workdir"]), exist_ok=True)
    mount("tmpfs", inside(spec["workdir"]), "tmpfs", MS_NOSUID | MS_NODEV,
          f"mode=0777,size={spec['workdir_size']}")
    dev = inside("/dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "a").close()
            mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    os.makedirs(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec['tmp_size']}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(inside("/proc"), exist_ok=True)
    mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise OSError(f"pivot_root: unknown syscall number on {platform.machine()}")
    check(libc.syscall(nr, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(spec["workdir"])

    uid = spec.get("uid")

    def drop() -> None:
        if uid is not None:  # real root: become the kernel's own uid (clears every capability)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        else:  # root of a user namespace: give up every capability for good
            check(libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT_ALL, 0, 0, 0), "securebits")
            last = int(open("/proc/sys/kernel/cap_last_cap").read())
            for cap in range(last + 1):
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a uid change cleared it

    child = os.fork()
    if child == 0:
        try:
            drop()
            os.execv(spec["argv"][0], spec["argv"])
        except BaseException as exc:  # noqa: BLE001 - report and leave
            os.write(2, f"sandbox init: cannot start the kernel: {exc}\n".encode())
            os._exit(127)
    drop()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:  # pid 1: reap orphans; leave (killing the namespace) when the kernel is gone
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status)
                     else 128 + os.WTERMSIG(status))


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--init":
        try:
            _init_main(json.loads(sys.argv[2]))
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"sandbox init failed: {type(exc).__name__}: {exc}\n".encode())
            os._exit(126)
    else:
        iso = detect(allow_none=True)
        print(f"isolation: {iso.describe()}")
