"""Reading a recipe file: TOML, checked key by key before anything runs.

    [recipe]
    name = "fastlinknet"          # what it makes
    description = "..."           # optional
    result = "final"              # optional: the model stage (train, prune, select, threshold) whose model is the
                                  # result (default: the last)

    [defaults.train]              # optional, one table per kind: keys every stage of that kind gets unless it sets them
    batch_size = 16

    [[stage]]                     # stages run in the order written; a stage refers only to stages before it
    kind = "render"               # render | merge | train | prune | select | threshold | export
    name = "synthv4"              # its output folder in the run's folder
    seed = 17

A train stage must give every setting of ``TrainConfig`` that shapes the model (after its defaults table): a recipe must
not change what it makes when a default of ``footseg train`` changes. A render must give its seed, image count and size;
its other settings default to ``footseg synth``'s. References: ``data``, ``calib`` and a merge's ``sources`` name
earlier render (or merge) stages; ``init``, ``teacher`` and a prune's, threshold's or export's ``model`` name an earlier
train, prune, select or threshold stage, or ``"shipped:NAME"``, a model that ships with footseg. A select stage's
``candidates`` are train stages; it keeps the one with the best foot IoU on its synthetic validation split (real photos
never choose), e.g. the teacher of a distillation that should learn from the strongest network. A threshold stage gives
its ``model`` the operating point (foot where the probability exceeds it) with the best foot IoU on the validation split
of ``data``, from 0.10 to 0.90 in steps of 0.05; every runtime applies it. With ``sizes`` (e.g. [192, 224, 256]) it
chooses the input side the network runs at too, among those: a fully convolutional network trained on smaller crops may
do better on larger frames. Any problem is one line naming the file and the problem (unknown key, bad type or value,
unknown or later stage).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footseg.config import LOSSES, TrainConfig
from footseg.data.synth.engine import INGREDIENTS, SynthSettings
from footseg.data.synth.floors import split_of
from footseg.errors import FootsegError
from footseg.eval.operating_point import PointSearch
from footseg.models.registry import ARCHITECTURES
from footseg.runtime.onnx_model import MAX_OPSET

KINDS = ("render", "merge", "train", "prune", "select", "threshold", "export")
MODEL_KINDS = ("train", "prune", "select", "threshold")  # stages whose output is a saved model
DATA_KINDS = ("render", "merge")  # stages whose output is a dataset
SHIPPED = "shipped:"
RESERVED = ("model", "stamps")  # folders of the run that are not stages
RECIPE_NAME = "recipe.toml"  # a shipped model's recipe, next to its weights
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# What footseg's exporters default to (tests/recipe checks they agree); a recipe states them so they cannot drift.
EXPORT_FORMATS = ("onnx", "onnx-int8")
CALIB_METHODS = ("minmax", "entropy", "percentile")
IMPORTANCE = ("l1", "bn")


@dataclass(frozen=True)
class Key:
    """One setting of a stage: its TOML type, whether it must be given, and what it may refer to."""

    type: str  # int | float | bool | str | list (of strings) | ints (a list of integers) | floats (of numbers)
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()  # it names an earlier stage of one of these kinds
    shipped: bool = False  # ... or "shipped:NAME"


def _optional(type_: str, default: Any, **kw: Any) -> Key:
    return Key(type_, required=False, default=default, **kw)


def _synth_defaults() -> dict[str, Key]:
    """The render settings a recipe may leave to ``footseg synth``'s defaults (inputs and cutouts aside)."""
    types = {int: "int", float: "float", bool: "bool", str: "str"}
    keys = {}
    for f in dataclasses.fields(SynthSettings):
        if f.name in ("n", "seed", "size", "floors", "find", "meshes", "mesh_prob", "cutouts", "cutout_prob", "extra"):
            continue
        keys[f.name] = _optional(types[type(f.default)], f.default,
                                 choices=("jpg", "png") if f.name == "image_format" else ())
    return keys


