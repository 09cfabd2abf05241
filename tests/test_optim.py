"""course_lib.optim against torch.optim: whole 200-step parameter trajectories on random problems.

Every problem has random parameter shapes (1-3 tensors of rank 1-2), a random ill-conditioned
quadratic plus a small non-convex term, and a fresh random linear "mini-batch noise" term at
every step, so the gradients differ from step to step like stochastic gradients do. Everything
is float64. The tolerance ``rtol = atol = 1e-12`` only absorbs rounding: the two sides evaluate
the same formula in a different order (torch's ``lr * b`` vs the lecture's ``h``), which moves the
result by a few ulp per step; these dynamics do not amplify it (the largest difference seen over
200 steps was 4e-15 on parameters of size ~3), while any change of formula moves it by >> 1e-6.

Where torch's formulation differs from the lecture's, the test states the exact correspondence:

* momentum: lecture ``h_t = a h_{t-1} + lr g_t, w -= h_t``; torch ``b_t = a b_{t-1} + (1 - d) g_t``
  (but ``b_1 = g_1`` whatever the dampening ``d``), ``w -= lr b_t``. With ``d = 0`` and a constant
  ``lr``: ``h_t = lr * b_t`` and the parameters agree. Under a changing ``lr`` they do not
  (``test_momentum_differs_from_torch_under_a_schedule``).
* Nesterov: lecture ``h_t = a h_{t-1} + lr g(w_{t-1} - a h_{t-1})``, ``w_t = w_{t-1} - h_t``;
  torch ``b_t = a b_{t-1} + g(p_{t-1})``, ``p_t = p_{t-1} - lr (g + a b_t)``. They agree with
  ``p_t = w_t - a h_t`` (the look-ahead point, which is what the parameter tensor stores) and
  ``h_t = lr * b_t``.
* Adagrad: lecture ``lr g / sqrt(G + eps)``; torch ``lr g / (sqrt(G) + eps)``. Exact
  correspondence: torch with ``eps=0`` and ``initial_accumulator_value=eps`` (its ``G`` then
  starts at ``eps``).
* RMSProp: lecture ``lr g / sqrt(G + eps)``; torch ``lr g / (sqrt(G) + eps)``; equal for ``eps = 0``.
* Adam: the same formula; torch folds the bias corrections into the step size ``lr / (1 - b1^t)``
  and the denominator ``sqrt(v_t) / sqrt(1 - b2^t) + eps``, which is
  ``lr m^_t / (sqrt(v^_t) + eps)`` with ``m^ = m / (1 - b1^t)`` and ``v^ = v / (1 - b2^t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from course_lib import optim as co

N_STEPS = 200
TOL = {"rtol": 1e-12, "atol": 1e-12}
SEEDS = range(4)


@dataclass
class Problem:
    """loss_t(p) = sum_i [ 0.5 (p_i - c_i)^T A_i (p_i - c_i) + 0.05 sum cos(3 p_i) + noise_{t,i} . p_i ]."""

    shapes: list[tuple[int, ...]]
    init: list[np.ndarray]
    A: list[np.ndarray]
    c: list[np.ndarray]
    noise: list[np.ndarray]  # (N_STEPS, size) per parameter

    def __post_init__(self):
        self.tensors = [(torch.from_numpy(A), torch.from_numpy(c), torch.from_numpy(n)) for A, c, n in
                        zip(self.A, self.c, self.noise)]

    def set_grads(self, params: list[torch.Tensor], t: int) -> None:
        """p.grad = A (p - c) - 0.15 sin(3 p) + noise_t: the loss's gradient, in closed form (fast)."""
        with torch.no_grad():
            for p, (A, c, noise) in zip(params, self.tensors):
                flat = p.reshape(-1)
                p.grad = (A @ (flat - c) - 0.15 * torch.sin(3 * flat) + noise[t]).reshape(p.shape)

    def grad_fn(self, t_counter: list[int]):
        """A numpy gradient function for a single-parameter problem (steps through the noise)."""
        (A,), (c,), (noise,) = self.A, self.c, self.noise

        def grad(w: np.ndarray) -> np.ndarray:
            t = t_counter[0]
            t_counter[0] += 1
            return A @ (w - c) - 0.15 * np.sin(3 * w) + noise[t]

        return grad


