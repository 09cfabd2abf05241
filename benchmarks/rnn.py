"""Recurrent networks of lectures 14-15 (course_lib.sequence): speed and quality.

Four experiments:

1. speed: the from-scratch ``course_lib.sequence.LSTM`` against ``torch.nn.LSTM`` (same weights,
   same shapes, CPU, one thread per process as set by the caller), forward + backward time of a
   whole batch (the course LSTM with its hand-written BPTT, and with autograd through its steps); goal <= 3x;
2. a character-level LSTM language model on tiny Shakespeare (first 90 % train, last 10 %
   validation): validation cross-entropy in nats per character (goal <= 1.55), model size, time;
3. a BiLSTM UPOS tagger (word embeddings + a character BiLSTM for every word) on UD English-EWT:
   test accuracy (goal >= 93 %), against the same tagger reading left to right only;
4. seq2seq on the synthetic date task (many human formats -> ISO dates): exact match on held-out
   sources with and without Bahdanau attention, overall (goal >= 99 % with attention) and by
   source length.

The models train with ``backend="torch"`` (the same parameters as the course's layers, which
experiment 1 times), on a GPU when one is present. The char-LSTM's size depends on the device
(``CHAR_LM_SIZES``: 2 x 512 on a GPU, 2 x 256 on a CPU, where the larger one would take 3.5 hours).
``--only char-lm`` (any of ``PARTS``) runs some experiments and merges them into the committed
record, so the parts can be measured on different machines. ``--smoke`` shrinks every size to seconds.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.data import encode_char_pairs, load_tiny_shakespeare, load_ud_english, make_date_pairs
from course_lib.notebook import seed_everything
from course_lib.sequence import LSTM, BiLSTMTagger, CharRNN, Seq2Seq, greedy_decode
from course_tools.benchmarking import BenchmarkReport, benchmark_main, time_call

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------------------------
# 1. speed
# --------------------------------------------------------------------------------------------
def lstm_speed(report: BenchmarkReport, smoke: bool) -> None:
    shapes = [(32, 50, 64, 128, 1)] if smoke else [(32, 50, 64, 128, 1), (64, 100, 128, 256, 1), (64, 100, 128, 256, 2)]
    for N, T, D, H, L in shapes:
        torch.manual_seed(0)
        ref = nn.LSTM(D, H, L, batch_first=True)
        ours = LSTM(D, H, L)  # bptt="hand": backpropagation through time written out
        ours.load_state_dict(ref.state_dict())
        ours_autograd = LSTM(D, H, L, bptt="autograd")  # autograd through the loop of steps
        ours_autograd.load_state_dict(ref.state_dict())
        x = torch.randn(N, T, D, requires_grad=True)

        def step(model: nn.Module, x: torch.Tensor = x) -> None:
            out, _ = model(x)
            out.sum().backward()

        repeat = 3 if smoke else 5
        t_ref = time_call(lambda m=ref: step(m), repeat=repeat)
        t_ours = time_call(lambda m=ours: step(m), repeat=repeat)
        t_auto = time_call(lambda m=ours_autograd: step(m), repeat=repeat)
        shape = f"N={N}, T={T}, D={D}, H={H}, layers={L}"
        report.add_row("LSTM forward+backward (CPU)", shape, "torch.nn.LSTM", f"{1e3 * t_ref:.1f} ms", "")
        report.add_row("LSTM forward+backward (CPU)", shape, "course_lib LSTM", f"{1e3 * t_ours:.1f} ms",
                       f"{t_ours / t_ref:.2f}x torch")
        report.add_row("LSTM forward+backward (CPU)", shape, "course_lib LSTM, bptt='autograd'",
                       f"{1e3 * t_auto:.1f} ms", f"{t_auto / t_ref:.2f}x torch")
        report.figures[f"LSTM slowdown vs torch, {shape} (x)"] = t_ours / t_ref
        report.figures[f"LSTM slowdown vs torch with autograd BPTT, {shape} (x)"] = t_auto / t_ref
    report.notes.append(
        "LSTM speed: the course LSTM computes all input projections of a layer in one matrix product and the four "
        "gates in one product per step; its backward pass is BPTT written out by hand (course_lib.sequence._LSTMScan: "
        "one (N, 4H) @ (4H, H) product per step and one (4H, T*N) @ (T*N, H) product for dW_hh over all steps). "
        "What limits it: T Python-level steps of about 10 small kernels forward and 20 backward, each a separate "
        "pass over (N, H) memory, against torch's C++ loop over the same products; the gap is widest for small "
        "N and H, where those kernel launches dominate the matrix products. bptt='autograd' (autograd through the "
        "step loop, ~8 graph nodes a step) is the row beside it")


# --------------------------------------------------------------------------------------------
# 2. char-LSTM on tiny Shakespeare
# --------------------------------------------------------------------------------------------
#: char-LSTM sizes: the GPU's 2 x 512 takes ~3 s a step on one CPU core (4,000 steps = 3.5 h), so
#: a CPU trains 2 x 256 (~4x fewer FLOPs a step, ~0.7 s) for 3,500 steps instead
CHAR_LM_SIZES = {
    "smoke": {"embed": 32, "hidden": 64, "layers": 1, "dropout": 0.0, "steps": 200, "batch": 32, "seq": 64},
    "cpu": {"embed": 64, "hidden": 256, "layers": 2, "dropout": 0.2, "steps": 3500, "batch": 64, "seq": 128},
    "cuda": {"embed": 64, "hidden": 512, "layers": 2, "dropout": 0.25, "steps": 4000, "batch": 64, "seq": 128},
}


def char_lm(report: BenchmarkReport, smoke: bool) -> None:
    text = load_tiny_shakespeare()
    if smoke:
        text = text[:200_000]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    cfg = CHAR_LM_SIZES["smoke" if smoke else DEVICE.type]
    seed_everything(0)
    model = CharRNN(len(chars), cfg["embed"], cfg["hidden"], cfg["layers"], dropout=cfg["dropout"],
                    backend="torch").to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["steps"])
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.train()
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(train) - cfg["seq"] - 1, (cfg["batch"],), generator=gen)
        batch = torch.stack([train[i:i + cfg["seq"] + 1] for i in idx.tolist()]).to(DEVICE)
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % 250 == 0:
            print(f"char-lm step {step + 1}: training loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():  # the whole validation text as one stream, in chunks carrying the state
        total, count, state, chunk = 0.0, 0, None, 1000
        v = val.to(DEVICE)[None]
        for i in range(0, v.shape[1] - 1, chunk):
            x, y = v[:, i:i + chunk], v[:, i + 1:i + chunk + 1]
            x = x[:, : y.shape[1]]
            logits, state = model(x, state)
            total += F.cross_entropy(logits[0], y[0], reduction="sum").item()
            count += y.shape[1]
    val_loss = total / count
    params = sum(p.numel() for p in model.parameters())
    desc = f"{cfg['layers']}x{cfg['hidden']} LSTM, {params / 1e6:.2f} M parameters, {cfg['steps']} steps"
    report.add_row("char-LSTM, tiny Shakespeare", desc, "validation loss", f"{val_loss:.3f} nats/char",
                   f"{seconds:.0f} s on {DEVICE.type}")
    report.figures["char-LSTM validation loss (nats/char)"] = val_loss
    report.figures["char-LSTM parameters (M)"] = params / 1e6


# --------------------------------------------------------------------------------------------
# 3. BiLSTM tagger on UD English-EWT
# --------------------------------------------------------------------------------------------
def _tagging_tensors(sents, word_ix, char_ix, tag_ix):
    N, T = len(sents), max(len(s) for s in sents)
    L = max(len(w) for s in sents for w, _ in s)
    words = torch.zeros(N, T, dtype=torch.long)
    chars = torch.zeros(N, T, min(L, 20), dtype=torch.long)
    tags = torch.full((N, T), -100, dtype=torch.long)
    for i, s in enumerate(sents):
        for j, (w, t) in enumerate(s):
            words[i, j] = word_ix.get(w.lower(), 1)
            cs = [char_ix.get(c, 1) for c in w[:20]]
            chars[i, j, : len(cs)] = torch.tensor(cs)
            tags[i, j] = tag_ix[t]
    return words, chars, tags, torch.tensor([len(s) for s in sents])


def tagger(report: BenchmarkReport, smoke: bool) -> None:
    train, test = load_ud_english("train"), load_ud_english("test")
    if smoke:
        train, test = train[:1500], test[:300]
    counts = Counter(w.lower() for s in train for w, _ in s)
    word_ix = {w: i + 2 for i, w in enumerate(sorted(w for w, c in counts.items() if c >= 2))}  # 0 pad, 1 unknown
    char_ix = {c: i + 2 for i, c in enumerate(sorted({c for s in train for w, _ in s for c in w}))}
    tag_ix = {t: i for i, t in enumerate(sorted({t for s in train for _, t in s}))}
    epochs, batch = (2, 32) if smoke else (12, 32)
    dims = {"embed_dim": 32, "hidden_size": 32, "char_embed_dim": 16, "char_hidden_size": 16} if smoke else {
        "embed_dim": 100, "hidden_size": 200, "char_embed_dim": 32, "char_hidden_size": 50}
    test_t = _tagging_tensors(test, word_ix, char_ix, tag_ix)
    for bidirectional in (True, False):
        seed_everything(0)
        model = BiLSTMTagger(len(word_ix) + 2, len(tag_ix), bidirectional=bidirectional, dropout=0.0 if smoke else 0.33,
                             char_vocab_size=len(char_ix) + 2, backend="torch", **dims).to(DEVICE)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            order = rng.permutation(len(train))
            for b in range(0, len(order), batch):
                words, chars, tags, lengths = _tagging_tensors([train[i] for i in order[b:b + batch]], word_ix,
                                                               char_ix, tag_ix)
                logits = model(words.to(DEVICE), lengths, chars.to(DEVICE))
                loss = F.cross_entropy(logits.reshape(-1, len(tag_ix)), tags.to(DEVICE).reshape(-1), ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            words, chars, tags, lengths = test_t
            correct = total = 0
            for b in range(0, len(test), 256):
                sl = slice(b, b + 256)
                pred = model(words[sl].to(DEVICE), lengths[sl], chars[sl].to(DEVICE)).argmax(-1).cpu()
                mask = tags[sl] != -100
                correct += int((pred[mask] == tags[sl][mask]).sum())
                total += int(mask.sum())
        acc = 100 * correct / total
        name = "BiLSTM" if bidirectional else "left-to-right LSTM"
        report.add_row("UPOS tagging, UD English-EWT test", f"{name} + char BiLSTM, {epochs} epoch(s)",
                       "accuracy", f"{acc:.2f} %", f"{seconds:.0f} s on {DEVICE.type}")
        report.figures[f"{name} UPOS test accuracy (%)"] = acc


# --------------------------------------------------------------------------------------------
# 4. seq2seq on synthetic dates
# --------------------------------------------------------------------------------------------
def seq2seq(report: BenchmarkReport, smoke: bool) -> None:
    n_train, n_test = (3000, 300) if smoke else (30_000, 3_000)
    pairs = make_date_pairs(n_train + n_test, seed=0)
    train = encode_char_pairs(pairs[:n_train])
    test = encode_char_pairs(pairs[n_train:], train.src_itos[4:], train.tgt_itos[4:])
    src, tgt = torch.from_numpy(train.src), torch.from_numpy(train.tgt)
    epochs, batch = (5, 64) if smoke else (15, 64)
    dims = {"embed_dim": 16, "hidden_size": 64} if smoke else {"embed_dim": 32, "hidden_size": 128}
    lengths = test.src_lengths
    bins = [(1, 8), (9, 12), (13, 18), (19, 24), (25, 40)]
    for attention in (True, False):
        seed_everything(0)
        model = Seq2Seq(len(train.src_itos), len(train.tgt_itos), attention=attention, backend="torch",
                        **dims).to(DEVICE)
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        steps = epochs * ((n_train + batch - 1) // batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(n_train))
            for b in range(0, n_train, batch):
                idx = order[b:b + batch]
                s, t = src[idx].to(DEVICE), tgt[idx].to(DEVICE)
                s = s[:, : int((s != 0).sum(1).max())]
                logits = model(s, t[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1), ignore_index=0)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
        seconds = time.perf_counter() - start
        decoded: list[list[int]] = []
        for b in range(0, n_test, 500):
            decoded += greedy_decode(model, torch.from_numpy(test.src[b:b + 500]).to(DEVICE), max_len=12)
        exact = np.array([test.decode_target(d) == p[1] for d, p in zip(decoded, pairs[n_train:])])
        name = "with attention" if attention else "without attention"
        report.add_row("seq2seq, dates -> ISO", f"LSTM {dims['hidden_size']}, {name}, {epochs} epoch(s)",
                       "exact match, all", f"{100 * exact.mean():.2f} %", f"{seconds:.0f} s on {DEVICE.type}")
        report.figures[f"seq2seq {name}: exact match (%)"] = 100 * exact.mean()
        for lo, hi in bins:
            sel = (lengths >= lo) & (lengths <= hi)
            if sel.any():
                acc = 100 * exact[sel].mean()
                report.add_row("seq2seq, dates -> ISO", f"{name}, source {lo}-{hi} chars ({int(sel.sum())})",
                               "exact match", f"{acc:.2f} %", "")
                report.figures[f"seq2seq {name}: exact match, source {lo}-{hi} chars (%)"] = acc


#: the parts ``--only`` can re-run on their own (the char-LSTM wants a GPU; the others fit a CPU)
PARTS = ("speed", "char-lm", "tagger", "seq2seq")


def run(smoke: bool, parts: tuple[str, ...] = PARTS) -> BenchmarkReport:
    report = BenchmarkReport(
        title="Recurrent networks (course_lib.sequence): LSTM speed, char-LSTM, BiLSTM tagger, seq2seq",
        columns=["experiment", "setting", "metric", "value", "note"],
    )
    experiments = {"speed": lstm_speed, "char-lm": char_lm, "tagger": tagger, "seq2seq": seq2seq}
    for part in parts:
        with report.part(part):
            experiments[part](report, smoke)
    report.notes.append("goals (full size): char-LSTM <= 1.55 nats/char, BiLSTM UPOS >= 93 %, seq2seq with attention "
                        ">= 99 % exact match, course LSTM <= 3x torch.nn.LSTM")
    return report


if __name__ == "__main__":
    benchmark_main("rnn", run, parts=PARTS)
