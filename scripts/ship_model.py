"""Ship a trained model inside the package: copy RUN/best to footseg/models/pretrained/<name>/ and write its card.

The card states the training data (the synth manifest's settings), the training settings, and the scores on the
synthetic test split and on real photos (per image). The picture of the worst real images goes to RUN/, never into
the package: the real photos are for evaluation only and must not ship.

    .venv/bin/python scripts/ship_model.py RUN --data SYNTH_DIR [--real ../shared/data/real-dev]
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from footseg.bench.cost import measure_model, time_onnx
from footseg.deploy.export import FP32_NAME, export_onnx
from footseg.eval.clips import evaluate_clips
from footseg.eval.evaluate import evaluate
from footseg.eval.figures import worst_cases_figure
from footseg.models.info import CONFIG_NAME, LAYER_SHAPES_KEY, PRETRAINED_DIR, WEIGHTS_NAME
from footseg.models.saved import load_model
from footseg.provenance import sha256_file


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="training run folder (with best/)")
    ap.add_argument("--data", type=Path, required=True, help="the synthetic dataset it was trained on")
    ap.add_argument("--real", type=Path, default=None, help="flat folder of real photos with masks (evaluation only)")
    ap.add_argument("--history", default="", help="Markdown: how the --init weights were trained, for the card")
    ap.add_argument("--name", default=None, help="shipped name (default: the architecture's, e.g. fastlinknet)")
    ap.add_argument("--clips", type=Path, action="append", default=[],
                    help="clip datasets to score the model on in its default video mode (real ones evaluation only)")
    args = ap.parse_args()

    best = args.run / "best"
    model, info = load_model(best)
    name = args.name or info.model
    dest = PRETRAINED_DIR / name
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copy2(best / name, dest / name)
    # its fp32 export, which footseg runs in the weights' place on a CPU (and an older one would no longer match them)
    exported = export_onnx(dest, dest / FP32_NAME)

    manifest = json.loads((args.data / "manifest.json").read_text())
    cost = measure_model(model, size=info.input_size[0], threads=1, runs=30)
    onnx_cost = time_onnx(exported, threads=1, runs=200, min_time=2)
    shapes = info.extra.get(LAYER_SHAPES_KEY)
    synth = evaluate(dest, args.data, split="test")
    lines = [
        f"# {name} (shipped model: {info.model}" + (", prior-mask network for video)" if info.in_channels == 4
                                                     else ")"),
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d} by `scripts/ship_model.py`. Load it by name: "
        f"`footseg eval {name} --data DIR`, `footseg predict {name} PHOTOS --out DIR`"
        + (f", `footseg video {name} VIDEO --out DIR`." if info.in_channels == 4 else "."),
        "",
        "## Training data",
        "",
        f"Only synthetic images from `footseg synth` (no real photo was used in training): {manifest['n']} images, "
        f"seed {manifest['seed']}, {manifest['size']} px, split {manifest['counts']}.",
        *(["", "Made of these renders, each split the union of theirs:", "",
           *(f"- `{name}`: {how}" for name, how in manifest["sources"].items())] if "sources" in manifest else []),
        "",
        "```json",
        json.dumps(manifest["settings"], indent=1),
        "```",
        "",
        "Floor photos (when `floors` is set) are the indoor-surface photos of FieldRoboticsLab's "
        "Dataset-for-Indoor-Surface-Classification (please cite \"Indoor Surface Classification for Mobile Robots\", "
        "PeerJ Computer Science, 2023); FIND feet (when `find` is set) come from the MIT-licensed FIND model "
        "(Boyne et al., BMVC 2022).",
        "",
        "## Training settings",
        "",
        "```json",
        json.dumps(info.extra.get("train_config", {}), indent=1),
        "```",
        "",
        f"Best epoch {info.extra.get('epoch')}, validation IoU {_pct(info.extra.get('val_iou', 0))}%.",
        *(["", "## How the starting weights were trained", "", args.history] if args.history else []),
        "",
        "## Cost",
        "",
        f"Input {info.input_size[0]}x{info.input_size[1]} RGB in [0, 1]"
        + (" and the previous frame's foot probability" if info.in_channels == 4 else "")
        + f"; {cost['params']:,} parameters, "
        f"{cost['gflops']:.3f} GFLOPs (2 per multiply-add), {cost['size_mb']:.2f} MB fp32; "
        f"median latency at 1 thread on the machine that wrote this card: {onnx_cost['latency_ms']:.2f} ms in ONNX "
        f"Runtime fp32 (`footseg export`), {cost['latency_ms']:.1f} ms in PyTorch eager. "
        "`footseg bench` measures it at any input size and in int8.",
        "",
        f"Shipped beside the weights: `{FP32_NAME}`, sha256 `{sha256_file(exported)}`, the fp32 export of these "
        "weights and config by `footseg export`, with the weights' sha256 in its metadata. On a CPU footseg runs it in "
        "their place, in ONNX Runtime (`footseg.runtime.onnx_model.own_export`).",
        *(["", f"Channel-pruned (`footseg compress`): {len(shapes)} layers are narrower than `create_model` builds "
               "them; `config.json` records their widths (`layer_shapes`), so `load_model` rebuilds the network."]
          if shapes else []),
        "",
        "## Scores",
        "",
        "| data | images | accuracy (%) | foot IoU (%) | mean IoU (%) |",
        "|---|---|---|---|---|",
        f"| synthetic test split | {synth['n']} | {_pct(synth['accuracy'])} | {_pct(synth['iou'])} | "
        f"{_pct(synth['miou'])} |",
    ]
    if args.real:
        real = evaluate(dest, args.real)
        lines.append(f"| real photos (`{args.real.name}`) | {real['n']} | {_pct(real['accuracy'])} | "
                     f"{_pct(real['iou'])} | {_pct(real['miou'])} |")
        figure = worst_cases_figure(dest, args.real, args.run / "worst_real.png", k=5, scores=real)
        lines += ["", "### Per real image", "", "| image | IoU (%) | accuracy (%) |", "|---|---|---|"]
        for r in sorted(real["per_image"], key=lambda r: r["iou"]):
            lines.append(f"| {r['stem']} | {_pct(r['iou'])} | {_pct(r['accuracy'])} |")
        lines += ["", "The picture of the five worst real images is not shipped (the photos may not be); "
                  f"`scripts/ship_model.py` drew it to `{figure}`."]
    if args.clips:
        lines += ["", "## On video (its default video mode, `footseg eval --clips`)", "",
                  "| clips | clips x frames | foot IoU (%) | flicker (%) | ms/frame (1 thread) | runtime |",
                  "|---|---|---|---|---|---|"]
        for clips in args.clips:
            s = evaluate_clips(dest, clips)
            lines.append(f"| `{clips.name}` ({s['mode']}) | {s['n_clips']} x {s['n_frames'] // s['n_clips']} | "
                         f"{_pct(s['iou'])} | {s['flicker']:.2f} | {s['latency_ms']:.1f} | {s['runtime']} |")
    (dest / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    print(f"shipped {best} as {dest}")


if __name__ == "__main__":
    main()