def make_problem(seed: int, n_params: int | None = None, noise_scale: float = 0.3) -> Problem:
    rng = np.random.default_rng(seed)
    n_params = n_params or int(rng.integers(1, 4))
    shapes, init, As, cs, noises = [], [], [], [], []
    for _ in range(n_params):
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        size = math.prod(shape)
        # an elongated quadratic: eigenvalues spread over [0.05, 2]
        Q, _ = np.linalg.qr(rng.normal(size=(size, size)))
        A = Q @ np.diag(np.geomspace(0.05, 2.0, size)) @ Q.T
        shapes.append(shape)
        init.append(rng.normal(size=shape))
        As.append(A)
        cs.append(rng.normal(size=size))
        noises.append(noise_scale * rng.normal(size=(N_STEPS, size)))
    return Problem(shapes, init, As, cs, noises)


def trajectory(make_opt, problem: Problem, n_steps: int = N_STEPS, *, groups: bool = False, on_step=None):
    """Run an optimiser on the problem; return the (n_steps, n_total) trajectory and the optimiser."""
    params = [torch.tensor(p0, dtype=torch.float64, requires_grad=True) for p0 in problem.init]
    if groups and len(params) > 1:
        opt = make_opt([{"params": params[:1]}, {"params": params[1:], "lr": 0.5 * make_opt.lr}])
    else:
        opt = make_opt(params)
    rows = []
    for t in range(n_steps):
        problem.set_grads(params, t)
        opt.step()
        rows.append(torch.cat([p.detach().reshape(-1) for p in params]).clone())
        if on_step is not None:
            on_step(opt, params)
    return torch.stack(rows), opt


class Maker:
    """``Maker(cls, lr, **kw)(params)`` builds an optimiser; ``.lr`` is visible for param groups."""

    def __init__(self, cls, lr, **kw):
        self.cls, self.lr, self.kw = cls, lr, kw

    def __call__(self, params):
        return self.cls(params, lr=self.lr, **self.kw)


def random_hparams(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    return {
        "lr_sgd": float(rng.uniform(0.02, 0.4)),
        "lr_adaptive": float(10 ** rng.uniform(-3, -1)),
        "momentum": float(rng.uniform(0.0, 0.95)),
        "alpha": float(rng.uniform(0.5, 0.999)),
        "eps": float(10 ** rng.uniform(-4, -1)),  # large enough that a misplaced eps would show
        "betas": (float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))),
        "groups": bool(rng.integers(0, 2)),
    }


