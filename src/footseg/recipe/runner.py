"""``footseg recipe run``: every stage of a recipe into one folder, resuming where an earlier run stopped.

    DIR/<stage>/          a render or merge (a dataset), a training run (best/ inside), a pruned model, an export
    DIR/stamps/<stage>.json   what the stage was made with: settings, the digests of what it read, environment
    DIR/model/            the result: the model folder, its exports, recipe.toml and MODEL_CARD.md

A stage is skipped when its folder is complete and its stamp says it was finished with the recipe's settings from
the same inputs (the digests of the stages it reads: dataset manifests, weights). A stage that was started and not
finished continues: a render renders its missing images, a training run resumes from its checkpoint (``footseg train
--resume``), a merge links the rest, a prune or export is redone. A folder made with other settings, or from an
earlier stage that has been redone since, is refused with the folder to delete: nothing is thrown away silently.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from footseg.atomic import atomic_copy, atomic_write_text, check_writable
from footseg.data.synth.engine import MANIFEST, image_paths, read_manifest, setting_differences, stored_settings
from footseg.data.synth.find import check_find_folder
from footseg.data.synth.floors import list_photos
from footseg.errors import FootsegError, require_folder
from footseg.models.info import CHOICE_NAME, PRETRAINED_DIR, WEIGHTS_NAME, read_info
from footseg.one_writer import one_writer
from footseg.provenance import sha256_file, versions
from footseg.recipe.environment import device_name, gl_strings
from footseg.recipe.layout import EXPORT_FILES, RESULT, STAMPS
from footseg.recipe.schema import KEYS, SHIPPED, Recipe, Stage, describe, synth_settings, train_config
from footseg.train.history import best_val_iou, read_history

STAMP_VERSION = 1
# How often a running stage's stamp is rewritten with the seconds it has spent: a run killed outright (SIGKILL, the
# machine going away), which no handler sees, then loses at most this much of the stage's reported time.
STAMP_EVERY_S = 60.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    """As JSON stores it (tuples become lists), so settings compare equal to a stamp's."""
    return json.loads(json.dumps(value))


