r"""Numpy layers with hand-written backward passes, and a gradient checker (lectures 01–02).

Every layer has ``forward(x)``, which caches what its backward pass needs, and
``backward(dout) -> dx``, which takes $\partial L / \partial \text{out}$ (same shape as the
forward output) and returns $\partial L / \partial x$ (same shape as ``x``). Layers with
parameters keep them in ``.params`` and the gradients of the last backward pass in ``.grads``:
two dicts with the same keys whose arrays have the same shapes. ``backward`` *overwrites*
``.grads`` in place (the arrays keep their identity, so a dict of references stays valid).

Losses (:class:`SoftmaxCrossEntropy`, :class:`MSELoss`) return a Python float from
``forward(prediction, target)`` and take no upstream gradient: ``backward()`` returns
$\partial L / \partial \text{prediction}$.

:func:`numerical_gradient` and :func:`grad_check` compare an analytic gradient with centred
finite differences,
$$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon},$$
which has error $O(\varepsilon^2)$ from truncation plus $O(\text{machine eps}\cdot|f|/\varepsilon)$ from
rounding: use float64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from course_lib.activations import relu, relu_grad, sigmoid, tanh


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (returned as is), an int seed, or ``None`` (seed drawn from numpy's global RNG)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


class Layer:
    """Base class: ``__call__`` is ``forward``; no parameters unless a subclass adds them."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def num_parameters(self) -> int:
        """Total number of scalar parameters (e.g. ``in*out + out`` for :class:`Linear`)."""
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _require_cache(layer: Layer, cache: object) -> None:
    if cache is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")


def _check_dout(dout: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"{name}.backward: dout has shape {dout.shape}, expected the forward output's shape {shape}")
    return dout


