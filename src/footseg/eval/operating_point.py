"""Choosing a model's operating point on a dataset's validation split: the threshold, and where asked the input side,
the region peak and the presence gate. What a recipe's threshold stage and ``footseg threshold`` both do.

The choice is made on validation images the model was not trained on (synthetic ones for a shipped model; real photos
only report) and saved as a model folder: the same weights, a config with the chosen point, and ``choice.json``, every
score it was chosen from.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footseg.atomic import atomic_copy, atomic_write_text
from footseg.config import MAX_INPUT_SIDE, is_input_side
from footseg.errors import FootsegError, FootsegWarning
from footseg.models.info import CHOICE_NAME, WEIGHTS_NAME, read_info, write_info

if TYPE_CHECKING:  # what scores runs a network: loaded where a choice is made, so a recipe's checks stay light
    from footseg.runtime.predictor import Predictor

# Fewer validation images than this and `footseg threshold` warns: thresholds a few hundredths apart differ by less
# than such a set's noise, so the point chosen is a draw among near-equals that another set would not repeat.
FEW_VAL_IMAGES = 100


@dataclass(frozen=True)
class PointSearch:
    """What to try beside the thresholds (``evaluate.THRESHOLDS``): input sides (none: the model's own), region
    peaks and presence levels beside none (none listed: that step is not tried, and the model runs without it), and
    ``max_blob_rate``, a cap on the share of the validation frames with no foot that may show a blob; with a cap,
    threshold, region peak and presence are chosen together under it, else one after the other."""

    sizes: Sequence[int] = ()
    region_peaks: Sequence[float] = ()
    presences: Sequence[float] = ()
    max_blob_rate: float | None = None

    def check(self, name: Callable[[str], str] = str) -> None:
        """A one-line ``FootsegError`` for a search that cannot be run, before any image is scored; each setting
        called ``name(field)`` (a recipe's key, or a command line's option)."""
        if not all(is_input_side(v) for v in self.sizes) or len(set(self.sizes)) != len(self.sizes):
            raise FootsegError(f"{name('sizes')} must be distinct multiples of 32 from 32 to {MAX_INPUT_SIDE}, got "
                               f"{list(self.sizes)}")
        for key in ("region_peaks", "presences"):
            levels = list(getattr(self, key))
            if any(not 0 < v < 1 for v in levels) or len(set(levels)) != len(levels):  # NaN fails 0 < v
                raise FootsegError(f"{name(key)} must be distinct numbers between 0 and 1, got {levels}")
        if self.max_blob_rate is not None and not 0 <= self.max_blob_rate < 1:
            raise FootsegError(f"{name('max_blob_rate')} must be at least 0 and below 1, got {self.max_blob_rate:g}")


def choose_operating_point(predictor: Predictor, data: Path, search: PointSearch,
                           log: Callable[[str], None] = print, split: str = "val",
                           scores: str = "validation") -> tuple[int, dict[str, Any]]:
    """The input side and the choice record (``chosen``, the threshold; ``region_peak`` and ``presence``, None for
    none; every score measured) for ``predictor`` on ``data``'s ``split``, each step logged in one line that calls
    the IoU ``scores`` foot IoU."""
    from footseg.eval import evaluate

    own = predictor.input_size[0]
    curves = {}
    for size in search.sizes or [own]:
        curves[size] = evaluate.threshold_ious(predictor.at_size(size), data, split=split)
        if search.sizes:
            log(f"  {size} px: best {100 * max(curves[size].values()):.2f} (at 0.50: "
                f"{100 * curves[size].get(0.5, float('nan')):.2f})")
    # the best IoU; of equals, the model's own side, else the smaller (cheaper), then the threshold nearest 0.5
    # (the two-class argmax), so a flat curve changes nothing
    size, chosen = max(((z, t) for z, ious in curves.items() for t in ious),
                       key=lambda zt: (curves[zt[0]][zt[1]], zt[0] == own, -zt[0], -abs(zt[1] - 0.5)))
    ious = curves[size]
    choice: dict[str, Any] = {"chosen": chosen, "val_iou": {f"{t:.2f}": v for t, v in ious.items()}}
    if search.sizes:  # every size's curve, the chosen one's also as val_iou (what a single-size choice records)
        choice["size"] = size
        choice["val_iou_by_size"] = {str(z): {f"{t:.2f}": v for t, v in c.items()} for z, c in curves.items()}
    log(f"  {f'{size} px, ' if search.sizes else ''}{'uncapped ' * (search.max_blob_rate is not None)}"
        f"threshold {chosen:.2f}: {scores} foot IoU {100 * ious[chosen]:.2f} (at 0.50: "
        f"{100 * ious.get(0.5, float('nan')):.2f})")
    if search.max_blob_rate is not None:  # the threshold again, with the region peak and gate: under the cap
        choice.update(_capped_point(predictor.at_size(size), data, search, log, split, scores))
        return size, choice
    # Then the region peak at the chosen side and threshold, then the presence gate on the regions that peak keeps:
    # each scored at what the steps before it chose, and a step not tried is off, as the folder records it.
    at = predictor.at_size(size).at_threshold(chosen).at_region_peak(0).at_presence(0)
    for key, levels, scores_of, setter in (
            ("region_peak", search.region_peaks, evaluate.region_peak_ious, lambda p, v: p.at_region_peak(v)),
            ("presence", search.presences, evaluate.presence_ious, lambda p, v: p.at_presence(v))):
        if not levels:
            continue
        by_level = scores_of(at, data, [0.0, *levels], split=split)
        # the best IoU; of equals, none (nothing cleared), then the lower level (the less it clears)
        best = max(by_level, key=lambda p, by_level=by_level: (by_level[p], p == 0.0, -p))
        choice[key] = best or None
        choice[f"val_iou_by_{key}"] = {f"{p:g}": v for p, v in by_level.items()}
        others = max((p for p in by_level if p), key=lambda p, by_level=by_level: by_level[p])
        # beside it, the best of what was passed over: none, or the best level where none was kept
        against = (f" (none: {100 * by_level[0.0]:.2f})" if best else
                   f" (the best level, {others:g}: {100 * by_level[others]:.2f})")
        log(f"  {key.replace('_', ' ')} {f'{best:g}' if best else 'none'}: {scores} foot IoU "
            f"{100 * by_level[best]:.2f}{against}")
        at = setter(at, best)
    return size, choice


def _capped_point(predictor: Predictor, data: Path, search: PointSearch, log: Callable[[str], None],
                  split: str, scores: str) -> dict[str, Any]:
    """The threshold, region peak and presence, tried together at the chosen side, with the best foot IoU of those
    that mark a blob on at most ``max_blob_rate`` of the validation frames with no foot; where none does, the fewest
    blobs (the run goes on, and the record says the cap was not met)."""
    from footseg.eval import evaluate

    cap = search.max_blob_rate
    grid = evaluate.operating_points(predictor, data, evaluate.THRESHOLDS, [0.0, *search.region_peaks],
                                     [0.0, *search.presences], split=split)
    if any(rate is None for _, rate in grid.values()):
        raise FootsegError(f"{data}: its {split} split has no frame without foot, so no blob rate can be measured")
    met = [point for point, (_, rate) in grid.items() if rate <= cap]

    def rank(point: tuple[float, float, float]) -> tuple:
        iou, rate = grid[point]
        threshold, peak, presence = point
        # of equals: the threshold nearest 0.5 (rounded: 0.4 and 0.6 are equally near), the lower of two such,
        # then no region peak and no gate, then the lower (the less cleared)
        order = (-round(abs(threshold - 0.5), 6), -threshold, peak == 0.0, -peak, presence == 0.0, -presence)
        return (iou, *order) if met else (-rate, iou, *order)

    threshold, peak, presence = max(met or grid, key=rank)
    iou, rate = grid[threshold, peak, presence]
    best = max(grid, key=lambda point: grid[point][0])
    log(f"  threshold {threshold:.2f}, region peak {f'{peak:g}' if peak else 'none'}, presence "
        f"{f'{presence:g}' if presence else 'none'}: {scores} foot IoU {100 * iou:.2f}, blobs on "
        f"{100 * rate:.1f} % of its frames with no foot (cap {100 * cap:g} %"
        + (f"; the best IoU, {100 * grid[best][0]:.2f}, has {100 * grid[best][1]:.1f} %)" if met else
           ": not met by any point, the fewest taken)"))
    return {"chosen": threshold, "region_peak": peak or None, "presence": presence or None,
            "max_blob_rate": cap, "cap_met": bool(met), "val_iou_at_point": iou, "blob_rate": rate,
            # every point as [threshold, region peak, presence, foot IoU, blob rate] (0: no peak, no gate)
            "val_points": [[*point, *grid[point]] for point in grid]}


def save_at_operating_point(source: Path, folder: Path, size: int, choice: dict[str, Any]) -> None:
    """``source``'s weights into ``folder`` with the chosen point in its config (the side it runs at, threshold,
    region peak, presence; the rest as ``source``'s) and the choice record beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_copy(source / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    write_info(folder, dataclasses.replace(read_info(source), threshold=choice["chosen"], input_size=(size, size),
                                           region_peak=choice.get("region_peak"), presence=choice.get("presence")))
    atomic_write_text(folder / CHOICE_NAME, json.dumps(choice, indent=1) + "\n")


