"""Candidate recipes in ``benchmarks/candidates/``: each parses, and differs from the shipped default's recipe only in
the settings it exists to try and the default's settings that changed after it ran (so a run of it measured that
change and nothing else), or keep its stages up to one and add their own after it (a candidate that extends the
default). Settings no output depends on (``schema.NOT_OUTPUT``: loader and render processes) may differ."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from footseg.recipe.schema import Recipe, Stage, find_recipe, parse_recipe

CANDIDATES = Path(__file__).resolve().parents[2] / "benchmarks" / "candidates"

# candidate file -> {setting: the value it tries, in every stage that has that setting}; every other setting matches.
# A candidate keeps the default's other settings as they stood when it ran (the own-feet ones ran on 22 epochs), and an
# adopted one changes only what the default gained after it (fastlinknet_ctx_bare, the default since 2026-12-04). The
# earlier ones keep what they ran: fastlinknet_ctx_e32 (the default from 2026-12-03) its 32 epochs, fastlinknet_ctx_e40
# (the default on 2026-12-04 before the bare-feet one) and all before it the engine's socks (0.15, filled in where a
# file leaves it out). Every one ran before the threshold stage chose a region peak too (none tried: the default).
SOCKS = 0.15
NO_PEAKS: list[float] = []
GATES = [0.9, 0.95, 0.99, 0.995, 0.999]  # the presence gates a threshold stage on empty-scene renders tries
CHANGES = {
    "fastlinknet_ctx_own30.toml": {"own_feet_prob": 0.3, "sizes": [], "epochs": 22, "sock_prob": SOCKS,
                                   "region_peaks": NO_PEAKS},
    "fastlinknet_ctx_own40.toml": {"own_feet_prob": 0.4, "sizes": [], "epochs": 22, "sock_prob": SOCKS,
                                   "region_peaks": NO_PEAKS},
    "fastlinknet_ctx_e32.toml": {"epochs": 32, "sock_prob": SOCKS, "region_peaks": NO_PEAKS},
    "fastlinknet_ctx_e40.toml": {"sock_prob": SOCKS, "region_peaks": NO_PEAKS},
    "fastlinknet_ctx_bare.toml": {"region_peaks": NO_PEAKS},
    "fastlinknet_ctx_empty.toml": {"empty_prob": 0.1},
    "fastlinknet_ctx_empty_gate.toml": {"empty_prob": 0.1, "presences": GATES},
    "fastlinknet_ctx_side288.toml": {},  # adopted on 2026-12-06: the default's recipe since
    "fastlinknet_ctx_wb25.toml": {"white_balance": 0.25},  # written against the default's recipe as it ships
}
AGAINST_THE_SHIPPED = {"fastlinknet_ctx_wb25.toml"}
# The default's recipe gained a render at 768 px (`hr`) on 2026-12-06, and its threshold stage chose the side among
# 192-288 px on it (fastlinknet_ctx_side288, adopted). That evening it gained a second render at 768 px (`hr2`), their
# merge and a second schedule at 288 px on it, which its threshold stage chooses on (fastlinknet_ctx_hrtune3, adopted).
# That night `hr2` became all first-person (fastlinknet_ctx_hrown100, adopted). The side-tune candidates were written
# against the recipe between the first two; every earlier one against the recipe as it stood before side288: without
# `hr`, the side chosen among these on `all`; the latest against hrtune3's recipe.
BETWEEN = {"fastlinknet_ctx_side288.toml", "fastlinknet_ctx_hrtune.toml", "fastlinknet_ctx_hrtune2.toml",
           "fastlinknet_ctx_hrtune3.toml"}  # side288 became that recipe; hrtune3 became the next
ADOPTED_SIDE_TUNE = "fastlinknet_ctx_hrtune3.toml"
ADOPTED_LAST = "fastlinknet_ctx_hrown100.toml"
# candidate file -> {stage: the settings it tries there}, written against hrtune3's recipe; every other stage and
# setting matches
STAGE_CHANGES = {"fastlinknet_ctx_hrtune4.toml": {},  # hrtune3's recipe, run with a fix in the code of its augmentation
                 "fastlinknet_ctx_hrown.toml": {"hr2": {"own_feet_prob": 0.6}},
                 "fastlinknet_ctx_hrown100.toml": {"hr2": {"own_feet_prob": 1.0}}}
SCORING_SEEDS = {409, 1983, 1985}  # benchmarks/score_candidate.sh's renders
BEFORE_SIDE288 = {"data": "all", "sizes": [192, 224, 256]}
HRTUNE_STAGES = ("hr2", "hr_all", "tuned")


def recipe_before_hrown100() -> Recipe:
    """The default's recipe from fastlinknet_ctx_hrtune3's adoption to fastlinknet_ctx_hrown100's: the same stages with
    ``hr2`` of the other renders' first-person share."""
    shipped = parse_recipe(find_recipe("fastlinknet_ctx"))
    share = {"own_feet_prob": shipped.stage("hr").settings["own_feet_prob"]}
    before = [dataclasses.replace(s, settings={**s.settings, **share}) if s.name == "hr2" else s
              for s in shipped.stages]
    return dataclasses.replace(shipped, stages=before)


