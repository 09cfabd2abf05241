"""Contextual word representations: an ELMo-style bidirectional language model and the scalar
mix of its layers (lecture 17).

ELMo (Peters et al., 2018, arXiv 1802.05365) is *not* a recurrent autoencoder of final states, as
the lecture notes put it (seed 17.1): it is a **bidirectional language model**. A forward LSTM LM
reads ``t_1..t_k`` and predicts ``t_{k+1}``; a backward LSTM LM reads ``t_N..t_k`` and predicts
``t_{k-1}``; both share the token layer ``x_k`` and the softmax, and are trained jointly on

.. math::

    \\sum_k \\log p(t_k \\mid t_1..t_{k-1}) + \\log p(t_k \\mid t_{k+1}..t_N).

A token's representation is then *every* layer at its position, ``R_k = {h_{k,0} = [x_k; x_k],
h_{k,j} = [h^→_{k,j}; h^←_{k,j}], j = 1..L}`` (seed 17.3's ``[T, h_l, h_r]``), and a task learns
how to weigh them (seed 17.2: concatenate the directions, weigh per task, sum):

.. math::

    \\mathrm{ELMo}_k = \\gamma \\sum_{j=0}^{L} s_j\\, h_{k,j}, \\qquad s = \\mathrm{softmax}(w)

(:class:`ScalarMix`). Because ``h^→_{k,j}`` depends on the left context and ``h^←_{k,j}`` on the
right one, the same word gets different vectors in different sentences — "stick" in "let's stick
to" vs "a wooden stick" — while the token layer ``h_{k,0}`` is the same everywhere.

:class:`BiLM` works on any token ids: words (``nn.Embedding`` token layer) or characters (a
character-level biLM, e.g. over tiny Shakespeare). ELMo's own token layer is a character CNN
over each word and its LSTMs have projections; this reference keeps an embedding table (with an
optional linear projection to the LSTM width) and residual connections between LSTM layers, as
ELMo has. The LSTMs are ``course_lib.sequence.LSTM`` (``backend="torch"`` swaps in
``torch.nn.LSTM`` with the same parameters, faster on a CPU).

Downstream (the paper's §3.3), :class:`ELMoTagger` freezes the biLM and feeds ``[x_k; ELMo_k]``
(a static word embedding and the scalar mix) to lecture 14's :class:`course_lib.sequence.BiLSTMTagger`;
:func:`elmo_layers` caches the frozen biLM's layers once per sentence and :func:`pad_elmo_layers`
batches them, so training the tagger costs no biLM forward pass per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.sequence import LSTM, BiLSTMTagger
from course_lib.text import Vocab

__all__ = ["ELMo", "BiLM", "ELMoTagger", "ScalarMix", "elmo_layers", "pad_elmo_layers", "train_bilm"]


class ScalarMix(nn.Module):
    """``gamma * sum_j softmax(w)_j h_j`` over ``num_layers`` representations of equal shape
    (ELMo, eq. 1). ``w`` starts at zero (an equal mix), ``gamma`` at ``gamma``; both are trained
    unless ``trainable=False``. ``forward(layers)``: a tensor ``(num_layers, *S)`` or a sequence of
    ``num_layers`` tensors of shape ``S`` -> ``S``. ``weights`` gives ``softmax(w)``."""

    def __init__(self, num_layers: int, gamma: float = 1.0, trainable: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.scalar_parameters = nn.Parameter(torch.zeros(num_layers), requires_grad=trainable)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)), requires_grad=trainable)

    @property
    def weights(self) -> Tensor:
        return torch.softmax(self.scalar_parameters, 0)

    def forward(self, layers: Tensor | Sequence[Tensor]) -> Tensor:
        h = layers if isinstance(layers, Tensor) else torch.stack(list(layers))
        if h.shape[0] != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layers, got {h.shape[0]}")
        s = self.weights.to(h.dtype).view(-1, *([1] * (h.ndim - 1)))
        return self.gamma.to(h.dtype) * (s * h).sum(0)


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[n]`` steps of every row of ``x (N, T, ...)``; padding stays put."""
    T = x.shape[1]
    pos = torch.arange(T, device=x.device).unsqueeze(0)
    idx = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)
    if x.ndim > 2:
        idx = idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand_as(x)
    return x.gather(1, idx)


