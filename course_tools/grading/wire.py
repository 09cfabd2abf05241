"""The protocol between the trusted evaluator and the student's kernel, and the in-kernel agent.

This module runs on **both** sides: the evaluator (:mod:`course_tools.grading.evaluator`) imports
it, and the grader sends its source into the sandboxed kernel, where :class:`Agent` serves the
evaluator's requests. It therefore imports only the standard library at module level (numpy and
torch are used when the process has them).

Messages (a Unix socket in the kernel's ipc folder): ``<u32 header length><u32 buffers>`` +
JSON header + ``<u64 length>`` + bytes per buffer. Values travel as JSON trees whose special
nodes are one-key-``"$"`` dicts:

============  ===============================================================
``nd``        numpy array: dtype name (numeric only), shape, buffer index
``ns``        numpy scalar: dtype name, buffer index
``pt``        torch tensor: dtype name, shape, requires_grad, buffer index
``t`` / ``d`` tuple / dict (dict items as [key, value] pairs)
``c`` / ``b`` complex / bytes
``ref``       an object living in the kernel (a *handle*), with its kind and method names
``cb``        an object living in the evaluator (a *callback*), usable from the kernel
============  ===============================================================

The decoder builds exact base types only (``int``, ``float``, ``list``, ``np.ndarray``,
``torch.Tensor`` ... from raw bytes); it never unpickles and never creates a subclass, so
nothing decoded on the evaluator side can run student code. Limits: nesting depth
:data:`MAX_DEPTH`, message size :data:`MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import builtins
import json
import select
import socket
import struct
import sys
import traceback

MAX_DEPTH = 64
MAX_MESSAGE_BYTES = 1 << 30
MAX_HEADER_BYTES = 64 << 20
MAX_METHOD_NAMES = 256
MAX_ITER_ITEMS = 1_000_000
#: a forbidden module with more public functions than this is not wrapped (left to the static check)
MAX_MODULE_WRAPS = 400
#: the contents of a dict/list attribute sent with its handle (the evaluator reads them without a request)
MAX_SNAPSHOT_BYTES = 8 << 20
#: attributes whose values come back with each reply (the evaluator's recent plain reads)
MAX_WATCHED = 32
#: requests on an exact dict/list with a key of these types run no student code (replies marked pure)
PURE_CONTAINER_OPS = ("getitem", "setitem", "delitem", "len", "contains", "iter")
PLAIN_KEYS = (str, int, bool, type(None), float)
NUMERIC_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64", "complex64", "complex128")
TORCH_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16", "float32", "float64",
                "complex64", "complex128")
#: exception types rebuilt by name on the other side (anything else arrives as StudentError)
PORTABLE_ERRORS = ("ArithmeticError", "AssertionError", "AttributeError", "FloatingPointError", "IndexError",
                   "KeyError", "LookupError", "MemoryError", "NameError", "NotImplementedError", "OverflowError",
                   "RecursionError", "RuntimeError", "StopIteration", "TypeError", "UnboundLocalError",
                   "ValueError", "ZeroDivisionError")


class ProtocolError(RuntimeError):
    """A malformed, oversized or unexpected message."""


class StudentError(Exception):
    """An exception raised by student code whose type is not a standard one."""


class RemoteError(Exception):
    """Raised by the other side while serving a request (carries its type name and traceback)."""


# ---------------------------------------------------------------------------------------- framing


def send_msg(sock: socket.socket, header: dict, buffers: list) -> None:
    h = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    parts = [struct.pack("<II", len(h), len(buffers)), h]
    for b in buffers:
        mv = memoryview(b).cast("B")
        parts.append(struct.pack("<Q", mv.nbytes))
        parts.append(mv)
    sock.sendall(b"".join(parts))


def _recv_exact(sock: socket.socket, n: int, wait=None) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if wait is not None:
            while not select.select([sock], [], [], 0.02)[0]:
                wait()
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ProtocolError("the other side closed the connection")
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket, wait=None) -> tuple[dict, list]:
    """One message. ``wait()``, when given, is called while a message is incomplete and no bytes are
    ready (every 20 ms): the reader's time limit still applies to a peer that stalls mid-message."""
    hlen, nbuf = struct.unpack("<II", _recv_exact(sock, 8, wait))
    if hlen > MAX_HEADER_BYTES or nbuf > 1_000_000:
        raise ProtocolError(f"message header of {hlen} bytes / {nbuf} buffers is over the limit")
    try:
        header = json.loads(_recv_exact(sock, hlen, wait).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"undecodable message header: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise ProtocolError("message header is not an object")
    buffers, total = [], hlen
    for _ in range(nbuf):
        (n,) = struct.unpack("<Q", _recv_exact(sock, 8, wait))
        total += n
        if total > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
        buffers.append(_recv_exact(sock, n, wait))
    return header, buffers


# ---------------------------------------------------------------------------------------- values


_VIEW_TYPES = (type({}.keys()), type({}.values()), type({}.items()), range)


def _np():
    return sys.modules.get("numpy")


def _torch():
    return sys.modules.get("torch")


class Codec:
    """Encode values into (tree, buffers) and decode them back into exact base types.

    ``to_ref(obj) -> node`` turns a non-plain object into a ``ref``/``cb`` node (the side that
    owns it registers it); ``from_ref(node) -> object`` turns such a node back into a local object
    or a proxy. Subclasses of the plain types are converted to their base type with the base
    type's own methods (a student's ``int`` subclass arrives as an ``int``).
    """

    def __init__(self, to_ref, from_ref):
        self.to_ref, self.from_ref = to_ref, from_ref
        #: when a list: arrays, tensors and random generators encoded are appended and tagged ``io``
        #: (the other side sends back their new contents when its code changed them in place)
        self.inout: list | None = None
        #: when a list: decoded ``io`` values are appended as (io, object, snapshot)
        self.scope: list | None = None

    def _io(self, node, value):
        if self.inout is not None:
            node["io"] = len(self.inout)
            self.inout.append(value)
        return node

    def _decoded_io(self, node, obj):
        io = node.get("io")
        if self.scope is not None and type(io) is int:
            self.scope.append((io, obj, snapshot(obj)))
        return obj

    # ------------------------------------------------------------------ encode
    def encode(self, value, buffers: list, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
        t = type(value)
        if value is None or t is bool or t is str:
            return value
        if t is int:
            return value
        if t is float:
            return value
        if t is complex:
            return {"$": "c", "re": value.real, "im": value.imag}
        if t is bytes:
            buffers.append(value)
            return {"$": "b", "buf": len(buffers) - 1}
        if t is list:
            return [self.encode(v, buffers, depth + 1) for v in value]
        if t is tuple:
            return {"$": "t", "items": [self.encode(v, buffers, depth + 1) for v in value]}
        if t is dict:
            return {"$": "d", "items": [[self.encode(k, buffers, depth + 1), self.encode(v, buffers, depth + 1)]
                                        for k, v in dict.items(value)]}
        if t in _VIEW_TYPES:
            return [self.encode(v, buffers, depth + 1) for v in value]
        if t is set or t is frozenset:
            return {"$": "s", "frozen": t is frozenset, "items": [self.encode(v, buffers, depth + 1) for v in value]}
        np = _np()
        if np is not None:
            if isinstance(value, np.ndarray):
                arr = np.ndarray.view(value, np.ndarray)
                dtype_name = dtype_name_of(arr.dtype)
                if dtype_name in NUMERIC_DTYPES:
                    arr = np.ascontiguousarray(arr).reshape(arr.shape)  # ascontiguousarray makes 0-d arrays 1-d
                    buffers.append(arr.tobytes())
                    return self._io({"$": "nd", "dtype": dtype_name, "shape": list(arr.shape),
                                     "buf": len(buffers) - 1}, value)
                return self.to_ref(value)
            if type(value) is np.random.Generator:
                bitgen = value.bit_generator
                name = type(bitgen).__name__
                if name in BIT_GENERATORS:
                    return self._io({"$": "rng", "bit": name, "state": self.encode(bitgen.state, buffers, depth + 1)},
                                    value)
            if isinstance(value, np.generic) and dtype_name_of(value.dtype) in NUMERIC_DTYPES:
                buffers.append(np.array(value).tobytes())
                return {"$": "ns", "dtype": dtype_name_of(value.dtype), "buf": len(buffers) - 1}
        torch = _torch()
        if torch is not None and isinstance(value, torch.Tensor):
            return self._io(self._encode_tensor(torch, value, buffers), value)
        # subclasses of the plain types: converted with the base type's methods
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int.__add__(value, 0)
        if isinstance(value, float):
            return float.__add__(value, 0.0)
        if isinstance(value, str):
            return str.__add__(value, "")
        if isinstance(value, tuple):
            return {"$": "t", "items": [self.encode(v, buffers, depth + 1) for v in tuple.__add__((), value)]}
        if isinstance(value, list):
            return [self.encode(v, buffers, depth + 1) for v in list.copy(value)]
        if isinstance(value, dict):
            return {"$": "d", "items": [[self.encode(k, buffers, depth + 1), self.encode(v, buffers, depth + 1)]
                                        for k, v in dict.items(value)]}
        return self.to_ref(value)

    @staticmethod
    def _encode_tensor(torch, value, buffers):
        with torch._C.DisableTorchFunction():
            t = torch.Tensor.detach(value)
            if t.device.type != "cpu":
                t = t.cpu()
            t = t.contiguous()
            name = str(t.dtype).replace("torch.", "")
            if name not in TORCH_DTYPES:
                raise ValueError(f"tensors of dtype {name} cannot be sent to the grader")
            if name == "bfloat16":
                raw = t.view(torch.int16).numpy().tobytes()
            else:
                raw = t.numpy().tobytes()
            buffers.append(raw)
            return {"$": "pt", "dtype": name, "shape": list(t.shape), "grad": bool(value.requires_grad),
                    "buf": len(buffers) - 1}

    # ------------------------------------------------------------------ decode
    def decode(self, node, buffers: list, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
        t = type(node)
        if node is None or t is bool or t is int or t is float or t is str:
            return node
        if t is list:
            return [self.decode(v, buffers, depth + 1) for v in node]
        if t is not dict:
            raise ProtocolError(f"unexpected JSON value of type {t.__name__}")
        kind = node.get("$")
        if kind == "t":
            return tuple(self.decode(v, buffers, depth + 1) for v in _list(node.get("items")))
        if kind == "d":
            out = {}
            for pair in _list(node.get("items")):
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed dict item")
                key = self.decode(pair[0], buffers, depth + 1)
                try:
                    out[key] = self.decode(pair[1], buffers, depth + 1)
                except TypeError:
                    raise ProtocolError("unhashable dict key") from None
            return out
        if kind == "s":
            try:
                items = [self.decode(v, buffers, depth + 1) for v in _list(node.get("items"))]
                return frozenset(items) if node.get("frozen") is True else set(items)
            except TypeError:
                raise ProtocolError("unhashable set item") from None
        if kind == "c":
            re_, im = node.get("re"), node.get("im")
            if type(re_) not in (int, float) or type(im) not in (int, float):
                raise ProtocolError("malformed complex")
            return complex(re_, im)
        if kind == "b":
            return bytes(_buf(node, buffers))
        if kind == "nd":
            np = _np()
            if np is None:
                raise ProtocolError("numpy array received but numpy is not loaded")
            dtype = _dtype_name(node, NUMERIC_DTYPES)
            shape = _shape(node)
            raw = _buf(node, buffers)
            dt = np.dtype(dtype)
            if _prod(shape) * dt.itemsize != len(raw):
                raise ProtocolError("array buffer does not match its shape and dtype")
            return self._decoded_io(node, np.frombuffer(raw, dtype=dt).reshape(shape).copy())
        if kind == "rng":
            np = _np()
            if np is None:
                import numpy as np
            name = node.get("bit")
            if name not in BIT_GENERATORS:
                raise ProtocolError(f"bit generator {name!r} is not allowed")
            state = self.decode(node.get("state"), buffers, depth + 1)
            bitgen = getattr(np.random, name)()
            try:
                bitgen.state = state
            except (TypeError, ValueError, KeyError) as exc:
                raise ProtocolError(f"bad random generator state: {exc}") from None
            return self._decoded_io(node, np.random.Generator(bitgen))
        if kind == "ns":
            np = _np()
            if np is None:
                raise ProtocolError("numpy scalar received but numpy is not loaded")
            dt = np.dtype(_dtype_name(node, NUMERIC_DTYPES))
            raw = _buf(node, buffers)
            if len(raw) != dt.itemsize:
                raise ProtocolError("numpy scalar of the wrong size")
            return np.frombuffer(raw, dtype=dt)[0]
        if kind == "pt":
            return self._decoded_io(node, self._decode_tensor(node, buffers))
        if kind in ("ref", "cb"):
            return self.from_ref(node)
        raise ProtocolError(f"unknown value node {kind!r}")

    @staticmethod
    def _decode_tensor(node, buffers):
        torch, np = _torch(), _np()
        if torch is None or np is None:
            import numpy as np  # noqa: F811 - the evaluator side always has both
            import torch
        name = _dtype_name(node, TORCH_DTYPES)
        shape = _shape(node)
        raw = _buf(node, buffers)
        np_name = "int16" if name == "bfloat16" else name
        dt = np.dtype(np_name)
        if _prod(shape) * dt.itemsize != len(raw):
            raise ProtocolError("tensor buffer does not match its shape and dtype")
        arr = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        t = torch.from_numpy(arr)
        if name == "bfloat16":
            t = t.view(torch.bfloat16)
        if node.get("grad") is True and t.is_floating_point():
            t.requires_grad_(True)
        return t


BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def snapshot(obj):
    """What an in/out value looked like (to tell whether code changed it in place)."""
    np, torch = _np(), _torch()
    if np is not None and isinstance(obj, np.ndarray):
        return obj.tobytes()
    if np is not None and isinstance(obj, np.random.Generator):
        return repr(obj.bit_generator.state)
    if torch is not None and isinstance(obj, torch.Tensor):
        with torch.no_grad():
            t = obj.detach()
            return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    return None


def changed_inout(scope: list) -> list:
    """[(io, object)] of the scope's values changed since their snapshot (and re-snapshot them)."""
    out = []
    for i, (io, obj, snap) in enumerate(scope):
        now = snapshot(obj)
        if now != snap:
            out.append((io, obj))
            scope[i] = (io, obj, now)
    return out


def apply_inout(target, new) -> bool:
    """Write ``new`` into ``target`` in place (arrays, tensors, generators of the same kind); True when done."""
    np, torch = _np(), _torch()
    if np is not None and isinstance(target, np.ndarray) and type(new) is np.ndarray:
        if target.shape == new.shape and target.dtype == new.dtype and target.flags.writeable:
            np.copyto(target, new)
            return True
        return False
    if np is not None and isinstance(target, np.random.Generator) and type(new) is np.random.Generator:
        if type(target.bit_generator) is type(new.bit_generator):
            target.bit_generator.state = new.bit_generator.state
            return True
        return False
    if torch is not None and isinstance(target, torch.Tensor) and type(new) is torch.Tensor:
        if target.shape == new.shape and target.dtype == new.dtype:
            with torch.no_grad():
                target.copy_(new)
            return True
    return False


def _list(x):
    if type(x) is not list:
        raise ProtocolError("malformed value node")
    return x


def _buf(node, buffers):
    i = node.get("buf")
    if type(i) is not int or not 0 <= i < len(buffers):
        raise ProtocolError("bad buffer index")
    return buffers[i]


_DTYPE_NAMES: dict = {}


def dtype_name_of(dtype) -> str:
    """``dtype.name``, remembered per dtype (numpy computes the name in Python: ~7 us, on every array sent)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = dtype.name
        if len(_DTYPE_NAMES) < 256:
            _DTYPE_NAMES[dtype] = name
    return name


def _dtype_name(node, allowed):
    d = node.get("dtype")
    if d not in allowed:
        raise ProtocolError(f"dtype {d!r} is not allowed")
    return d


def _shape(node):
    shape = node.get("shape")
    if type(shape) is not list or len(shape) > 32 or not all(type(s) is int and 0 <= s < 1 << 40 for s in shape):
        raise ProtocolError("bad array shape")
    return tuple(shape)


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def error_node(exc: BaseException, tb_text: str = "") -> dict:
    """An exception as a message: its type, the names of its bases, message and a traceback text."""
    names = []
    for cls in type(exc).__mro__:
        n = getattr(cls, "__name__", "?")
        if type(n) is str:
            names.append(n)
    try:
        text = str(exc)
    except Exception:  # a student's __str__ that raises
        text = "<exception message unavailable>"
    return {"type": names[0] if names else "Exception", "mro": names[:16], "message": text[:20_000],
            "traceback": tb_text[-8000:]}


def rebuild_error(err: dict) -> BaseException:
    """The exception to raise for an error message from the other side (a standard type, or StudentError)."""
    mro = err.get("mro") if type(err.get("mro")) is list else []
    message = err.get("message") if type(err.get("message")) is str else ""
    name = err.get("type") if type(err.get("type")) is str else "Exception"
    for n in mro:
        if n in PORTABLE_ERRORS:
            cls = getattr(builtins, n)
            exc = cls(message) if n != "KeyError" else KeyError(message)
            break
    else:
        exc = StudentError(f"{name}: {message}" if message else name)
    tb = err.get("traceback")
    exc.remote_traceback = tb if type(tb) is str else ""
    exc.remote_type = name
    return exc


# ---------------------------------------------------------------------------------------- the agent


class _Callback:
    """Inside the kernel: an object of the evaluator (a function, a random generator ...)."""

    __slots__ = ("_agent", "_id", "_kind", "_methods", "__weakref__")

    def __init__(self, agent, node):
        object.__setattr__(self, "_agent", agent)
        object.__setattr__(self, "_id", node.get("id"))
        object.__setattr__(self, "_kind", node.get("kind", "object"))
        object.__setattr__(self, "_methods", tuple(node.get("methods", ())))

    def __call__(self, *args, **kwargs):
        return self._agent.request({"op": "call", "id": self._id}, args, kwargs)

    def __getattr__(self, name):
        if name in self._methods:
            return _CallbackMethod(self, name)
        raise AttributeError(f"the grader's {self._kind} offers only its methods {list(self._methods)[:20]}; "
                             f"{name!r} is not one of them")

    def __repr__(self):
        return f"<grader {self._kind}>"


class _CallbackMethod:
    __slots__ = ("_cb", "_name")

    def __init__(self, cb, name):
        self._cb, self._name = cb, name

    def __call__(self, *args, **kwargs):
        return self._cb._agent.request({"op": "callattr", "id": self._cb._id, "name": self._name}, args, kwargs)

    def __repr__(self):
        return f"<method {self._name} of the grader's {self._cb._kind}>"


def method_names(obj) -> list[str]:
    """Public callables defined on ``type(obj)`` (not shadowed by the instance): calls of these are one request."""
    names = []
    inst = getattr(obj, "__dict__", None)
    inst = inst if type(inst) is dict else {}
    for cls in type.__getattribute__(type(obj), "__mro__")[:-1]:
        for k, v in type.__getattribute__(cls, "__dict__").items():
            if k.startswith("_") or k in inst or k in names:
                continue
            if callable(v) or isinstance(v, (staticmethod, classmethod)):
                names.append(k)
                if len(names) >= MAX_METHOD_NAMES:
                    return names
    return names


class Agent:
    """Serves the evaluator's requests inside the student's kernel (main thread, during ``serve``)."""

    def __init__(self, path: str, key: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.handles: dict[int, object] = {}
        self.by_id: dict[int, int] = {}
        self.next_id = 1
        self.serving = False
        self.codec = Codec(self._to_ref, self._from_ref)
        self.scopes: list[list] = []  # in/out arguments of the requests being served (innermost last)
        self.entered: dict[str, int] = {}  # forbidden names entered (the rules' wrappers)
        self.rule_wrappers: list = []
        self.ns = None
        self.pure = False  # the request being served ran no student code (the evaluator may cache)
        self.watch_sent: dict = {}  # (handle, name) -> fingerprint of the value last sent for a watched attribute
        send_msg(self.sock, {"op": "hello", "key": key}, [])

    # refs of kernel objects
    def _to_ref(self, obj):
        container = type(obj) is _Container
        if container:
            obj = obj.value
        i = self.by_id.get(id(obj))
        if i is None or self.handles.get(i) is not obj:
            i = self.next_id
            self.next_id += 1
            self.handles[i] = obj
            self.by_id[id(obj)] = i
        if container:
            kind = "dict" if type(obj) is dict else "list"
        elif isinstance(obj, type):
            kind = "class"
        elif callable(obj):
            kind = "callable"
        else:
            kind = "object"
        try:
            methods = method_names(obj) if kind == "object" else []
        except Exception:
            methods = []
        try:
            tname = type.__getattribute__(type(obj), "__qualname__")
        except Exception:
            tname = "?"
        return {"$": "ref", "id": i, "kind": kind, "type": str(tname)[:200], "methods": methods}

    def _from_ref(self, node):
        if node.get("$") == "ref":
            i = node.get("id")
            if type(i) is not int or i not in self.handles:
                raise ProtocolError("unknown object handle")
            return self.handles[i]
        return _Callback(self, node)

    # ------------------------------------------------------------------ messaging
    def _sync(self, header, buffers):
        """Attach the in/out arguments of the innermost request that student code changed in place."""
        if self.scopes:
            changed = changed_inout(self.scopes[-1])
            if changed:
                header["sync"] = [[io, self.codec.encode(obj, buffers)] for io, obj in changed]

    def _forget(self, container) -> None:
        """The evaluator changed its copy of ``container`` too: never answer "same" against the old one."""
        for k in [k for k, fp in self.watch_sent.items() if fp and len(fp) > 1 and fp[1] == id(container)]:
            del self.watch_sent[k]

    def _watched(self, watch, buffers):
        """After a call: the current value of attributes the evaluator read before (plain ones only),
        so that its next reads need no request. [[handle, name, value, snapshot or None], ...]."""
        out = []
        if type(watch) is not list:
            return out
        total = 0
        for item in watch[:MAX_WATCHED]:
            if type(item) is not list or len(item) != 2 or type(item[1]) is not str:
                continue
            obj = self.handles.get(item[0])
            if obj is None or not plain_attribute(obj, item[1]):
                continue
            value = object.__getattribute__(obj, "__dict__")[item[1]]
            key = (item[0], item[1])
            fp = fingerprint(value)
            if fp is not None and self.watch_sent.get(key) == fp:
                out.append([item[0], item[1], "same", None])  # unchanged since the evaluator last got it
                continue
            self.watch_sent[key] = fp
            mark = len(buffers)
            try:
                if type(value) in (dict, list):
                    node = self.codec.encode(_Container(value, snap=True), buffers)
                    snap = self.codec.encode(value, buffers)
                else:
                    node, snap = self.codec.encode(value, buffers), None
            except Exception:
                del buffers[mark:]
                continue
            total += sum(len(b) for b in buffers[mark:])
            if total > MAX_SNAPSHOT_BYTES:
                del buffers[mark:]
                break
            out.append([item[0], item[1], node, snap])
        return out

    def _send_value(self, header, value, watch=None):
        buffers: list = []
        try:
            self._sync(header, buffers)
            header["value"] = self.codec.encode(value, buffers)
            if watch:
                header["watched"] = self._watched(watch, buffers)
            if self.pure:
                header["pure"] = True
                if type(value) is _Container and value.snap:
                    mark = len(buffers)
                    try:
                        snap = self.codec.encode(value.value, buffers)
                    except Exception:
                        snap = None
                    if snap is not None and sum(len(b) for b in buffers[mark:]) <= MAX_SNAPSHOT_BYTES:
                        header["snap"] = snap
                    else:
                        del buffers[mark:]
        except Exception as exc:
            header.pop("value", None)
            header["error"] = error_node(TypeError(f"the result cannot be sent to the grader: {exc}"))
            buffers = []
        send_msg(self.sock, header, buffers)

    def request(self, header, args=(), kwargs=None):
        """Send a request to the evaluator (a callback) and serve its requests until the reply comes."""
        if not self.serving:
            raise RuntimeError("a grader callback was used outside the test that passed it")
        buffers: list = []
        header = dict(header, kind="request", args=self.codec.encode(list(args), buffers),
                      kwargs=self.codec.encode(dict(kwargs or {}), buffers))
        self._sync(header, buffers)
        send_msg(self.sock, header, buffers)
        return self._loop(expect_reply=True)

    def serve(self, ns=None):
        """Run the evaluator's requests (calls of student code) until it says ``end``."""
        self.ns = ns if ns is not None else self.ns
        self.serving = True
        self.entered = {}
        try:
            send_msg(self.sock, {"op": "ready"}, [])
            self._loop(expect_reply=False)
        finally:
            self.serving = False

    def _loop(self, expect_reply: bool):
        while True:
            header, buffers = recv_msg(self.sock)
            kind = header.get("kind")
            if kind == "reply":
                if not expect_reply:
                    raise ProtocolError("unexpected reply")
                if "error" in header:
                    raise rebuild_error(header["error"])
                return self.codec.decode(header.get("value"), buffers)
            if header.get("op") == "end":
                send_msg(self.sock, {"kind": "reply", "op": "end", "entered": dict(self.entered)}, [])
                if expect_reply:
                    raise ProtocolError("the grader ended the test during a callback")
                return None
            self._handle(header, buffers)

    def _handle(self, header, buffers):
        reply = {"kind": "reply"}
        self.scopes.append([])
        try:
            self._handle_in_scope(header, buffers, reply)
        finally:
            self.scopes.pop()

    def _handle_in_scope(self, header, buffers, reply):
        noreply = header.get("noreply") is True
        if noreply:
            reply["deferred"] = True
        try:
            value = self._dispatch(header, buffers)
        except KeyboardInterrupt as exc:
            reply["error"] = error_node(exc, "interrupted (time limit)")
            send_msg(self.sock, reply, [])
            return
        except BaseException as exc:  # noqa: BLE001 - everything the student raises goes back as data
            if isinstance(exc, ProtocolError):
                raise
            reply["error"] = error_node(exc, _student_traceback(exc))
            send_msg(self.sock, reply, [])
            return
        if noreply and self.pure:  # a write the evaluator does not wait for (it only hears of a failure)
            return
        self._send_value(reply, value, header.get("watch"))

    def _dispatch(self, h, buffers):
        self.pure = False
        op = h.get("op")
        dec = self.codec.decode
        if op == "global":
            name = h.get("name")
            ns = self.ns if self.ns is not None else {}
            if name not in ns:
                raise NameError(f"name {name!r} is not defined")
            return ns[name]
        if op == "globals":
            ns = self.ns if self.ns is not None else {}
            return {n: ns[n] for n in h.get("names", []) if type(n) is str and n in ns}
        obj = self.handles.get(h.get("id")) if op not in ("isinstance",) else None
        if op not in ("isinstance",) and h.get("id") not in self.handles:
            raise ProtocolError("unknown object handle")
        self.codec.scope = self.scopes[-1] if self.scopes else None
        try:
            args = dec(h.get("args", []), buffers) if "args" in h else []
            kwargs = dec(h.get("kwargs", {"$": "d", "items": []}), buffers) if "kwargs" in h else {}
        finally:
            self.codec.scope = None
        ctx = _CallContext(h.get("context"))
        with ctx:
            if op == "call":
                return obj(*args, **kwargs)
            if op == "callattr":
                return getattr(obj, h["name"])(*args, **kwargs)
            if op == "getattr":
                plain = plain_attribute(obj, h["name"])
                value = getattr(obj, h["name"])
                self.pure = plain
                if plain:
                    self.watch_sent[(h.get("id"), h["name"])] = fingerprint(value)
                if type(value) in (dict, list):  # mutable containers stay in the kernel: mutations reach the object
                    return _Container(value, snap=plain)
                return value
            if type(obj) in (dict, list) and op in PURE_CONTAINER_OPS and all(type(a) in PLAIN_KEYS for a in args[:1]):
                self.pure = True  # a plain dict/list read or written with a plain key runs no student code
            if op == "setattr":
                setattr(obj, h["name"], args[0])
                self.watch_sent.pop((h.get("id"), h["name"]), None)
                return None
            if op == "delattr":
                delattr(obj, h["name"])
                return None
            if op == "getitem":
                return obj[args[0]]
            if op == "setitem":
                obj[args[0]] = args[1]
                self._forget(obj)
                return None
            if op == "delitem":
                self._forget(obj)
                del obj[args[0]]
                return None
            if op == "len":
                return len(obj)
            if op == "contains":
                return args[0] in obj
            if op == "iter":
                out = []
                for item in obj:
                    out.append(item)
                    if len(out) > MAX_ITER_ITEMS:
                        raise ValueError(f"more than {MAX_ITER_ITEMS} items")
                return out
            if op == "repr":
                return repr(obj)
            if op == "str":
                return str(obj)
            if op == "float":
                return float(obj)
            if op == "int":
                return int(obj)
            if op == "index":
                import operator

                return operator.index(obj)
            if op == "asarray":
                import numpy

                return numpy.asarray(obj)
            if op == "isinstance":
                a, b = dec(h["obj"], buffers), dec(h["cls"], buffers)
                return isinstance(a, b)
            if op == "issubclass":
                return issubclass(obj, args[0])
        raise ProtocolError(f"unknown request {op!r}")

    # ------------------------------------------------------------------ rules (dynamic check)
    def install_rule_wrappers(self, dotted_names):
        """Wrap each existing forbidden callable so that entering it during a graded call is recorded.

        A forbidden function or method is replaced by a wrapper; a forbidden class gets its
        ``__init__`` wrapped (the class itself stays, so ``isinstance`` still works); a forbidden
        module of at most :data:`MAX_MODULE_WRAPS` public functions has each of them wrapped (a
        larger one, e.g. all of ``torch``, is left to the static check). Installed before any
        student code runs; :meth:`verify_rule_wrappers` tells whether they are still in place.
        Returns the names that were wrapped.
        """
        import importlib
        import types

        targets = []  # (owner, attribute, callable, dotted)
        for dotted in dotted_names:
            parts = dotted.split(".")
            for i in range(len(parts), 0, -1):
                modname = ".".join(parts[:i])
                if modname not in sys.modules:
                    try:
                        importlib.import_module(modname)
                    except Exception:
                        continue
                obj, owner, attr = sys.modules.get(modname), None, None
                if obj is None:
                    continue
                try:
                    for p in parts[i:]:
                        owner, attr, obj = obj, p, getattr(obj, p)
                except AttributeError:
                    obj = None
                break
            else:
                continue
            if obj is None:
                continue
            if isinstance(obj, types.ModuleType):
                # the module's own functions (and builtins of its parent packages, like torch.conv2d in
                # torch.nn.functional); not helpers it imports from elsewhere (has_torch_function)
                own = obj.__name__
                funcs = [(k, v) for k, v in list(vars(obj).items()) if not k.startswith("_")
                         and isinstance(v, (types.FunctionType, types.BuiltinFunctionType))
                         and (getattr(v, "__module__", None) in (None, own)
                              or own.startswith(str(getattr(v, "__module__", "")) + "."))]
                if len(funcs) <= MAX_MODULE_WRAPS:
                    targets += [(obj, k, v, f"{dotted}.{k}") for k, v in funcs]
            elif isinstance(obj, type):
                init = obj.__dict__.get("__init__")
                if init is not None and callable(init):
                    targets.append((obj, "__init__", init, dotted))
            elif owner is not None and callable(obj):
                targets.append((owner, attr, obj, dotted))
        wrapped = []
        seen = set()
        for owner, attr, fn, dotted in targets:
            if (id(owner), attr) in seen:  # e.g. course_lib.conv.pad2d: an answer inside a forbidden module
                continue
            seen.add((id(owner), attr))
            w = _rule_wrapper(self, fn, dotted)
            try:
                if isinstance(owner, type):
                    type.__setattr__(owner, attr, w)
                else:
                    setattr(owner, attr, w)
            except (TypeError, AttributeError):
                continue
            self.rule_wrappers.append((owner, attr, w, dotted))
            wrapped.append(dotted)
        return wrapped

    def verify_rule_wrappers(self):
        """The forbidden names whose wrapper was removed or replaced since it was installed."""
        missing = []
        for owner, attr, w, dotted in self.rule_wrappers:
            try:
                cur = type.__getattribute__(owner, attr) if isinstance(owner, type) else getattr(owner, attr)
            except AttributeError:
                cur = None
            if cur is not w:
                missing.append(dotted)
        return missing


def _rule_wrapper(agent, fn, name):
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **k):
        if agent.serving:
            agent.entered[name] = agent.entered.get(name, 0) + 1
        return fn(*a, **k)
    return wrapper


def fingerprint(value, depth: int = 0):
    """A cheap summary that changes when ``value`` changes (identity and contents of dicts and lists,
    a hash of array and tensor bytes); None for what it cannot summarise."""
    import hashlib

    t = type(value)
    if value is None or t in (bool, int, float, str, complex, bytes):
        return (t.__name__, value)
    if depth > 4:
        return None
    if t is dict or t is list:
        items = list(dict.items(value)) if t is dict else list(enumerate(value))
        parts = []
        for k, v in items:
            f = fingerprint(v, depth + 1)
            if f is None:
                return None
            parts.append((k, f))
        return (t.__name__, id(value), tuple(parts))
    np, torch = _np(), _torch()
    if np is not None and t is np.ndarray and dtype_name_of(value.dtype) in NUMERIC_DTYPES:
        a = np.ascontiguousarray(value)
        return ("nd", id(value), dtype_name_of(a.dtype), a.shape, hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).digest())
    if torch is not None and t is torch.Tensor and value.device.type == "cpu" and value.dtype != torch.bfloat16:
        with torch._C.DisableTorchFunction():
            a = value.detach().contiguous().numpy()
        return ("pt", id(value), str(value.dtype), tuple(value.shape), bool(value.requires_grad),
                hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).digest())
    return ("o", id(value))


