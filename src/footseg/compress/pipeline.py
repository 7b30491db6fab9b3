"""``footseg compress``: channel pruning, magnitude pruning, weight sharing and Huffman coding, step by step.

The steps build on each other, and each is fine-tuned with the training loss before it is scored:

1. channel pruning (structured): a genuinely narrower network, fewer parameters, FLOPs and milliseconds. It comes
   first because fine-tuning a narrower dense network afterwards is ordinary training, while zeros from step 2
   would have to be kept masked through it;
2. magnitude pruning (unstructured), stored as sparse float32 weights with an 8-bit relative index;
3. weight sharing: BatchNorms folded into the convs (``footseg.compress.fold_bn``), then k-means codebooks per layer
   in units of each output channel's scale (``--layer-codebooks``: plain, as the paper), cluster indices at a fixed
   log2(k) bits, centroids fine-tuned with the BatchNorm statistics frozen;
4. Huffman coding of the cluster indices and of the relative index (steps 2-4 are Han et al.'s deep compression).

Every step reports the bytes of the artefact it writes (a safetensors model folder for step 1, a ``.fsdc`` file for
steps 2-4), the compression ratio against the input model's fp32 ``model.safetensors``, parameters, non-zero weights,
GFLOPs and 1-thread PyTorch latency at the model's input size, and foot IoU on the test split of ``data`` and on
``real`` photos. Step 4 is scored on the network decoded back from its file, so the number is that of the artefact.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from footseg.atomic import atomic_write_text
from footseg.bench.cost import measure_model
from footseg.compress.compressed_file import SUFFIX, load_compressed, write_compressed
from footseg.compress.fold_bn import fold_batchnorm
from footseg.compress.prune import (
    at_argmax,
    channel_prune,
    magnitude_prune,
    make_permanent,
    pruned_info,
    sparsity,
    weight_layers,
)
from footseg.compress.weight_sharing import finish_sharing, share_weights
from footseg.config import TrainConfig
from footseg.data.samples import find_samples, has_splits, split_folder
from footseg.errors import FootsegError
from footseg.eval.evaluate import evaluate
from footseg.models.info import WEIGHTS_NAME, SavedModelInfo
from footseg.models.saved import save_model
from footseg.one_writer import one_writer
from footseg.runtime.resolve import ModelRef, resolve_model
from footseg.train.trainer import finetune


@dataclass
class CompressSettings:
    prune_amount: float = 0.5  # fraction of conv/linear weights set to zero (0 skips the step)
    channel_ratio: float = 0.25  # fraction of channels removed from every prunable group (0 skips the step)
    clusters: int = 16  # shared values per layer (16 = 4-bit indices)
    channel_scales: bool = True  # shared in units of each output channel's scale (weight_sharing's doc); False: plain
    finetune_steps: int = 100  # at least this many training steps after each step (whole epochs of the trainer)
    importance: str = "l1"  # channel importance: "l1" or "bn"
    # Kept channel counts are multiples of this: ORT (NCHWc) and XNNPACK work in blocks of 8 channels, so 12 channels
    # cost as much as 16 and pruning to them would save parameters but no time.
    channel_multiple: int = 8
    lr: float = 5e-4
    batch_size: int = 8
    workers: int = 0
    loss: str = "ce+iou"
    runs: int = 20  # timed forwards per latency measurement
    threads: int = 1

    def validate(self) -> None:
        if not 0.0 <= self.prune_amount < 1.0:
            raise FootsegError(f"--prune-amount must be in [0, 1), got {self.prune_amount}")
        if not 0.0 <= self.channel_ratio < 1.0:
            raise FootsegError(f"--channel-ratio must be in [0, 1), got {self.channel_ratio}")
        if not 2 <= self.clusters <= 256:
            raise FootsegError(f"--clusters must be between 2 and 256, got {self.clusters}")
        if self.finetune_steps < 0:
            raise FootsegError(f"--finetune-steps must be at least 0, got {self.finetune_steps}")
        if self.channel_multiple < 1:
            raise FootsegError(f"--channel-multiple must be at least 1, got {self.channel_multiple}")


def _nonzero_weights(model: nn.Module) -> int:
    return sum(int((m.weight.detach() != 0).sum()) for _, m in weight_layers(model))


class _Reporter:
    """Scores one model per step and collects the rows of the report."""

    def __init__(self, data: Path, real: Path | None, size: int, baseline_bytes: int, settings: CompressSettings):
        self.data, self.real, self.size = data, real, size
        self.baseline_bytes = baseline_bytes
        self.settings = settings
        self.rows: list[dict] = []

    def add(self, step: str, model: nn.Module, info: SavedModelInfo, artefact: Path, nbytes: int, **extra) -> dict:
        cost = measure_model(model, size=self.size, threads=self.settings.threads, runs=self.settings.runs)
        row = {
            "step": step,
            "artefact": str(artefact),
            "bytes": nbytes,
            "ratio": self.baseline_bytes / nbytes,
            "params": cost["params"],
            "nonzero_weights": _nonzero_weights(model),
            "sparsity": sparsity(model),
            "gflops": cost["gflops"],
            "latency_ms": cost["latency_ms"],
            "test_iou": evaluate((model, info), self.data, "test")["iou"],
            "real_iou": evaluate((model, info), self.real)["iou"] if self.real is not None else None,
            **extra,
        }
        self.rows.append(row)
        return row


def compress(
    model_dir: str | Path | ModelRef | None,
    data: str | Path,
    out: str | Path,
    real: str | Path | None = None,
    settings: CompressSettings | None = None,
) -> dict:
    """Run the compression steps on the saved model ``model_dir``; write ``out/compress.md`` and ``compress.json``.

    ``model_dir`` is anything ``resolve_model`` takes (a saved or run folder, a shipped name, None for the default).
    ``data`` must have train/ and val/ (fine-tuning) and test/ (scoring) splits; ``real`` is a flat folder of
    labelled photos. Returns the report as a dict (``rows``: one per step).
    """
    settings = settings or CompressSettings()
    settings.validate()
    data, out = Path(data), Path(out)
    real = Path(real) if real is not None else None
    if not has_splits(data):
        raise FootsegError("compress needs a dataset with train/, val/ (fine-tuning) and test/ (scoring) splits", data)
    with one_writer(out, hint="choose another --out"):
        if any(out.iterdir()):  # an earlier compression's report and models, or someone's files
            raise FootsegError("already holds files: choose another --out (or delete it)", out)
        return _compress_held(model_dir, data, out, real, settings)


def _compress_held(model_dir: str | Path | ModelRef | None, data: Path, out: Path, real: Path | None,
                   settings: CompressSettings) -> dict:
    ref = resolve_model(model_dir)
    model_dir = ref.folder
    model, info = ref.load()
    size = int(info.trained_size[0])  # every row is timed and scored at the side the network was trained at
    baseline_bytes = (model_dir / WEIGHTS_NAME).stat().st_size
    report = _Reporter(data, real, size, baseline_bytes, settings)
    # scored as every step is, at the argmax: the steps' weights have no operating point of their own (pruned_info)
    report.add("fp32 input model", model, at_argmax(info), model_dir / WEIGHTS_NAME, baseline_bytes)

    # Fine-tuning goes through the trainer: whole epochs of at most one pass each, enough for finetune_steps steps.
    batches = max(1, math.ceil(len(find_samples(split_folder(data, "train"))) / settings.batch_size))
    steps_per_epoch = min(batches, max(1, settings.finetune_steps))
    epochs = math.ceil(settings.finetune_steps / steps_per_epoch)

    def tune(net: nn.Module, freeze_bn: bool = False) -> list[float]:
        if settings.finetune_steps == 0:
            return []
        with tempfile.TemporaryDirectory(prefix="footseg-compress-") as run:
            cfg = TrainConfig(model=info.model, data=str(data), out=run, width=info.width,
                              num_classes=info.num_classes, size=info.trained_size[0], epochs=epochs,
                              batch_size=settings.batch_size,
                              lr=settings.lr, loss=settings.loss, workers=settings.workers,
                              steps_per_epoch=steps_per_epoch, progress=False, freeze_bn=freeze_bn, device="cpu",
                              # a prior-mask network fine-tunes on the 4-channel input it was trained on
                              prior=info.in_channels == 4)
            return [row["train_loss"] for row in finetune(net, cfg)]

    if settings.channel_ratio > 0:
        before = sum(p.numel() for p in model.parameters())
        channel_prune(model, settings.channel_ratio, size=size, importance=settings.importance,
                      round_to=settings.channel_multiple)
        if sum(p.numel() for p in model.parameters()) == before:  # a row for a step that did nothing would mislead
            raise FootsegError(f"channel pruning removed nothing: --channel-multiple {settings.channel_multiple} is "
                               "wider than the layers it would round; give a smaller one")
        losses = tune(model)
        info = pruned_info(model, info, compressed_from=str(model_dir), channel_ratio=settings.channel_ratio)
        folder = save_model(model, out / "channel", info)
        report.add(
            f"channel pruning ({settings.channel_ratio:.0%} of channels, {settings.importance})",
            model,
            info,
            folder / WEIGHTS_NAME,
            (folder / WEIGHTS_NAME).stat().st_size,
            final_loss=_last(losses),
        )

    weight_names = {f"{name}.weight" for name, _ in weight_layers(model)}
    if settings.prune_amount > 0:
        magnitude_prune(model, settings.prune_amount)
        losses = tune(model)
        make_permanent(model)
        info = pruned_info(model, info, prune_amount=settings.prune_amount)
        save_model(model, out / "magnitude", info)
        path = out / f"magnitude{SUFFIX}"
        written = write_compressed(path, model.state_dict(), info, sparse=weight_names, use_huffman=False)
        report.add(
            f"magnitude pruning ({settings.prune_amount:.0%} of weights, 8-bit relative index)",
            model,
            info,
            path,
            written["bytes"],
            final_loss=_last(losses),
            bits=written["bits"],
        )

    folded = fold_batchnorm(model)  # cluster the weights the network really multiplies by; BNs become biases
    share_weights(model, settings.clusters, channel_scales=settings.channel_scales)
    losses = tune(model, freeze_bn=True)  # codebooks and biases train; indices, zeros and the fold stay fixed
    shared = finish_sharing(model)
    info = pruned_info(model, info, clusters=settings.clusters)
    save_model(model, out / "shared", info)
    path = out / f"shared-fixed{SUFFIX}"
    written = write_compressed(path, model.state_dict(), info, shared=shared, sparse=weight_names, use_huffman=False)
    bits = max(1, (settings.clusters - 1).bit_length())
    report.add(
        f"weight sharing ({settings.clusters} clusters, {bits}-bit indices, "
        f"{'per-channel scales' if settings.channel_scales else 'one codebook per layer'}, BN folded)",
        model,
        info,
        path,
        written["bytes"],
        final_loss=_last(losses),
        bits=written["bits"],
        folded_batchnorms=folded,
    )

    path = out / f"model{SUFFIX}"
    written = write_compressed(path, model.state_dict(), info, shared=shared, sparse=weight_names, use_huffman=True)
    decoded, decoded_info = load_compressed(path)
    expected = model.state_dict()
    exact = all(torch.equal(decoded.state_dict()[k], v) for k, v in expected.items())
    if not exact:
        raise RuntimeError(f"{path} does not decode to the weights it was written from")
    report.add(
        "Huffman coding (decoded from the file)",
        decoded,
        decoded_info,
        path,
        written["bytes"],
        bits=written["bits"],
        decodes_exactly=exact,
    )

    result = {
        "model": str(model_dir),
        "data": str(data),
        "real": str(real) if real is not None else None,
        "input_size": list(info.input_size),
        "settings": asdict(settings),
        "rows": report.rows,
    }
    atomic_write_text(out / "compress.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "compress.md", format_report(result))
    return result


def _last(values: list[float]) -> float | None:
    return values[-1] if values else None


def format_report(result: dict) -> str:
    """Markdown table of a ``compress`` result, with a footer on what was measured."""
    rows = result["rows"]
    real = result.get("real") is not None
    head = "| step | size | ratio | params | non-zero weights | GFLOPs | latency (ms) | test IoU |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if real:
        head += " real IoU |"
        rule += "---:|"
    lines = [f"# Compression of {result['model']}", "", head, rule]
    for r in rows:
        line = (
            f"| {r['step']} | {r['bytes'] / 1024:.1f} KiB | {r['ratio']:.1f}x | {r['params']:,} | "
            f"{r['nonzero_weights']:,} | {r['gflops']:.3f} | {r['latency_ms']:.1f} | {r['test_iou']:.4f} |"
        )
        if real:
            line += f" {r['real_iou']:.4f} |"
        lines.append(line)
    s = result["settings"]
    h, w = result["input_size"]
    lines += [
        "",
        f"Steps are cumulative; each is fine-tuned for {s['finetune_steps']} steps ({s['loss']} loss, Adam, lr "
        f"{s['lr']}) on the train split of {result['data']}. Size: bytes on disk of the step's artefact (the fp32 "
        f"safetensors file for the input and the channel-pruned model, the `.fsdc` file for the others); ratio "
        f"against the input's fp32 safetensors. GFLOPs and latency: PyTorch eager, dense weights, 1x3x{h}x{w}, "
        f"{s['threads']} thread(s), median of {s['runs']} runs -- sparsity and sharing shrink the file, not the "
        f"dense compute. IoU: foot IoU on the test split" + (f" and on {result['real']}" if real else "")
        + ", every row at the argmax (threshold 0.5, no region peak or presence gate), the input's own operating point "
        "left aside: the steps' weights have none until `footseg threshold` chooses one for them. The `.fsdc` files "
        "are storage, the thesis's measure of size (`footseg.compress.compressed_file.load_compressed` decodes one); "
        "the folders `channel/`, `magnitude/` and `shared/` (of the steps that ran) hold their weights as model "
        "folders, which `footseg export` and every other verb take (an export stores every weight whole: 32-bit, or "
        "8-bit in int8).",
    ]
    return "\n".join(lines) + "\n"
