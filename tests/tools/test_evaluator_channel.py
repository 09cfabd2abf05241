"""Unit tests of the trusted evaluator's :class:`~course_tools.grading.evaluator.Channel`.

The channel is the evaluator's end of the Unix socket to the agent in the student's kernel. Here it
talks to the REAL agent, :class:`course_tools.grading.wire.Agent`, served in a thread of this
process (the agent is pure standard library: it connects, says hello with the key, and ``serve()``
answers requests until ``end`` -- in the kernel the same object runs in the main thread; no Jupyter
kernel or sandbox is needed to exercise the protocol). Student code is ``exec``'d from source into
the agent's namespace, with the file name ``<student cell>``.

Hostile kernels (a wrong key, a peer that dies mid-reply, truncated, oversized or garbage frames, a
reply that smuggles a pickle or a subclass) are raw sockets that speak :mod:`wire`'s framing and then
misbehave. Every exchange that could hang runs in a thread with a bound, and the channel's
``on_wait`` enforces a short deadline as the grader's runner does (``runner._exchange_part``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import struct
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_tools.grading import wire
from course_tools.grading.evaluator import Channel, GraderAbort, Remote

KEY = "k-" + "5e" * 16
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------- harness


def _sock_dir() -> Path:
    # a short path: AF_UNIX paths are limited to ~108 bytes (pytest's tmp_path can be longer)
    return Path(tempfile.mkdtemp(prefix="chan-", dir="/tmp"))


def _bounded(fn, seconds: float = 5.0) -> dict:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) when it does not return in time."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the channel hung for more than {seconds} s"
    return box


def _deadline(ch: Channel, seconds: float) -> None:
    """The runner's time limit, reduced to its essence: ``on_wait`` raises once the deadline passed."""
    end = time.monotonic() + seconds

    def guard():
        if time.monotonic() > end:
            raise GraderAbort("time limit")

    ch.on_wait = guard


@contextlib.contextmanager
def agent_session(student_src: str, *, agent_key: str = KEY):
    """A Channel connected to a real ``wire.Agent`` serving ``student_src``'s namespace in a thread."""
    d = _sock_dir()
    path = d / "agent.sock"
    ch = Channel(path, KEY)
    ns: dict = {"__name__": "__student__"}
    exec(compile(textwrap.dedent(student_src), "<student cell>", "exec"), ns)
    agent_errors: list = []

    def serve():
        try:
            agent = wire.Agent(str(path), agent_key)
            agent.serve(ns)
        except (OSError, wire.ProtocolError) as exc:  # the evaluator closed the socket (end of a test)
            agent_errors.append(exc)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        ch.accept(5.0)
        ch.wait_ready(5.0)
        yield ch, ns
        closing = _bounded(ch.end)
        assert "error" not in closing, closing
        assert closing["value"] == {"entered": {}}, closing["value"]
        assert not ch.broken, ch.broken
    finally:
        ch.close()
        t.join(5.0)
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def fake_kernel(misbehave, *, key: str = KEY, ready: bool = True):
    """A Channel connected to a raw socket that says hello (with ``key``) and ``ready``, reads the first
    request and then calls ``misbehave(sock, header)``; the socket stays open until the test is over."""
    d = _sock_dir()
    path = d / "agent.sock"
    ch = Channel(path, KEY)
    over = threading.Event()

    def run():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            wire.send_msg(s, {"op": "hello", "key": key}, [])
            if ready:
                wire.send_msg(s, {"op": "ready"}, [])
                header, _ = wire.recv_msg(s)
                misbehave(s, header)
            over.wait(10.0)
        except (OSError, wire.ProtocolError):
            pass
        finally:
            s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield ch
    finally:
        over.set()
        ch.close()
        t.join(5.0)
        shutil.rmtree(d, ignore_errors=True)


def _connect(ch: Channel) -> Remote:
    ch.accept(2.0)
    ch.wait_ready(2.0)
    return Remote(ch, {"$": "ref", "id": 1, "kind": "callable", "type": "answer"})


def _assert_broken(ch: Channel, box: dict, *words: str) -> None:
    err = box.get("error")
    assert isinstance(err, GraderAbort), f"expected the exchange to break, got {box!r}"
    assert ch.broken, "the channel is not marked broken"
    assert ch.broken == err.reason
    for w in words:
        assert w in ch.broken, f"{w!r} not in the reason {ch.broken!r}"
    # once broken, every later request is refused at once with the same reason (no second hang)
    later = _bounded(lambda: ch.request({"op": "global", "name": "x"}), 2.0)
    assert isinstance(later.get("error"), GraderAbort) and later["error"].reason == ch.broken


