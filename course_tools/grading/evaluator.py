"""The trusted evaluator: test cells run here, never in the student's process.

The grading worker (outside the sandbox, no student code loaded) keeps one :class:`Evaluator`
per notebook: a Python namespace holding what the *source* notebook's instructor cells define
(imports, helpers, data) and the test cells' own variables. Names a test cell uses that the
student's answer cells define (``sigmoid``, ``Linear``, ``model`` ...) are fetched from the kernel
before the test part runs and bound as :class:`Remote` proxies (functions, classes, objects) or as
plain data (numbers, strings, lists, dicts, numpy arrays, torch tensors rebuilt from raw bytes by
:mod:`course_tools.grading.wire`). Calling a proxy sends the arguments to the kernel's agent,
which runs the call there under the kernel's limits and sends back the result as plain data (or a
handle). ``assert_close``, numpy and torch that judge the result live only here, so whatever the
student's process does to itself cannot change a verdict: the worst it can do is send wrong data,
time out or die.

A test part passes exactly when its code ran to the end here without an exception, and the
exchange with the kernel was never broken (time limit, kernel death, protocol error). Handles
compare by identity and support no arithmetic: a verdict is never computed by student code.

Objects of the evaluator that a test passes to student code (a ``lambda`` gradient, a
``np.random.Generator``) become *callbacks*: the student may call them (and the public methods of
random generators), nothing else; their results come back the same way.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import select
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_tools.grading import wire

BUILTIN_NAMES = frozenset(dir(builtins))
CONTAINER_METHODS = {
    "dict": ("keys", "items", "values", "get", "pop", "popitem", "update", "setdefault", "copy", "clear"),
    "list": ("append", "extend", "insert", "remove", "pop", "index", "count", "sort", "reverse", "copy", "clear"),
}
#: evaluator objects whose public methods student code may call (random generators handed to an answer)
CALLBACK_METHOD_TYPES = ("numpy.random._generator.Generator", "numpy.random.mtrand.RandomState",
                         "torch.Generator", "random.Random")


class GraderAbort(BaseException):
    """The exchange with the kernel is broken (time limit, kernel death, protocol error).

    A ``BaseException``: a test's ``except Exception`` cannot swallow it, and the part fails.
    """

    def __init__(self, reason: str, *, fatal: str = ""):
        super().__init__(reason)
        self.reason, self.fatal = reason, fatal


# ---------------------------------------------------------------------------------------- proxies


class Remote:
    """An object that lives in the student's kernel (a function, class, instance, or a dict/list attribute)."""

    __slots__ = ("_ch", "_id", "_kind", "_type", "_methods", "_gen", "_snap")

    def __init__(self, ch: Channel, node: dict):
        object.__setattr__(self, "_ch", ch)
        object.__setattr__(self, "_id", node.get("id"))
        kind = node.get("kind") if node.get("kind") in ("class", "callable", "object", "dict", "list") else "object"
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_type", str(node.get("type", "?"))[:200])
        methods = node.get("methods") if type(node.get("methods")) is list else []
        if kind in CONTAINER_METHODS:
            methods = CONTAINER_METHODS[kind]
        object.__setattr__(self, "_methods", frozenset(m for m in methods if type(m) is str))
        object.__setattr__(self, "_gen", ch.generation)
        object.__setattr__(self, "_snap", None)  # (epoch, contents) of a dict/list read without student code

    def _req(self, op: str, *args, **fields):
        return self._ch.op(self, op, args, **fields)

    def _contents(self):
        """The snapshot of a dict/list attribute while no student code ran since it was taken, else None."""
        snap = self._snap
        if snap is not None and snap[0] == self._ch.epoch and self._gen == self._ch.generation:
            return snap[1]
        return None

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in self._methods:
            return _Method(self, name)
        return self._ch.getattr(self, name)

    def __setattr__(self, name: str, value) -> None:
        self._req("setattr", value, name=name)

    def __delattr__(self, name: str) -> None:
        self._req("delattr", name=name)

    def __call__(self, *args, **kwargs):
        return self._ch.op(self, "call", args, kwargs)

    def __getitem__(self, key):
        data = self._contents()
        if data is not None and type(key) in wire.PLAIN_KEYS:
            return _copy_plain(data[key])
        return self._req("getitem", key)

    def __setitem__(self, key, value) -> None:
        data = self._contents()
        if data is not None and type(key) in wire.PLAIN_KEYS and _is_plain(value) and (
                type(data) is dict or (type(key) is int and -len(data) <= key < len(data))):
            # a plain write into a plain dict/list: sent without waiting (a failure surfaces at the next reply)
            self._ch.op(self, "setitem", (key, value), noreply=True)
            data[key] = _copy_plain(value)
            return
        object.__setattr__(self, "_snap", None)
        self._req("setitem", key, value)

    def __delitem__(self, key) -> None:
        object.__setattr__(self, "_snap", None)
        self._req("delitem", key)

    def __len__(self) -> int:
        data = self._contents()
        if data is not None:
            return len(data)
        n = self._req("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of a student object did not give a non-negative int")
        return n

    def __iter__(self):
        data = self._contents()
        if data is not None:
            return iter([_copy_plain(k) for k in data] if type(data) is dict else [_copy_plain(v) for v in data])
        items = self._req("iter")
        if type(items) is not list:
            raise TypeError("iterating a student object did not give a list")
        return iter(items)

    def __contains__(self, item) -> bool:
        data = self._contents()
        if data is not None and type(item) in wire.PLAIN_KEYS:
            return item in data
        return bool(self._req("contains", item) is True)

    def __bool__(self) -> bool:
        return len(self) > 0 if self._kind in CONTAINER_METHODS else True

    def __float__(self) -> float:
        v = self._req("float")
        if type(v) is not float:
            raise TypeError("float() of a student object did not give a float")
        return v

    def __int__(self) -> int:
        v = self._req("int")
        if type(v) is not int:
            raise TypeError("int() of a student object did not give an int")
        return v

    def __index__(self) -> int:
        v = self._req("index")
        if type(v) is not int:
            raise TypeError("a student object used as an index did not give an int")
        return v

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        v = self._req("asarray")
        if type(v) is not np.ndarray:
            raise TypeError("numpy.asarray() of a student object did not give an array")
        return v.astype(dtype) if dtype is not None else v

    def __repr__(self) -> str:
        v = self._req("repr")
        return v if type(v) is str else f"<student {self._type}>"

    def __str__(self) -> str:
        v = self._req("str")
        return v if type(v) is str else f"<student {self._type}>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other) -> bool:  # identity: a comparison is never evaluated by student code
        return isinstance(other, Remote) and other._id == self._id and other._gen == self._gen

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((Remote, self._id, self._gen))

    def __instancecheck__(self, obj) -> bool:
        return self._ch.isinstance(obj, self) is True

    def __subclasscheck__(self, cls) -> bool:
        return self._req("issubclass", cls) is True

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("an object of the student's kernel cannot be pickled")

    @property
    def __class__(self):  # isinstance(attr, dict) holds for a dict attribute of a student object
        return {"dict": dict, "list": list}.get(object.__getattribute__(self, "_kind"), Remote)