def recipe_before_hrtune3() -> Recipe:
    """The default's recipe from fastlinknet_ctx_side288's adoption to fastlinknet_ctx_hrtune3's."""
    shipped = parse_recipe(find_recipe("fastlinknet_ctx"))
    before = [dataclasses.replace(s, settings={**s.settings, "model": "student"}) if s.name == "operating" else s
              for s in shipped.stages if s.name not in HRTUNE_STAGES]
    return dataclasses.replace(shipped, stages=before)


def recipe_before_side288() -> Recipe:
    """The default's recipe as it stood before fastlinknet_ctx_side288 was adopted."""
    between = recipe_before_hrtune3()
    before = [dataclasses.replace(s, settings={**s.settings, **BEFORE_SIDE288}) if s.name == "operating" else s
              for s in between.stages if s.name != "hr"]
    return dataclasses.replace(between, stages=before)


def default_recipe(name: str) -> Recipe:
    """The default's recipe as candidate ``name`` was written against it."""
    if name in AGAINST_THE_SHIPPED:
        return parse_recipe(find_recipe("fastlinknet_ctx"))
    if name in STAGE_CHANGES:
        return recipe_before_hrown100()
    return recipe_before_hrtune3() if name in BETWEEN else recipe_before_side288()

# candidate file -> the settings in which its second training stage (from the default's student) differs from it
TUNES = {"fastlinknet_ctx_empty_tune.toml": {"epochs": 4, "lr": 0.0005},
         "fastlinknet_ctx_long_tune.toml": {"epochs": 16, "lr": 0.001},
         "fastlinknet_ctx_long_capped.toml": {"epochs": 16, "lr": 0.001},
         "fastlinknet_ctx_split40.toml": {"epochs": 16, "lr": 0.001},
         "fastlinknet_ctx_long128.toml": {"epochs": 16, "lr": 0.001},
         "fastlinknet_ctx_tune2.toml": {"epochs": 2, "lr": 0.001},
         "fastlinknet_ctx_ddp.toml": {"epochs": 10, "lr": 0.001, "procs": 2}}
# fine-tune candidate file -> the settings in which its student differs from the default's (none: it is the default's)
STUDENTS = {"fastlinknet_ctx_split40.toml": {"epochs": 24}, "fastlinknet_ctx_long128.toml": {"size": 128},
            "fastlinknet_ctx_ddp.toml": {"procs": 2}}
# fine-tune candidate file -> what its threshold stage adds to the fine-tunes' own (none: nothing)
CAP = {"max_blob_rate": 0.25}  # a blob on at most a quarter of the validation frames with no foot
CAPS = {name: CAP for name in ["fastlinknet_ctx_long_capped.toml", "fastlinknet_ctx_split40.toml",
                               "fastlinknet_ctx_long128.toml", "fastlinknet_ctx_tune2.toml",
                               "fastlinknet_ctx_ddp.toml"]}