# ---------------------------------------------------------------------------------------- values


def _same(a, b) -> bool:
    """Exact equality: same types all the way down (never a subclass), same bits for floats/arrays."""
    if type(a) is not type(b):
        return False
    if type(a) is float:  # a Python float's NaN sign/payload is not kept (JSON's NaN): any NaN is NaN
        return (a != a and b != b) or struct.pack("<d", a) == struct.pack("<d", b)
    if type(a) is complex:
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is np.ndarray:
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if type(a) is torch.Tensor:
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and a.requires_grad == b.requires_grad
            and _tensor_bytes(a) == _tensor_bytes(b)
        )
    return a == b


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach()
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


NP_DTYPES = st.sampled_from(wire.NUMERIC_DTYPES).map(np.dtype)
ARRAYS = NP_DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))


@st.composite
def tensors(draw, name=None):
    name = name or draw(st.sampled_from(wire.TORCH_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    n = math.prod(shape)
    if name == "bool":
        arr = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool).reshape(shape)
        return torch.from_numpy(arr)
    np_name = "int16" if name == "bfloat16" else name
    size = np.dtype(np_name).itemsize
    raw = draw(st.binary(min_size=n * size, max_size=n * size))
    t = torch.from_numpy(np.frombuffer(raw, dtype=np_name).reshape(shape).copy())
    if name == "bfloat16":
        t = t.view(torch.bfloat16)
    if t.is_floating_point() and draw(st.booleans()):
        t.requires_grad_(True)
    return t


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.complex_numbers()
)
KEYS = st.integers() | st.text(max_size=6)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple) | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)
VALUES = st.recursive(
    SCALARS | ARRAYS | tensors(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(KEYS, inner, max_size=3)
    ),
    max_leaves=6,
)


# ---------------------------------------------------------------------------------------- round trips

ECHO = """
def echo(*args, **kwargs):
    return args, kwargs
"""


def test_round_trip_of_plain_data_is_exact():
    """Nested lists/tuples/dicts of scalars, numpy arrays and torch tensors of random dtypes and shapes go
    to the student's kernel and back (as a call's arguments and result) as the exact same types and bits."""
    with agent_session(ECHO) as (ch, _ns):
        echo = ch.fetch_globals(["echo"])["echo"]
        assert isinstance(echo, Remote) and echo._kind == "callable"

        @FEW
        @given(value=VALUES, plain=PLAIN)
        def check(value, plain):
            args, kwargs = echo(value, plain, kw=value)
            assert type(args) is tuple and type(kwargs) is dict
            assert _same(args, (value, plain)), (args, (value, plain))
            assert _same(kwargs, {"kw": value})

        check()


