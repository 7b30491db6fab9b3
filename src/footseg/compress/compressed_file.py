"""The deep-compression file (``.fsdc``): sparse, weight-shared and Huffman-coded weights of a saved model.

Layout: ``MAGIC``, a little-endian uint32 header length, the zlib-compressed JSON header, then the payload bytes.
The header holds the model's ``SavedModelInfo`` (so the file alone rebuilds the network) and one record per tensor
of the state dict:

- ``raw``: the tensor's bytes as they are (BatchNorm parameters and statistics, biases, small tensors);
- ``fill``: one value, for a tensor whose elements are all equal (e.g. the gammas of folded BatchNorms);
- ``sparse``: the non-zero positions as a relative index (Han et al. 2016: the gap to the previous non-zero in
  ``index_bits``-bit symbols; the largest symbol means "skip that many positions and keep going", so gaps of any
  length fit), omitted when the tensor has no zeros, and the non-zero values either as float32 or as cluster indices
  into a per-tensor float32 codebook (weight sharing), each times its output channel's float16 scale where the record
  has ``scales`` (``footseg.compress.weight_sharing``). Each symbol stream is stored with a fixed bit width or
  Huffman-coded (``footseg.compress.huffman``), whichever ``huffman`` asks for.

``read_compressed`` decodes a file back to exactly the tensors it was written from.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from footseg.atomic import atomic_write_bytes
from footseg.compress import huffman
from footseg.errors import FootsegError
from footseg.models.info import SavedModelInfo, info_from_dict, info_to_dict
from footseg.models.saved import build_model

MAGIC = b"FSDC\x01"  # files without per-channel scales, which every reader decodes
MAGIC_SCALES = b"FSDC\x02"  # files with them: a reader from before them refuses these rather than misread them
SUFFIX = ".fsdc"
INDEX_BITS = 8  # relative-index width, as deep compression used for conv layers


def relative_index(mask: np.ndarray, index_bits: int = INDEX_BITS) -> np.ndarray:
    """Gap symbols for the True positions of the flat boolean ``mask``; ``2**index_bits - 1`` means "skip"."""
    skip = (1 << index_bits) - 1
    positions = np.flatnonzero(mask)
    gaps = np.diff(positions, prepend=-1) - 1
    jumps = gaps // skip  # how many skip symbols precede each non-zero
    out = np.full(int(jumps.sum()) + len(gaps), skip, dtype=np.int64)
    ends = np.cumsum(jumps + 1) - 1  # where each non-zero's own gap symbol lands
    out[ends] = gaps - jumps * skip
    return out


def positions_from_index(symbols: np.ndarray, index_bits: int = INDEX_BITS) -> np.ndarray:
    """Inverse of ``relative_index``: the flat positions of the non-zeros."""
    skip = (1 << index_bits) - 1
    steps = np.where(symbols == skip, skip, symbols + 1)
    pos = np.cumsum(steps) - 1
    return pos[symbols != skip]


def _pack_fixed(symbols: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((symbols[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def _unpack_fixed(data: bytes, bits: int, count: int) -> np.ndarray:
    raw = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits).astype(np.int64)
    return raw @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


class _Writer:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0

    def add(self, data: bytes) -> dict:
        self.chunks.append(data)
        record = {"offset": self.offset, "nbytes": len(data)}
        self.offset += len(data)
        return record

    def stream(self, symbols: np.ndarray, alphabet: int, use_huffman: bool) -> dict:
        """Store a symbol stream; the record says how, and how many bits its symbols take."""
        bits = max(1, int(alphabet - 1).bit_length())
        if use_huffman:
            lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
            record = self.add(huffman.encode(symbols, lengths))
            return {
                **record,
                "coding": "huffman",
                "lengths": lengths.tolist(),
                "count": len(symbols),
                "bits": huffman.coded_bits(symbols, lengths),
            }
        record = self.add(_pack_fixed(symbols, bits) if len(symbols) else b"")
        return {**record, "coding": "fixed", "width": bits, "count": len(symbols), "bits": bits * len(symbols)}


def _chunk(payload: bytes, record: dict) -> bytes:
    """The bytes a ``_Writer.add`` record names."""
    return payload[record["offset"] : record["offset"] + record["nbytes"]]


def _read_stream(payload: bytes, record: dict) -> np.ndarray:
    data = _chunk(payload, record)
    if record["coding"] == "huffman":
        return huffman.decode(data, np.asarray(record["lengths"]), record["count"])
    return _unpack_fixed(data, record["width"], record["count"])


def write_compressed(
    path: str | Path,
    state: dict[str, torch.Tensor],
    info: SavedModelInfo,
    shared: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] | None = None,
    sparse: set[str] | None = None,
    use_huffman: bool = True,
    index_bits: int = INDEX_BITS,
) -> dict:
    """Write ``state`` to ``path``; returns a summary (bytes on disk and bits per kind of data).

    ``shared`` maps tensor names to ``(codebook (k,), indices (same shape, int), scales (one per output channel) or
    None)`` for weight-shared tensors (their zeros are the pruned positions: zero entries in ``state``); ``sparse``
    names the other tensors stored as sparse
    float32. Every other tensor is stored raw.
    """
    shared = shared or {}
    sparse = set(sparse or ()) - set(shared)
    writer = _Writer()
    records = []
    bits = {"raw": 0, "positions": 0, "indices": 0, "codebooks": 0, "scales": 0, "values": 0}
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        record: dict = {"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        if name in shared or name in sparse:
            if t.dtype != torch.float32:
                raise ValueError(f"sparse tensor {name} must be float32, got {t.dtype}")
            flat = t.numpy().ravel()
            mask = flat != 0
            record["kind"] = "sparse"
            record["nnz"] = int(mask.sum())
            if mask.all():
                record["positions"] = None
            else:
                record["positions"] = writer.stream(relative_index(mask, index_bits), 1 << index_bits, use_huffman)
                record["index_bits"] = index_bits
                bits["positions"] += record["positions"]["bits"]
            if name in shared:
                codebook, indices, scales = shared[name]
                codebook = codebook.detach().cpu().to(torch.float32).numpy()
                idx = indices.detach().cpu().numpy().ravel()[mask].astype(np.int64)
                values = codebook[idx]
                if scales is not None:
                    scales = scales.detach().cpu().to(torch.float32).numpy()
                    if len(scales) != t.shape[0]:
                        raise ValueError(f"tensor {name} has {t.shape[0]} channels and {len(scales)} scales")
                    stored = scales.astype(np.float16)
                    if not np.array_equal(stored.astype(np.float32), scales):
                        raise ValueError(f"the scales of {name} are not float16 values")
                    values = values * scales[_channels(np.flatnonzero(mask), t.shape)]
                    record["scales"] = writer.add(stored.tobytes())
                    bits["scales"] += 16 * len(scales)
                if not np.array_equal(values, flat[mask]):
                    raise ValueError(f"tensor {name} does not equal its codebook entries")
                record["codebook"] = writer.add(codebook.tobytes())
                record["codebook"]["k"] = len(codebook)
                record["indices"] = writer.stream(idx, len(codebook), use_huffman)
                bits["codebooks"] += 32 * len(codebook)
                bits["indices"] += record["indices"]["bits"]
            else:
                record["values"] = writer.add(flat[mask].astype(np.float32).tobytes())
                bits["values"] += 32 * record["nnz"]
        elif t.numel() > 1 and bool((t == t.flatten()[0]).all()):
            # Constant tensors (e.g. the gammas and statistics of folded BatchNorms) need one value, not all.
            record["kind"] = "fill"
            record["data"] = writer.add(t.flatten()[:1].numpy().tobytes())
            bits["raw"] += 8 * t.element_size()
        else:
            record["kind"] = "raw"
            data = t.numpy().tobytes() if t.numel() else b""
            record["data"] = writer.add(data)
            bits["raw"] += 8 * len(data)
        records.append(record)
    text = json.dumps({"info": info_to_dict(info), "tensors": records}, separators=(",", ":"))
    header = zlib.compress(text.encode(), 9)
    magic = MAGIC_SCALES if any("scales" in record for record in records) else MAGIC
    blob = magic + struct.pack("<I", len(header)) + header + b"".join(writer.chunks)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, blob)
    return {"path": str(path), "bytes": len(blob), "header_bytes": len(header), "bits": bits}


def read_compressed(path: str | Path) -> tuple[dict[str, torch.Tensor], SavedModelInfo]:
    """Decode a ``.fsdc`` file to its state dict and model info. Raises ``FootsegError`` for a bad file."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise FootsegError(f"cannot read compressed model ({exc.strerror})", path) from exc
    if not blob.startswith((MAGIC, MAGIC_SCALES)) or len(blob) < len(MAGIC) + 4:
        raise FootsegError("not a footseg compressed model (bad magic bytes)", path)
    try:
        (n,) = struct.unpack_from("<I", blob, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(zlib.decompress(blob[start : start + n]))
        payload = blob[start + n :]
        info = info_from_dict(header["info"])
        state = {rec["name"]: _decode_tensor(payload, rec) for rec in header["tensors"]}
    except (zlib.error, json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError, struct.error) as exc:
        raise FootsegError(f"corrupt compressed model ({type(exc).__name__}: {exc})", path) from exc
    return state, info


# What a state dict of ours holds; a name read from the file is looked up here, never as an attribute of torch.
_DTYPES = {name: getattr(torch, name) for name in ("float32", "float16", "bfloat16", "float64", "int64", "int32",
                                                   "int16", "int8", "uint8", "bool")}


def _decode_tensor(payload: bytes, rec: dict) -> torch.Tensor:
    dtype = _DTYPES.get(rec["dtype"])
    if dtype is None:
        raise ValueError(f"tensor {rec['name']}: unknown dtype {rec['dtype']!r}")
    shape = tuple(rec["shape"])
    if rec["kind"] in ("raw", "fill"):
        chunk = _chunk(payload, rec["data"])
        if not chunk:
            return torch.empty(shape, dtype=dtype)
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        values = torch.from_numpy(np.frombuffer(chunk, dtype=np_dtype).copy())
        return values.expand(shape).clone() if rec["kind"] == "fill" else values.reshape(shape)
    numel = int(np.prod(shape, dtype=np.int64))
    flat = np.zeros(numel, dtype=np.float32)
    if rec["positions"] is None:
        positions = np.arange(numel)
    else:
        positions = positions_from_index(_read_stream(payload, rec["positions"]), rec["index_bits"])
    if len(positions) != rec["nnz"] or (len(positions) and positions[-1] >= numel):
        raise ValueError(f"position stream of {rec['name']} does not match its shape")
    if "codebook" in rec:
        codebook = np.frombuffer(_chunk(payload, rec["codebook"]), dtype=np.float32)
        values = codebook[_read_stream(payload, rec["indices"])]
        if "scales" in rec:
            scales = np.frombuffer(_chunk(payload, rec["scales"]), dtype=np.float16).astype(np.float32)
            if len(scales) != shape[0]:
                raise ValueError(f"scales of {rec['name']} do not match its channels")
            values = values * scales[_channels(positions, shape)]
        flat[positions] = values
    else:
        flat[positions] = np.frombuffer(_chunk(payload, rec["values"]), dtype=np.float32)
    return torch.from_numpy(flat).reshape(shape)


def _channels(positions: np.ndarray, shape: tuple[int, ...] | torch.Size) -> np.ndarray:
    """The channel of each flat position in a tensor of ``shape``: its first dimension (a conv's output channels, a
    transposed conv's input channels)."""
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    return positions // max(per_channel, 1)


def load_compressed(path: str | Path) -> tuple[nn.Module, SavedModelInfo]:
    """Rebuild the network stored in a ``.fsdc`` file (eval mode), as ``load_model`` does for a model folder."""
    state, info = read_compressed(path)
    model = build_model(info)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FootsegError(f"weights do not match model '{info.model}': {str(exc).splitlines()[0]}", path) from exc
    return model.eval(), info