# candidate file -> what the default's threshold stage, choosing on renders with empty scenes, adds (no second schedule)
CAPPED_DEFAULTS = {"fastlinknet_ctx_capped.toml": CAP}
# fine-tune candidate file -> the settings in which its second training stage differs from the default's student, where
# it tunes on the default's four renders merged with one render of empty scenes instead of rendering them again
EMPTY_RENDER_TUNES = {"fastlinknet_ctx_tune4.toml": {"epochs": 4, "lr": 0.001}}
EMPTY_RENDER = {"seed": 411, "n": 6000, "empty_prob": 1.0}  # the empty render's differences from the default's r1
# candidate file -> the default's stage up to which (included) it is the default's recipe; what follows is its own.
# fine-tune candidate file -> the settings in which its second schedule, at the side the default runs at on the render
# at 768 px, differs from the default's student
SIDE_TUNE = {"size": 288, "epochs": 3, "steps_per_epoch": 500, "lr": 0.0005, "ema": 0.995, "antialias": True}
# (hrtune's 500 steps were one pass over hr's 4,800 training frames, 300 batches, as its run trained: its file says 300)
SIDE_TUNES = {"fastlinknet_ctx_hrtune.toml": {**SIDE_TUNE, "steps_per_epoch": 300},
              "fastlinknet_ctx_hrtune2.toml": SIDE_TUNE,
              "fastlinknet_ctx_hrtune3.toml": {**SIDE_TUNE, "epochs": 2}}
# side-tune candidate file -> the seeds of its renders at 768 px added after the default's `hr` (none: it tunes on hr)
MORE_HR = {"fastlinknet_ctx_hrtune2.toml": [415], "fastlinknet_ctx_hrtune3.toml": [415]}
EXTENDS = {**{name: "all" if name in STUDENTS else "student"
              for name in [*TUNES, *CAPPED_DEFAULTS, *EMPTY_RENDER_TUNES]}, **dict.fromkeys(SIDE_TUNES, "hr")}
EMPTY_RENDERS = [*(("render", f"e{i}") for i in range(1, 5)), ("merge", "all_empty")]
FINAL_STAGES = [("threshold", "operating"), ("export", "onnx"), ("export", "onnx-int8")]


def changed_settings(ours: Stage, theirs: Stage) -> dict[str, Any]:
    """The output settings of ``ours`` whose value differs from ``theirs``'s (or that ``theirs`` lacks)."""
    default = theirs.output_settings()
    return {k: v for k, v in ours.output_settings().items() if default.get(k) != v}


def test_every_candidate_is_listed() -> None:
    assert sorted(p.name for p in CANDIDATES.glob("*.toml")) == sorted(CHANGES | EXTENDS | STAGE_CHANGES)


@pytest.mark.parametrize("name", sorted(EXTENDS))
def test_a_candidate_that_extends_the_default_starts_as_it(name: str) -> None:
    shipped = default_recipe(name)
    candidate = parse_recipe(CANDIDATES / name)
    upto = [s.name for s in shipped.stages].index(EXTENDS[name]) + 1
    for ours, theirs in zip(candidate.stages[:upto], shipped.stages[:upto], strict=True):
        assert (ours.kind, ours.name, ours.output_settings()) == (theirs.kind, theirs.name, theirs.output_settings())
    assert candidate.result == shipped.result


def extension(
    name: str, calib: str = "all_empty"
) -> tuple[list[tuple[str, str]], Callable[[str, str], dict[str, Any]]]:
    """The candidate's stages after the default's six, and ``differ(ours, theirs)``: the settings in which its stage
    ``ours`` differs from the default's ``theirs``; the exports' differences checked (int8 calibrated on ``calib``),
    and with ``calib`` "all_empty" the four renders with empty scenes that merge into it."""
    shipped = {s.name: s for s in default_recipe(name).stages}
    stages = parse_recipe(CANDIDATES / name).stages
    own = {s.name: s for s in stages}

    def differ(ours: str, theirs: str) -> dict[str, Any]:
        assert set(own[ours].output_settings()) == set(shipped[theirs].output_settings()), ours
        return changed_settings(own[ours], shipped[theirs])

    if calib == "all_empty":
        for i in range(1, 5):  # the default's renders with a tenth of scenes empty: the other frames byte for byte
            assert differ(f"e{i}", f"r{i}") == {"empty_prob": 0.1}
        assert own["all_empty"].settings["sources"] == ["e1", "e2", "e3", "e4"]
    assert differ("onnx", "onnx") == {}
    assert differ("onnx-int8", "onnx-int8") == {"calib": calib}
    return [(s.kind, s.name) for s in stages][6:], differ


