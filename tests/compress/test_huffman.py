"""Canonical Huffman coding: optimal lengths on known distributions, exact round trips, honest bit counts."""

from __future__ import annotations

import numpy as np
import pytest

from footseg.compress import huffman


def test_lengths_of_a_dyadic_distribution() -> None:
    # Probabilities 1/2, 1/4, 1/8, 1/8 have the ideal code lengths 1, 2, 3, 3; an absent symbol gets none.
    lengths = huffman.code_lengths(np.array([4, 2, 1, 0, 1]))
    assert lengths.tolist() == [1, 2, 3, 0, 3]


def test_lengths_satisfy_kraft_with_equality() -> None:
    counts = np.random.default_rng(0).integers(1, 1000, size=37)
    lengths = huffman.code_lengths(counts)
    assert sum(2.0 ** -int(n) for n in lengths) == pytest.approx(1.0)
    codes = huffman.canonical_codes(lengths)
    words = [format(c, f"0{n}b") for c, n in codes.values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)  # prefix-free


@pytest.mark.parametrize("alphabet", [1, 2, 16, 256])
def test_round_trip_and_bit_count(alphabet: int) -> None:
    rng = np.random.default_rng(alphabet)
    symbols = np.minimum(rng.geometric(0.3, size=3000) - 1, alphabet - 1)
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    data = huffman.encode(symbols, lengths)
    assert np.array_equal(huffman.decode(data, lengths, len(symbols)), symbols)
    bits = huffman.coded_bits(symbols, lengths)
    assert len(data) == (bits + 7) // 8
    if alphabet > 2:
        # A skewed stream costs less than a fixed-width code, and no less than its entropy.
        p = np.bincount(symbols) / len(symbols)
        entropy = -(p[p > 0] * np.log2(p[p > 0])).sum() * len(symbols)
        assert entropy <= bits < len(symbols) * int(alphabet - 1).bit_length()


def test_a_truncated_stream_is_an_error() -> None:
    symbols = np.array([0, 1, 2, 3] * 10)
    lengths = huffman.code_lengths(np.bincount(symbols))
    data = huffman.encode(symbols, lengths)
    with pytest.raises(ValueError, match="ended early"):
        huffman.decode(data[:3], lengths, len(symbols))