def test_every_dtype_round_trips_bit_for_bit():
    """Each numpy and torch dtype the wire allows, with random bytes (NaN payloads, -0.0, subnormals)."""
    with agent_session(ECHO) as (ch, _ns):
        echo = ch.fetch_globals(["echo"])["echo"]

        @settings(max_examples=8, deadline=None)
        @given(data=st.data())
        def check(data):
            for name in wire.NUMERIC_DTYPES:
                a = data.draw(hnp.arrays(np.dtype(name), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
                (out,), _ = echo(a)
                assert _same(out, a), (name, out, a)
                (out,), _ = echo(a.reshape(-1)[0] if a.size else np.dtype(name).type(0))
                assert type(out) is np.dtype(name).type
            for name in wire.TORCH_DTYPES:
                t = data.draw(tensors(name))
                (out,), _ = echo(t)
                assert _same(out, t), (name, out, t)

        check()


SUBCLASSES = """
import numpy as np
import torch

class LyingArray(np.ndarray):
    def __array_ufunc__(self, *a, **k):
        return True
    def __eq__(self, other):
        return True

class LyingTensor(torch.Tensor):
    def __eq__(self, other):
        return True

class LyingInt(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

class LyingFloat(float):
    pass

class LyingStr(str):
    pass

class LyingList(list):
    pass

class LyingDict(dict):
    pass

def liars(a):
    arr = np.asarray(a)
    return LyingDict(
        arr=arr.view(LyingArray), t=torch.from_numpy(arr.copy()).as_subclass(LyingTensor),
        i=LyingInt(int(arr.size)), f=LyingFloat(1.5), s=LyingStr("x"), l=LyingList([LyingInt(2)]),
        scalar=arr.dtype.type(0),
    )
"""


def test_student_subclasses_arrive_as_exact_base_types():
    """What the student returns in subclasses that lie about equality arrives as base types with the same bytes."""
    with agent_session(SUBCLASSES) as (ch, _ns):
        liars = ch.fetch_globals(["liars"])["liars"]

        @FEW
        @given(
            a=hnp.arrays(
                st.sampled_from(["float32", "float64", "int64", "uint8"]).map(np.dtype),
                hnp.array_shapes(max_dims=2, max_side=3),
            )
        )
        def check(a):
            out = liars(a)
            assert type(out) is dict
            assert type(out["arr"]) is np.ndarray and out["arr"].tobytes() == a.tobytes()
            assert out["arr"].dtype == a.dtype and out["arr"].shape == a.shape
            assert type(out["t"]) is torch.Tensor and out["t"].numpy().tobytes() == a.tobytes()
            assert type(out["i"]) is int and out["i"] == a.size
            assert type(out["f"]) is float and type(out["s"]) is str
            assert type(out["l"]) is list and type(out["l"][0]) is int
            assert type(out["scalar"]) is a.dtype.type

        check()


MODEL = """
import numpy as np

def affine(x, w, *, b=0.0):
    return x @ w + b

class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def apply(self, x):
        return x * self.factor
"""


def test_call_through_a_proxy_returns_the_agents_result():
    """A function call, a class instantiation (a handle) and a method call through it run in the kernel."""
    with agent_session(MODEL) as (ch, ns):
        got = ch.fetch_globals(["affine", "Scaler", "missing"])
        assert set(got) == {"affine", "Scaler"}  # a name the student did not define is not invented
        affine, scaler_cls = got["affine"], got["Scaler"]
        assert scaler_cls._kind == "class"
        calls = ch.requests

        @FEW
        @given(
            x=hnp.arrays(np.float64, (2, 3), elements=st.floats(-1e3, 1e3)),
            w=hnp.arrays(np.float64, (3, 2), elements=st.floats(-1e3, 1e3)),
            b=st.floats(-10, 10),
            factor=st.integers(-5, 5),
        )
        def check(x, w, b, factor):
            out = affine(x, w, b=b)
            assert type(out) is np.ndarray and out.tobytes() == (x @ w + b).tobytes()
            scaler = scaler_cls(factor)
            assert isinstance(scaler, Remote) and scaler._kind == "object" and "apply" in scaler._methods
            assert scaler.apply(x).tobytes() == (x * factor).tobytes()

        check()
        assert ch.requests > calls  # they were requests to the kernel, not local computations
        assert ns["affine"] is not affine


# ---------------------------------------------------------------------------------------- errors

FAILING = """
class GradeHack(Exception):
    pass

class BadMessage(Exception):
    def __str__(self):
        raise RuntimeError("no")

def helper_in_student_code(kind, text):
    if kind == "value":
        raise ValueError(text)
    if kind == "key":
        return {}[text]
    if kind == "custom":
        raise GradeHack(text)
    raise BadMessage()

def boom(kind, text):
    return helper_in_student_code(kind, text)

def ok():
    return 42
"""


@FEW
@given(text=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=20))
def test_student_exception_names_its_type_without_evaluator_internals(text):
    with agent_session(FAILING) as (ch, _ns):
        g = ch.fetch_globals(["boom", "ok"])
        boom = g["boom"]
        for kind, expected in (
            ("value", ValueError),
            ("key", KeyError),
            ("custom", wire.StudentError),
            ("unprintable", wire.StudentError),
        ):
            with pytest.raises(expected) as info:
                boom(kind, text)
            exc = info.value
            want = {"value": "ValueError", "key": "KeyError", "custom": "GradeHack", "unprintable": "BadMessage"}
            assert exc.remote_type == want[kind]
            if kind == "value":
                assert str(exc) == text
            if kind == "custom":
                assert str(exc) == f"GradeHack: {text}"
            if kind == "unprintable":
                assert "message unavailable" in str(exc)
            tb = exc.remote_traceback
            assert "helper_in_student_code" in tb and "<student cell>" in tb, tb
            for internal in ("wire.py", "evaluator.py", "course_tools", "_dispatch", "_handle", KEY):
                assert internal not in tb and internal not in str(exc), (internal, tb)
            assert not ch.broken  # a student error is a failed test, not a broken exchange
        assert g["ok"]() == 42  # and the exchange goes on


# ---------------------------------------------------------------------------------------- attribute cache

STATE = """
class Model:
    def __init__(self):
        self.w = 0
        self.name = "m"

    def bump(self):
        self.w += 1

model = Model()

def poke(obj, value):
    obj.w = value
"""


def test_pure_reply_keeps_cached_attributes():
    """A plain attribute read is marked pure and cached; reads that run no student code keep the cache."""
    with agent_session(STATE) as (ch, ns):
        model = ch.fetch_globals(["model"])["model"]
        assert model.w == 0 and ch.last_pure
        assert (model._id, "w") in ch.attr_cache
        epoch, requests, hits = ch.epoch, ch.requests, ch.cache_hits
        assert model.name == "m" and ch.last_pure  # another pure read
        assert ch.epoch == epoch  # pure replies do not invalidate
        assert model.w == 0
        assert ch.requests == requests + 1 and ch.cache_hits == hits + 1  # w came from the cache
        ns["model"].w = 99  # changed behind the channel's back without a request: the cache still answers
        assert model.w == 0


def test_non_pure_reply_invalidates_cached_attributes():
    """A reply not marked pure (student code ran) bumps the epoch: a value student code changed is seen."""
    with agent_session(STATE) as (ch, _ns):
        g = ch.fetch_globals(["model", "poke"])
        model, poke = g["model"], g["poke"]
        assert model.w == 0
        ch.watch.clear()  # no watched values with the replies: only the epoch can tell the cache is stale
        epoch = ch.epoch
        poke(model, 7)
        assert not ch.last_pure and ch.epoch > epoch
        requests = ch.requests
        assert model.w == 7
        assert ch.requests == requests + 1  # read again from the kernel, not from the stale cache


@FEW
@given(
    ops=st.lists(
        st.one_of(
            st.just(("read",)),
            st.just(("bump",)),
            st.just(("unwatch",)),
            st.tuples(st.just("poke"), st.integers(-1000, 1000)),
        ),
        max_size=12,
    )
)
def test_attribute_reads_always_see_the_kernels_value(ops):
    """Any interleaving of reads, student writes (method call, function call on the handle) and lost watch
    lists: every read gives the value the kernel holds at that moment."""
    with agent_session(STATE) as (ch, ns):
        g = ch.fetch_globals(["model", "poke"])
        model, poke = g["model"], g["poke"]
        for op in [*ops, ("read",)]:
            if op[0] == "read":
                assert model.w == ns["model"].w
            elif op[0] == "bump":
                model.bump()
            elif op[0] == "poke":
                poke(model, op[1])
            else:
                ch.watch.clear()


# ---------------------------------------------------------------------------------------- authentication


def test_agent_with_the_wrong_key_is_refused():
    d = _sock_dir()
    path = d / "agent.sock"
    ch = Channel(path, KEY)
    try:
        agent = _bounded(lambda: wire.Agent(str(path), KEY[:-1] + "x"))["value"]
        box = _bounded(lambda: ch.accept(2.0))
        assert isinstance(box.get("error"), GraderAbort) and "wrong key" in box["error"].reason
        assert ch.sock is None  # nothing was connected
        with pytest.raises(OSError):  # and the impostor's socket was closed
            for _ in range(100):
                wire.send_msg(agent.sock, {"kind": "reply", "value": 1}, [b"x" * 65536])
        agent.sock.close()
    finally:
        ch.close()
        shutil.rmtree(d, ignore_errors=True)


def test_peer_that_never_says_hello_is_refused_in_time():
    with fake_kernel(None, ready=False, key=None) as ch:
        box = _bounded(lambda: ch.accept(2.0))
        assert isinstance(box.get("error"), GraderAbort) and "wrong key" in box["error"].reason
    d = _sock_dir()
    ch = Channel(d / "agent.sock", KEY)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(d / "agent.sock"))  # connects and then says nothing
        t0 = time.monotonic()
        box = _bounded(lambda: ch.accept(0.3))
        assert isinstance(box.get("error"), GraderAbort) and "did not say hello" in box["error"].reason
        assert time.monotonic() - t0 < 2.0
        s.close()
    finally:
        ch.close()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------- broken peers