def assert_same(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    assert torch.isfinite(theirs).all(), f"{what}: the reference trajectory diverged (bad test problem)"
    moved = (theirs[-1] - theirs[0]).abs().max().item()
    assert moved > 1e-3, f"{what}: the reference barely moved ({moved:.2e}); the comparison would be vacuous"
    torch.testing.assert_close(ours, theirs, **TOL, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_matches_torch(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    ours, _ = trajectory(Maker(co.SGD, hp["lr_sgd"]), problem, groups=hp["groups"])
    theirs, _ = trajectory(Maker(torch.optim.SGD, hp["lr_sgd"]), problem, groups=hp["groups"])
    assert_same(ours, theirs, "SGD")


@pytest.mark.parametrize("seed", SEEDS)
def test_momentum_matches_torch_sgd_without_dampening(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    lr, a = hp["lr_sgd"], hp["momentum"]
    ours, opt = trajectory(Maker(co.Momentum, lr, momentum=a), problem, groups=hp["groups"])
    theirs, ref = trajectory(Maker(torch.optim.SGD, lr, momentum=a, dampening=0.0), problem, groups=hp["groups"])
    assert_same(ours, theirs, "Momentum vs torch SGD(momentum, dampening=0)")
    # the velocities: h = lr_group * b
    for g_ours, g_ref in zip(opt.param_groups, ref.param_groups):
        for p, q in zip(g_ours["params"], g_ref["params"]):
            torch.testing.assert_close(opt.state[p]["h"], g_ref["lr"] * ref.state[q]["momentum_buffer"], **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_nesterov_matches_torch_lookahead_form(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    lr, a = hp["lr_sgd"], hp["momentum"]
    ours, opt = trajectory(Maker(co.Nesterov, lr, momentum=a), problem, groups=hp["groups"])
    theirs, ref = trajectory(
        Maker(torch.optim.SGD, lr, momentum=a, dampening=0.0, nesterov=True), problem, groups=hp["groups"]
    )
    # both store the look-ahead point p_t = w_t - a h_t
    assert_same(ours, theirs, "Nesterov vs torch SGD(nesterov=True)")
    for g_ours, g_ref in zip(opt.param_groups, ref.param_groups):
        for p, q in zip(g_ours["params"], g_ref["params"]):
            torch.testing.assert_close(opt.state[p]["h"], g_ref["lr"] * ref.state[q]["momentum_buffer"], **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_adagrad_matches_torch_with_eps_moved_into_the_accumulator(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    lr, eps = hp["lr_adaptive"], hp["eps"]
    ours, _opt = trajectory(Maker(co.Adagrad, lr, eps=eps), problem, groups=hp["groups"])
    # sqrt(G_t + eps) == sqrt(eps + sum g^2): torch's accumulator started at eps, nothing added after the root
    theirs, _ = trajectory(
        Maker(torch.optim.Adagrad, lr, eps=0.0, initial_accumulator_value=eps), problem, groups=hp["groups"]
    )
    assert_same(ours, theirs, "Adagrad vs torch Adagrad(eps=0, initial_accumulator_value=eps)")
    # and the placement matters: torch's own eps (after the root) gives another trajectory
    other, _ = trajectory(Maker(torch.optim.Adagrad, lr, eps=eps), problem, groups=hp["groups"])
    assert not torch.allclose(ours, other, **TOL), "eps under vs after the root should differ at this eps"


@pytest.mark.parametrize("seed", SEEDS)
def test_rmsprop_matches_torch_at_zero_eps(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    lr, alpha = hp["lr_adaptive"], hp["alpha"]
    ours, opt = trajectory(Maker(co.RMSProp, lr, alpha=alpha, eps=0.0), problem, groups=hp["groups"])
    theirs, ref = trajectory(Maker(torch.optim.RMSprop, lr, alpha=alpha, eps=0.0), problem, groups=hp["groups"])
    assert_same(ours, theirs, "RMSProp(eps=0) vs torch RMSprop(eps=0)")
    for p, q in zip(opt.param_groups[0]["params"], ref.param_groups[0]["params"]):
        torch.testing.assert_close(opt.state[p]["G"], ref.state[q]["square_avg"], **TOL)


def test_rmsprop_eps_sits_under_the_root():
    """torch has no eps-under-the-root RMSprop, so check the lecture's formula on two explicit steps."""
    lr, alpha, eps = 0.1, 0.9, 0.25
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = co.RMSProp([w], lr=lr, alpha=alpha, eps=eps)
    g1 = torch.tensor([3.0, -0.5], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64)
    G = torch.zeros(2, dtype=torch.float64)
    for g in (g1, g2):
        w.grad = g.clone()
        opt.step()
        G = alpha * G + (1 - alpha) * g**2
        expected = expected - lr * g / torch.sqrt(G + eps)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-14, atol=1e-14)
    # first step by hand: G_1 = 0.1 * 9 = 0.9, step = 0.1 * 3 / sqrt(1.15)
    assert abs((1.0 - 0.1 * 3 / math.sqrt(0.9 + 0.25)) - (1.0 - lr * 3 / math.sqrt(1.15))) < 1e-15


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_matches_torch(seed):
    hp, problem = random_hparams(seed), make_problem(seed)
    lr, betas, eps = hp["lr_adaptive"], hp["betas"], hp["eps"]
    ours, opt = trajectory(Maker(co.Adam, lr, betas=betas, eps=eps), problem, groups=hp["groups"])
    theirs, ref = trajectory(Maker(torch.optim.Adam, lr, betas=betas, eps=eps), problem, groups=hp["groups"])
    assert_same(ours, theirs, "Adam vs torch Adam")
    for p, q in zip(opt.param_groups[0]["params"], ref.param_groups[0]["params"]):
        torch.testing.assert_close(opt.state[p]["m"], ref.state[q]["exp_avg"], **TOL)
        torch.testing.assert_close(opt.state[p]["v"], ref.state[q]["exp_avg_sq"], **TOL)
        assert opt.state[p]["t"] == N_STEPS == int(ref.state[q]["step"])


def test_adam_bias_correction_makes_the_first_step_lr_sized():
    """With m^_1 = g_1 and v^_1 = g_1^2 the first step is lr * sign(g) (up to eps), whatever the betas."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = co.Adam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-12)
    w.grad = torch.tensor([1e-3, -5.0, 200.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([-0.01, 0.01, -0.01], dtype=torch.float64))


def test_momentum_differs_from_torch_under_a_schedule():
    """When lr changes, torch rescales the whole buffer (lr_t * b_t) while the lecture's h keeps old steps."""
    problem = make_problem(3, n_params=1)

    def run(cls, **kw):
        params = [torch.tensor(problem.init[0], dtype=torch.float64, requires_grad=True)]
        opt = cls(params, lr=0.2, momentum=0.9, **kw)
        sched = co.to_torch_scheduler(opt, co.lr_schedules.step(0.2, step_size=20, gamma=0.5))
        rows = []
        for t in range(60):
            problem.set_grads(params, t)
            opt.step()
            sched.step()
            rows.append(params[0].detach().reshape(-1).clone())
        return torch.stack(rows)

    ours, theirs = run(co.Momentum), run(torch.optim.SGD, dampening=0.0)
    torch.testing.assert_close(ours[:20], theirs[:20], **TOL)  # identical while lr is constant
    assert not torch.allclose(ours[20:], theirs[20:], **TOL)  # then the two formulations part


# ----------------------------------------------------------------------------------------------
# the pure update rules (numpy and torch inputs) against torch.optim


def _torch_reference(name: str, hp: dict):
    lr_s, lr_a = hp["lr_sgd"], hp["lr_adaptive"]
    return {
        "SGD": (Maker(torch.optim.SGD, lr_s), {"lr": lr_s}),
        "Momentum": (Maker(torch.optim.SGD, lr_s, momentum=hp["momentum"]), {"lr": lr_s, "momentum": hp["momentum"]}),
        "Nesterov": (
            Maker(torch.optim.SGD, lr_s, momentum=hp["momentum"], nesterov=True),
            {"lr": lr_s, "momentum": hp["momentum"]},
        ),
        "Adagrad": (
            Maker(torch.optim.Adagrad, lr_a, eps=0.0, initial_accumulator_value=hp["eps"]),
            {"lr": lr_a, "eps": hp["eps"]},
        ),
        "RMSProp": (Maker(torch.optim.RMSprop, lr_a, alpha=hp["alpha"], eps=0.0), {"lr": lr_a, "alpha": hp["alpha"], "eps": 0.0}),
        "Adam": (
            Maker(torch.optim.Adam, lr_a, betas=hp["betas"], eps=hp["eps"]),
            {"lr": lr_a, "betas": hp["betas"], "eps": hp["eps"]},
        ),
    }[name]


@pytest.mark.parametrize("name", list(co.UPDATE_RULES))
@pytest.mark.parametrize("seed", range(2))
def test_pure_update_rules_match_torch(name, seed):
    hp, problem = random_hparams(seed), make_problem(100 + seed, n_params=1)
    make_ref, kw = _torch_reference(name, hp)
    lookahead_shift = []  # Nesterov: torch's parameter is w_t - a h_t with h_t = lr b_t

    def record(opt, params):
        if name == "Nesterov":
            buf = opt.state[params[0]]["momentum_buffer"].reshape(-1)
            lookahead_shift.append(hp["momentum"] * hp["lr_sgd"] * buf.clone())

    theirs, _ = trajectory(make_ref, problem, on_step=record)
    if name == "Nesterov":
        theirs = theirs + torch.stack(lookahead_shift)  # back to the lecture's iterate w_t
    w0 = problem.init[0].reshape(-1)
    ours = co.optimize(co.UPDATE_RULES[name], problem.grad_fn([0]), w0, N_STEPS, **kw)
    assert isinstance(ours, np.ndarray) and ours.shape == (N_STEPS + 1, w0.size)
    np.testing.assert_array_equal(ours[0], w0)
    assert_same(torch.from_numpy(ours[1:]), theirs, f"pure {name} (numpy)")

    # the same rule on torch tensors gives the same numbers and returns a tensor
    counter = [0]
    np_grad = problem.grad_fn(counter)
    ours_t = co.optimize(
        co.UPDATE_RULES[name], lambda w: torch.from_numpy(np_grad(w.numpy())), torch.from_numpy(w0), N_STEPS, **kw
    )
    assert isinstance(ours_t, torch.Tensor)
    torch.testing.assert_close(ours_t, torch.from_numpy(ours), **TOL)


def test_pure_nesterov_takes_the_gradient_at_the_lookahead_point():
    seen = []

    def grad_fn(w):
        seen.append(w.copy())
        return np.ones_like(w)

    w, state = co.nesterov_update(np.zeros(2), grad_fn, None, lr=0.5, momentum=0.8)
    w, state = co.nesterov_update(w, grad_fn, state, lr=0.5, momentum=0.8)
    np.testing.assert_allclose(seen[0], [0.0, 0.0])
    # h_1 = 0.5, w_1 = -0.5, look-ahead = w_1 - 0.8 h_1 = -0.9
    np.testing.assert_allclose(seen[1], [-0.9, -0.9])
    np.testing.assert_allclose(state["h"], [0.8 * 0.5 + 0.5] * 2)


def test_optimizer_in_a_training_loop_and_closure():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    x = torch.randn(32, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    opt = co.Adam(model.parameters(), lr=0.05)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = closure().item()
    for _ in range(300):
        loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() < 1e-3 * first


@pytest.mark.parametrize(
    "build",
    [
        lambda p: co.SGD(p, lr=-0.1),
        lambda p: co.Momentum(p, lr=0.1, momentum=1.0),
        lambda p: co.Nesterov(p, lr=0.1, momentum=-0.1),
        lambda p: co.Adagrad(p, lr=0.1, eps=-1.0),
        lambda p: co.RMSProp(p, lr=0.1, alpha=1.5),
        lambda p: co.Adam(p, lr=0.1, betas=(0.9,)),
        lambda p: co.Adam(p, lr=0.1, betas=(0.9, 1.0)),
        lambda p: co.SGD(p, lr=float("nan")),
    ],
)
def test_bad_hyperparameters_raise(build):
    with pytest.raises(ValueError):
        build([torch.zeros(2, requires_grad=True)])


def test_bad_pure_arguments_raise():
    with pytest.raises(ValueError, match="lr"):
        co.sgd_update(np.zeros(2), lambda w: w, lr=-1.0)
    with pytest.raises(ValueError, match="n_steps"):
        co.optimize(co.sgd_update, lambda w: w, np.zeros(2), -1, lr=0.1)


# ----------------------------------------------------------------------------------------------
# schedules against torch's schedulers


def _torch_lrs(make_sched, lr0: float, n: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = make_sched(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("seed", range(3))
def test_schedules_match_torch_schedulers(seed):
    rng = np.random.default_rng(seed)
    lr0, n = float(rng.uniform(0.01, 1.0)), 120
    step_size, gamma = int(rng.integers(1, 30)), float(rng.uniform(0.1, 0.9))
    ours = co.lr_schedules.step(lr0, step_size, gamma)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), lr0, n)
    np.testing.assert_allclose([ours(t) for t in range(n)], ref, rtol=1e-12)

    g = float(rng.uniform(0.9, 0.999))
    ours = co.lr_schedules.exponential(lr0, g)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, g), lr0, n)
    np.testing.assert_allclose([ours(t) for t in range(n)], ref, rtol=1e-10)

    T, lr_min = int(rng.integers(10, n)), float(rng.uniform(0, 0.5 * lr0))
    ours = co.lr_schedules.cosine(lr0, T, lr_min)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T, eta_min=lr_min), lr0, T + 1)
    np.testing.assert_allclose([ours(t) for t in range(T + 1)], ref, rtol=1e-10, atol=1e-14)
    assert ours(T + 5) == pytest.approx(lr_min)  # stays at the floor after T

    # 1/t: torch.optim.ASGD uses eta_t = lr / (1 + lambd * lr * t) ** alpha for its step size
    decay, power = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 1.0))
    ours = co.lr_schedules.inverse_time(lr0, decay, power)
    p = torch.zeros(1, requires_grad=True)
    asgd = torch.optim.ASGD([p], lr=lr0, lambd=decay / lr0, alpha=power, t0=1e9)
    etas = []
    for _ in range(n):
        p.grad = torch.zeros(1)
        asgd.step()
        etas.append(float(asgd.state[p]["eta"]))
    np.testing.assert_allclose([ours(t) for t in range(1, n + 1)], etas, rtol=1e-6)  # ASGD keeps eta in float32


def test_to_torch_scheduler_drives_lr():
    w = torch.zeros(1, requires_grad=True)
    opt = co.SGD([w], lr=0.3)
    sched_fn = co.lr_schedules.inverse_time(0.3, decay=0.1)
    sched = co.to_torch_scheduler(opt, sched_fn)
    for t in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(sched_fn(t))
        w.grad = torch.ones(1)
        opt.step()
        sched.step()


def test_momentum_class_follows_lecture_under_a_schedule():
    """The class with a torch scheduler and the pure rule with lr_schedule implement the same h recursion."""
    problem = make_problem(5, n_params=1, noise_scale=0.0)
    schedule = co.lr_schedules.cosine(0.3, 50)
    params = [torch.tensor(problem.init[0], dtype=torch.float64, requires_grad=True)]
    opt = co.Momentum(params, lr=0.3, momentum=0.8)
    sched = co.to_torch_scheduler(opt, schedule)
    rows = []
    for t in range(50):
        problem.set_grads(params, t)
        opt.step()
        sched.step()
        rows.append(params[0].detach().reshape(-1).clone())
    pure = co.optimize(
        co.momentum_update, problem.grad_fn([0]), problem.init[0].reshape(-1), 50, lr=0.3, lr_schedule=schedule,
        momentum=0.8,
    )
    torch.testing.assert_close(torch.stack(rows), torch.from_numpy(pure[1:]), **TOL)
