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