class _Container:
    """A dict or list attribute of a student object: sent as a handle (its mutations must reach the object),
    with a snapshot of its contents when reading it ran no student code."""

    __slots__ = ("value", "snap")

    def __init__(self, value, snap=False):
        self.value, self.snap = value, snap


def plain_attribute(obj, name) -> bool:
    """True when ``getattr(obj, name)`` is a plain instance-dict lookup: no student code runs for it
    (no custom ``__getattribute__``, no data descriptor of that name on the type)."""
    try:
        cls = type(obj)
        if type.__getattribute__(cls, "__getattribute__") is not object.__getattribute__:
            return False
        d = object.__getattribute__(obj, "__dict__")
        if type(d) is not dict or type(name) is not str or name not in d:
            return False
        for klass in type.__getattribute__(cls, "__mro__"):
            attr = type.__getattribute__(klass, "__dict__").get(name)
            if attr is not None:
                t = type(attr)
                return not (hasattr(t, "__set__") or hasattr(t, "__delete__"))
        return True
    except Exception:
        return False


class _CallContext:
    """The evaluator's numpy error state, torch grad mode and default dtype, for the duration of a call."""

    def __init__(self, ctx):
        self.ctx = ctx if type(ctx) is dict else {}
        self.undo = []

    def __enter__(self):
        np, torch = _np(), _torch()
        err = self.ctx.get("np_err")
        if np is not None and type(err) is dict:
            old = np.seterr(**{k: v for k, v in err.items() if k in ("divide", "over", "under", "invalid")
                                and v in ("ignore", "warn", "raise", "call", "print", "log")})
            self.undo.append(lambda: np.seterr(**old))
        if torch is not None:
            grad = self.ctx.get("grad")
            if type(grad) is bool and torch.is_grad_enabled() != grad:
                prev = torch.is_grad_enabled()
                torch.set_grad_enabled(grad)
                self.undo.append(lambda: torch.set_grad_enabled(prev))
            dtype = self.ctx.get("dtype")
            if dtype in ("float32", "float64", "float16", "bfloat16"):
                want = getattr(torch, dtype)
                prev_dtype = torch.get_default_dtype()
                if prev_dtype != want:
                    torch.set_default_dtype(want)
                    self.undo.append(lambda: torch.set_default_dtype(prev_dtype))
        return self

    def __exit__(self, *exc):
        while self.undo:
            try:
                self.undo.pop()()
            except Exception:
                pass
        return False