def _frame(header: dict, buffers: list) -> bytes:
    a, b = socket.socketpair()
    try:
        wire.send_msg(a, header, buffers)
        a.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := b.recv(65536):
            out += chunk
        return out
    finally:
        a.close()
        b.close()


REPLY = _frame(
    {"kind": "reply", "value": {"$": "nd", "dtype": "float64", "shape": [4], "buf": 0}}, [np.arange(4.0).tobytes()]
)


def _exchange_against(misbehave, *words, deadline: float = 0.5):
    with fake_kernel(misbehave) as ch:
        f = _connect(ch)
        _deadline(ch, deadline)
        t0 = time.monotonic()
        box = _bounded(lambda: f(1), 5.0)
        _assert_broken(ch, box, *words)
        assert time.monotonic() - t0 < deadline + 2.0
        return box


def test_fake_kernel_replying_correctly_works():
    """The stand-in's framing is right: with a good reply the same call succeeds (so the tests below fail
    for the reasons they name)."""
    with fake_kernel(lambda s, h: s.sendall(REPLY)) as ch:
        f = _connect(ch)
        out = _bounded(lambda: f(1))["value"]
        assert type(out) is np.ndarray and out.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("cut", [3, 8, 20, len(REPLY) - 1])
def test_peer_closing_mid_reply_breaks_the_channel(cut):
    def misbehave(s, _header):
        s.sendall(REPLY[:cut])
        s.close()

    _exchange_against(misbehave, "bad message from the kernel", "closed")