class Linear(Layer):
    r"""Fully connected layer $y = xW + b$ (lecture 01: $z_j = \sum_i w_{ji} x_i + b_j$).

    x: (N, in_features) -> y = xW + b: (N, out_features); any leading batch dimensions work,
    ``(..., in_features) -> (..., out_features)``.
    ``params["W"]``: (in_features, out_features), ``params["b"]``: (out_features,) — note that
    ``W`` is the transpose of ``torch.nn.Linear.weight``.

    Backward, with $\delta = \partial L / \partial y$ of shape (N, out):
    $\partial L/\partial W = x^\top \delta$, $\partial L/\partial b = \sum_n \delta_n$,
    $\partial L/\partial x = \delta W^\top$.

    Initialisation (He/Kaiming normal, suited to ReLU networks): $W_{ij} \sim
    \mathcal N(0, 2/\text{in\_features})$, $b = 0$, drawn from ``rng`` — a
    ``numpy.random.Generator`` or an integer seed. ``rng=None`` draws the seed from numpy's
    global generator, so ``course_lib.notebook.seed_everything`` (or ``np.random.seed``) makes
    it reproducible too. ``init="xavier"`` uses
    $\mathcal N(0, 2/(\text{in}+\text{out}))$ instead (for tanh/sigmoid networks).
    ``dtype`` (float64 by default) is the dtype of the parameters; float32 trains faster.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | int | None = None,
        init: str = "he",
        dtype: np.dtype | type = np.float64,
    ) -> None:
        super().__init__()
        if int(in_features) != in_features or int(out_features) != out_features or in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear needs positive integer sizes, got in_features={in_features!r}, out_features={out_features!r}"
            )
        if init not in ("he", "xavier"):
            raise ValueError(f"init must be 'he' or 'xavier', got {init!r}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"dtype must be a floating type, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        rng = make_rng(rng)
        fan = self.in_features if init == "he" else self.in_features + self.out_features
        std = np.sqrt(2.0 / fan)
        self.params = {
            "W": (rng.standard_normal((self.in_features, self.out_features)) * std).astype(dtype),
            "b": np.zeros(self.out_features, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, in_features) -> x @ W + b: (N, out_features); caches x for backward."""
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects x of shape (N, {self.in_features}), got {x.shape}")
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, out_features) -> dx: (N, in_features); writes grads["W"] = x^T dout, grads["b"] = sum_n dout."""
        _require_cache(self, self._x)
        x = self._x
        dout = _check_dout(dout, (*x.shape[:-1], self.out_features), "Linear")
        x2 = x.reshape(-1, self.in_features)
        d2 = dout.reshape(-1, self.out_features)
        self.grads["W"][...] = x2.T @ d2
        self.grads["b"][...] = d2.sum(axis=0)
        return dout @ self.params["W"].T

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class ReLU(Layer):
    r"""$\max(0, x)$ elementwise, any shape; backward $\delta \cdot [x > 0]$ (0 at the kink, like PyTorch)."""

    def __init__(self) -> None:
        super().__init__()
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = np.asarray(x)
        return relu(self._x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        _require_cache(self, self._x)
        dout = _check_dout(dout, self._x.shape, "ReLU")
        return dout * relu_grad(self._x)


class Sigmoid(Layer):
    r"""$\sigma(x) = 1/(1+e^{-x})$ elementwise (overflow-free); backward $\delta\,\sigma(x)(1-\sigma(x))$."""

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._out = sigmoid(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        _require_cache(self, self._out)
        dout = _check_dout(dout, self._out.shape, "Sigmoid")
        return dout * self._out * (1.0 - self._out)


class Tanh(Layer):
    r"""$\tanh(x)$ elementwise; backward $\delta\,(1 - \tanh^2 x)$."""

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._out = tanh(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        _require_cache(self, self._out)
        dout = _check_dout(dout, self._out.shape, "Tanh")
        return dout * (1.0 - self._out * self._out)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    r"""Row-wise $\log \mathrm{softmax}(z)_k = z_k - \max z - \log\sum_m e^{z_m - \max z}$; logits: (N, C) -> (N, C)."""
    z = np.asarray(logits)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    r"""Row-wise $e^{z_k} / \sum_m e^{z_m}$ computed stably; logits: (N, C) -> (N, C), rows sum to 1."""
    return np.exp(log_softmax(logits))


class SoftmaxCrossEntropy:
    r"""Softmax followed by the cross-entropy, averaged over the batch.

    ``forward(logits, y)``: logits (N, C) real, y (N,) integer labels in [0, C) ->
    $L = -\frac1N \sum_n \log \mathrm{softmax}(z_n)_{y_n}$ (a float). Stable for any logits
    (the row maximum is subtracted before exponentiating).

    ``backward()`` -> $\partial L/\partial z = (\mathrm{softmax}(z) - \mathrm{onehot}(y)) / N$: (N, C).
    """

    def __init__(self) -> None:
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        logits = np.asarray(logits)
        y = np.asarray(y)
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, C), got {logits.shape}")
        n, c = logits.shape
        if y.shape != (n,):
            raise ValueError(f"labels must have shape (N,) = ({n},) to match logits {logits.shape}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be integers (class indices), got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() >= c):
            raise ValueError(f"labels must lie in [0, {c}), got values in [{y.min()}, {y.max()}]")
        if n == 0:
            raise ValueError("SoftmaxCrossEntropy needs a batch of at least one example")
        logp = log_softmax(logits)
        self._cache = (logp, y)
        return float(-logp[np.arange(n), y].mean())

    __call__ = forward

    def backward(self, dout: float = 1.0) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        logp, y = self._cache
        n = logp.shape[0]
        d = np.exp(logp)
        d[np.arange(n), y] -= 1.0
        return d * (dout / n)


class MSELoss:
    r"""Mean squared error, ``forward(pred, target)`` -> $\frac{1}{N D}\sum_{n,d} (p_{nd} - t_{nd})^2$.

    pred and target: the same shape (N, D) (any shape works); the mean runs over every element,
    as ``torch.nn.MSELoss()`` does. ``backward()`` -> $2 (p - t) / (N D)$, shaped like pred.
    """

    def __init__(self) -> None:
        self._diff: np.ndarray | None = None

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"MSELoss: pred has shape {pred.shape} but target has shape {target.shape}")
        if pred.size == 0:
            raise ValueError("MSELoss needs at least one element")
        self._diff = pred - target
        return float(np.mean(self._diff**2))

    __call__ = forward

    def backward(self, dout: float = 1.0) -> np.ndarray:
        if self._diff is None:
            raise RuntimeError("MSELoss.backward called before forward")
        return 2.0 * self._diff * (dout / self._diff.size)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params`` and ``grads`` are flat dicts keyed ``"<index>.<name>"`` (``"0.W"``, ``"2.b"``, ...),
    rebuilt on every access from references to the layers' own arrays, so
    ``model.params[k] -= lr * model.grads[k]`` (or :func:`sgd_step`) updates the layers in place.
    """

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise ValueError(f"element {i} of Sequential ({layer!r}) has no forward/backward")
        self.layers: list[Layer] = list(layers)

    @property
    def params(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, "params", {}).items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, "grads", {}).items()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


