"""course_lib.training.fit against a hand-written loop (same seed, same batches => same weights)."""

import pytest
import torch

from course_lib.training import accuracy, evaluate, fit


def make_problem(seed, n=37, d=5, k=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    return X, y


@pytest.mark.parametrize("seed, batch_size, epochs", [(0, 8, 3), (1, None, 4), (2, 1, 2), (3, 36, 2)])
def test_fit_matches_a_hand_written_loop(seed, batch_size, epochs):
    X, y = make_problem(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()
    twin.load_state_dict(model.state_dict())
    loss_fn = torch.nn.functional.cross_entropy
    history = fit(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), X, y, epochs=epochs,
                  batch_size=batch_size, seed=seed, progress=False, X_val=X, y_val=y, metric=accuracy)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    bs = batch_size or len(X)
    losses, batch_losses = [], []
    for epoch in range(epochs):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed + epoch))
        total = 0.0
        for start in range(0, len(X), bs):
            idx = order[start : start + bs]
            opt.zero_grad()
            loss = loss_fn(twin(X[idx]), y[idx])
            loss.backward()
            opt.step()
            batch_losses.append(loss.item())
            total += loss.item() * len(idx)
        losses.append(total / len(X))
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert history.train_loss == pytest.approx(losses, rel=1e-12)
    assert history.batch_loss == pytest.approx(batch_losses, rel=1e-12)
    assert len(history.batch_loss) == epochs * -(-len(X) // (batch_size or len(X)))
    assert len(history.val_loss) == len(history.val_metric) == epochs
    assert history.val_loss[-1] == pytest.approx(loss_fn(twin(X), y).item(), rel=1e-10)


def test_evaluate_weights_batches_by_size():
    X, y = make_problem(4, n=10)
    model = torch.nn.Linear(5, 3).double()
    loss, acc = evaluate(model, torch.nn.functional.cross_entropy, X, y, accuracy, batch_size=3)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(model(X), y).item(), rel=1e-12)
    assert acc == pytest.approx((model(X).argmax(1) == y).double().mean().item())


def test_accuracy_and_fit_reject_bad_input():
    with pytest.raises(ValueError, match="logits"):
        accuracy(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="same number"):
        fit(torch.nn.Linear(2, 1), torch.nn.functional.mse_loss, None, torch.zeros(3, 2), torch.zeros(4, 1), epochs=1)


# --------------------------------------------------------------------------------------------
# transfer learning helpers: freeze / unfreeze / trainable_parameters / param_groups_by_depth
# --------------------------------------------------------------------------------------------
from course_lib.training import freeze, param_groups_by_depth, trainable_parameters, unfreeze  # noqa: E402


def small_convnet(seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    ).double()


def test_param_groups_by_depth_shrink_towards_the_input():
    """Seed 6.17: more data -> train earlier layers too, with a smaller step nearer the input."""
    model = small_convnet()
    groups = param_groups_by_depth(model, 0.1, 0.5)
    assert [g["name"] for g in groups] == ["0", "3", "6"]
    assert [g["lr"] for g in groups] == pytest.approx([0.025, 0.05, 0.1])
    # batch norm joins the convolution before it; every parameter exactly once
    assert [len(g["params"]) for g in groups] == [4, 2, 2]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    explicit = param_groups_by_depth(model, 1.0, 0.1, units=[model[0], model[1], model[3], model[6]])
    assert [g["lr"] for g in explicit] == pytest.approx([0.001, 0.01, 0.1, 1.0])
    assert [len(g["params"]) for g in explicit] == [2, 2, 2, 2]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_param_groups_by_depth_follow_torch_optim_group_semantics(optimizer):
    """One optimiser over the groups == one optimiser per group with that group's lr; SGD == p - lr_i * grad."""
    model, twin = small_convnet(1), small_convnet(1)
    groups = param_groups_by_depth(model, 0.2, 0.3)
    cls = getattr(torch.optim, optimizer)
    opt = cls(groups)
    assert [g["name"] for g in opt.param_groups] == ["0", "3", "6"]  # torch.optim keeps the extra key
    twin_groups = param_groups_by_depth(twin, 0.2, 0.3)
    twin_opts = [cls(g["params"], lr=g["lr"]) for g in twin_groups]
    X = torch.randn(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 5, (6,), generator=torch.Generator().manual_seed(3))
    for step in range(3):
        before = [p.detach().clone() for p in model.parameters()]
        for m, o in ((model, [opt]), (twin, twin_opts)):
            for oo in o:
                oo.zero_grad()
            torch.nn.functional.cross_entropy(m(X), y).backward()
            for oo in o:
                oo.step()
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
        if optimizer == "SGD" and step == 0:
            lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
            for p, b in zip(model.parameters(), before):
                torch.testing.assert_close(p, b - lr_of[id(p)] * p.grad)
    # a scheduler scales every group and keeps the ratios
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.2 * 0.09 * 0.1, 0.2 * 0.3 * 0.1, 0.02])