_SYNTH_DEFAULTS = _synth_defaults()
_MODEL_REF = {"refs": MODEL_KINDS, "shipped": True}
KEYS: dict[str, dict[str, Key]] = {
    "render": {
        "seed": Key("int"), "n": Key("int"), "size": Key("int"),
        "floors": _optional("bool", False), "find": _optional("bool", False),  # read the run's --floors / --find
        "without": _optional("list", [], choices=tuple(INGREDIENTS)),
        "workers": _optional("int", 1),  # processes: the images do not depend on it
        **_SYNTH_DEFAULTS,
    },
    "merge": {"sources": Key("list", refs=("render",))},
    "train": {
        "data": Key("str", refs=DATA_KINDS),
        "init": _optional("str", None, **_MODEL_REF),
        "teacher": _optional("str", None, **_MODEL_REF),
        "model": Key("str"), "width": Key("float"), "num_classes": Key("int"), "size": Key("int"),
        "epochs": Key("int"), "steps_per_epoch": Key("int"),  # 0: one pass over the train split per epoch
        "batch_size": Key("int"), "lr": Key("float"), "weight_decay": Key("float"), "loss": Key("str", choices=LOSSES),
        "seed": Key("int"), "ema": Key("float"), "distill_weight": Key("float"), "distill_temperature": Key("float"),
        "distill_anneal": Key("bool"), "attention_weight": Key("float"), "augment": Key("bool"), "prior": Key("bool"),
        "self_prior": Key("float"),
        "antialias": _optional("bool", False),  # shrink by area before a warp that shrinks (hi-res renders)
        "white_balance": _optional("float", 0.0),  # colour casts in the augmentation (0: none, as before it existed)
        "freeze_bn": _optional("bool", False),  # for networks with folded BatchNorms only
        "workers": _optional("int", 2),  # data loader processes: the model does not depend on it
        # training processes on a CPU (DDP; footseg.train.processes): each holds batch_size / procs images of a
        # step, and its BatchNorms normalise over those, so the weights depend on it; a GPU trains in one process
        "procs": _optional("int", 1),
    },
    "prune": {"model": Key("str", **_MODEL_REF), "ratio": Key("float"), "multiple": Key("int"),
              "importance": Key("str", choices=IMPORTANCE)},
    "select": {"candidates": Key("list", refs=("train",))},
    "threshold": {"model": Key("str", **_MODEL_REF), "data": Key("str", refs=DATA_KINDS),
                  "sizes": _optional("ints", []),  # input sides to try; none: the model's own
                  "region_peaks": _optional("floats", []),  # region peaks to try beside none; none: not tried
                  "presences": _optional("floats", []),  # presence levels to try beside none; none: not tried
                  # the share of the validation frames with no foot that may show a blob (a foot region over 0.5 %
                  # of the frame): threshold, region peak and presence are then chosen together under it; none: no cap
                  "max_blob_rate": _optional("float", None)},
    "export": {
        "model": Key("str", **_MODEL_REF), "format": Key("str", choices=EXPORT_FORMATS),
        "opset": _optional("int", 17),
        "calib": _optional("str", None, refs=DATA_KINDS),  # onnx-int8 only, and required there
        "calib_n": _optional("int", 64), "calib_method": _optional("str", "minmax", choices=CALIB_METHODS),
        "min_stride": _optional("int", 16),
    },
}
INT8_ONLY = ("calib", "calib_n", "calib_method", "min_stride")
# TrainConfig fields a train stage does not set: where it runs (the command line), and its folders (the run's).
TRAIN_RUNTIME = ("data", "out", "device", "progress", "init", "teacher")
# Train settings that are not TrainConfig fields: how the stage starts the trainer (footseg.train.processes).
TRAIN_LAUNCH = ("procs",)
# Settings that change nothing in the output: a finished stage is not redone when only they change.
NOT_OUTPUT = ("workers",)


@dataclass(frozen=True)
class Stage:
    index: int  # 1-based position in the file
    kind: str
    name: str
    settings: dict[str, Any]  # every key of its kind (defaults filled in); references by stage name

    def refs(self) -> list[str]:
        """The earlier stages (and ``shipped:NAME`` models) it reads, in key order."""
        out: list[str] = []
        for key, spec in KEYS[self.kind].items():
            value = self.settings.get(key)
            if spec.refs and value is not None:
                out += value if isinstance(value, list) else [value]
        return out

    def output_settings(self) -> dict[str, Any]:
        """Its settings without those that do not change its output (what a finished stage is compared on)."""
        return {k: v for k, v in self.settings.items() if k not in NOT_OUTPUT}