def sgd_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
    r"""Plain gradient descent in place: $\theta \leftarrow \theta - \eta\,\nabla_\theta L$ for every key of ``params``."""
    if params.keys() != grads.keys():
        raise ValueError(f"params and grads have different keys: {sorted(params)} vs {sorted(grads)}")
    for k, p in params.items():
        if grads[k].shape != p.shape:
            raise ValueError(f"gradient {k!r} has shape {grads[k].shape}, parameter has {p.shape}")
        p -= lr * grads[k]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    r"""Centred finite differences of a scalar function: $g_i = (f(x+\varepsilon e_i) - f(x-\varepsilon e_i)) / 2\varepsilon$.

    x: a floating-point array of any shape -> g: same shape and dtype. Each entry of ``x`` is
    perturbed *in place* and restored exactly afterwards, so ``f`` may ignore its argument and
    read ``x`` through another reference (e.g. ``lambda _: loss(layer)`` with
    ``x = layer.params["W"]``). Costs ``2 * x.size`` evaluations of ``f``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"numerical_gradient needs a floating-point numpy array to perturb in place, got "
            f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}; use x.astype(np.float64)"
        )
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx].copy()
        x[idx] = old + eps
        f_plus = float(f(x))
        x[idx] = old - eps
        f_minus = float(f(x))
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Elementwise :math:`|a - b| / \max(|a|, |b|)`, with 0 where both are exactly 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes {a.shape} and {b.shape} differ")
    denom = np.maximum(np.abs(a), np.abs(b))
    return np.divide(np.abs(a - b), denom, out=np.zeros_like(denom), where=denom > 0)


def grad_check(
    f: Callable[[np.ndarray], float],
    grad_f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    eps: float = 1e-5,
) -> float:
    r"""Maximum relative error between ``grad_f(x)`` and :func:`numerical_gradient` ``(f, x, eps)``.

    Relative error :math:`|a - n| / \max(|a|, |n|)` per entry (0 where both vanish), maximised over
    the entries of x. Rules of thumb in float64: around 1e-7 or below the gradient is right
    (entries far smaller than the largest one can reach ~1e-6, because rounding in ``f`` leaves
    an absolute error of about ``1e-16·|f|/eps``); above 1e-2 it is wrong; in between look closer
    (kinks such as ReLU at 0 give large errors).
    The analytic gradient is evaluated first and copied, then x is perturbed as in
    :func:`numerical_gradient`.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"grad_check needs a numpy array x, got {type(x).__name__}")
    analytic = np.array(grad_f(x), dtype=np.float64, copy=True)
    if analytic.shape != x.shape:
        raise ValueError(f"grad_f(x) has shape {analytic.shape}, but x has shape {x.shape}")
    numeric = numerical_gradient(f, x, eps)
    return float(relative_error(analytic, numeric).max(initial=0.0))


__all__ = [
    "Layer",
    "Linear",
    "MSELoss",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "grad_check",
    "log_softmax",
    "make_rng",
    "numerical_gradient",
    "relative_error",
    "sgd_step",
    "softmax",
]