def threshold_model(model: str | Path | None, data: str | Path, out: str | Path, search: PointSearch,
                    log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """``footseg threshold``: ``model``'s operating point chosen on ``data``'s val split and saved into ``out``, a
    new model folder (the weights are ``model``'s; an ``out`` holding files, or inside ``model``'s folder, is refused,
    so nothing is overwritten). The point is chosen on val/ so that test/ can still judge it: a dataset without
    splits is refused. The model's own point is one of the candidates where its side is among those tried (and it
    meets ``max_blob_rate``): one step after another, the search can pass it by (a threshold chosen without the region
    peak that then comes), and where the own point scores at least as well on val/ it is kept. Warns where the point
    saved scores below the model's own (its side not tried, or its blobs over the cap), or where no point met
    ``max_blob_rate``."""
    from footseg.eval import evaluate
    from footseg.runtime.predictor import Predictor
    from footseg.runtime.resolve import resolve_model

    search.check(lambda key: "--" + key.replace("_", "-"))
    ref = resolve_model(model)
    source, out, data = ref.folder, Path(out), Path(data)
    samples = _checked_request(source, out, data, search)
    before = read_info(source)
    predictor = Predictor(source, runtime="torch")  # the weights themselves, as a recipe's threshold stage scores them
    log(f"{ref.name}'s operating point on {data}'s val split ({len(samples)} images): {_tried_text(search)}")
    scores = f"{data.name or data} val"
    size, choice = choose_operating_point(predictor, data, search, log=log, scores=scores)
    # the point it had, scored as the chosen one was: what the choice is worth, and a candidate of its own
    own = evaluate.evaluate(predictor, data, split="val")
    had, now = own["iou"], chosen_iou(choice)
    own_point = (before.input_size[0], before.threshold, before.region_peak, before.presence)
    searched = (size, choice["chosen"], choice.get("region_peak"), choice.get("presence"))
    why_not_own = (  # a model that is not square was refused without sizes
        "the sides tried leave its own out" if search.sizes and own_point[0] not in search.sizes else
        f"its own shows blobs on {100 * own['blob_rate']:.1f} % of the frames with no foot, over the cap"
        if search.max_blob_rate is not None and (own["blob_rate"] or 0.0) > search.max_blob_rate else "")
    if searched != own_point and had >= now and not why_not_own:
        log(f"  its own point ({_point_text(*own_point)}) scores {100 * had:.2f}, the search's "
            f"({_point_text(*searched)}) {100 * now:.2f}: its own kept")
        choice["searched_point"] = dict(zip(("size", "threshold", "region_peak", "presence"), searched, strict=True),
                                        val_iou=now)
        size, now = own_point[0], had
        choice.update(chosen=own_point[1], region_peak=own_point[2], presence=own_point[3])
        if "size" in choice:
            choice["size"] = size
        if search.max_blob_rate is not None:  # the point saved is under the cap: the record says its own numbers
            choice.update(cap_met=True, val_iou_at_point=had, blob_rate=own["blob_rate"])
    choice["val_iou_before"], choice["val_iou_after"] = had, now
    # what it was chosen for and on, which a recipe's stamp records for its stages
    choice.update(model=str(source.absolute()), data=str(data.absolute()), val_images=len(samples))
    save_at_operating_point(source, out, size, choice)
    log(f"saved {out}: {_point_text(size, choice['chosen'], choice.get('region_peak'), choice.get('presence'))}, "
        f"{scores} foot IoU {100 * now:.2f}; at its point before ({_point_text(*own_point)}) {100 * had:.2f}")
    if now < had:
        warnings.warn(FootsegWarning(f"{out}: scores below the point {source} had on val/ ({100 * now:.2f} against "
                                     f"{100 * had:.2f}): {why_not_own}"), stacklevel=2)
    if len(samples) < FEW_VAL_IMAGES:
        warnings.warn(FootsegWarning(f"{out}: chosen on {len(samples)} validation image{'s' * (len(samples) != 1)}, "
                                     f"too few to tell points apart (the default's was chosen on 600): more images "
                                     "in val/ give a point that holds on others"), stacklevel=2)
    if choice["chosen"] in (min(evaluate.THRESHOLDS), max(evaluate.THRESHOLDS)):
        warnings.warn(FootsegWarning(f"{out}: threshold {choice['chosen']:g} is at the end of the range tried "
                                     f"({min(evaluate.THRESHOLDS):.2f} to {max(evaluate.THRESHOLDS):.2f}): the best "
                                     "point may lie beyond it"), stacklevel=2)
    if choice.get("cap_met") is False:
        more = "" if search.presences else " (a presence gate, --presences 0.99,0.999, clears whole frames)"
        warnings.warn(FootsegWarning(f"{out}: no point met --max-blob-rate {search.max_blob_rate:g}; the one with "
                                     f"the fewest blobs was saved ({100 * choice['blob_rate']:.1f} %){more}"),
                      stacklevel=2)
    return out, choice


def _checked_request(source: Path, out: Path, data: Path, search: PointSearch) -> list:
    """The val samples of ``data``, once everything that would make the request fail has been refused: before any
    image is scored, each in one line naming its path."""
    from footseg.data.check import require_valid
    from footseg.data.samples import has_splits
    from footseg.eval.evaluate import labelled_samples

    if out.exists() and not out.is_dir():
        raise FootsegError("is a file: --out is a new model folder", out)
    if out.resolve().is_relative_to(source.resolve()):
        inside = "is the model's folder itself" if out.resolve() == source.resolve() else (
            f"is inside the model's folder {source}")
        raise FootsegError(f"{inside}: choose a folder of its own", out)
    if out.is_dir() and any(out.iterdir()):
        raise FootsegError("already holds files: choose another --out (or delete it)", out)
    if data.is_dir() and not has_splits(data):
        raise FootsegError("has no split folders: the operating point is chosen on val/ and judged on test/ (a folder "
                           "that chose it would flatter it)", data)
    samples = labelled_samples(data, "val")  # a missing or empty val/
    # every unreadable file or missing mask counted, with `footseg check` to list them; and the frames with no foot
    checked = require_valid(data, ("val",))
    if search.max_blob_rate is not None and not checked.empty["val"]:
        raise FootsegError("its val split has no frame without foot, so --max-blob-rate has nothing to count",
                           data / "val")
    side = read_info(source).input_size
    if side[0] != side[1] and not search.sizes:  # the search tries square sides
        raise FootsegError(f"runs at {side[1]}x{side[0]}, not square: give --sizes, the square sides to choose among",
                           source)
    return samples


def _tried_text(search: PointSearch) -> str:
    """What a search tries, in words."""
    from footseg.eval.evaluate import THRESHOLDS

    tried = [f"thresholds {min(THRESHOLDS):.2f} to {max(THRESHOLDS):.2f}"]
    for what, levels in (("sides", search.sizes), ("region peaks", search.region_peaks),
                         ("presence gates", search.presences)):
        if levels:
            tried.append(f"{what} " + ", ".join(f"{v:g}" for v in levels))
    cap = "" if search.max_blob_rate is None else (
        f", together, under a blob on at most {100 * search.max_blob_rate:g} % of its frames with no foot")
    return "; ".join(tried) + cap


def chosen_iou(choice: dict[str, Any]) -> float:
    """The validation foot IoU at the point a choice record chose: its last step's score there."""
    if "val_iou_at_point" in choice:  # chosen together, under a blob cap
        return choice["val_iou_at_point"]
    for key in ("presence", "region_peak"):  # the step chosen last, where it was tried
        if f"val_iou_by_{key}" in choice:
            return choice[f"val_iou_by_{key}"][f"{choice[key] or 0:g}"]
    return choice["val_iou"][f"{choice['chosen']:.2f}"]


def _point_text(size: int, threshold: float, peak: float | None, presence: float | None) -> str:
    """An operating point in words: side, threshold, region peak and presence gate."""
    return (f"{size} px, threshold {threshold:g}, region peak {'none' if peak is None else f'{peak:g}'}, presence "
            f"{'none' if presence is None else f'{presence:g}'}")
