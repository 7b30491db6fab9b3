"""The result of a recipe run, ``DIR/model/``: the model folder of the result stage, its exports, the recipe file
and MODEL_CARD.md, which records the recipe verbatim, the software every stage ran on (footseg's commit, torch, ONNX
Runtime, the OpenGL driver of the renders) and the sha256 of every dataset manifest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from footseg.atomic import atomic_copy, atomic_write_text
from footseg.data.synth.engine import MANIFEST
from footseg.models.info import LAYER_SHAPES_KEY, MIN_STRIDE_KEY, WEIGHTS_NAME, SavedModelInfo, read_info, write_info
from footseg.provenance import sha256_file
from footseg.recipe.layout import EXPORT_FILES, RESULT
from footseg.recipe.schema import RECIPE_NAME, SHIPPED, Stage, describe

if TYPE_CHECKING:
    from footseg.recipe.runner import RecipeRun

CARD_NAME = "MODEL_CARD.md"


def write_result(run: RecipeRun) -> Path:
    """Fill ``DIR/model`` from the finished stages; returns it."""

    recipe = run.recipe
    dest = run.out / RESULT
    dest.mkdir(parents=True, exist_ok=True)
    source = run.model_folder(recipe.result)
    for name in ("config.json", WEIGHTS_NAME):
        atomic_copy(source / name, dest / name)
    exports = [s for s in recipe.stages if s.kind == "export" and s.settings["model"] == recipe.result]
    int8 = [s for s in exports if s.settings["format"] == "onnx-int8"]
    info = read_info(dest)
    if int8:  # later int8 exports of the model (footseg export, the web page, bench) then make the recipe's file
        info.extra[MIN_STRIDE_KEY] = int8[-1].settings["min_stride"]
        write_info(dest, info)
    for stage in exports:
        target = dest / EXPORT_FILES[stage.settings["format"]]
        atomic_copy(run.export_file(stage), target)
        if int8:  # the config changed after the export stages ran
            _carry_config(target, info)
    for name in set(EXPORT_FILES.values()) - {EXPORT_FILES[s.settings["format"]] for s in exports}:
        (dest / name).unlink(missing_ok=True)  # an export the recipe no longer makes
    atomic_write_text(dest / RECIPE_NAME, recipe.text)
    atomic_write_text(dest / CARD_NAME, model_card(run, dest))
    return dest


def _carry_config(path: Path, info: SavedModelInfo) -> None:
    """Give an export in ``DIR/model`` the metadata of the folder's config.json, which gained the int8 export's
    ``min_stride`` after the export stages ran: so the folder's ``model.onnx`` is what `footseg export` makes of the
    folder, byte for byte, and an int8 export of that file quantizes as the recipe did."""
    from footseg.deploy.export import save_onnx, set_metadata
    from footseg.runtime.onnx_model import (
        KEY_PREFIX,
        OUTPUT_KEY,
        PRECISION_KEY,
        WEIGHTS_KEY,
        info_to_metadata,
        read_onnx,
    )

    proto = read_onnx(path)
    had = {p.key: p.value for p in proto.metadata_props if p.key.startswith(KEY_PREFIX)}
    meta = info_to_metadata(info, had.get(PRECISION_KEY, "fp32"), had.get(OUTPUT_KEY), had.get(WEIGHTS_KEY))
    if had != meta:
        set_metadata(proto, meta)
        save_onnx(proto, path)


def _by_value(stamps: dict[str, dict], get: Callable[[dict], object]) -> str:
    """One value, or each value with the stages that had it ('2.13.0 (a, b); 2.12.0 (c)')."""
    values: dict[str, list[str]] = {}
    for name, stamp in stamps.items():
        value = get(stamp)
        if value is not None:
            values.setdefault(str(value), []).append(name)
    if len(values) <= 1:
        return next(iter(values), "-")
    return "; ".join(f"{v} ({', '.join(names)})" for v, names in values.items())


def _commit(env: dict) -> str | None:
    if "commit" not in env:
        return "not a git checkout"
    return env["commit"] + (" with uncommitted changes" if env.get("dirty") else "")


def model_card(run: RecipeRun, dest: Path) -> str:
    from footseg.models.saved import load_model

    recipe = run.recipe
    stamps = {s.name: run.read_stamp(s) or {} for s in recipe.stages}
    renders = {n: st for n, st in stamps.items() if st.get("kind") == "render"}
    trains = {n: st for n, st in stamps.items() if st.get("kind") == "train"}
    result = recipe.stage(recipe.result)
    model, info = load_model(dest)
    params = sum(p.numel() for p in model.parameters())
    shapes = info.extra.get(LAYER_SHAPES_KEY)
    recipe_sha = hashlib.sha256(recipe.text.encode()).hexdigest()

    def env(key: str) -> str:
        return _by_value(stamps, lambda st: st.get("environment", {}).get(key))

    lines = [
        f"# {recipe.name}, made by `footseg recipe run`",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC into `{run.out}` from the recipe `{recipe.path}` (sha256 "
        f"`{recipe_sha}`, reproduced at the end): {len(recipe.stages)} stages. This folder holds the model of stage "
        f"`{result.name}` ({result.kind}). To make it again from an empty folder:",
        "",
        "```sh",
        f"footseg recipe run {RECIPE_NAME} --out DIR"
        + "".join(f" --{k} DIR" for k, renders_ in recipe.inputs().items() if renders_),
        "```",
        *(["", recipe.description.strip()] if recipe.description.strip() else []),
        "",
        "## Model",
        "",
        f"{info.model} width {info.width:g}, input {info.input_size[0]}x{info.input_size[1]}"
        + (f" (trained at {info.trained_size[0]}x{info.trained_size[1]})"
           if tuple(info.trained_size) != tuple(info.input_size) else "")
        + f", {params:,} parameters"
        + (f", channel-pruned ({len(shapes)} layers narrower than `create_model` builds them)" if shapes else "")
        + f"; weights sha256 `{sha256_file(dest / 'model.safetensors')}`. A pixel is foot where its probability "
        f"exceeds {info.threshold:g}"
        + ("." if info.region_peak is None else f", in a region of such pixels of which one exceeds "
           f"{info.region_peak:g} or that holds the frame's most confident pixel.")
        + ("" if info.presence is None else f" A frame shows foot only if some pixel of it exceeds "
           f"{info.presence:g}."),
        *[f"Export `{p.name}`: sha256 `{sha256_file(p)}`." for p in sorted(dest.glob("*.onnx"))],
        "",
        "## Software",
        "",
        "Where stages ran on different versions, each version is listed with its stages.",
        "",
        "| what | version |",
        "|---|---|",
        f"| footseg | {env('footseg')} |",
        f"| git commit | {_by_value(stamps, lambda st: _commit(st['environment']) if 'environment' in st else None)} |",
        f"| torch | {env('torch')} |",
        f"| onnxruntime | {env('onnxruntime')} |",
        f"| Python | {env('python')} |",
        f"| platform | {env('platform')} |",
        f"| Mesa (renders) | {_by_value(renders, lambda st: _mesa(st.get('opengl', {})))} |",
        f"| OpenGL renderer (renders) | {_by_value(renders, lambda st: _gl(st.get('opengl', {})))} |",
        f"| training device | {_by_value(trains, lambda st: st.get('device'))} |",
        # stamps from before procs existed trained in one process
        f"| training processes | {_by_value(trains, lambda st: st.get('processes', 1))} |",
    ]
    earlier = [n for n, st in stamps.items() if st.get("earlier_environments")]
    if earlier:
        lines += ["", f"Stages continued by other software than began them (their stamps in `{run.out}/stamps/` "
                      f"list it): {', '.join(earlier)}."]
    lines += ["", "## Stages", "", "| # | stage | kind | settings | finished (UTC) | seconds |",
              "|---|---|---|---|---|---|"]
    for stage in recipe.stages:
        st = stamps[stage.name]
        lines.append(f"| {stage.index} | {stage.name} | {stage.kind} | {describe(stage)} | "
                     f"{st.get('finished', '-')} | {st.get('seconds', '-')} |")
    lines += ["", "Seconds: each stage's wall time, summed over the runs that made it (time stopped not counted), on a "
                  "CPU other jobs may have shared: what this run took, not what the recipe needs (README.md, \"What a "
                  "run reproduces, and how long it takes\")."]
    # the choices this model carries: those of the stages it comes from, not of a later stage it is not, nor of a
    # teacher it learnt from (whose own operating point it does not carry)
    lineage, reading = set(), [result.name]
    while reading:
        name = reading.pop()
        if name not in lineage and not name.startswith(SHIPPED):
            lineage.add(name)
            stage = recipe.stage(name)
            reading += [r for r in stage.refs() if r != stage.settings.get("teacher")]
    choices = [_choice(stage, stamps[stage.name]) for stage in recipe.stages
               if stage.kind in ("select", "threshold") and stage.name in lineage]
    if choices:
        lines += ["", "## Choices", "", "Made on synthetic validation images only (foot IoU, %):", "", *choices]
    lines += ["", "## Data", "", "sha256 of each dataset's `manifest.json` (the file, as written):", "",
              "| stage | images (train, val, test) | seeds | manifest sha256 |", "|---|---|---|---|"]
    for stage in recipe.stages:
        if stage.kind in ("render", "merge"):
            path = run.folder(stage) / MANIFEST
            manifest = json.loads(path.read_text())
            counts = ", ".join(str(manifest["counts"][k]) for k in ("train", "val", "test"))
            lines.append(f"| {stage.name} | {counts} | {manifest['seed']} | `{sha256_file(path)}` |")
    fence = "````" if "```" in recipe.text else "```"
    lines += ["", "## Recipe", "", f"{fence}toml", recipe.text.rstrip("\n"), fence]
    return "\n".join(lines) + "\n"


def _choice(stage: Stage, stamp: dict) -> str:
    scores, chosen = stamp.get("val_iou", {}), stamp.get("chosen")
    listed = ", ".join(f"{key} {100 * v:.2f}" for key, v in scores.items())
    if stage.kind == "select":
        return f"- `{stage.name}` kept {chosen} of: {listed}."
    if "max_blob_rate" in stamp:
        return _capped_choice(stage, stamp)
    if "size" not in stamp:
        line = f"- `{stage.name}` set the threshold to {chosen:g} of: {listed}"
    else:
        line = (f"- `{stage.name}` set the input size to {stamp['size']} px and the threshold to {chosen:g} of: "
                + _size_curves(stamp))
    if "val_iou_by_region_peak" in stamp:
        peak = stamp.get("region_peak")
        peaks = ", ".join(f"{'none' if key == '0' else key} {100 * v:.2f}"
                          for key, v in stamp["val_iou_by_region_peak"].items())
        line += f"; then the region peak to {'none' if peak is None else f'{peak:g}'} of: {peaks}"
    if "val_iou_by_presence" in stamp:
        presence = stamp.get("presence")
        levels = ", ".join(f"{'none' if key == '0' else key} {100 * v:.2f}"
                           for key, v in stamp["val_iou_by_presence"].items())
        line += f"; then the presence gate to {'none' if presence is None else f'{presence:g}'} of: {levels}"
    return line + "."


def _size_curves(stamp: dict) -> str:
    return "; ".join(f"{size} px: " + ", ".join(f"{key} {100 * v:.2f}" for key, v in curve.items())
                     for size, curve in stamp.get("val_iou_by_size", {}).items())


def _capped_choice(stage: Stage, stamp: dict) -> str:
    """A threshold stage's choice under a blob-rate cap: its point of the grid, and the best it passed over."""
    peak, presence, cap = stamp.get("region_peak"), stamp.get("presence"), stamp["max_blob_rate"]
    best = max(stamp["val_points"], key=lambda point: point[3])  # [threshold, peak, presence, foot IoU, blob rate]
    line = f"- `{stage.name}` "
    if "size" in stamp:
        line += f"set the input size to {stamp['size']} px by foot IoU of: {_size_curves(stamp)}; then "
    line += (f"set the threshold to {stamp['chosen']:g}, the region peak to {'none' if peak is None else f'{peak:g}'} "
             f"and the presence gate to {'none' if presence is None else f'{presence:g}'}, together of "
             f"{len(stamp['val_points'])} points: foot IoU {100 * stamp['val_iou_at_point']:.2f}, a blob on "
             f"{100 * stamp['blob_rate']:.1f} % of the validation frames with no foot, "
             + (f"under the cap of {100 * cap:g} %" if stamp["cap_met"] else
                f"the fewest of any point: none met the cap of {100 * cap:g} %")
             + f" (the best foot IoU of any point: {100 * best[3]:.2f}, with blobs on {100 * best[4]:.1f} %).")
    return line


def _mesa(info: dict) -> str | None:
    if not info or "problem" in info:
        return None
    return info.get("mesa", "not Mesa")


def _gl(info: dict) -> str | None:
    if not info:
        return None
    if "problem" in info:
        return f"no OpenGL context here ({info['problem']})"
    return f"{info.get('GL_RENDERER')}; {info.get('GL_VERSION')}; {info.get('GL_VENDOR')}"