#: read-only methods of a dict/list attribute answered from its snapshot
SNAPSHOT_METHODS = frozenset(("items", "keys", "values", "get", "index", "count", "copy"))


def _is_plain(value, depth: int = 0) -> bool:
    """Data the evaluator can keep a copy of (no handles, no callbacks)."""
    import numpy as np

    t = type(value)
    if value is None or t in (bool, int, float, str, complex, bytes):
        return True
    if t is np.ndarray or isinstance(value, np.generic):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and t is torch.Tensor:
        return True
    if depth > 8:
        return False
    if t in (list, tuple):
        return all(_is_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _copy_plain(value):
    """A copy of snapshot data (a test that changes what it read must not change the snapshot)."""
    import copy

    t = type(value)
    if value is None or t in (bool, int, float, str, complex, bytes) or isinstance(value, Remote):
        return value
    return copy.deepcopy(value)


class _Method:
    """``obj.method`` of a student object, called in one request."""

    __slots__ = ("_obj", "_name")

    def __init__(self, obj: Remote, name: str):
        self._obj, self._name = obj, name

    def __call__(self, *args, **kwargs):
        data = self._obj._contents() if self._name in SNAPSHOT_METHODS else None
        if data is not None and not kwargs and all(type(a) in wire.PLAIN_KEYS for a in args):
            if self._name in ("items", "keys", "values") and type(data) is dict and not args:
                view = getattr(data, self._name)()
                return [_copy_plain(v) for v in view]
            if self._name in ("get", "index", "count", "copy") and (self._name != "get" or type(data) is dict):
                return _copy_plain(getattr(data, self._name)(*args))
        return self._obj._ch.op(self._obj, "callattr", args, kwargs, name=self._name)

    def _resolve(self):
        return self._obj._ch.op(self._obj, "getattr", (), name=self._name)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)

    def __repr__(self) -> str:
        return f"<method {self._name} of a student {self._obj._type}>"