@pytest.mark.parametrize("name", sorted(TUNES))
def test_a_fine_tune_renders_the_defaults_scenes_and_tunes_its_student(name: str) -> None:
    kinds, differ = extension(name)
    assert kinds == [*EMPTY_RENDERS, ("train", "tuned"), *FINAL_STAGES]
    assert differ("student", "student") == STUDENTS.get(name, {})
    assert differ("tuned", "student") == {"init": "student", "data": "all_empty", **TUNES[name]}
    assert differ("operating", "operating") == {"model": "tuned", "data": "all_empty", "presences": GATES,
                                                **CAPS.get(name, {})}


@pytest.mark.parametrize("name", sorted(EMPTY_RENDER_TUNES))
def test_a_fine_tune_on_one_empty_render_merges_it_with_the_defaults_renders(name: str) -> None:
    kinds, differ = extension(name, calib="all_plus_empty")
    assert kinds == [("render", "e5"), ("merge", "all_plus_empty"), ("train", "tuned"), *FINAL_STAGES]
    assert differ("e5", "r1") == EMPTY_RENDER
    merge = {s.name: s for s in parse_recipe(CANDIDATES / name).stages}["all_plus_empty"]
    assert merge.settings["sources"] == ["r1", "r2", "r3", "r4", "e5"]
    assert differ("student", "student") == {}
    assert differ("tuned", "student") == {"init": "student", "data": "all_plus_empty", **EMPTY_RENDER_TUNES[name]}
    assert differ("operating", "operating") == {"model": "tuned", "data": "all_plus_empty", "presences": GATES, **CAP}


@pytest.mark.parametrize("name", sorted(SIDE_TUNES))
def test_a_tune_at_the_defaults_side_trains_on_its_detailed_render_and_chooses_as_it(name: str) -> None:
    shipped = {s.name: s for s in default_recipe(name).stages}
    stages = parse_recipe(CANDIDATES / name).stages
    own = {s.name: s for s in stages}
    after = [(s.kind, s.name) for s in stages][[s.name for s in stages].index("hr") + 1:]
    added = [f"hr{i}" for i in range(2, 2 + len(MORE_HR.get(name, [])))]
    data = "hr_all" if added else "hr"
    assert after == [*(("render", r) for r in added), *([("merge", data)] if added else []), ("train", "tuned"),
                     *FINAL_STAGES]
    for render, seed in zip(added, MORE_HR.get(name, []), strict=True):
        assert changed_settings(own[render], shipped["hr"]) == {"seed": seed}
    if added:
        assert own[data].settings["sources"] == ["hr", *added]
    assert changed_settings(own["tuned"], shipped["student"]) == {"init": "student", "data": data, **SIDE_TUNES[name]}
    assert changed_settings(own["operating"], shipped["operating"]) == {"model": "tuned"}
    for export in ("onnx", "onnx-int8"):
        assert changed_settings(own[export], shipped[export]) == {}


@pytest.mark.parametrize(("recipe", "adopted"), [(recipe_before_hrown100, ADOPTED_SIDE_TUNE),
                                                 (lambda: parse_recipe(find_recipe("fastlinknet_ctx")), ADOPTED_LAST)],
                         ids=["was", "is"])
def test_the_default_was_and_is_the_adopted_candidate(recipe: Callable[[], Recipe], adopted: str) -> None:
    now, candidate = recipe(), parse_recipe(CANDIDATES / adopted)
    assert [(s.kind, s.name, s.output_settings()) for s in now.stages] == [
        (s.kind, s.name, s.output_settings()) for s in candidate.stages]
    assert now.result == candidate.result