def _student_traceback(exc: BaseException) -> str:
    """The traceback of a student exception, without the agent's own frames."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__
                  and "<grader" not in f.filename]
        lines = traceback.format_list(frames[-12:])
        return "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))
    except Exception:
        return ""


# ---------------------------------------------------------------------------------------- boot


def _grader_boot(ip, src: str, args: dict) -> None:
    """The grader prelude inside the kernel (its source is sent, see
    :func:`course_tools.grading.runner.prelude_code`): make this module from its source ``src`` as
    ``_grader_wire`` (``course_tools`` is not importable in the sandbox) and run :func:`bootstrap`."""
    import types

    m = types.ModuleType("_grader_wire")
    m.__file__ = "<grader agent>"
    exec(compile(src, "<grader agent>", "exec"), m.__dict__)
    m.bootstrap(ip, **args)


def bootstrap(ip, *, stage: str, work: str, socket_path: str, key: str, holder: str, forbidden: list,
              token: str, lib_paths: list = ()) -> None:
    """Run inside the kernel before any student code: stage the files, connect the agent, wrap the
    forbidden callables (the rules' dynamic check), and print ``token`` when all went well."""
    import os
    import shutil

    if stage != work and os.path.isdir(stage):
        for dirpath, _dirnames, filenames in os.walk(stage):
            rel = os.path.relpath(dirpath, stage)
            target = work if rel == "." else os.path.join(work, rel)
            os.makedirs(target, exist_ok=True)
            for f in filenames:
                try:
                    shutil.copyfile(os.path.join(dirpath, f), os.path.join(target, f))
                except OSError:
                    pass
    os.chdir(work)
    # the course_lib the grader bound into the sandbox comes first (an editable install may point elsewhere)
    sys.path[:] = [str(p) for p in lib_paths] + [p for p in sys.path if p not in ("", ".", work, os.getcwd())
                                                 and p not in lib_paths] + [work]
    for name in [m for m in sys.modules if m == "course_lib" or m.startswith("course_lib.")]:
        del sys.modules[name]
    agent = Agent(socket_path, key)
    agent.ns = ip.user_ns
    agent.wrapped = agent.install_rule_wrappers(forbidden) if forbidden else []
    ip.user_ns[holder] = agent
    print(token)