# ---------------------------------------------------------------------------------------- channel


class Channel:
    """The evaluator's end of the socket to the kernel's agent."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = Path(path), key
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.path.chmod(0o777)
        self.listener.listen(1)
        self.sock: socket.socket | None = None
        self.generation = 0
        self.codec = wire.Codec(self._to_ref, self._from_ref)
        self.callbacks: dict[int, Any] = {}
        self.callback_ids: dict[int, int] = {}
        self.on_wait: Callable[[], None] = lambda: None
        self.broken = ""
        self.requests = 0
        self.scopes: list[list] = []  # in/out arguments of the requests in flight (innermost last)
        #: bumped by every reply not marked pure (student code may have run): caches older than it are stale
        self.epoch = 0
        self.last_pure = False
        self.attr_cache: dict[tuple[int, str], tuple[int, int, Any]] = {}  # (handle, name) -> (gen, epoch, value)
        self.cache_hits = 0
        #: plain attributes read recently: the agent sends their values back with every call's reply
        self.watch: dict[tuple[int, str], int] = {}
        self.deferred_error: BaseException | None = None  # a write sent without waiting failed

    # ------------------------------------------------------------------ connection
    def accept(self, timeout: float) -> None:
        self.listener.settimeout(timeout)
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:
            raise GraderAbort(f"the kernel's agent did not connect: {exc}") from None
        conn.settimeout(timeout)
        try:
            hello, _ = wire.recv_msg(conn)
        except (OSError, wire.ProtocolError) as exc:
            conn.close()
            raise GraderAbort(f"the kernel's agent did not say hello: {exc}") from None
        if hello.get("op") != "hello" or hello.get("key") != self.key:
            conn.close()
            raise GraderAbort("the kernel's agent sent a wrong key")
        conn.settimeout(None)
        self.sock = conn
        self.generation += 1
        self.broken = ""

    def close(self) -> None:
        for s in (self.sock, self.listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self.sock = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    def drop_connection(self) -> None:
        """The kernel is gone (restart): forget its connection; its handles become stale."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def relisten(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()
        self.path = Path(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.path.chmod(0o777)
        self.listener.listen(1)

    # ------------------------------------------------------------------ values
    def _to_ref(self, obj):
        if isinstance(obj, Remote):
            if obj._gen != self.generation:
                raise ValueError("this object lived in a kernel that has since been restarted")
            return {"$": "ref", "id": obj._id}
        if isinstance(obj, _Method):
            return self._to_ref(obj._resolve())
        i = self.callback_ids.get(id(obj))
        if i is None or self.callbacks.get(i) is not obj:
            i = len(self.callbacks) + 1
            self.callbacks[i] = obj
            self.callback_ids[id(obj)] = i
        tname = f"{type(obj).__module__}.{type(obj).__qualname__}"
        methods = []
        if tname in CALLBACK_METHOD_TYPES:
            methods = [m for m in dir(obj) if not m.startswith("_") and callable(getattr(obj, m, None))]
        kind = "callable" if callable(obj) and not methods else ("generator" if methods else "object")
        return {"$": "cb", "id": i, "kind": kind, "methods": methods}

    def _from_ref(self, node):
        if node.get("$") == "cb":
            i = node.get("id")
            if type(i) is not int or i not in self.callbacks:
                raise wire.ProtocolError("unknown callback")
            return self.callbacks[i]
        return Remote(self, node)

    # ------------------------------------------------------------------ requests
    def _context(self) -> dict:
        ctx: dict = {}
        np, torch = sys.modules.get("numpy"), sys.modules.get("torch")
        if np is not None:
            ctx["np_err"] = np.geterr()
        if torch is not None:
            ctx["grad"] = torch.is_grad_enabled()
            ctx["dtype"] = str(torch.get_default_dtype()).replace("torch.", "")
        return ctx

    def op(self, obj: Remote, op: str, args=(), kwargs=None, **fields):
        if obj._gen != self.generation:
            raise RuntimeError(f"this student {obj._type} lived in a kernel that has since been restarted")
        header = dict(fields, op=op, id=obj._id)
        if op in ("call", "callattr") and self.watch:
            header["watch"] = [[i, n] for (i, n), g in self.watch.items() if g == self.generation]
        return self.request(header, args, kwargs)

    def getattr(self, obj: Remote, name: str):
        """``obj.name``: from the cache while no student code ran since it was read (plain attributes only)."""
        hit = self.attr_cache.get((obj._id, name))
        if hit is not None and hit[0] == obj._gen == self.generation and hit[1] == self.epoch:
            self.cache_hits += 1
            return _copy_plain(hit[2])
        value = self.op(obj, "getattr", (), name=name)
        if self.last_pure:
            self.attr_cache[(obj._id, name)] = (obj._gen, self.epoch, _copy_plain(value))
            self.watch.pop((obj._id, name), None)
            self.watch[(obj._id, name)] = obj._gen
            while len(self.watch) > wire.MAX_WATCHED:
                self.watch.pop(next(iter(self.watch)))
        return value

    def _install_watched(self, items, buffers) -> None:
        if type(items) is not list:
            return
        for item in items:
            if type(item) is not list or len(item) != 4 or (item[0], item[1]) not in self.watch:
                continue
            if item[2] == "same":  # unchanged since we last received it: what we hold is current again
                hit = self.attr_cache.get((item[0], item[1]))
                if hit is not None and hit[0] == self.generation:
                    value = hit[2]
                    if isinstance(value, Remote) and value._snap is not None:
                        object.__setattr__(value, "_snap", (self.epoch, value._snap[1]))
                    elif isinstance(value, Remote) and value._kind in CONTAINER_METHODS:
                        continue  # its snapshot was dropped: keep it stale
                    self.attr_cache[(item[0], item[1])] = (self.generation, self.epoch, value)
                continue
            value = self.codec.decode(item[2], buffers)
            if isinstance(value, Remote) and value._kind in CONTAINER_METHODS and item[3] is not None:
                data = self.codec.decode(item[3], buffers)
                if type(data) is {"dict": dict, "list": list}[value._kind]:
                    object.__setattr__(value, "_snap", (self.epoch, data))
            self.attr_cache[(item[0], item[1])] = (self.generation, self.epoch, value)

    def isinstance(self, obj, cls: Remote):
        buffers: list = []
        header = {"op": "isinstance", "obj": self._encode(obj, buffers), "cls": self._encode(cls, buffers)}
        return self._exchange(header, buffers)

    def fetch_globals(self, names: list[str]) -> dict:
        value = self.request({"op": "globals", "names": list(names)})
        if type(value) is not dict:
            raise GraderAbort("the kernel's agent answered a request for names with something else")
        return value

    def _encode(self, value, buffers):
        try:
            return self.codec.encode(value, buffers)
        except RecursionError:
            raise ValueError("an argument is nested too deeply to be sent to the student's code") from None

    def request(self, header: dict, args=(), kwargs=None):
        buffers: list = []
        header = dict(header, kind="request", context=self._context())
        inout: list = []
        self.codec.inout = inout
        try:
            if args or "args" in header:
                header["args"] = self._encode(list(args), buffers)
            if kwargs:
                header["kwargs"] = self._encode(dict(kwargs), buffers)
        finally:
            self.codec.inout = None
        if header.get("noreply"):
            if self.broken:
                raise GraderAbort(self.broken)
            if self.sock is None:
                raise GraderAbort("no connection to the kernel's agent")
            self.requests += 1
            try:
                wire.send_msg(self.sock, header, buffers)
            except OSError as exc:
                self._break(f"the connection to the kernel broke: {exc}")
            return None
        self.scopes.append(inout)
        try:
            return self._exchange(header, buffers)
        finally:
            self.scopes.pop()

    def _apply_sync(self, header: dict, buffers: list) -> None:
        """Write back the arguments the student's code changed in place (before a callback, and at the reply)."""
        sync = header.get("sync")
        if sync is None or not self.scopes:
            return
        if type(sync) is not list:
            self._break("malformed in/out update from the kernel")
        scope = self.scopes[-1]
        for item in sync:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not int or not 0 <= item[0] < len(scope):
                self._break("malformed in/out update from the kernel")
            try:
                new = self.codec.decode(item[1], buffers)
            except (wire.ProtocolError, RecursionError, ValueError, TypeError) as exc:
                self._break(f"bad in/out value from the kernel: {exc}")
            wire.apply_inout(scope[item[0]], new)

    def _exchange(self, header: dict, buffers: list):
        if self.broken:
            raise GraderAbort(self.broken)
        if self.sock is None:
            raise GraderAbort("no connection to the kernel's agent")
        self.requests += 1
        header.setdefault("kind", "request")
        try:
            wire.send_msg(self.sock, header, buffers)
        except OSError as exc:
            self._break(f"the connection to the kernel broke: {exc}")
        return self._wait_reply()

    def _break(self, reason: str, fatal: str = ""):
        self.broken = reason
        raise GraderAbort(reason, fatal=fatal)

    def _recv(self) -> tuple[dict, list]:
        while True:
            ready, _, _ = select.select([self.sock], [], [], 0.02)
            if ready:
                try:  # on_wait also runs while a message is incomplete: a kernel stalling mid-frame is timed out
                    return wire.recv_msg(self.sock, wait=self._waited)
                except (OSError, wire.ProtocolError) as exc:
                    self._break(f"bad message from the kernel: {exc}")
            self._waited()

    def _waited(self) -> None:
        try:
            self.on_wait()
        except GraderAbort as exc:
            self.broken = exc.reason
            raise

    def _wait_reply(self):
        while True:
            header, buffers = self._recv()
            if header.get("kind") in ("reply", "request"):
                self._apply_sync(header, buffers)
            if header.get("kind") == "reply" and header.get("deferred") is True:  # a write sent without waiting
                self.epoch += 1
                if "error" in header and self.deferred_error is None:
                    err = header["error"] if type(header["error"]) is dict else {}
                    self.deferred_error = wire.rebuild_error(err)
                continue
            if header.get("kind") == "reply":
                self.last_pure = header.get("pure") is True and "error" not in header
                if not self.last_pure:
                    self.epoch += 1
                if self.deferred_error is not None:
                    exc, self.deferred_error = self.deferred_error, None
                    raise exc
                if "watched" in header:
                    try:
                        self._install_watched(header["watched"], buffers)
                    except (wire.ProtocolError, RecursionError, ValueError, TypeError) as exc:
                        self._break(f"bad value from the kernel: {exc}")
                if "error" in header:
                    err = header["error"] if type(header["error"]) is dict else {}
                    if err.get("type") == "KeyboardInterrupt" and self.interrupted():
                        self._break("time limit")
                    raise wire.rebuild_error(err)
                try:
                    value = self.codec.decode(header.get("value"), buffers)
                    if self.last_pure and "snap" in header and isinstance(value, Remote) \
                            and value._kind in CONTAINER_METHODS:
                        data = self.codec.decode(header["snap"], buffers)
                        if type(data) is {"dict": dict, "list": list}[value._kind]:
                            object.__setattr__(value, "_snap", (self.epoch, data))
                    return value
                except (wire.ProtocolError, RecursionError, ValueError, TypeError) as exc:
                    self._break(f"bad value from the kernel: {exc}")
            elif header.get("kind") == "request":
                self._serve_callback(header, buffers)
            else:
                self._break("unexpected message from the kernel")

    def interrupted(self) -> bool:
        return False

    def _serve_callback(self, header: dict, buffers: list) -> None:
        """A request of student code: call an evaluator callback (or a random generator's method)."""
        self.epoch += 1  # student code is running
        reply: dict = {"kind": "reply"}
        out: list = []
        try:
            try:
                obj = self.callbacks[header.get("id")]
                args = self.codec.decode(header.get("args", []), buffers)
                kwargs = self.codec.decode(header.get("kwargs", {"$": "d", "items": []}), buffers)
            except (KeyError, wire.ProtocolError, RecursionError, TypeError) as exc:
                raise TypeError(f"malformed callback request: {exc}") from None
            if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
                raise TypeError("malformed callback arguments")
            op = header.get("op")
            if op == "call" and callable(obj):
                value = obj(*args, **kwargs)
            elif op == "callattr":
                name = header.get("name")
                tname = f"{type(obj).__module__}.{type(obj).__qualname__}"
                if tname not in CALLBACK_METHOD_TYPES or type(name) is not str or name.startswith("_"):
                    raise AttributeError("student code may only call the grader's objects it was given, "
                                         "and the public methods of random generators")
                value = getattr(obj, name)(*args, **kwargs)
            else:
                raise TypeError("student code may only call the grader's objects it was given")
            reply["value"] = self.codec.encode(value, out)
        except GraderAbort:
            raise
        except Exception as exc:  # the instructor's callback failed: only its type and message go back
            out = []
            reply.pop("value", None)
            reply["error"] = {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                              "message": str(exc)[:300], "traceback": ""}
        try:
            wire.send_msg(self.sock, reply, out)
        except OSError as exc:
            self._break(f"the connection to the kernel broke: {exc}")

    def end(self) -> dict:
        """Tell the agent the test part is over; return its closing reply (which forbidden names were entered)."""
        if self.broken or self.sock is None:
            return {}
        try:
            wire.send_msg(self.sock, {"kind": "request", "op": "end"}, [])
            while True:
                header, buffers = self._recv()
                if header.get("kind") == "reply" and header.get("deferred") is True and "error" in header:
                    err = header["error"] if type(header["error"]) is dict else {}
                    self.deferred_error = self.deferred_error or wire.rebuild_error(err)
                if header.get("kind") == "reply" and header.get("op") == "end":
                    entered = header.get("entered")
                    out = {"entered": {k: v for k, v in entered.items() if type(k) is str and type(v) is int}
                           if type(entered) is dict else {}}
                    if self.deferred_error is not None:
                        out["error"] = f"{getattr(self.deferred_error, 'remote_type', '')}: {self.deferred_error}"
                        self.deferred_error = None
                    return out
                if header.get("kind") == "request":
                    self._serve_callback(header, buffers)
        except (GraderAbort, OSError) as exc:
            self.broken = self.broken or f"the exchange did not end cleanly: {exc}"
            return {}

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        saved = self.on_wait

        def guard():
            saved()
            if time.monotonic() > deadline:
                raise GraderAbort("the kernel did not start the grader's exchange (kernel busy or tampered with)")
        self.on_wait = guard
        try:
            header, _ = self._recv()
        finally:
            self.on_wait = saved
        if header.get("op") != "ready":
            self._break("the kernel's agent did not start the exchange")


# ---------------------------------------------------------------------------------------- namespace


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(code))
        except Exception:
            return None