@dataclass
class Recipe:
    path: Path
    text: str  # the file, verbatim
    name: str
    description: str
    result: str  # the stage whose model the run hands out
    stages: list[Stage] = field(default_factory=list)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def inputs(self) -> dict[str, list[str]]:
        """The run's input folders (``floors``, ``find``) and the renders that read each."""
        renders = [s for s in self.stages if s.kind == "render"]
        return {key: [s.name for s in renders if s.settings[key]] for key in ("floors", "find")}


def find_recipe(ref: str | Path) -> Path:
    """A recipe file, or the name of a shipped model whose folder holds one (``default``: the default model's)."""
    path = Path(ref)
    if path.is_file():
        return path
    from footseg.models.info import PRETRAINED_DIR
    from footseg.runtime.resolve import DEFAULT_MODEL, DEFAULT_NAME

    shipped = PRETRAINED_DIR / (DEFAULT_MODEL if str(ref) == DEFAULT_NAME else str(ref)) / RECIPE_NAME
    if len(path.parts) == 1 and not path.suffix and shipped.is_file():
        return shipped
    if path.is_dir():
        raise FootsegError("is a folder: give the recipe's .toml file", path)
    names = sorted(p.parent.name for p in PRETRAINED_DIR.glob(f"*/{RECIPE_NAME}"))
    raise FootsegError(f"recipe not found (a .toml file, or the name of a shipped model with a recipe: "
                       f"{', '.join(names) or 'none ship one'}; {DEFAULT_NAME}: {DEFAULT_MODEL}'s)", path)


def parse_recipe(path: str | Path) -> Recipe:
    """Read and check the recipe at ``path`` (see the module doc); a ``FootsegError`` names the first problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FootsegError(f"cannot read the recipe ({exc.strerror or exc})", path) from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FootsegError(f"not valid TOML: {exc}", path) from exc
    return _Parser(path, text).parse(doc)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_WANTED = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
           "list": "an array of strings", "ints": "an array of integers", "floats": "an array of numbers"}


def _typed(value: Any, spec: Key) -> Any | None:
    """``value`` as ``spec``'s type (an integer is a fine float), or None when it is of another type."""
    if spec.type == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if spec.type == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if spec.type == "bool" and isinstance(value, bool):
        return value
    if spec.type == "str" and isinstance(value, str):
        return value
    if spec.type == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if spec.type == "ints" and isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                                               for v in value):
        return list(value)
    if spec.type == "floats" and isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                                 for v in value):
        return [float(v) for v in value]
    return None


