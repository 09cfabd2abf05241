"""Tests of course_lib.data.synthetic_text: every date format parses back with datetime.strptime
(an independent reader, C-locale English names), number words parse back with an inverse
parser written here, generation is seeded, sources are distinct, and the character encoding
round-trips."""

from __future__ import annotations

import calendar
import datetime as dt
import re

import numpy as np
import pytest

from course_lib.data import (
    DATE_FORMATS,
    encode_char_pairs,
    format_date,
    make_date_pairs,
    make_number_pairs,
    number_to_words,
)
from course_lib.data.synthetic_text import BOS_ID, EOS_ID, PAD_ID, UNK_ID

STRPTIME = {
    "iso": "%Y-%m-%d",
    "day month year": "%d %B %Y",
    "day mon year": "%d %b %Y",
    "month day, year": "%B %d, %Y",
    "mon day year": "%b %d %Y",
    "weekday, day month year": "%A, %d %B %Y",
    "wkd mon dd yyyy": "%a %b %d %Y",
    "the ordinal of month year": "the %d of %B %Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "d.m.yy": "%d.%m.%y",
    "mm/dd/yyyy": "%m/%d/%Y",
    "m/d/yy": "%m/%d/%y",
    "dd-MON-yy": "%d-%b-%y",
    "yyyymmdd": "%Y%m%d",
}


def parse(text: str, fmt: str) -> dt.date:
    text = re.sub(r"(\d+)(st|nd|rd|th) of", r"\1 of", text)
    parsed = dt.datetime.strptime(text, STRPTIME[fmt]).date()
    if "%A" in STRPTIME[fmt] or "%a" in STRPTIME[fmt]:  # strptime ignores a wrong weekday; check it
        names = calendar.day_name if "%A" in STRPTIME[fmt] else calendar.day_abbr
        if text.split()[0].rstrip(",") != names[parsed.weekday()]:
            raise ValueError(f"wrong weekday in {text!r}")
    return parsed


def test_every_format_is_covered_by_the_oracle():
    assert set(STRPTIME) == set(DATE_FORMATS)


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_date_formats_parse_back(fmt):
    rng = np.random.default_rng(0)
    dates = [dt.date(1969, 1, 1), dt.date(2068, 12, 31), dt.date(2000, 2, 29), dt.date(1999, 11, 11),
             *(dt.date.fromordinal(dt.date(1969, 1, 1).toordinal() + int(d)) for d in rng.integers(0, 36524, 40))]
    for d in dates:
        text = format_date(d, fmt)
        assert parse(text, fmt) == d, (fmt, text)


def test_ordinals_and_examples():
    assert format_date(dt.date(2015, 3, 3), "weekday, day month year") == "Tuesday, 3 March 2015"
    assert format_date(dt.date(2015, 3, 3), "the ordinal of month year") == "the 3rd of March 2015"
    assert [format_date(dt.date(2015, 3, d), "the ordinal of month year").split()[1] for d in (1, 2, 11, 12, 13, 21,
                                                                                              22, 23)] == \
        ["1st", "2nd", "11th", "12th", "13th", "21st", "22nd", "23rd"]
    with pytest.raises(ValueError, match="unknown date format"):
        format_date(dt.date(2015, 3, 3), "klingon")
    with pytest.raises(ValueError, match="two-digit"):
        format_date(dt.date(1900, 1, 1), "iso")


def test_date_pairs_seeded_distinct_and_correct():
    pairs = make_date_pairs(500, seed=3)
    assert pairs == make_date_pairs(500, seed=3) and pairs != make_date_pairs(500, seed=4)
    assert len({s for s, _ in pairs}) == 500
    used = set()
    for src, tgt in pairs:
        matches = {fmt for fmt in DATE_FORMATS if _parses(src, fmt)}
        assert matches, src
        dates = {parse(src, fmt) for fmt in matches}
        assert dates == {dt.date.fromisoformat(tgt)}, (src, tgt, matches)  # never ambiguous
        used |= matches
    assert used == set(DATE_FORMATS)
    only = make_date_pairs(20, seed=0, formats=["m/d/yy"])
    assert all(_parses(s, "m/d/yy") for s, _ in only)
    with pytest.raises(ValueError, match="unknown date format"):
        make_date_pairs(3, formats=["nope"])


def _parses(text, fmt):
    try:
        parse(text, fmt)
    except ValueError:
        return False
    return True


UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9}


def words_to_number(text: str) -> int:
    """Inverse reader: left to right, a running group below 1000 closed by each scale word."""
    total = group = 0
    for word in text.split():
        for part in word.split("-"):
            if part in UNITS:
                group += UNITS[part]
            elif part in TENS:
                group += TENS[part]
            elif part == "hundred":
                group *= 100
            else:
                total += group * SCALE[part]
                group = 0
    return total + group


def test_number_words_examples_and_round_trip():
    assert number_to_words(0) == "zero"
    assert number_to_words(15) == "fifteen"
    assert number_to_words(21) == "twenty-one"
    assert number_to_words(100) == "one hundred"
    assert number_to_words(1001) == "one thousand one"
    assert number_to_words(1_234_567) == "one million two hundred thirty-four thousand five hundred sixty-seven"
    assert number_to_words(10**11 + 7) == "one hundred billion seven"
    rng = np.random.default_rng(0)
    for n in [*range(0, 1200), *rng.integers(0, 10**12, 500).tolist()]:
        assert words_to_number(number_to_words(n)) == n
    for bad in (-1, 10**12, 2.5, True):
        with pytest.raises(ValueError):
            number_to_words(bad)


def test_number_pairs_seeded_and_spread_over_lengths():
    pairs = make_number_pairs(400, seed=1, max_value=99_999)
    assert pairs == make_number_pairs(400, seed=1, max_value=99_999)
    assert len({s for s, _ in pairs}) == 400
    assert all(words_to_number(s) == int(t) <= 99_999 for s, t in pairs)
    counts = np.bincount([len(t) for _, t in pairs], minlength=6)[1:]
    assert counts[0] == 10 and counts[1:].min() > 40, counts  # 1..5 digits equally likely; 10 one-digit numbers
    with pytest.raises(ValueError, match="distinct"):
        make_number_pairs(11, max_value=9)


def test_encode_char_pairs_round_trip():
    pairs = make_date_pairs(30, seed=0)
    enc = encode_char_pairs(pairs)
    assert enc.src.shape == (30, max(len(s) for s, _ in pairs))
    assert enc.tgt.shape == (30, 12) and (enc.tgt[:, 0] == BOS_ID).all() and (enc.tgt_lengths == 12).all()
    for i, (s, t) in enumerate(pairs):
        row = enc.src[i]
        assert "".join(enc.src_itos[j] for j in row[: enc.src_lengths[i]]) == s
        assert (row[enc.src_lengths[i]:] == PAD_ID).all()
        assert enc.tgt[i, enc.tgt_lengths[i] - 1] == EOS_ID
        assert enc.decode_target(enc.tgt[i]) == t
    other = encode_char_pairs([("zz9", "1999")], src_alphabet=enc.src_itos[4:], tgt_alphabet=enc.tgt_itos[4:])
    assert other.src[0, :2].tolist() == [UNK_ID, UNK_ID]  # no "z" in any date format
    assert other.tgt_itos == enc.tgt_itos
    with pytest.raises(ValueError, match="empty"):
        encode_char_pairs([])