def test_freeze_unfreeze_and_trainable_parameters():
    model = small_convnet(2)
    assert freeze(model[:4]) is not None
    assert trainable_parameters(model) == list(model[6].parameters())
    groups = param_groups_by_depth(model, 0.1, 0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("6", 0.1)]  # frozen layers do not count as depth
    opt = torch.optim.SGD(trainable_parameters(model), lr=0.5, momentum=0.9)
    frozen = [p.detach().clone() for p in model[:4].parameters()]
    X = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        model(X).sum().backward()
        opt.step()
    assert all(p.grad is None for p in model[:4].parameters())
    for p, q in zip(model[:4].parameters(), frozen):
        assert torch.equal(p, q)
    unfreeze(model)
    assert len(trainable_parameters(model)) == 8
    assert len(param_groups_by_depth(model, 0.1, 0.5)) == 3


def test_linear_probe_is_a_linear_model_on_frozen_features():
    """Seed 6.16: with the backbone frozen, training the replaced last layer is exactly training a
    linear classifier on the backbone's features (same batches -> same weights)."""
    model = small_convnet(4)
    freeze(model[:6])
    head = model[6] = torch.nn.Linear(64, 3).double()
    probe = torch.nn.Linear(64, 3).double()
    probe.load_state_dict(head.state_dict())
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(20, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (20,), generator=g)
    loss = torch.nn.functional.cross_entropy

    # fixed BN statistics, so that the features do not depend on the batch: fit() puts the whole
    # model in train mode, and this pre-hook puts the frozen BN back in eval mode before each call
    def keep_bn_in_eval(module, _inputs):
        module.train(False)

    model[1].register_forward_pre_hook(keep_bn_in_eval)
    with torch.no_grad():
        feats = model[:6](X)
    fit(model, loss, torch.optim.SGD(trainable_parameters(model), lr=0.3), X, y, epochs=3, batch_size=6, progress=False)
    fit(probe, loss, torch.optim.SGD(probe.parameters(), lr=0.3), feats, y, epochs=3, batch_size=6, progress=False)
    for p, q in zip(head.parameters(), probe.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_param_groups_by_depth_rejects_bad_arguments():
    model = small_convnet()
    with pytest.raises(ValueError, match="decay"):
        param_groups_by_depth(model, 0.1, 1.5)
    with pytest.raises(ValueError, match="base_lr"):
        param_groups_by_depth(model, 0.0, 0.5)
    with pytest.raises(ValueError, match="outside"):
        param_groups_by_depth(model, 0.1, 0.5, units=[model[0], model[6]])
    with pytest.raises(ValueError, match="already"):
        param_groups_by_depth(model, 0.1, 0.5, units=[model, model[0]])
    with pytest.raises(ValueError, match="submodule"):
        param_groups_by_depth(model, 0.1, 0.5, units=[model[:2]])  # a slice is a new Sequential
    with pytest.raises(ValueError, match="submodule"):
        param_groups_by_depth(model, 0.1, 0.5, units=[torch.nn.Linear(2, 2)])


def test_train_steps_is_adam_with_a_one_cycle_schedule():
    """train_steps equals the loop written out (same draws, Adam, OneCycleLR), step for step."""
    from course_lib.training import train_steps

    X, y = torch.randn(64, 5), torch.randint(0, 3, (64,))

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    ours = make()

    def batch_loss(gen):
        idx = torch.randint(0, 64, (16,), generator=gen)
        return torch.nn.functional.cross_entropy(ours(X[idx]), y[idx])

    losses = train_steps(ours, batch_loss, 25, lr=0.05, warmup=0.2, seed=3, progress=False)
    ref = make()
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=25, pct_start=0.2)
    gen = torch.Generator().manual_seed(3)
    expected = []
    for _ in range(25):
        idx = torch.randint(0, 64, (16,), generator=gen)
        loss = torch.nn.functional.cross_entropy(ref(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        expected.append(loss.item())
    assert losses.tolist() == pytest.approx(expected, rel=1e-6)
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="steps"):
        train_steps(ours, batch_loss, 0, lr=0.1)
