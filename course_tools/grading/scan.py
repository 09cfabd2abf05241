"""The static scan of the student's code: constructs that could tamper with grading, flagged for a
human (scores unaffected), and what the source's instructor cells import and define."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from course_tools.grading.cells import Role, cell_role, cell_source, transform_cell

FLAG_MODULES = {
    "ctypes": "tampering",
    "gc": "tampering",
    "importlib": "tampering",
    "builtins": "tampering",
    "marshal": "tampering",
    "inspect": "suspicious",
    "IPython": "tampering",
    "ipykernel": "tampering",
    "subprocess": "process",
    "multiprocessing": "process",
    "pty": "process",
    "signal": "process",
    "socket": "network",
    "urllib": "network",
    "http": "network",
    "requests": "network",
    "ftplib": "network",
    "smtplib": "network",
    "asyncio": "suspicious",
    "threading": "suspicious",
    "shutil": "filesystem",
}
FLAG_ATTRS = {
    "sys": {
        "modules": "tampering",
        "excepthook": "tampering",
        "displayhook": "tampering",
        "settrace": "tampering",
        "setprofile": "tampering",
        "_getframe": "tampering",
        "meta_path": "tampering",
        "path_hooks": "tampering",
        "stdout": "suspicious",
        "stderr": "suspicious",
        "exit": "process",
        "addaudithook": "tampering",
    },
    "os": {
        "system": "process",
        "fork": "process",
        "forkpty": "process",
        "_exit": "process",
        "kill": "process",
        "killpg": "process",
        "popen": "process",
        "execv": "process",
        "execve": "process",
        "execvp": "process",
        "spawnv": "process",
        "chdir": "filesystem",
        "remove": "filesystem",
        "unlink": "filesystem",
        "rmdir": "filesystem",
        "environ": "suspicious",
        "setuid": "process",
    },
}
FLAG_CALLS = {
    "exec": "tampering",
    "eval": "tampering",
    "compile": "tampering",
    "__import__": "tampering",
    "globals": "suspicious",
    "vars": "suspicious",
    "setattr": "suspicious",
    "delattr": "suspicious",
}
NOTABLE_MAGICS = (
    "bash",
    "sh",
    "script",
    "writefile",
    "run",
    "load",
    "sx",
    "system",
    "env",
    "reset",
    "xmode",
    "capture",
    "python",
    "python3",
    "perl",
    "ruby",
    "js",
    "javascript",
    "html",
)


@dataclass
class Flag:
    cell: str
    line: int
    kind: str  # tampering | suspicious | process | network | filesystem
    what: str


def _root_name(node) -> tuple[str | None, list[str]]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, list(reversed(parts))
    return None, list(reversed(parts))


def scan_student_code(cells: list[tuple[str, str]], trusted_bindings: dict[str, str]) -> list[Flag]:
    """Flag constructs in the student's cells [(cell name, source)] that could tamper with grading.

    ``trusted_bindings`` maps the names the source binds by import (``np``, ``assert_close``) to what
    they import (``numpy``, ``course_lib.testing.assert_close``). Nothing here changes a score.
    """
    flags: list[Flag] = []
    builtin_names = set(dir(builtins))
    modules = {k: v for k, v in trusted_bindings.items()}  # alias -> dotted origin

    def add(cell, node_or_line, kind, what):
        line = node_or_line if isinstance(node_or_line, int) else getattr(node_or_line, "lineno", 0)
        flags.append(Flag(cell, line, kind, what))

    for name, source in cells:
        for i, raw in enumerate(source.splitlines(), 1):
            s = raw.lstrip()
            if s.startswith("!"):
                add(name, i, "process", f"shell command `{s[:60]}`")
            m = re.match(r"%%?(\w+)", s)
            if m and m.group(1) in NOTABLE_MAGICS:
                add(name, i, "suspicious", f"magic %{m.group(1)}")
            if re.search(r"\bget_ipython\b", raw):
                add(name, i, "tampering", "uses get_ipython() (the kernel's shell)")
        try:
            tree = ast.parse(transform_cell(source))
        except SyntaxError as exc:
            add(name, exc.lineno or 0, "suspicious", f"syntax error, not scanned: {exc.msg}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for mod in names:
                    top = mod.split(".")[0]
                    if top in FLAG_MODULES:
                        add(name, node, FLAG_MODULES[top], f"imports {mod}")
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if isinstance(node, ast.Import):  # `import a.b` binds a; `import a.b as c` binds a.b
                        target = alias.name if alias.asname else alias.name.split(".")[0]
                    else:
                        target = f"{node.module}.{alias.name}"
                    if bound in trusted_bindings and trusted_bindings[bound] != target:
                        add(name, node, "tampering", f"rebinds test helper `{bound}` to {target}")
                    modules[bound] = target
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in trusted_bindings:
                    add(name, node, "tampering", f"redefines test helper `{node.name}`")
                elif node.name in builtin_names and node in tree.body:
                    add(name, node, "suspicious", f"shadows the builtin `{node.name}`")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                flat = []
                for t in targets:
                    flat.extend(t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])
                for t in flat:
                    if isinstance(t, ast.Name):
                        if t.id in trusted_bindings:
                            add(name, node, "tampering", f"reassigns test helper `{t.id}`")
                        elif t.id in builtin_names and node in tree.body:
                            add(name, node, "suspicious", f"shadows the builtin `{t.id}`")
                    elif isinstance(t, (ast.Attribute, ast.Subscript)):
                        root, parts = _root_name(t.value if isinstance(t, ast.Subscript) else t)
                        if root in modules or root in ("sys", "builtins", "__builtins__", "os"):
                            origin = modules.get(root, root)
                            what = ".".join([origin] + parts)
                            add(name, node, "tampering", f"modifies module attribute {what}")
            elif isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id in FLAG_CALLS:
                    if fn.id in ("setattr", "delattr"):
                        root = _root_name(node.args[0])[0] if node.args else None
                        if root in modules or root in ("sys", "builtins", "os"):
                            add(name, node, "tampering", f"{fn.id}() on module {modules.get(root, root)}")
                    else:
                        add(name, node, FLAG_CALLS[fn.id], f"calls {fn.id}()")
                if isinstance(fn, ast.Name) and fn.id == "open" and node.args:
                    arg = node.args[0]
                    if (
                        isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                        and (arg.value.startswith(("/", "~")) or ".." in arg.value)
                    ):
                        add(name, node, "filesystem", f"opens {arg.value!r} (outside the working dir)")
            elif isinstance(node, ast.Attribute):
                root, parts = _root_name(node)
                if root in ("sys", "os") and parts and parts[0] in FLAG_ATTRS[root]:
                    add(name, node, FLAG_ATTRS[root][parts[0]], f"uses {root}.{parts[0]}")
                elif (
                    root in modules
                    and modules[root] in ("sys", "os")
                    and parts
                    and parts[0] in FLAG_ATTRS[modules[root]]
                ):
                    add(name, node, FLAG_ATTRS[modules[root]][parts[0]], f"uses {modules[root]}.{parts[0]}")
            elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
                add(name, node, "tampering", f"uses {node.id}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"(^|/)(solutions|gradebook\.db|grading)(/|$)", node.value):
                    add(name, node, "filesystem", f"mentions the path {node.value[:80]!r}")
    seen, out = set(), []
    for f in flags:
        k = (f.cell, f.line, f.what)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


def trusted_imports(source_nb) -> tuple[str, dict[str, str], list[str]]:
    """The import statements of the source's non-answer code cells (run by the grader prelude),
    the names they bind -> what they import, and the modules they import."""
    stmts, bindings, modules = [], {}, []
    for cell in source_nb.cells:
        if cell.cell_type != "code" or cell_role(cell) in (Role.ANSWER, Role.MANUAL):
            continue
        try:
            tree = ast.parse(transform_cell(cell_source(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                stmts.append(ast.unparse(node))
                for a in node.names:
                    bindings[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    modules.append(a.name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if any(a.name == "*" for a in node.names):
                    continue
                stmts.append(ast.unparse(node))
                modules.append(node.module)
                for a in node.names:
                    bindings[a.asname or a.name] = f"{node.module}.{a.name}"
    return "\n".join(stmts), bindings, modules


def names_used(code: str) -> set[str]:
    try:
        tree = ast.parse(transform_cell(code))
    except SyntaxError:
        return set()
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return loaded - stored


def names_defined(code: str) -> list[str]:
    """Names a (locked, instructor) cell binds with def, class or import at top level."""
    try:
        tree = ast.parse(transform_cell(code))
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node.name)
        elif isinstance(node, ast.Import):
            out += [a.asname or a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out += [a.asname or a.name for a in node.names if a.name != "*"]
    return out