@pytest.mark.parametrize("cut", [3, 8, 20, len(REPLY) - 1])
def test_truncated_frame_with_the_socket_left_open_does_not_hang(cut):
    """A kernel that sends part of a frame and then stalls (the socket open) is stopped by the time limit."""
    _exchange_against(lambda s, _h: s.sendall(REPLY[:cut]), "time limit")


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (struct.pack("<II", wire.MAX_HEADER_BYTES + 1, 0), "over the limit"),
        (struct.pack("<II", 2, 2_000_000) + b"{}", "over the limit"),
        (struct.pack("<II", 2, 1) + b"{}" + struct.pack("<Q", wire.MAX_MESSAGE_BYTES + 1), "larger than"),
    ],
    ids=["header", "buffer-count", "buffer-size"],
)
def test_oversized_frame_is_refused_before_it_is_read(frame, words):
    _exchange_against(lambda s, _h: s.sendall(frame), "bad message from the kernel", words)


@FEW
@given(junk=st.binary(min_size=1, max_size=64))
def test_garbage_breaks_the_channel(junk):
    def misbehave(s, _header):
        s.sendall(junk)
        s.close()

    _exchange_against(misbehave, deadline=1.0)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (struct.pack("<II", 7, 0) + b"{nope!}", "undecodable message header"),
        (struct.pack("<II", 2, 0) + b"[]", "not an object"),
        (_frame({"kind": "gossip"}, []), "unexpected message"),
    ],
    ids=["not-json", "not-an-object", "unknown-kind"],
)
def test_malformed_messages_break_the_channel(header, words):
    _exchange_against(lambda s, _h: s.sendall(header), words)


PICKLED_ARRAY = b"\x80\x04\x95cnumpy.core.multiarray\n_reconstruct\n"


@pytest.mark.parametrize(
    "value",
    [
        {"$": "pickle", "data": PICKLED_ARRAY.decode("latin-1")},
        {"$": "nd", "dtype": "object", "shape": [1], "buf": 0},
        {"$": "nd", "dtype": "U1", "shape": [2], "buf": 1},  # right size for the buffer: only the dtype is wrong
        {"$": "nd", "dtype": "datetime64", "shape": [1], "buf": 2},
        {"$": "nd", "dtype": "float64", "shape": [1], "buf": 0, "class": "LyingArray"},
        {"$": "pt", "dtype": "float64", "shape": [3], "grad": False, "buf": 0},
        {"$": "ns", "dtype": "V8", "buf": 2},
        {"$": "rng", "bit": "os.system", "state": {}},
        {"$": "cb", "id": 1},
        {"$": "d", "items": [[[1], 2]]},
    ],
    ids=[
        "pickle",
        "object-array",
        "str-array",
        "datetime-array",
        "subclass-tag",
        "size-mismatch",
        "void-scalar",
        "bitgen",
        "callback",
        "unhashable-key",
    ],
)
def test_reply_smuggling_a_pickle_or_subclass_is_rejected(value):
    """Only the wire's plain nodes are decoded: an unknown node, a non-numeric dtype, a buffer that does not
    match, a callback the evaluator never gave or an unhashable key break the exchange; a node's extra
    fields (a class name) are ignored, so what arrives is always the exact base type."""
    frame = _frame({"kind": "reply", "value": value}, [PICKLED_ARRAY, b"\0" * 8, b"\0" * 8])
    if value.get("class"):
        frame = _frame({"kind": "reply", "value": value}, [np.float64(1.0).tobytes()])
        with fake_kernel(lambda s, _h: s.sendall(frame)) as ch:
            out = _bounded(lambda: _connect(ch)(1))["value"]
            assert type(out) is np.ndarray and out.tolist() == [1.0]
        return
    _exchange_against(lambda s, _h: s.sendall(frame), "bad value from the kernel")
