"""Weight sharing: k-means codebooks, sharing that survives fine-tuning, and a compressed file that decodes to
exactly the shared weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.compress.compressed_file import load_compressed, positions_from_index, read_compressed, relative_index
from footseg.compress.compressed_file import write_compressed as write
from footseg.compress.fold_bn import fold_batchnorm
from footseg.compress.prune import channel_prune, magnitude_prune, make_permanent, pruned_info, weight_layers
from footseg.compress.weight_sharing import distinct_values, finish_sharing, kmeans_1d, share_weights
from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model


def _pruned_shared_model(clusters: int = 16, channel_scales: bool = True) -> tuple[torch.nn.Module, dict,
                                                                                     SavedModelInfo]:
    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.5).eval()
    channel_prune(model, 0.25)
    magnitude_prune(model, 0.5)
    make_permanent(model)
    fold_batchnorm(model)  # as compress does: BN gammas and statistics become constant tensors ("fill" records)
    share_weights(model, clusters, channel_scales=channel_scales)
    shared = finish_sharing(model)
    info = pruned_info(model, SavedModelInfo("fastlinknet", 0.5, 2, (64, 64)))
    return model, shared, info


def test_kmeans_finds_obvious_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([-1.0, 0.2, 3.0])
    labels = torch.arange(3).repeat_interleave(200)
    values = centres[labels] + 0.01 * torch.randn(600, generator=gen)
    centroids, got = kmeans_1d(values, 3)
    torch.testing.assert_close(centroids, centres, atol=0.005, rtol=0)
    assert torch.equal(got, labels)
    # More clusters than values: every value becomes its own centroid, no error.
    centroids, got = kmeans_1d(torch.tensor([0.5, -2.0]), 8)
    assert torch.equal(centroids[got], torch.tensor([0.5, -2.0]))


def test_every_weight_sits_on_its_nearest_centroid() -> None:
    values = torch.randn(5000, generator=torch.Generator().manual_seed(1))
    centroids, labels = kmeans_1d(values, 16)
    nearest = (values[:, None] - centroids[None, :]).abs().argmin(1)
    assert torch.equal(centroids[labels], centroids[nearest])


@pytest.mark.parametrize("channel_scales", [False, True])
def test_sharing_leaves_at_most_k_values_per_layer_and_keeps_zeros(tune, channel_scales: bool) -> None:
    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.25).eval()
    magnitude_prune(model, 0.5)
    make_permanent(model)
    zeros = {name: m.weight == 0 for name, m in weight_layers(model)}
    names = share_weights(model, 4, channel_scales=channel_scales)
    assert len(names) == len(weight_layers(model))
    before = {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith("original")}
    tune(model, steps=2)
    after = {k: v.detach() for k, v in model.state_dict().items() if k.endswith("original")}
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the codebooks learned
    shared = finish_sharing(model)
    for name, m in weight_layers(model):
        assert not hasattr(m, "parametrizations")
        assert bool((m.weight[zeros[name]] == 0).all())
        codebook, indices, scales = shared[f"{name}.weight"]
        assert (scales is not None) == channel_scales
        unit = torch.ones(len(m.weight)) if scales is None else scales
        values = codebook[indices] * unit.reshape(-1, *[1] * (m.weight.dim() - 1))
        assert torch.equal(m.weight[~zeros[name]], values[~zeros[name]])
        for channel in range(len(m.weight)):  # each channel: its scale times at most k values
            kept = m.weight[channel][~zeros[name][channel]] / unit[channel]
            assert torch.unique(kept).numel() <= 4
    if not channel_scales:
        assert max(distinct_values(model).values()) <= 4


def test_one_channels_range_does_not_take_the_other_channels_values() -> None:
    # A BatchNorm of near-zero variance folded into a convolution makes one channel's weights hundreds of times the
    # others' (the default network's dec1: 264 against about 1): a plain layer codebook spends its centroids there.
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(8, 4, 3, bias=False)
    with torch.no_grad():
        layer.weight[0] *= 300
    ordinary = layer.weight[1:].detach().clone()
    errors = {}
    for channel_scales in (False, True):
        net = torch.nn.Sequential(torch.nn.Conv2d(8, 4, 3, bias=False))
        net[0].weight.data.copy_(layer.weight.detach())
        share_weights(net, 16, channel_scales=channel_scales)
        finish_sharing(net)
        errors[channel_scales] = float((net[0].weight.detach()[1:] - ordinary).abs().max() / ordinary.abs().max())
    assert errors[False] > 0.5  # the ordinary channels lost their weights to the large one's range
    assert errors[True] < 0.1  # with a scale each, within about half a step of 16 values over their own range


def test_relative_index_round_trip_with_long_gaps() -> None:
    mask = np.zeros(2000, dtype=bool)
    mask[[0, 1, 256, 600, 1999]] = True  # gaps 0, 0, 254, 343 (needs a skip), 1398 (several skips)
    symbols = relative_index(mask, 8)
    assert symbols[:3].tolist() == [0, 0, 254]
    assert np.array_equal(positions_from_index(symbols, 8), np.flatnonzero(mask))
    assert relative_index(np.zeros(5, dtype=bool), 8).size == 0


@pytest.mark.parametrize(("use_huffman", "channel_scales"), [(False, True), (True, True), (True, False)])
def test_file_decodes_to_exactly_the_shared_weights(tmp_path: Path, use_huffman: bool, channel_scales: bool) -> None:
    model, shared, info = _pruned_shared_model(channel_scales=channel_scales)
    state = model.state_dict()
    weights = {f"{name}.weight" for name, _ in weight_layers(model)}
    written = write(tmp_path / "m.fsdc", state, info, shared=shared, sparse=weights, use_huffman=use_huffman)
    assert written["bytes"] == (tmp_path / "m.fsdc").stat().st_size
    # a file with scales is of a version a reader from before them refuses, rather than decode without them
    assert (tmp_path / "m.fsdc").read_bytes()[:5] == (b"FSDC\x02" if channel_scales else b"FSDC\x01")
    # Folded BatchNorms keep one informative vector (the bias) of four; the constant ones cost one value each.
    other_bits = sum(8 * v.numel() * v.element_size() for k, v in state.items() if k not in weights)
    assert written["bits"]["raw"] < 0.3 * other_bits
    decoded, decoded_info = read_compressed(tmp_path / "m.fsdc")
    assert decoded.keys() == state.keys()
    for key, value in state.items():
        assert decoded[key].dtype == value.dtype and torch.equal(decoded[key], value), key
    assert decoded_info == info
    net, _ = load_compressed(tmp_path / "m.fsdc")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


def test_huffman_beats_fixed_width_and_the_dense_file(tmp_path: Path) -> None:
    model, shared, info = _pruned_shared_model()
    state = model.state_dict()
    weights = {f"{name}.weight" for name, _ in weight_layers(model)}
    fixed = write(tmp_path / "f.fsdc", state, info, shared=shared, sparse=weights, use_huffman=False)
    coded = write(tmp_path / "h.fsdc", state, info, shared=shared, sparse=weights, use_huffman=True)
    assert coded["bits"]["indices"] < fixed["bits"]["indices"]
    assert coded["bits"]["positions"] < fixed["bits"]["positions"]
    assert coded["bytes"] < fixed["bytes"]
    nonzero = sum(int((state[k] != 0).sum()) for k in weights)
    assert fixed["bits"]["indices"] == 4 * nonzero  # 16 clusters: 4 bits per surviving weight
    # The conv weights themselves: half of them zero, the rest ~4 coded bits plus a short gap, against 32 bits each.
    weight_bits = coded["bits"]["positions"] + coded["bits"]["indices"] + coded["bits"]["codebooks"]
    channels = sum(len(m.weight) for _, m in weight_layers(model))
    assert coded["bits"]["scales"] == 16 * channels  # beside them, a float16 scale per output channel
    assert weight_bits < sum(32 * state[k].numel() for k in weights) / 8


def test_a_mismatched_codebook_is_refused(tmp_path: Path) -> None:
    model, shared, info = _pruned_shared_model()
    name = next(iter(shared))
    codebook, indices, scales = shared[name]
    shared[name] = (codebook + 1.0, indices, scales)
    with pytest.raises(ValueError, match="codebook"):
        write(tmp_path / "m.fsdc", model.state_dict(), info, shared=shared)


def test_corrupt_files_are_user_errors(tmp_path: Path) -> None:
    model, shared, info = _pruned_shared_model()
    path = tmp_path / "m.fsdc"
    write(path, model.state_dict(), info, shared=shared)
    blob = path.read_bytes()
    (tmp_path / "bad.fsdc").write_bytes(b"nope" + blob[4:])
    with pytest.raises(FootsegError, match="magic"):
        read_compressed(tmp_path / "bad.fsdc")
    (tmp_path / "cut.fsdc").write_bytes(blob[:40])
    with pytest.raises(FootsegError, match="corrupt"):
        read_compressed(tmp_path / "cut.fsdc")
    with pytest.raises(FootsegError, match="cannot read"):
        read_compressed(tmp_path / "missing.fsdc")


def test_a_header_naming_a_foreign_dtype_is_a_corrupt_file(tmp_path: Path) -> None:
    import json
    import struct
    import zlib

    from footseg.compress.compressed_file import MAGIC

    model, shared, info = _pruned_shared_model()
    path = tmp_path / "m.fsdc"
    write(path, model.state_dict(), info, shared=shared)
    blob = path.read_bytes()
    (n,) = struct.unpack_from("<I", blob, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(zlib.decompress(blob[start : start + n]))
    header["tensors"][0]["dtype"] = "load"  # an attribute of torch, not a dtype
    packed = zlib.compress(json.dumps(header).encode())
    (tmp_path / "evil.fsdc").write_bytes(MAGIC + struct.pack("<I", len(packed)) + packed + blob[start + n :])
    with pytest.raises(FootsegError, match=r"evil\.fsdc: corrupt compressed model .*unknown dtype 'load'"):
        read_compressed(tmp_path / "evil.fsdc")
