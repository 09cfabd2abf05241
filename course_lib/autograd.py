"""A scalar reverse-mode automatic differentiation engine, written by hand (lecture 02).

Every :class:`Value` holds one number (``.data``), the derivative of the final output with
respect to it (``.grad``), the nodes it was computed from and a closure that applies the
chain rule locally. :meth:`Value.backward` visits the computation graph once, in reverse
topological order, so the cost of all derivatives is proportional to the number of edges in
the graph — unlike the path-sum formula

.. math::
    \\frac{\\partial a}{\\partial w} = \\sum_{\\text{paths } w \\to a} \\prod_{\\text{edges } u \\to v}
    \\frac{\\partial v}{\\partial u},

whose number of terms grows exponentially with depth. Backprop is the same sum, factorised:
``node.grad = sum over children c of c.grad * dc/dnode``.

:class:`MLP` is a small fully connected network made of ``Value`` objects, used in the lecture
to check the hand-derived numpy backward pass on a tiny example.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from course_lib.layers import make_rng

Number = int | float


def _as_value(x: Value | Number) -> Value:
    if isinstance(x, Value):
        return x
    if isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        return Value(float(x))
    raise TypeError(f"cannot combine a Value with {type(x).__name__}; expected a Value, int or float")


class Value:
    """One scalar node of a computation graph.

    ``Value(2.0) * Value(3.0) + 1`` builds a graph of three leaves and two operations; calling
    ``.backward()`` on the result fills ``.grad`` of every node with d(result)/d(node).

    Supported: ``+ - * /`` (with Values or Python numbers on either side), unary ``-``,
    ``** c`` for a constant number ``c``, :meth:`exp`, :meth:`log`, :meth:`tanh`, :meth:`relu`,
    :meth:`sigmoid`. Gradients accumulate (``+=``) like in PyTorch: call :meth:`zero_grad` on
    the output (or set ``.grad = 0`` on leaves) before a second backward pass.
    """

    __slots__ = ("data", "grad", "_prev", "_backward", "op", "label")

    def __init__(self, data: Number, _children: tuple[Value, ...] = (), op: str = "", label: str = ""):
        if isinstance(data, Value):
            raise TypeError("Value(data) expects a number, got a Value; use the Value itself")
        self.data = float(data)
        self.grad = 0.0
        self._prev: tuple[Value, ...] = _children
        self._backward: Callable[[], None] = _noop
        self.op = op
        self.label = label

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}, grad={self.grad:.6g})"

    # ----------------------------------------------------------------- binary operations
    def __add__(self, other: Value | Number) -> Value:
        other = _as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:  # d(a+b)/da = 1, d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | Number) -> Value:
        other = _as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: Number) -> Value:
        if isinstance(exponent, Value) or not isinstance(exponent, (int, float)) or isinstance(exponent, bool):
            raise TypeError(
                f"Value ** c supports a constant int or float exponent only, got {type(exponent).__name__}; "
                "write exp(c * log(x)) for a variable exponent"
            )
        c = float(exponent)
        if self.data == 0.0 and c < 0:
            raise ZeroDivisionError(f"0 ** {c} is undefined")
        result = self.data**c
        if isinstance(result, complex):
            raise ValueError(f"{self.data} ** {c} is not a real number (negative base, fractional exponent)")
        out = Value(result, (self,), f"**{c:g}")

        def _backward() -> None:  # d(x^c)/dx = c x^(c-1); infinite at x = 0 when 0 < c < 1
            if c == 0.0:
                return
            if self.data == 0.0 and c < 1.0:
                local = math.inf
            else:
                local = c * self.data ** (c - 1.0)
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-_as_value(other))

    def __truediv__(self, other: Value | Number) -> Value:
        other = _as_value(other)
        if other.data == 0.0:
            raise ZeroDivisionError("division of a Value by zero")
        return self * other**-1

    def __radd__(self, other: Number) -> Value:
        return self + other

    def __rsub__(self, other: Number) -> Value:
        return _as_value(other) - self

    def __rmul__(self, other: Number) -> Value:
        return self * other

    def __rtruediv__(self, other: Number) -> Value:
        return _as_value(other) / self

    # ------------------------------------------------------------------ unary functions
    def exp(self) -> Value:
        """e^x; derivative e^x."""
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        """Natural logarithm (x > 0); derivative 1/x."""
        if self.data <= 0.0:
            raise ValueError(f"log of a non-positive number {self.data!r}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        """tanh(x); derivative 1 - tanh(x)^2."""
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1.0 - t * t) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        """max(0, x); derivative 1 for x > 0 and 0 otherwise (0 at the kink, as in PyTorch)."""
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        """1 / (1 + e^-x), computed without overflow; derivative s(x)(1 - s(x))."""
        x = self.data
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    # ------------------------------------------------------------------------- backprop
    def topological_order(self) -> list[Value]:
        """All nodes this value depends on (itself included), every node after its inputs.

        Iterative depth-first search, so graphs deeper than Python's recursion limit work.
        """
        order: list[Value] = []
        visited: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for child in node._prev:
                if id(child) not in visited:
                    stack.append((child, False))
        return order

    def backward(self) -> None:
        """Fill ``.grad`` of every node in the graph with d(self)/d(node).

        Seeds ``self.grad += 1`` and applies each node's local chain rule once, from the output
        back to the leaves (reverse topological order): cost O(number of edges).
        """
        order = self.topological_order()
        self.grad += 1.0
        for node in reversed(order):
            node._backward()

    def zero_grad(self) -> None:
        """Set ``.grad = 0`` on every node of the graph that produced this value."""
        for node in self.topological_order():
            node.grad = 0.0


def _noop() -> None:
    return None


# ---------------------------------------------------------------------------- networks
_ACTIVATIONS = {"tanh", "relu", "sigmoid", "linear"}


def _activate(v: Value, activation: str) -> Value:
    if activation == "tanh":
        return v.tanh()
    if activation == "relu":
        return v.relu()
    if activation == "sigmoid":
        return v.sigmoid()
    return v


class Neuron:
    """``activation(sum_i w_i x_i + b)`` with ``Value`` weights."""

    def __init__(self, n_in: int, activation: str = "tanh", rng: np.random.Generator | int | None = None):
        if n_in < 1:
            raise ValueError(f"a neuron needs at least one input, got n_in={n_in}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        rng = make_rng(rng)
        bound = 1.0 / math.sqrt(n_in)
        self.w = [Value(float(rng.uniform(-bound, bound))) for _ in range(n_in)]
        self.b = Value(0.0)
        self.activation = activation

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"neuron expects {len(self.w)} inputs, got {len(x)}")
        total = self.b
        for wi, xi in zip(self.w, x):
            total = total + wi * xi
        return _activate(total, self.activation)

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class MLP:
    """A fully connected network of scalar :class:`Value` neurons.

    ``MLP(3, [4, 4, 1])`` has layers 3→4→4→1: ``activation`` after every hidden layer, the last
    layer linear (``output_activation`` changes that). Weights start uniform in
    ``±1/sqrt(fan_in)`` (PyTorch's ``nn.Linear`` range) from ``rng`` (a ``numpy`` Generator, an
    int seed, or ``None``: seed drawn from numpy's global generator), biases at zero.

    Calling the network on a sequence of ``n_in`` numbers/Values returns a list of
    ``sizes[-1]`` Values. :meth:`load_arrays` copies numpy weights in the ``course_lib.layers``
    convention (``W``: (in, out), ``b``: (out,)) so that the same network can be compared with
    the numpy layers and with torch.
    """

    def __init__(
        self,
        n_in: int,
        sizes: Sequence[int],
        activation: str = "tanh",
        output_activation: str = "linear",
        rng: np.random.Generator | int | None = None,
    ):
        if not sizes:
            raise ValueError("sizes must list at least one layer width, e.g. [4, 1]")
        if any(int(s) < 1 for s in sizes):
            raise ValueError(f"every layer width must be >= 1, got {list(sizes)}")
        if activation not in _ACTIVATIONS or output_activation not in _ACTIVATIONS:
            raise ValueError(f"activations must be among {sorted(_ACTIVATIONS)}")
        rng = make_rng(rng)
        dims = [n_in, *[int(s) for s in sizes]]
        self.layers: list[list[Neuron]] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            act = output_activation if i == len(dims) - 2 else activation
            self.layers.append([Neuron(d_in, act, rng) for _ in range(d_out)])
        self.n_in = n_in
        self.sizes = dims[1:]

    def __call__(self, x: Sequence[Value | Number]) -> list[Value]:
        if len(x) != self.n_in:
            raise ValueError(f"MLP expects {self.n_in} inputs, got {len(x)}")
        h: list[Value | Number] = list(x)
        for layer in self.layers:
            h = [neuron(h) for neuron in layer]
        return h  # type: ignore[return-value]

    def parameters(self) -> list[Value]:
        """Every weight and bias, layer by layer, neuron by neuron (``w_1..w_n, b``)."""
        return [p for layer in self.layers for neuron in layer for p in neuron.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def load_arrays(self, weights: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Set the parameters from ``[(W1, b1), (W2, b2), ...]`` with ``W``: (in, out), ``b``: (out,)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} (W, b) pairs, got {len(weights)}")
        for layer, (W, b) in zip(self.layers, weights):
            W = np.asarray(W, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            shape = (len(layer[0].w), len(layer))
            if W.shape != shape or b.shape != (shape[1],):
                raise ValueError(f"layer needs W of shape {shape} and b of shape {(shape[1],)}, got {W.shape}, {b.shape}")
            for j, neuron in enumerate(layer):
                for i in range(shape[0]):
                    neuron.w[i].data = float(W[i, j])
                neuron.b.data = float(b[j])

    def arrays(self, grad: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """The parameters (or, with ``grad=True``, their gradients) as ``[(W, b), ...]`` numpy arrays."""
        out = []
        for layer in self.layers:
            attr = "grad" if grad else "data"
            W = np.array([[getattr(w, attr) for w in neuron.w] for neuron in layer]).T
            b = np.array([getattr(neuron.b, attr) for neuron in layer])
            out.append((W, b))
        return out


def softmax_cross_entropy(logits: Sequence[Value], label: int) -> Value:
    """-log softmax(logits)[label] for one example, stabilised by subtracting max(logits).

    logits: C Values; label in [0, C). Returns a Value: log(sum_k e^(z_k - m)) - (z_label - m).
    """
    if not 0 <= label < len(logits):
        raise ValueError(f"label {label} out of range for {len(logits)} logits")
    m = max(z.data for z in logits)
    shifted = [z - m for z in logits]
    total = shifted[0].exp()
    for z in shifted[1:]:
        total = total + z.exp()
    return total.log() - shifted[label]


__all__ = ["MLP", "Neuron", "Value", "softmax_cross_entropy"]