def test_the_default_chooses_its_side_on_detailed_frames_where_it_chose_on_its_training_renders() -> None:
    """What adopting fastlinknet_ctx_side288 changed: one render at 768 px, and the threshold stage's data and sides."""
    now, before = recipe_before_hrtune3(), recipe_before_side288()
    assert [s.name for s in now.stages] == [*(s.name for s in before.stages[:6]), "hr",
                                            *(s.name for s in before.stages[6:])]
    assert changed_settings(now.stage("hr"), before.stage("r1")) == {"seed": 413, "n": 6000, "size": 768}
    assert changed_settings(now.stage("operating"), before.stage("operating")) == {
        "data": "hr", "sizes": [192, 224, 256, 288]}


def test_an_added_renders_seed_is_no_other_renders() -> None:
    """Scenes drawn from one seed would repeat another render's (and seed 409 would repeat the scoring set's)."""
    seeds = {name: [s.settings["seed"] for s in parse_recipe(CANDIDATES / name).stages if s.kind == "render"]
             for name in sorted(CHANGES | EXTENDS | STAGE_CHANGES)}
    seeds["fastlinknet_ctx"] = [s.settings["seed"] for s in parse_recipe(find_recipe("fastlinknet_ctx")).stages
                                if s.kind == "render"]
    added = [(n, seed) for n, seeds_added in MORE_HR.items() for seed in seeds_added]
    shared = {**MORE_HR, "fastlinknet_ctx": MORE_HR[ADOPTED_SIDE_TUNE]}  # the default adopted hrtune3's hr2
    for name, seed in [*((n, EMPTY_RENDER["seed"]) for n in EMPTY_RENDER_TUNES), ("fastlinknet_ctx", 413), *added]:
        # a candidate written since side288 holds the default's renders: those seeds are the default's own; side-tune
        # variants and the default share their added render at 768 px (the same settings: checked above)
        used = {s for other, own in seeds.items() if other != name for s in own
                if not (other in BETWEEN | STAGE_CHANGES.keys() | AGAINST_THE_SHIPPED and s in seeds["fastlinknet_ctx"])
                and not (s in shared.get(other, []) and s in shared.get(name, []))} | SCORING_SEEDS
        assert seed in seeds[name] and seed not in used


@pytest.mark.parametrize("name", sorted(CAPPED_DEFAULTS))
def test_a_capped_default_chooses_the_defaults_operating_point_on_renders_with_empty_scenes(name: str) -> None:
    kinds, differ = extension(name)
    assert kinds == [*EMPTY_RENDERS, *FINAL_STAGES]
    assert differ("operating", "operating") == {"data": "all_empty", "presences": GATES, **CAPPED_DEFAULTS[name]}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_candidate_changes_only_what_it_says(name: str) -> None:
    shipped = default_recipe(name)
    candidate = parse_recipe(CANDIDATES / name)
    assert candidate.result == shipped.result
    assert [(s.kind, s.name) for s in candidate.stages] == [(s.kind, s.name) for s in shipped.stages]
    changed = CHANGES[name]
    settings = {key for stage in candidate.stages for key in stage.output_settings()}
    assert set(changed) <= settings, f"{name}: no stage has {sorted(set(changed) - settings)}"
    for ours, theirs in zip(candidate.stages, shipped.stages, strict=True):
        mine = ours.output_settings()
        assert changed_settings(ours, theirs) == {k: v for k, v in changed.items() if k in mine}, ours.name


@pytest.mark.parametrize("name", sorted(STAGE_CHANGES))
def test_a_candidate_changes_only_the_stages_it_says(name: str) -> None:
    shipped, candidate = default_recipe(name), parse_recipe(CANDIDATES / name)
    assert candidate.result == shipped.result
    assert [(s.kind, s.name) for s in candidate.stages] == [(s.kind, s.name) for s in shipped.stages]
    for ours, theirs in zip(candidate.stages, shipped.stages, strict=True):
        assert set(ours.output_settings()) == set(theirs.output_settings()), ours.name
        assert changed_settings(ours, theirs) == STAGE_CHANGES[name].get(ours.name, {}), ours.name