def stored_names(node: ast.AST) -> set[str]:
    """Names bound at the top level of ``node`` (assignments, def, class, import, for, with)."""
    out: set[str] = set()
    body = node.body if isinstance(node, ast.Module) else [node]
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(stmt.name)
            continue
        if isinstance(stmt, ast.Import):
            out.update(a.asname or a.name.split(".")[0] for a in stmt.names)
            continue
        if isinstance(stmt, ast.ImportFrom):
            out.update(a.asname or a.name for a in stmt.names if a.name != "*")
            continue
        for n in ast.walk(stmt):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and n is not stmt:
                continue
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                out.add(n.name)
    return out


def loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def answer_names(source_nb, roles: Callable[[Any], str]) -> set[str]:
    """Names the source's answer cells bind at top level: in the evaluator they always come from the kernel."""
    out: set[str] = set()
    for cell in source_nb.cells:
        if cell.cell_type == "code" and roles(cell) in ("answer", "manual"):
            tree = _parse(_src(cell))
            if tree is not None:
                out |= stored_names(tree)
    return out


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


@dataclass
class PartOutcome:
    ok: bool
    reason: str = ""  # "" | test failed | time limit | ... (the exchange's reason when it broke)
    message: str = ""  # "AssertionError: ..." for the instructor's report
    outputs: list = field(default_factory=list)  # nbformat output dicts (evaluator prints, error)
    fatal: str = ""  # non-empty: the kernel must be restarted
    entered: dict = field(default_factory=dict)  # forbidden names the student's code entered


