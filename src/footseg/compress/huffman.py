"""Canonical Huffman coding of small-alphabet symbol streams (the last stage of deep compression, Han et al. 2016).

Code lengths come from the symbol counts (``heapq`` merging of the two rarest subtrees); codes are then assigned
canonically (shorter codes first, ties by symbol), so the lengths alone describe the code and are all a file needs to
store. Bits are packed most significant first.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Huffman code length of every symbol (0 for symbols that never occur) from its count.

    A stream with a single distinct symbol gets a 1-bit code, so every symbol still costs a bit to say it is there.
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.int64)
    present = [int(s) for s in np.flatnonzero(counts)]
    if len(present) == 1:
        lengths[present[0]] = 1
        return lengths
    tie = itertools.count()  # equal weights: merge order by insertion, so the result is deterministic
    heap = [(int(counts[s]), next(tie), [s]) for s in present]
    heapq.heapify(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in itertools.chain(s1, s2):
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, next(tie), s1 + s2))
    return lengths


def canonical_codes(lengths: np.ndarray) -> dict[int, tuple[int, int]]:
    """``{symbol: (code, length)}`` of the canonical code with these lengths."""
    order = sorted((int(n), int(s)) for s, n in enumerate(lengths) if n > 0)
    codes: dict[int, tuple[int, int]] = {}
    code, prev = 0, 0
    for n, s in order:
        code <<= n - prev
        codes[s] = (code, n)
        code += 1
        prev = n
    return codes


def encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    """Pack ``symbols`` with the canonical code of ``lengths`` (every symbol used must have a length > 0)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size == 0:
        return b""
    codes = canonical_codes(lengths)
    table = []
    for s in range(len(lengths)):
        code, n = codes.get(s, (0, 0))
        table.append(np.array([(code >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8))
    missing = set(np.unique(symbols).tolist()) - set(codes)
    if missing:
        raise ValueError(f"symbols {sorted(missing)[:5]} have no code")
    bits = np.concatenate([table[s] for s in symbols.tolist()])
    return np.packbits(bits).tobytes()


def decode(data: bytes, lengths: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` symbols of ``data`` under the canonical code of ``lengths``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(count, dtype=np.int64)
    if count == 0:
        return out
    max_len = int(lengths.max())
    # Canonical decoding: at each length n, codes first[n] .. first[n] + num[n] - 1 map to the symbols of that length.
    by_length = [[s for s in range(len(lengths)) if lengths[s] == n] for n in range(max_len + 1)]
    first = [0] * (max_len + 1)
    code = 0
    for n in range(1, max_len + 1):
        code = (code + len(by_length[n - 1])) << 1 if n > 1 else 0
        first[n] = code
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
    pos = 0
    for i in range(count):
        code, n = 0, 0
        while True:
            if pos >= len(bits):
                raise ValueError("Huffman stream ended early")
            code = (code << 1) | bits[pos]
            pos += 1
            n += 1
            if n > max_len:
                raise ValueError("invalid Huffman code in stream")
            offset = code - first[n]
            if 0 <= offset < len(by_length[n]):
                out[i] = by_length[n][offset]
                break
    return out


def coded_bits(symbols: np.ndarray, lengths: np.ndarray) -> int:
    """Exact number of bits ``encode`` uses for ``symbols`` (before padding to whole bytes)."""
    return int(np.asarray(lengths)[np.asarray(symbols, dtype=np.int64)].sum())
