"""Seeded synthetic "translation" tasks for sequence-to-sequence models that train on a CPU.

* dates written in many human formats -> ISO 8601 (``"Tuesday, 3 March 2015" -> "2015-03-03"``):
  :func:`make_date_pairs`, :func:`format_date`, :data:`DATE_FORMATS`;
* numbers in English words -> digits (``"three hundred twelve" -> "312"``):
  :func:`make_number_pairs`, :func:`number_to_words`.

Both are deterministic functions of the source (no format is ambiguous: the day-first formats
use dots or words, the month-first ones slashes or a leading month name; two-digit years follow
POSIX ``strptime``, 69-99 -> 19xx and 00-68 -> 20xx, and the dates are drawn from 1969-2068 so the
rule is exact). :func:`encode_char_pairs` turns pairs of strings into padded character-id arrays
with fixed special ids (:data:`PAD_ID`, :data:`BOS_ID`, :data:`EOS_ID`, :data:`UNK_ID`).
English names are spelled out here, so nothing depends on the machine's locale.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOS_ID",
    "DATE_FORMATS",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "CharPairs",
    "encode_char_pairs",
    "format_date",
    "make_date_pairs",
    "make_number_pairs",
    "number_to_words",
]

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_RANGE = (_dt.date(1969, 1, 1), _dt.date(2068, 12, 31))


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


_FORMATTERS: dict[str, Callable[[_dt.date], str]] = {
    "iso": lambda d: d.isoformat(),                                                   # 2015-03-03
    "day month year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",            # 3 March 2015
    "day mon year": lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3]} {d.year}",      # 03 Mar 2015
    "month day, year": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",          # March 3, 2015
    "mon day year": lambda d: f"{MONTHS[d.month - 1][:3].lower()} {d.day} {d.year}",  # mar 3 2015
    "weekday, day month year": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    "wkd mon dd yyyy": lambda d: f"{WEEKDAYS[d.weekday()][:3]} {MONTHS[d.month - 1][:3]} {d.day:02d} {d.year}",
    "the ordinal of month year": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                    # 03.03.2015
    "d.m.yy": lambda d: f"{d.day}.{d.month}.{d.year % 100:02d}",                     # 3.3.15
    "mm/dd/yyyy": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",                    # 03/03/2015
    "m/d/yy": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",                      # 3/3/15
    "dd-MON-yy": lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3].upper()}-{d.year % 100:02d}",  # 03-MAR-15
    "yyyymmdd": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",                        # 20150303
}
DATE_FORMATS: tuple[str, ...] = tuple(_FORMATTERS)


def format_date(date: _dt.date, fmt: str) -> str:
    """``date`` written in the format named ``fmt`` (one of :data:`DATE_FORMATS`)."""
    if fmt not in _FORMATTERS:
        raise ValueError(f"unknown date format {fmt!r}; choose from {DATE_FORMATS}")
    if not DATE_RANGE[0] <= date <= DATE_RANGE[1]:
        raise ValueError(f"date must lie in {DATE_RANGE[0]}..{DATE_RANGE[1]} (two-digit years), got {date}")
    return _FORMATTERS[fmt](date)


def _unique_draws(n: int, draw: Callable[[], tuple[str, str]], capacity: int | None) -> list[tuple[str, str]]:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if capacity is not None and n > capacity:
        raise ValueError(f"asked for {n} distinct pairs but only {capacity} exist")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(pairs) < n:
        src, tgt = draw()
        if src not in seen:
            seen.add(src)
            pairs.append((src, tgt))
    return pairs


def make_date_pairs(n: int, seed: int = 0, formats: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``n`` distinct ``(human-written date, ISO date)`` pairs: a uniformly random day of 1969-2068
    written in a uniformly random format of ``formats`` (default: all of :data:`DATE_FORMATS`).
    Sources are distinct, so any split of the list gives disjoint train and test inputs.
    Deterministic given ``seed``."""
    formats = DATE_FORMATS if formats is None else tuple(formats)
    for f in formats:
        if f not in _FORMATTERS:
            raise ValueError(f"unknown date format {f!r}; choose from {DATE_FORMATS}")
    if not formats:
        raise ValueError("formats must not be empty")
    rng = np.random.default_rng(seed)
    start, days = DATE_RANGE[0].toordinal(), (DATE_RANGE[1] - DATE_RANGE[0]).days + 1

    def draw() -> tuple[str, str]:
        date = _dt.date.fromordinal(start + int(rng.integers(days)))
        return _FORMATTERS[formats[int(rng.integers(len(formats)))]](date), date.isoformat()

    return _unique_draws(n, draw, None if n <= days else days * len(formats))


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n > 0:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> str:
    """American English words for ``0 <= n < 10**12``: ``1234 -> "one thousand two hundred
    thirty-four"`` (short scale, hyphenated tens, no "and")."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n < 10**12:
        raise ValueError(f"n must be an int in [0, 10**12), got {n!r}")
    n = int(n)
    if n == 0:
        return "zero"
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words += [*_below_thousand(n // value), name]
            n %= value
    return " ".join(words + _below_thousand(n))


def make_number_pairs(n: int, seed: int = 0, max_value: int = 999_999) -> list[tuple[str, str]]:
    """``n`` distinct ``(number in words, digits)`` pairs, e.g. ``("forty-two", "42")``. The number of
    digits is drawn uniformly from 1..len(str(max_value)), then the number uniformly among those with
    that many digits (capped at ``max_value``), so short and long inputs are equally common."""
    if not 0 < max_value < 10**12:
        raise ValueError(f"max_value must be in [1, 10**12), got {max_value}")
    rng = np.random.default_rng(seed)
    max_digits = len(str(max_value))

    def draw() -> tuple[str, str]:
        k = int(rng.integers(1, max_digits + 1))
        lo, hi = (0 if k == 1 else 10 ** (k - 1)), min(10**k - 1, max_value)
        value = int(rng.integers(lo, hi + 1))
        return number_to_words(value), str(value)

    return _unique_draws(n, draw, max_value + 1)


@dataclass
class CharPairs:
    """Pairs of strings as padded character ids (``PAD_ID`` 0, ``BOS_ID`` 1, ``EOS_ID`` 2,
    ``UNK_ID`` 3 for characters outside the alphabet, then ``alphabet[i]`` -> ``4 + i``).

    - ``src``: (N, S) int64, the source characters (no BOS/EOS), S = the longest source;
      ``src_lengths`` (N,).
    - ``tgt``: (N, T) int64, ``BOS`` + target characters + ``EOS``; ``tgt_lengths`` (N,) counts
      both. Teacher forcing feeds ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.
    - ``src_itos`` / ``tgt_itos``: id -> symbol (the four specials, then the alphabet).
    """

    src: np.ndarray
    src_lengths: np.ndarray
    tgt: np.ndarray
    tgt_lengths: np.ndarray
    src_itos: list[str]
    tgt_itos: list[str]

    def decode_target(self, ids: Sequence[int]) -> str:
        """Target ids -> string, stopping at EOS and skipping PAD/BOS."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.tgt_itos[i] if i != UNK_ID else "?")
        return "".join(out)