class RecipeRun:
    """One run of ``recipe`` into ``out`` with the run's input folders and training device."""

    def __init__(self, recipe: Recipe, out: str | Path | None, floors: str | Path | None = None,
                 find: str | Path | None = None, device: str = "auto", log: Callable[[str], None] = print,
                 verb: str = "footseg recipe run", workers: int | None = None):
        self.recipe = recipe
        # Stamps and training configs record where things are: one spelling. None: only a plan can be shown.
        self.out = Path(out).resolve() if out is not None else Path("DIR")
        self.has_out = out is not None
        self.inputs = {"floors": str(Path(floors).resolve()) if floors else None,
                       "find": str(Path(find).resolve()) if find else None}
        self.device = device
        # Processes of every render and data loader instead of the recipe's (set for a 2-core CPU): no output
        # depends on them (schema.NOT_OUTPUT), and a GPU trains 1.7 times as fast with 6 as with 1
        # (benchmarks/README.md, "Training on a GPU").
        if workers is not None and workers < 1:
            raise FootsegError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers
        self.log = log
        self.verb = verb  # the command that continues an interrupted run, as the user typed it
        self.digests: dict[str, str] = {}  # stage -> digest of its output, once it is done

    # --- where things are ----------------------------------------------------------------------------------------

    def folder(self, stage: Stage) -> Path:
        return self.out / stage.name

    def stamp_path(self, stage: Stage) -> Path:
        return self.out / STAMPS / f"{stage.name}.json"

    def model_folder(self, ref: str) -> Path:
        """The saved model folder of a train, prune, select or threshold stage, or of a ``shipped:NAME`` model."""
        if ref.startswith(SHIPPED):
            return PRETRAINED_DIR / ref[len(SHIPPED):]
        stage = self.recipe.stage(ref)
        return self.folder(stage) / "best" if stage.kind == "train" else self.folder(stage)

    def export_file(self, stage: Stage) -> Path:
        return self.folder(stage) / EXPORT_FILES[stage.settings["format"]]

    # --- checks --------------------------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Every check that can refuse the run, before any file is written or any time is spent."""
        if not self.has_out:
            raise FootsegError("a recipe run needs an output folder (--out DIR)")
        for key, renders in self.recipe.inputs().items():
            if not renders:
                continue
            given = self.inputs[key]
            if given is None:
                what = "floor photos" if key == "floors" else "the FIND foot model"
                raise FootsegError(f"renders {', '.join(renders)} read --{key} DIR ({what}): give it to "
                                   f"`{self.verb}`", self.recipe.path)
            require_folder(given, f"--{key} folder")
            # what it holds too: a render that fails on it leaves a folder a run given the right one then refuses
            try:
                if key == "floors":
                    list_photos(Path(given))
                else:
                    check_find_folder(given)
            except FootsegError as exc:  # named by the file in it that is wrong, where one is
                reason = str(exc).removeprefix(f"{exc.path}: ") if exc.path is not None else str(exc)
                raise FootsegError(f"--{key} folder: {reason}", exc.path or given) from exc
        from footseg.runtime.device import resolve_device

        resolve_device(self.device)  # an unknown name or a missing CUDA device fails before any stage runs
        check_writable(self.out, folder=True, hint="choose another --out")
        # a folder the run would refuse on the settings alone, refused now, not after the stages before it ran
        remade = self.remade()
        doomed = next((s for s in self.recipe.stages if s.name in remade and self.begun(s)), None)
        if doomed is not None:
            raise FootsegError(f"{remade[doomed.name]}: {self.what_to_delete(doomed)}", self.folder(doomed))

    def remade(self) -> dict[str, str]:
        """The stages whose output a run would make otherwise than their stamps say, foretold by settings alone, each
        with why: made with other settings (a folder a run refuses, or makes again where it was deleted), or reading
        such a stage, directly or through others."""
        out: dict[str, str] = {}
        for stage in self.recipe.stages:
            stamp = self.read_stamp(stage)  # also of a folder deleted since
            why = stamp and self.mismatch(stamp, self.stamp_settings(stage), stamp.get("inputs", {}))
            if why:
                out[stage.name] = why
            elif reads := [r for r in stage.refs() if r in out]:
                out[stage.name] = f"reads {', '.join(reads)}, which a run makes otherwise now"
        return out

    def stamp_settings(self, stage: Stage) -> dict[str, Any]:
        """What a stage's output depends on besides its inputs: its settings, and a render's input folders."""
        settings = stage.output_settings()
        if stage.kind == "render":
            settings = {**settings, **{k: self.inputs[k] if settings[k] else None for k in ("floors", "find")}}
        return _plain(settings)

    def input_digests(self, stage: Stage) -> dict[str, str]:
        out = {}
        for ref in stage.refs():
            if ref.startswith(SHIPPED):
                out[ref] = sha256_file(self.model_folder(ref) / WEIGHTS_NAME)
            else:
                out[ref] = self.digests[ref]
        return out

    def read_stamp(self, stage: Stage) -> dict | None:
        path = self.stamp_path(stage)
        if not path.is_file():
            return None
        try:
            stamp = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FootsegError(f"unreadable stamp ({exc}); delete it and the folder {self.folder(stage)}",
                               path) from exc
        if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION:
            raise FootsegError("a stamp of another footseg; delete it and the stage's folder to redo it", path)
        return stamp

    def mismatch(self, stamp: dict, settings: dict, inputs: dict) -> str | None:
        """Why the stamped output is not what the recipe asks for now, or None."""
        old = stamp.get("settings", {})
        if stamp.get("kind") == "render":
            # a stamp from before a render setting existed: the render was made without that feature, as a manifest
            # from before it reads (only the settings a recipe states: the others are not in any stamp)
            old = {k: v for k, v in stored_settings(old).items() if k in old or k in settings}
        elif stamp.get("kind") in KEYS:
            # a stamp from before an optional setting existed: the stage ran as that setting's default does (so a new
            # optional key's default must be what stages did before it)
            keys = KEYS[stamp["kind"]]
            old = {**{k: _plain(keys[k].default) for k in settings if k not in old and k in keys
                      and not keys[k].required}, **old}
        differ = [f"{k} {json.dumps(old.get(k))} there, {json.dumps(settings.get(k))} in the recipe"
                  for k in [*settings, *(k for k in old if k not in settings)] if old.get(k) != settings.get(k)]
        if differ:
            return f"made with other settings ({'; '.join(differ)})"
        redone = [ref for ref in {**inputs, **stamp.get("inputs", {})} if stamp.get("inputs", {}).get(ref) !=
                  inputs.get(ref)]
        if redone:
            return f"made from another output of {', '.join(redone)} (redone or changed since)"
        return None

    def complete(self, stage: Stage) -> bool:
        """Whether the stage's folder holds everything the stage makes."""
        folder, s = self.folder(stage), stage.settings
        if stage.kind == "render":
            try:
                manifest = read_manifest(folder / MANIFEST)
            except FootsegError:
                return False
            if manifest is None:
                return False
            settings = synth_settings(s, self.inputs["floors"], self.inputs["find"])
            if setting_differences(manifest.get("settings"), settings):
                return False
            return all(p.is_file() for i in range(settings.n) for p in image_paths(folder, i, settings))
        if stage.kind == "merge":
            from footseg.data.synth.merge import merged_is_complete

            return merged_is_complete(folder)
        if stage.kind == "train":
            try:
                history = read_history(folder) or []
            except FootsegError:
                return False
            return len(history) >= s["epochs"] and (folder / "best" / WEIGHTS_NAME).is_file()
        if stage.kind == "prune":
            return (folder / WEIGHTS_NAME).is_file() and (folder / "config.json").is_file()
        if stage.kind in ("select", "threshold"):
            return all((folder / f).is_file() for f in (WEIGHTS_NAME, "config.json", CHOICE_NAME))
        return self.export_file(stage).is_file()

    def begun(self, stage: Stage) -> bool:
        """Whether the stage's folder holds anything (a stamp without it is of an output deleted since)."""
        folder = self.folder(stage)
        return folder.is_dir() and any(folder.iterdir())

    def done_before(self, stage: Stage) -> bool:
        """Whether a run skips this stage as done: its stamp says done, with the recipe's settings and the inputs as
        they are now, its folder holds all it makes, and that output is still what the stage made. Records the
        output's digest for the stages after it. Raises where the folder holds what a run refuses: files the recipe
        did not make, or a stage made with other settings or inputs, or changed since."""
        folder = self.folder(stage)
        if not self.begun(stage):
            return False
        stamp = self.read_stamp(stage)
        if stamp is None:
            raise FootsegError(f"holds files that `footseg recipe run` did not make (no {STAMPS}/{stage.name}"
                               ".json): delete it or choose another --out", folder)
        why = self.mismatch(stamp, self.stamp_settings(stage), self.input_digests(stage))
        if why:
            raise FootsegError(f"{why}: {self.what_to_delete(stage)}", folder)
        if stamp.get("state") != "done" or not self.complete(stage):
            return False
        digest = self.output_digest(stage)
        if stamp.get("output", digest) != digest:  # e.g. a finished run trained on by hand since
            raise FootsegError(f"its output changed after the stage finished (not what the recipe made): "
                               f"{self.what_to_delete(stage)}", folder)
        self.digests[stage.name] = digest
        return True

    def readers(self, stage: Stage) -> list[Stage]:
        """The later stages that read ``stage``'s output, directly or through other stages, in recipe order."""
        read, out = {stage.name}, []
        for later in self.recipe.stages[stage.index:]:
            if read.intersection(later.refs()):
                read.add(later.name)
                out.append(later)
        return out

    def what_to_delete(self, stage: Stage) -> str:
        """What a refused stage's error asks for: its folder and, all at once, the folders of the stages that read
        it (each would be refused in turn, its input made otherwise)."""
        begun = [s.name for s in self.readers(stage) if self.begun(s)]
        if not begun:
            return "delete this folder to redo the stage"
        return f"delete this folder and those of the stages that read it ({', '.join(begun)}) to redo them"

    def finished_stages(self) -> list[str]:
        """The stages a run would skip as done, in recipe order, without running any: a stage that reads one still
        to run is still to run itself."""
        done: list[str] = []
        for stage in self.recipe.stages:
            if all(ref.startswith(SHIPPED) or ref in done for ref in stage.refs()) and self.done_before(stage):
                done.append(stage.name)
        return done

    def output_digest(self, stage: Stage) -> str:
        """The digest later stages record of this one's output: a dataset's manifest (without the code that wrote
        it), a model's weights, an export's file."""
        if stage.kind in ("render", "merge"):
            from footseg.data.synth.merge import manifest_digest

            path = self.folder(stage) / MANIFEST
            if (manifest := read_manifest(path)) is None:
                raise FootsegError("no manifest.json: the stage has not made its dataset", path.parent)
            return manifest_digest(manifest)
        if stage.kind == "export":
            return sha256_file(self.export_file(stage))
        weights = sha256_file(self.model_folder(stage.name) / WEIGHTS_NAME)
        if stage.kind == "threshold":  # the same weights as its model's: what it changed is the operating point
            info = read_info(self.folder(stage))
            size = read_info(self.model_folder(stage.settings["model"])).input_size
            # the size only where the stage changed it, so digests of runs made before sizes existed still hold
            at = "" if tuple(info.input_size) == tuple(size) else f" size {info.input_size[0]}x{info.input_size[1]}"
            peak = "" if info.region_peak is None else f" region peak {info.region_peak:g}"
            presence = "" if info.presence is None else f" presence {info.presence:g}"
            return f"{weights} threshold {info.threshold:g}{at}{peak}{presence}"
        return weights

    # --- running -------------------------------------------------------------------------------------------------

    def run(self) -> Path:
        """Run every stage not yet done, then write ``DIR/model``; returns that folder."""
        from footseg.recipe.card import write_result

        self.preflight()
        with one_writer(self.out, hint="choose another --out"):
            n = len(self.recipe.stages)
            for stage in self.recipe.stages:
                where = f"[{stage.index}/{n}] {stage.kind} {stage.name}"
                try:
                    self.run_stage(stage, where)
                except KeyboardInterrupt:
                    self.log(f"{where}: stopped; the same `{self.verb}` command continues from here")
                    raise
            return write_result(self)

    def run_stage(self, stage: Stage, where: str) -> None:
        if self.done_before(stage):
            self.log(f"{where}: done before, skipped")
            return
        stamp = self.read_stamp(stage) if self.begun(stage) else None  # else: start again
        self.log(f"{where}: {'continuing an unfinished stage' if stamp else describe(stage)}")
        settings, inputs = self.stamp_settings(stage), self.input_digests(stage)
        environment = versions()
        earlier = [] if stamp is None else [*stamp.get("earlier_environments", []), stamp.get("environment")]
        before = (stamp or {}).get("seconds", 0.0)  # spent by earlier runs of this stage, interrupted
        record = {"version": STAMP_VERSION, "stage": stage.name, "kind": stage.kind, "settings": settings,
                  "inputs": inputs, "state": "started", "started": (stamp or {}).get("started", _now()),
                  "environment": environment, "seconds": round(before, 1)}
        self.write_stamp(stage, record)
        tick = time.perf_counter()
        stop = threading.Event()

        def spent() -> float:
            return before + time.perf_counter() - tick

        def keep_time() -> None:
            while not stop.wait(STAMP_EVERY_S):
                self.write_stamp(stage, {**record, "seconds": round(spent(), 1)})

        clock = threading.Thread(target=keep_time, name=f"stamp {stage.name}", daemon=True)
        clock.start()
        try:
            extra = getattr(self, f"_{stage.kind}")(stage)
        except BaseException:
            stop.set()
            clock.join()
            # A stopped stage keeps the time it spent, so a stage continued later reports its whole time.
            self.write_stamp(stage, {**record, "seconds": round(spent(), 1)})
            raise
        stop.set()
        clock.join()  # before the last stamp: no late rewrite may undo "done"
        seconds = spent()
        self.digests[stage.name] = self.output_digest(stage)
        # a stage continued by other software says so: its output is partly theirs
        earlier = [e for i, e in enumerate(earlier) if e and e != environment and e not in earlier[:i]]
        record.update(state="done", finished=_now(), seconds=round(seconds, 1), output=self.digests[stage.name],
                      **(extra or {}), **({"earlier_environments": earlier} if earlier else {}))
        self.write_stamp(stage, record)
        self.log(f"{where}: done in {seconds:.1f} s")

    def write_stamp(self, stage: Stage, record: dict) -> None:
        atomic_write_text(self.stamp_path(stage), json.dumps(record, indent=1) + "\n")

    # --- the stages; each returns what else its stamp records ------------------------------------------------

    def _render(self, stage: Stage) -> dict:
        from footseg.data.synth import synthesize

        settings = synth_settings(stage.settings, self.inputs["floors"], self.inputs["find"])
        gl = gl_strings()  # before rendering: the context the workers get is made by the same driver
        synthesize(self.folder(stage), settings, workers=self.workers or stage.settings["workers"], resume=True,
                   progress=sys.stderr.isatty())
        return {"opengl": gl}

    def _merge(self, stage: Stage) -> None:
        from footseg.data.synth.merge import merge_renders

        merge_renders(self.folder(stage), {name: self.out / name for name in stage.settings["sources"]})

    def _train(self, stage: Stage) -> dict:
        from footseg.runtime.device import resolve_device
        from footseg.train.processes import train_processes

        s = dict(stage.settings, workers=self.workers) if self.workers else stage.settings
        folder = self.folder(stage)
        cfg = train_config(s, data=str(self.out / s["data"]), out=str(folder),
                           init=str(self.model_folder(s["init"])) if s["init"] else None,
                           teacher=str(self.model_folder(s["teacher"])) if s["teacher"] else None, device=self.device)
        # a GPU trains in one process: the CPU's processes are there to use its cores
        procs = s["procs"] if resolve_device(self.device) == "cpu" else 1
        if procs != s["procs"]:
            self.log(f"{stage.name}: one process on the GPU, where the recipe's {s['procs']} are for a CPU")
        train_processes(cfg, procs, resume=(folder / "config.json").is_file())
        return {"device": device_name(self.device), "processes": procs}

    def _prune(self, stage: Stage) -> None:
        from footseg.compress.prune import channel_prune, pruned_info
        from footseg.models.saved import save_model
        from footseg.runtime.resolve import resolve_model

        s = stage.settings
        source = self.model_folder(s["model"])
        model, info = resolve_model(source).load()
        channel_prune(model, s["ratio"], size=int(info.input_size[0]), importance=s["importance"],
                      round_to=s["multiple"])
        info = pruned_info(model, info, compressed_from=str(source), channel_ratio=s["ratio"])
        save_model(model, self.folder(stage), info)

    def _select(self, stage: Stage) -> dict:
        scores = {name: best_val_iou(self.folder(self.recipe.stage(name))) for name in stage.settings["candidates"]}
        chosen = max(scores, key=lambda name: scores[name])  # the first of equals: the order written decides ties
        folder = self.folder(stage)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_NAME, "config.json"):
            atomic_copy(self.model_folder(chosen) / name, folder / name)
        atomic_write_text(folder / CHOICE_NAME, json.dumps({"chosen": chosen, "val_iou": scores}, indent=1) + "\n")
        self.log(f"  chose {chosen} (synthetic validation foot IoU "
                 + ", ".join(f"{n} {100 * v:.2f}" for n, v in scores.items()) + ")")
        return {"chosen": chosen, "val_iou": scores}

    def _threshold(self, stage: Stage) -> dict:
        from footseg.eval.operating_point import PointSearch, choose_operating_point, save_at_operating_point
        from footseg.runtime.device import resolve_device
        from footseg.runtime.predictor import Predictor

        s = stage.settings
        source = self.model_folder(s["model"])
        # the weights themselves, in PyTorch: a folder's own export (``own_export``) would change no choice, only the
        # rounding a rerun's choices are compared under
        predictor = Predictor(source, device=resolve_device(self.device), runtime="torch")
        search = PointSearch(sizes=s["sizes"], region_peaks=s["region_peaks"], presences=s["presences"],
                             max_blob_rate=s["max_blob_rate"])
        size, choice = choose_operating_point(predictor, self.out / s["data"], search, log=self.log,
                                              scores="synthetic validation")
        save_at_operating_point(source, self.folder(stage), size, choice)
        return choice

    def _export(self, stage: Stage) -> None:
        s = stage.settings
        source, out = self.model_folder(s["model"]), self.export_file(stage)
        if s["format"] == "onnx":
            from footseg.deploy.export import export_onnx

            export_onnx(source, out, opset=s["opset"])
        else:
            from footseg.deploy.quantize import export_int8

            export_int8(source, out, calib=self.out / s["calib"], calib_n=s["calib_n"], method=s["calib_method"],
                        opset=s["opset"], min_stride=s["min_stride"])

    # --- what a dry run shows ------------------------------------------------------------------------------------

    def inputs_as_made(self) -> None:
        """Where an input folder was not given, take the one this folder's renders were made with: enough to plan or
        report on a run without repeating its --floors/--find (a run still needs them given)."""
        for stage in self.recipe.stages:
            stamp = self.read_stamp(stage) if stage.kind == "render" and self.begun(stage) else None
            made = (stamp or {}).get("settings", {})
            self.inputs.update({k: self.inputs[k] or made.get(k) for k in ("floors", "find")})

    def plan(self) -> list[str]:
        """One line per stage with its key settings (and, for a folder already used, how far each stage got)."""
        given = dict(self.inputs)
        if self.has_out:
            self.inputs_as_made()
        width = max(len(s.name) for s in self.recipe.stages)
        kinds = max(len(s.kind) for s in self.recipe.stages)
        lines = [f"recipe {self.recipe.name!r} ({self.recipe.path}): {len(self.recipe.stages)} stages into "
                 f"{self.out}, result {self.recipe.result!r} -> {self.out / RESULT}"]
        remade = self.remade() if self.has_out else {}
        for stage in self.recipe.stages:
            state = ""
            if self.has_out and self.folder(stage).exists():
                stamp = self.read_stamp(stage)
                state = f"  [{stamp.get('state', '?')}]" if stamp else "  [folder exists, not made by the recipe]"
                if stamp and stamp.get("state") == "done" and not self.complete(stage):
                    state = "  [done, but its folder lacks some of what it made: a run continues it]"
                # settings only: whether its inputs changed is known once the stages before it have run
                why = remade.get(stage.name, "") if stamp else ""
                if why.startswith("made with other settings"):
                    state = "  [made with other settings: a run refuses it until its folder is deleted]"
                elif why:
                    state = f"  [{why}: a run refuses it until its folder is deleted]"
            lines.append(f"{stage.index:>3}. {stage.kind:<{kinds}} {stage.name:<{width}}  {describe(stage)}{state}")
        for key, renders in self.recipe.inputs().items():
            if renders:
                where = given[key] or (f"not given; made with {self.inputs[key]}" if self.inputs[key] else "not given")
                if given[key] and not Path(given[key]).is_dir():
                    where += " (no such folder: a run refuses it)"
                lines.append(f"--{key}: {where} (read by {', '.join(renders)})")
        return lines