class Evaluator:
    """The namespace test cells run in, built from the source notebook only."""

    def __init__(self, source_nb, roles: Callable[[Any], str]):
        self.ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.answers = answer_names(source_nb, roles)
        self.tainted = set(self.answers)
        self.events: list[str] = []

    def warm_up(self, import_code: str) -> None:
        """Import what the source imports (in a scratch namespace), while the kernel starts."""
        with contextlib.suppress(BaseException), _quiet():
            exec(compile(import_code, "<evaluator imports>", "exec"), {"__builtins__": builtins})

    def run_instructor_cell(self, code: str, label: str) -> None:
        """Run an instructor (setup, locked) cell of the source here, statement by statement.

        Statements that use a name the student's answers define (directly or through a name such a
        statement bound) are skipped: they belong to the student's kernel. Failures are events.
        """
        tree = _parse(code)
        if tree is None:
            self.events.append(f"evaluator: instructor cell {label} does not parse")
            return
        for stmt in tree.body:
            if loaded_names(stmt) & self.tainted:
                self.tainted |= stored_names(stmt)
                continue
            mod = ast.Module(body=[stmt], type_ignores=[])
            try:
                with _quiet():
                    exec(compile(mod, f"<instructor {label}>", "exec"), self.ns)
            except Exception as exc:
                self.events.append(f"evaluator: instructor cell {label}, line {stmt.lineno}: "
                                   f"{type(exc).__name__}: {str(exc)[:200]}")

    def names_to_fetch(self, code: str) -> list[str]:
        tree = _parse(code)
        if tree is None:
            return []
        return sorted(n for n in loaded_names(tree)
                      if n in self.answers or (n not in self.ns and n not in BUILTIN_NAMES))

    def run_part(self, code: str, label: str, channel: Channel, *, hidden: bool) -> PartOutcome:
        """Run one visible or hidden part of a test cell; the verdict is this process's alone."""
        out = io.StringIO()
        outcome = PartOutcome(ok=False)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                names = self.names_to_fetch(code)
                if names:
                    self.ns.update(channel.fetch_globals(names))
                exec(compile(code, label, "exec"), self.ns)
            outcome.ok = not channel.broken
            if channel.broken:
                outcome.reason = channel.broken
        except GraderAbort as exc:
            outcome.reason, outcome.fatal = exc.reason, exc.fatal
            outcome.message = exc.reason
        except BaseException as exc:  # noqa: BLE001 - the test failed (assertion or error)
            if channel.broken:
                outcome.reason = channel.broken
            else:
                outcome.reason = "hidden test failed" if hidden else "test failed"
            outcome.message = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            if isinstance(exc, wire.StudentError) or getattr(exc, "remote_type", None):
                outcome.message = f"{getattr(exc, 'remote_type', type(exc).__name__)}: {exc}"
            if not hidden:
                outcome.outputs.append(_error_output(exc, label))
        text = out.getvalue()
        if text:
            outcome.outputs.insert(0, {"output_type": "stream", "name": "stdout", "text": text})
        return outcome


def _error_output(exc: BaseException, label: str) -> dict:
    """An error output for a visible part: frames of the visible test code only, then the student's traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == label]
    lines = ["Traceback (the test, run by the grader):\n"] + traceback.format_list(frames)
    remote = getattr(exc, "remote_traceback", "")
    if remote:
        lines.append("raised in your code:\n" + remote)
    name = getattr(exc, "remote_type", None) or type(exc).__name__
    lines.append(f"{name}: {exc}")
    return {"output_type": "error", "ename": name, "evalue": str(exc), "traceback": lines}


@contextlib.contextmanager
def _quiet():
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


__all__ = ["Channel", "Evaluator", "GraderAbort", "PartOutcome", "Remote", "answer_names"]