def _encode(texts: Sequence[str], itos: list[str], bos_eos: bool) -> tuple[np.ndarray, np.ndarray]:
    stoi = {c: i for i, c in enumerate(itos) if i >= len(SPECIALS)}
    rows = [[BOS_ID] * bos_eos + [stoi.get(c, UNK_ID) for c in t] + [EOS_ID] * bos_eos for t in texts]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max(initial=1))), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def encode_char_pairs(pairs: Sequence[tuple[str, str]], src_alphabet: Sequence[str] | None = None,
                      tgt_alphabet: Sequence[str] | None = None) -> CharPairs:
    """Encode ``(source, target)`` string pairs as :class:`CharPairs`. The alphabets default to the
    sorted characters of the pairs; pass the training set's (``train.src_itos[4:]``) to encode a
    test set with the same ids."""
    if not pairs:
        raise ValueError("pairs must not be empty")
    if any(not s for s, _ in pairs):
        raise ValueError("every source string needs at least one character")
    srcs, tgts = [s for s, _ in pairs], [t for _, t in pairs]
    src_itos = list(SPECIALS) + (sorted(set("".join(srcs))) if src_alphabet is None else list(src_alphabet))
    tgt_itos = list(SPECIALS) + (sorted(set("".join(tgts))) if tgt_alphabet is None else list(tgt_alphabet))
    src, src_len = _encode(srcs, src_itos, bos_eos=False)
    tgt, tgt_len = _encode(tgts, tgt_itos, bos_eos=True)
    return CharPairs(src, src_len, tgt, tgt_len, src_itos, tgt_itos)