class BiLM(nn.Module):
    """ELMo-style bidirectional LSTM language model.

    ``vocab``: a :class:`course_lib.text.Vocab` with a pad token (then :meth:`embed` and
    :func:`train_bilm` accept tokenised sentences) or the vocabulary size (ids only; ``pad_id``
    marks padding, default 0). A shared token layer (embedding, projected to ``hidden_size`` when
    ``embed_dim`` differs), ``num_layers`` forward and ``num_layers`` backward single-layer LSTMs
    (residual connections from layer 2 on), and one softmax shared by both directions.

    Shapes: tokens ``(N, T)`` int64, ``lengths (N,)`` (default: all ``T``). :meth:`states` gives
    the token layer ``(N, T, H)`` and the per-layer forward/backward states (lists of ``(N, T, H)``);
    :meth:`forward` the next-token logits of the forward LM and the previous-token logits of the
    backward LM, each ``(N, T, V)``; :meth:`embed` the ``(num_layers + 1, N, T, 2H)`` stack of
    ELMo representations ``h_{k,0} = [x_k; x_k]``, ``h_{k,j} = [h^→_{k,j}; h^←_{k,j}]``.
    """

    def __init__(
        self,
        vocab: Vocab | int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        *,
        residual: bool = True,
        pad_id: int | None = None,
        backend: str = "course",
    ) -> None:
        super().__init__()
        if isinstance(vocab, Vocab):
            if vocab.pad_id is None:
                raise ValueError("the vocabulary needs a pad token: Vocab.build(..., pad='<pad>')")
            self.vocab: Vocab | None = vocab
            vocab_size, pad = len(vocab), vocab.pad_id
        else:
            self.vocab, vocab_size, pad = None, int(vocab), 0 if pad_id is None else pad_id
        if vocab_size < 2 or embed_dim < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(
                f"need vocab_size >= 2 and positive sizes, got {vocab_size}, {embed_dim}, {hidden_size}, {num_layers}"
            )
        if backend not in ("course", "torch"):
            raise ValueError(f"backend must be 'course' or 'torch', got {backend!r}")
        self.vocab_size, self.pad_id, self.hidden_size, self.num_layers = vocab_size, pad, hidden_size, num_layers
        self.residual = residual
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad)
        self.token_proj = nn.Identity() if embed_dim == hidden_size else nn.Linear(embed_dim, hidden_size)
        layer = LSTM if backend == "course" else nn.LSTM
        self.forward_layers = nn.ModuleList(
            [layer(hidden_size, hidden_size, batch_first=True) for _ in range(num_layers)]
        )
        self.backward_layers = nn.ModuleList(
            [layer(hidden_size, hidden_size, batch_first=True) for _ in range(num_layers)]
        )
        self.drop = nn.Dropout(dropout)
        self.softmax = nn.Linear(hidden_size, vocab_size)  # shared by both directions, as in ELMo

    # ------------------------------------------------------------------ inputs
    def _batch(self, tokens: Any, lengths: Any = None) -> tuple[Tensor, Tensor]:
        device = self.softmax.weight.device
        if isinstance(tokens, (list, tuple)) and tokens and not isinstance(tokens[0], (int, np.integer)):
            first = tokens[0]
            if len(first) and isinstance(first[0], str):
                if self.vocab is None:
                    raise ValueError("token strings need a BiLM built with a Vocab")
                ids, lens = self.vocab.encode_batch(tokens)
            else:  # lists of ids
                lens = torch.tensor([len(t) for t in tokens], dtype=torch.long)
                ids = torch.full((len(tokens), int(lens.max())), self.pad_id, dtype=torch.long)
                for i, t in enumerate(tokens):
                    ids[i, : len(t)] = torch.as_tensor(list(t), dtype=torch.long)
            return ids.to(device), lens.to(device)
        ids = torch.as_tensor(tokens, dtype=torch.long, device=device)
        if ids.ndim != 2:
            raise ValueError(f"tokens must be (N, T) ids or a list of sentences, got shape {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")
        if lengths is None:
            lens = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long, device=device)
        else:
            lens = torch.as_tensor(lengths, dtype=torch.long, device=device)
            if lens.shape != (ids.shape[0],) or (lens < 1).any() or (lens > ids.shape[1]).any():
                raise ValueError(f"lengths must be ({ids.shape[0]},) with values in 1..{ids.shape[1]}")
        return ids, lens

    def _run(self, layer: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
        if isinstance(layer, LSTM):
            return layer(x, lengths=lengths)[0]
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = layer(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    # ------------------------------------------------------------------ the model
    def states(self, tokens: Any, lengths: Any = None) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(x (N, T, H), forward [L x (N, T, H)], backward [L x (N, T, H)])``; positions past a
        sentence's length are zero. ``forward[j][:, k]`` depends on tokens ``0..k`` only,
        ``backward[j][:, k]`` on tokens ``k..length-1`` only."""
        ids, lens = self._batch(tokens, lengths)
        mask = (torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < lens.unsqueeze(1)).unsqueeze(-1)
        x = self.token_proj(self.embedding(ids)) * mask
        fwd, bwd = [], []
        h_f, h_b = x, _reverse_within(x, lens)
        for j in range(self.num_layers):
            out_f = self._run(self.forward_layers[j], self.drop(h_f), lens)
            out_b = self._run(self.backward_layers[j], self.drop(h_b), lens)
            if self.residual and j > 0:
                out_f, out_b = out_f + h_f, out_b + h_b
            h_f, h_b = out_f * mask, out_b * mask  # reversing within the lengths keeps the mask
            fwd.append(h_f)
            bwd.append(_reverse_within(h_b, lens))
        return x, fwd, bwd

    def forward(self, tokens: Any, lengths: Any = None) -> tuple[Tensor, Tensor]:
        """``(forward_logits, backward_logits)``, each ``(N, T, V)``: at position ``k`` the forward LM
        scores token ``k + 1`` and the backward LM token ``k - 1``."""
        _, fwd, bwd = self.states(tokens, lengths)
        return self.softmax(self.drop(fwd[-1])), self.softmax(self.drop(bwd[-1]))

    def loss(self, tokens: Any, lengths: Any = None) -> Tensor:
        """The biLM objective: ``(CE_forward + CE_backward) / 2``, each the mean cross-entropy
        (nats per token) over the real next/previous tokens of every sentence."""
        ids, lens = self._batch(tokens, lengths)
        _, fwd, bwd = self.states(ids, lens)
        T = ids.shape[1]
        pos = torch.arange(T, device=ids.device).unsqueeze(0)
        f_ok = pos[:, :-1] < (lens.unsqueeze(1) - 1)  # position k predicts k + 1 < length
        b_ok = f_ok  # position k + 1 predicts k, for k + 1 < length
        if not bool(f_ok.any()):
            raise ValueError("every sentence has a single token: nothing to predict")
        # the softmax (the costly (M, H) x (H, V) product) only at the real positions, not the padding
        ce_f = F.cross_entropy(self.softmax(self.drop(fwd[-1][:, :-1][f_ok])), ids[:, 1:][f_ok])
        ce_b = F.cross_entropy(self.softmax(self.drop(bwd[-1][:, 1:][b_ok])), ids[:, :-1][b_ok])
        return (ce_f + ce_b) / 2

    def embed(self, sentences: Any, lengths: Any = None) -> Tensor:
        """ELMo's per-layer representations, ``(num_layers + 1, N, T, 2H)``: layer 0 is the token
        layer duplicated ``[x_k; x_k]``, layer ``j`` the concatenated states ``[h^→_{k,j}; h^←_{k,j}]``.
        ``sentences``: tokenised sentences (with a Vocab), lists of ids, or ``(N, T)`` ids (+ ``lengths``)."""
        x, fwd, bwd = self.states(sentences, lengths)
        return torch.stack([torch.cat([x, x], -1)] + [torch.cat([f, b], -1) for f, b in zip(fwd, bwd)])


class ELMo(nn.Module):
    """Task features from a (frozen by default) :class:`BiLM`: ``gamma sum_j s_j h_{k,j}``
    (:class:`ScalarMix` over :meth:`BiLM.embed`). ``forward(tokens, lengths) -> (N, T, 2H)``;
    :meth:`layers` gives the stack ``(L + 1, N, T, 2H)`` it mixes. A frozen biLM has
    ``requires_grad=False`` on every parameter and runs in eval mode under ``torch.no_grad``, so
    only ``w`` and ``gamma`` train (and its layers can be computed once and cached:
    :func:`elmo_layers`)."""

    def __init__(self, bilm: BiLM, freeze: bool = True, gamma: float = 1.0) -> None:
        super().__init__()
        self.bilm = bilm
        self.freeze = freeze
        if freeze:
            for p in bilm.parameters():
                p.requires_grad_(False)
        self.mix = ScalarMix(bilm.num_layers + 1, gamma)

    @property
    def output_dim(self) -> int:
        return 2 * self.bilm.hidden_size

    @property
    def num_layers(self) -> int:
        """``L + 1``: the token layer and the ``L`` LSTM layers."""
        return self.bilm.num_layers + 1

    def layers(self, tokens: Any, lengths: Any = None) -> Tensor:
        """The biLM's representations ``(L + 1, N, T, 2H)`` (:meth:`BiLM.embed`), without a graph
        when the biLM is frozen."""
        if self.freeze:
            self.bilm.eval()
            with torch.no_grad():
                return self.bilm.embed(tokens, lengths)
        return self.bilm.embed(tokens, lengths)

    def forward(self, tokens: Any, lengths: Any = None) -> Tensor:
        return self.mix(self.layers(tokens, lengths))


@torch.no_grad()
def elmo_layers(bilm: BiLM, sentences: Sequence[Sequence[Any]], batch_size: int = 64) -> list[Tensor]:
    """The frozen biLM's representations of every sentence, computed once: a list of
    ``(L + 1, n_i, 2H)`` tensors (``n_i`` the length of sentence ``i``), in eval mode, on the biLM's
    device. Pad a mini-batch of them with :func:`pad_elmo_layers`; the result equals
    ``bilm.embed(batch)`` (the biLM's states do not depend on the padding)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = bilm.training
    bilm.eval()
    out: list[Tensor] = []
    for s in range(0, len(sentences), batch_size):
        batch = [list(x) for x in sentences[s : s + batch_size]]
        if any(len(x) == 0 for x in batch):
            raise ValueError("empty sentence: every sentence needs at least one token")
        reps = bilm.embed(batch)  # (L + 1, B, T, 2H)
        out.extend(reps[:, i, : len(x)] for i, x in enumerate(batch))
    bilm.train(was_training)
    return out


def pad_elmo_layers(layers: Sequence[Tensor]) -> Tensor:
    """Per-sentence stacks ``(L + 1, n_i, D)`` (from :func:`elmo_layers`) -> one zero-padded batch
    ``(L + 1, N, max_i n_i, D)``, the layout of :meth:`BiLM.embed`."""
    if not layers:
        raise ValueError("no sentences to pad")
    first = layers[0]
    if first.ndim != 3 or any(
        x.ndim != 3 or x.shape[0] != first.shape[0] or x.shape[2] != first.shape[2] for x in layers
    ):
        raise ValueError(
            f"every stack must be (L + 1, n_i, D) with the same L + 1 and D, got {[tuple(x.shape) for x in layers]}"
        )
    T = max(x.shape[1] for x in layers)
    out = first.new_zeros(first.shape[0], len(layers), T, first.shape[2])
    for i, x in enumerate(layers):
        out[:, i, : x.shape[1]] = x
    return out


class ELMoTagger(nn.Module):
    """A :class:`course_lib.sequence.BiLSTMTagger` that reads ELMo features (Peters et al. 2018, §3.3):
    for word ``k`` the tagger's LSTM gets ``[x_k; ELMo_k]``, the static word embedding ``x_k``
    (``embed_dim=0`` leaves it out) concatenated with

    .. math::

        \\mathrm{ELMo}_k = \\gamma \\sum_{j=0}^{L} s_j\\, h_{k,j}, \\qquad s = \\mathrm{softmax}(w),

    the scalar mix (:class:`ScalarMix`, ``w`` and ``gamma`` trained with the tagger) of the frozen
    biLM's layers. With ``freeze=True`` (the default, as in the paper) no gradient reaches the biLM.

    ``forward(words (N, T), lengths (N,) | None, chars (N, T, L) | None, *, tokens=None, layers=None)
    -> logits (N, T, tagset_size)``: ``words`` are the tagger's own word ids (its vocabulary,
    ``vocab_size``); the ELMo features come from ``layers`` — the biLM's stack ``(L + 1, N, T, 2H)``,
    e.g. :func:`pad_elmo_layers` of cached :func:`elmo_layers` (fast: the frozen biLM runs once per
    sentence, not once per epoch) — or else from ``tokens``, the same sentences as the biLM's input
    (token strings or the biLM's ids). ``tagger_kwargs`` go to ``BiLSTMTagger`` (``hidden_size``,
    ``bidirectional``, ``dropout``, ``char_vocab_size``, ``backend``, ``padding_idx``, ...).
    """

    def __init__(
        self,
        bilm: BiLM,
        vocab_size: int,
        tagset_size: int,
        embed_dim: int = 100,
        *,
        freeze: bool = True,
        gamma: float = 1.0,
        **tagger_kwargs: Any,
    ) -> None:
        super().__init__()
        if "feature_dim" in tagger_kwargs:
            raise ValueError("feature_dim is set by the biLM (2 * hidden_size)")
        self.elmo = ELMo(bilm, freeze=freeze, gamma=gamma)
        self.tagger = BiLSTMTagger(
            vocab_size, tagset_size, embed_dim=embed_dim, feature_dim=self.elmo.output_dim, **tagger_kwargs
        )

    @property
    def mix_weights(self) -> Tensor:
        """The learned layer weights ``s = softmax(w)``, ``(L + 1,)``."""
        return self.elmo.mix.weights

    def features(
        self, words: Tensor, lengths: Any = None, *, tokens: Any = None, layers: Tensor | None = None
    ) -> Tensor:
        """The ELMo features ``(N, T, 2H)`` the tagger reads (zero past each sentence's length)."""
        N, T = words.shape
        if layers is None:
            if tokens is None:
                raise ValueError("give the biLM's input (tokens=...) or its precomputed layers (layers=...)")
            layers = self.elmo.layers(tokens, lengths)
        if layers.shape[:3] != (self.elmo.num_layers, N, T) or layers.shape[3] != self.elmo.output_dim:
            raise ValueError(
                f"layers must be (L + 1 = {self.elmo.num_layers}, N = {N}, T = {T}, "
                f"2H = {self.elmo.output_dim}), got {tuple(layers.shape)}"
            )
        return self.elmo.mix(layers.to(self.tagger.head.weight.device))

    def forward(
        self,
        words: Tensor,
        lengths: Any = None,
        chars: Tensor | None = None,
        *,
        tokens: Any = None,
        layers: Tensor | None = None,
    ) -> Tensor:
        if words.ndim != 2:
            raise ValueError(f"words must be (N, T) ids, got shape {tuple(words.shape)}")
        feats = self.features(words, lengths, tokens=tokens, layers=layers)
        return self.tagger(words, lengths, chars, features=feats)


def train_bilm(
    model: BiLM,
    sentences: Sequence[Sequence[Any]],
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 2e-3,
    *,
    clip: float = 5.0,
    max_len: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Adam on :meth:`BiLM.loss` over shuffled mini-batches of ``sentences`` (token strings with
    a Vocab, or lists of ids), gradients clipped to norm ``clip``, sentences cut at ``max_len``
    tokens; sentences of one token are skipped. Returns the mean loss of every epoch."""
    data = [list(s)[:max_len] if max_len else list(s) for s in sentences if len(s) >= 2]
    if not data:
        raise ValueError("no sentence has two tokens or more")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * ((len(data) + batch_size - 1) // batch_size), desc="biLM", unit="batch")
    model.train()
    try:
        for _ in range(epochs):
            order = rng.permutation(len(data))
            total, count = 0.0, 0
            for s in range(0, len(data), batch_size):
                batch = [data[i] for i in order[s : s + batch_size]]
                value = model.loss(batch)
                opt.zero_grad()
                value.backward()
                nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += float(value.detach()) * len(batch)
                count += len(batch)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(value.detach()):.3f}", refresh=False)
            history.append(total / count)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history