class _Parser:
    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def fail(self, where: str, message: str) -> FootsegError:
        return FootsegError(f"{where}: {message}", self.path)

    def table(self, doc: dict, key: str, where: str) -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, got {_type_name(value)}")
        return value

    def values(self, raw: dict, kind: str, where: str, fill: bool) -> dict[str, Any]:
        """``raw`` checked against ``kind``'s keys; with ``fill``, every key present (defaults, or missing: an
        error)."""
        keys = KEYS[kind]
        for key in raw:
            if key not in keys:
                raise self.fail(where, f"unknown key '{key}' ({kind} stages take: {', '.join(keys)})")
        out: dict[str, Any] = {}
        for key, spec in keys.items():
            if key not in raw:
                if not fill:
                    continue
                if spec.required:
                    raise self.fail(where, f"missing key '{key}' (set it in the stage or in [defaults.{kind}])")
                out[key] = list(spec.default) if isinstance(spec.default, list) else spec.default
                continue
            value = _typed(raw[key], spec)
            if value is None:
                raise self.fail(where, f"{key} must be {_WANTED[spec.type]}, got {_type_name(raw[key])} "
                                       f"{raw[key]!r}")
            for item in value if isinstance(value, list) else [value]:
                if spec.choices and item not in spec.choices:
                    raise self.fail(where, f"{key} {item!r} is not one of: {', '.join(spec.choices)}")
            out[key] = value
        return out

    def parse(self, doc: dict) -> Recipe:
        for key in doc:
            if key not in ("recipe", "defaults", "stage"):
                raise self.fail(f"top-level key '{key}'", "unknown (a recipe has [recipe], [defaults.<kind>] and "
                                                          "[[stage]] tables)")
        head = self.table(doc, "recipe", "[recipe]")
        for key in head:
            if key not in ("name", "description", "result"):
                raise self.fail("[recipe]", f"unknown key '{key}' (it takes: name, description, result)")
        for key in ("name", "description", "result"):
            if key in head and not isinstance(head[key], str):
                raise self.fail("[recipe]", f"{key} must be a string, got {_type_name(head[key])}")
        if "name" not in head:
            raise self.fail("[recipe]", "missing key 'name'")

        defaults_doc = self.table(doc, "defaults", "[defaults]")
        defaults: dict[str, dict] = {}
        for kind, raw in defaults_doc.items():
            if kind not in KINDS:
                raise self.fail(f"[defaults.{kind}]", f"unknown stage kind (one of: {', '.join(KINDS)})")
            if not isinstance(raw, dict):
                raise self.fail(f"[defaults.{kind}]", f"must be a table, got {_type_name(raw)}")
            defaults[kind] = self.values(raw, kind, f"[defaults.{kind}]", fill=False)

        raw_stages = doc.get("stage", [])
        if not isinstance(raw_stages, list) or not all(isinstance(s, dict) for s in raw_stages):
            raise self.fail("stage", "must be an array of tables, one [[stage]] per stage")
        if not raw_stages:
            raise self.fail("[[stage]]", "the recipe has no stages")
        stages: list[Stage] = []
        for index, raw in enumerate(raw_stages, 1):
            stages.append(self.stage(index, raw, defaults, stages, raw_stages))

        made = [s.name for s in stages if s.kind in MODEL_KINDS]
        result = head.get("result")
        if result is None:
            if not made:
                raise self.fail("[recipe]", "no train, prune, select or threshold stage: the recipe makes no model")
            result = made[-1]
        elif result not in made:
            raise self.fail("[recipe]", f"result '{result}' is not a train, prune, select or threshold stage")
        exports: dict[str, str] = {}
        for stage in stages:  # the result's exports go into its model folder, one file of each format
            if stage.kind != "export" or stage.settings["model"] != result:
                continue
            if (twin := exports.setdefault(stage.settings["format"], stage.name)) != stage.name:
                raise self.fail(f"stage '{stage.name}'", f"stage '{twin}' exports the result '{result}' as "
                                                         f"{stage.settings['format']} already (its model folder "
                                                         "holds one file of each format)")
        return Recipe(self.path, self.text, head["name"], head.get("description", ""), result, stages)

    def stage(self, index: int, raw: dict, defaults: dict[str, dict], before: list[Stage],
              all_raw: list[dict]) -> Stage:
        where = f"[[stage]] #{index}"
        kind, name = raw.get("kind"), raw.get("name")
        if not isinstance(name, str):
            raise self.fail(where, "missing key 'name'" if name is None else
                            f"name must be a string, got {_type_name(name)}")
        where = f"stage '{name}'"
        if not _NAME.match(name) or name in RESERVED:
            raise self.fail(where, "a name is letters, digits, '_', '.' and '-', and not "
                                   f"{' or '.join(repr(r) for r in RESERVED)} (it names the stage's folder)")
        if any(s.name == name for s in before):
            raise self.fail(where, "two stages have this name")
        if kind not in KINDS:
            raise self.fail(where, "missing key 'kind'" if kind is None else
                            f"kind {kind!r} is not one of: {', '.join(KINDS)}")
        body = {k: v for k, v in raw.items() if k not in ("kind", "name")}
        if kind == "export" and body.get("format", defaults.get("export", {}).get("format")) == "onnx":
            given = [k for k in INT8_ONLY if k in body]
            if given:
                raise self.fail(where, f"{', '.join(given)}: only for format 'onnx-int8'")
        merged = {**defaults.get(kind, {}), **body}
        if kind == "export" and merged.get("format") == "onnx":
            merged = {k: v for k, v in merged.items() if k not in INT8_ONLY}  # a defaults table's, for int8 stages
        settings = self.values(merged, kind, where, fill=True)
        self.check_refs(where, name, kind, settings, before, all_raw)
        self.check_values(where, kind, settings)
        self.check_splits(where, kind, settings, before)
        if kind == "train":
            self.check_steps(where, settings, before)
        if kind == "threshold" and settings["max_blob_rate"] is not None and not any(
                r.settings["empty_prob"] > 0 for r in renders_of(settings["data"], before)):
            raise self.fail(where, f"max_blob_rate is measured on frames with no foot, and no render of "
                                   f"'{settings['data']}' makes any (give one an empty_prob above 0)")
        if kind == "train" and settings["init"] is not None:
            # the trainer refuses it too, but only when the stage runs: hours in, after the stages before it
            starts = network_of(settings["init"], before)
            trains = (settings["model"], settings["width"], settings["num_classes"])
            if starts is not None and starts != trains:
                raise self.fail(where, f"init '{settings['init']}' is {_network_words(starts)}, where the stage "
                                       f"trains {_network_words(trains)}: a fine-tune trains the network it starts "
                                       "from (set model, width and num_classes to its)")
        if kind == "select":
            trained = {(b.settings["data"], b.settings["size"]) for b in before if b.name in settings["candidates"]}
            if len(trained) > 1:
                raise self.fail(where, "candidates were trained on different data or input sizes: their validation "
                                       "scores do not compare")
        return Stage(index, kind, name, settings)

    def check_refs(self, where: str, name: str, kind: str, settings: dict, before: list[Stage],
                   all_raw: list[dict]) -> None:
        earlier = {s.name: s.kind for s in before}
        later = {r.get("name") for r in all_raw[len(before) + 1:]}
        for key, spec in KEYS[kind].items():
            value = settings.get(key)
            if not spec.refs or value is None:
                continue
            for ref in value if isinstance(value, list) else [value]:
                if spec.shipped and ref.startswith(SHIPPED):
                    from footseg.models.info import pretrained_models

                    shipped = pretrained_models()
                    if ref[len(SHIPPED):] not in shipped:
                        raise self.fail(where, f"{key} {ref!r}: no such shipped model (shipped: "
                                               f"{', '.join(shipped) or 'none'})")
                    continue
                if ref in earlier:
                    if earlier[ref] not in spec.refs:
                        shipped_too = " or 'shipped:NAME'" if spec.shipped else ""
                        raise self.fail(where, f"{key} '{ref}' is a {earlier[ref]} stage; it must name a "
                                               f"{' or '.join(spec.refs)} stage{shipped_too}")
                    continue
                if ref == name:
                    raise self.fail(where, f"{key} names the stage itself")
                if ref in later:
                    raise self.fail(where, f"{key} '{ref}' is a stage after it (stages run in the order written)")
                raise self.fail(where, f"{key} refers to unknown stage '{ref}'")
            if isinstance(value, list) and len(set(value)) != len(value):
                raise self.fail(where, f"{key} names a stage twice")

    def check_splits(self, where: str, kind: str, settings: dict, before: list[Stage]) -> None:
        """A stage's dataset must hold the splits it reads (training: train and val; a threshold stage: val; int8
        calibration: train): a render of n images has every tenth in val and test, so a small one leaves them
        empty, which would otherwise surface only when the stage runs."""
        needs = {"train": [("data", ("train", "val"))], "threshold": [("data", ("val",))],
                 "export": [("calib", ("train",))]}.get(kind, [])
        for key, splits in needs:
            if settings.get(key) is None:
                continue
            renders = renders_of(settings[key], before)
            made = {split_of(i) for r in renders for i in range(min(r.settings["n"], 10))}
            for split in splits:
                if split not in made:
                    least = next(i for i in range(10) if split_of(i) == split) + 1
                    sizes = ", ".join(f"{r.name}: n {r.settings['n']}" for r in sorted(renders, key=lambda r: r.index))
                    raise self.fail(where, f"{key} '{settings[key]}' would have no {split} images: a render's "
                                           f"{split} split gets every tenth image, from image {least} on ({sizes}); "
                                           f"give a render n of at least {least}")

    def check_steps(self, where: str, settings: dict, before: list[Stage]) -> None:
        """A train stage's epoch is at most one pass over its training split (the trainer caps it, and says so only in
        its log): more steps than that would have the plan and the card state a schedule the run does not train."""
        renders = renders_of(settings["data"], before)
        images = sum(sum(split_of(i) == "train" for i in range(r.settings["n"])) for r in renders)
        procs, batch = settings["procs"], settings["batch_size"]
        per_process = math.ceil(images / procs)  # what a DistributedSampler gives each process (padded)
        one_pass = math.ceil(per_process / (batch // procs))
        if settings["steps_per_epoch"] > one_pass:
            raise self.fail(where, f"steps_per_epoch {settings['steps_per_epoch']} is more than one pass over "
                                   f"'{settings['data']}''s {images} training images ({one_pass} batches of {batch}): "
                                   f"an epoch is at most one pass; set it to at most {one_pass}, or 0 (one pass)")

    def check_values(self, where: str, kind: str, s: dict) -> None:
        try:
            if kind == "render":
                synth_settings(s, floors=None, find=None).validate()
                if s["workers"] < 1:
                    raise FootsegError(f"workers must be at least 1 (got {s['workers']})")
            elif kind == "merge":
                if not s["sources"]:
                    raise FootsegError("sources is empty")
            elif kind == "select":
                if not s["candidates"]:
                    raise FootsegError("candidates is empty")
            elif kind == "threshold":
                PointSearch(sizes=s["sizes"], region_peaks=s["region_peaks"], presences=s["presences"],
                            max_blob_rate=s["max_blob_rate"]).check()
            elif kind == "train":
                if s["model"] not in ARCHITECTURES:
                    raise FootsegError(f"model {s['model']!r} is not one of: {', '.join(ARCHITECTURES)}")
                if s["steps_per_epoch"] < 0 or s["workers"] < 0:
                    raise FootsegError("steps_per_epoch (0: one pass) and workers must not be negative")
                if s["procs"] < 1 or s["batch_size"] % s["procs"]:
                    raise FootsegError(f"procs must be at least 1 and divide batch_size {s['batch_size']} (got "
                                       f"{s['procs']})")
                # what validation asks of the references is that they are given; the runner fills in their folders
                train_config(s, data="-", out="-", init="-" if s["init"] else None,
                             teacher="-" if s["teacher"] else None).validate()
            elif kind == "prune":
                if not 0.0 < s["ratio"] < 1.0 or s["multiple"] < 1:
                    raise FootsegError(f"ratio must lie in (0, 1) and multiple be at least 1 (got {s['ratio']}, "
                                       f"{s['multiple']})")
            elif kind == "export":
                if s["format"] == "onnx-int8" and s.get("calib") is None:
                    raise FootsegError("format 'onnx-int8' needs calib, a render or merge stage to calibrate on")
                if not 13 <= s["opset"] <= MAX_OPSET:
                    raise FootsegError(f"opset must be 13 to {MAX_OPSET}, got {s['opset']}")
                for key in ("calib_n", "min_stride"):
                    if s.get(key, 1) < 1:
                        raise FootsegError(f"{key} must be at least 1, got {s[key]}")
        except FootsegError as exc:
            # the training config's checks speak of command-line options: --batch-size is batch_size here
            raise self.fail(where, re.sub(r"--([a-z][a-z0-9-]*)", lambda m: m[1].replace("-", "_"), str(exc))) from exc


def network_of(ref: str, before: list[Stage]) -> tuple[str, float, int] | None:
    """The architecture, width and classes of the model an earlier stage (or ``shipped:NAME``) makes; None where only
    its run will tell (a select stage between candidates of different networks)."""
    if ref.startswith(SHIPPED):
        from footseg.models.info import PRETRAINED_DIR, read_info

        info = read_info(PRETRAINED_DIR / ref[len(SHIPPED):])
        return info.model, info.width, info.num_classes
    stage = next(s for s in before if s.name == ref)
    if stage.kind == "train":
        return stage.settings["model"], stage.settings["width"], stage.settings["num_classes"]
    if stage.kind == "select":
        networks = {network_of(c, before) for c in stage.settings["candidates"]}
        return networks.pop() if len(networks) == 1 else None
    return network_of(stage.settings["model"], before)  # a prune or threshold stage: its model's network


def _network_words(network: tuple[str, float, int]) -> str:
    model, width, classes = network
    return f"{model} width {width:g} with {classes} classes"


def renders_of(name: str, before: list[Stage]) -> list[Stage]:
    """The render stages behind the dataset stage ``name`` of ``before``: itself, or a merge's (of merges)."""
    by_name = {b.name: b for b in before}
    renders, todo = [], [name]
    while todo:
        stage = by_name[todo.pop()]
        renders += [stage] if stage.kind == "render" else []
        todo += stage.settings["sources"] if stage.kind == "merge" else []
    return renders


def synth_settings(s: dict, floors: str | None, find: str | None) -> SynthSettings:
    """The ``SynthSettings`` of a render stage's settings, reading the run's input folders."""
    names = {f.name for f in dataclasses.fields(SynthSettings)}
    settings = SynthSettings(**{k: v for k, v in s.items() if k in names and k not in ("floors", "find")},
                             floors=floors if s["floors"] else None, find=find if s["find"] else None)
    settings.remove(s["without"])
    return settings


def train_config(s: dict, data: str, out: str, init: str | None = None, teacher: str | None = None,
                 device: str = "auto") -> TrainConfig:
    """The ``TrainConfig`` of a train stage's settings, with its folders and references resolved."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} - set(TRAIN_RUNTIME)
    values = {k: v for k, v in s.items() if k in names}
    values["steps_per_epoch"] = values["steps_per_epoch"] or None
    return TrainConfig(**values, data=data, out=out, init=init, teacher=teacher, device=device, progress=True)


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def describe(stage: Stage) -> str:
    """One line: the stage's key settings, as ``--dry-run`` prints them."""
    s = stage.settings
    if stage.kind == "render":
        parts = [f"{s['n']} images", f"seed {s['seed']}", f"{s['size']} px"]
        parts += [f"--{k}" for k in ("floors", "find") if s[k]]
        if s["without"]:
            parts.append("without " + ",".join(s["without"]))
        parts += [f"{k} {v}" for k, v in s.items() if k in _SYNTH_DEFAULTS and v != KEYS["render"][k].default]
        return ", ".join(parts)
    if stage.kind == "merge":
        return " + ".join(s["sources"])
    if stage.kind == "select":
        return f"the best of {', '.join(s['candidates'])} by foot IoU on synthetic validation images"
    if stage.kind == "threshold":
        sizes = ", ".join(map(str, s["sizes"]))
        levels = [f"region peak (none, {', '.join(f'{v:g}' for v in s['region_peaks'])})"] * bool(s["region_peaks"])
        levels += [f"presence gate (none, {', '.join(f'{v:g}' for v in s['presences'])})"] * bool(s["presences"])
        if s["max_blob_rate"] is not None:
            side = f"the input size ({sizes} px) by foot IoU, then " if s["sizes"] else ""
            return (f"{s['model']}'s operating point: {side}the threshold{''.join(', ' + v for v in levels)}"
                    f"{' together' * bool(levels)}, with the best foot IoU on {s['data']}'s validation split of those "
                    f"that show a blob on at most {100 * s['max_blob_rate']:g} % of its frames with no foot")
        what = f"the input size ({sizes} px) and threshold" if s["sizes"] else "the threshold"
        what += "".join(f", then the {v}" for v in levels)
        return f"{s['model']}'s operating point: {what} with the best foot IoU on {s['data']}'s validation split"
    if stage.kind == "train":
        start = f" from {s['init']}" if s["init"] else " from scratch"
        steps = f"{s['steps_per_epoch']} steps" if s["steps_per_epoch"] else "one pass"
        parts = [f"{s['model']} x{s['width']:g} on {s['data']}{start}: {s['epochs']} epoch{'s' * (s['epochs'] != 1)} x "
                 f"{steps}",
                 f"batch {s['batch_size']}", f"{s['size']} px", f"lr {s['lr']:g}", f"wd {s['weight_decay']:g}",
                 s["loss"], f"seed {s['seed']}"]
        if s["ema"]:
            parts.append(f"ema {s['ema']:g}")
        if s["teacher"]:
            anneal = " annealed" if s["distill_anneal"] else ""
            parts.append(f"teacher {s['teacher']} (T {s['distill_temperature']:g}, weight "
                         f"{s['distill_weight']:g}{anneal}"
                         + (f", attention {s['attention_weight']:g})" if s["attention_weight"] else ")"))
        if s["prior"]:
            parts.append("prior input" + (f", self-prior {s['self_prior']:g}" if s["self_prior"] else ""))
        if not s["augment"]:
            parts.append("no augmentation")
        elif s["antialias"]:
            parts.append("antialiased warp")
        if s["white_balance"]:
            parts.append(f"white balance casts up to x{1 + s['white_balance']:g}")
        if s["freeze_bn"]:
            parts.append("frozen BatchNorms")
        if s["procs"] > 1:
            parts.append(f"{s['procs']} processes on a CPU")
        return ", ".join(parts)
    if stage.kind == "prune":
        return (f"{s['model']}: {_pct(s['ratio'])} of the channels of every group removed by {s['importance']}, "
                f"counts multiples of {s['multiple']}")
    calib = (f", calibrated on {s['calib']} ({s['calib_n']} images, {s['calib_method']}, min stride "
             f"{s['min_stride']})") if s["format"] == "onnx-int8" else ""
    return f"{s['model']} -> {s['format']}, opset {s['opset']}{calib}"
