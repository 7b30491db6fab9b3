"""``footseg synth --clips K --frames F``: short videos of synthetic scenes filmed by a hand-held phone.

Clip ``c`` is the scene that image ``c`` of a still render would draw (``Worker.scene``: its split, foot identity,
floor, light, paper and distractors), filmed for ``frames`` frames at ``fps``. Everything that moves is a smooth
random curve of time (sums of a few sinusoids with random frequencies and phases) drawn from the clip's generator:

- the phone pans (its aim wanders over the floor), orbits and tilts a little about the feet, rolls, zooms, shakes
  (slow translation) and trembles (hand tremor, 4-11 Hz, a fraction of a degree); in some clips the person walks up
  to the feet, the distance shrinking as the steps slow down, with the bob of the gait;
- feet move a little: a heel lifts and comes down, a foot turns a few degrees about its heel or ball, and sometimes
  a foot steps in beside a lone one, or one of a pair steps to or from another place (lifted while it moves);
- per frame, the camera effects of a still image with a video's twist: the exposure drifts slowly, motion blur runs
  along the image motion during the exposure (from the camera's path, so it grows with the motion), sensor noise is
  fresh every frame, and JPEG quality is a video encoder's, lower than a photo's.

Motion is in real units (metres, radians, seconds), so the per-frame motion does not depend on the clip's length.
Masks come from the renderer for every frame, exact. The unit of work (worker, shard, resume) is a clip: frame ``f``
of clip ``c`` takes its noise from ``default_rng([seed, c, f, 17])``, the rest from the clip's generator, so the
bytes do not depend on workers or shards, and ``--resume`` re-renders any clip with a frame missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from footseg.data.synth.engine import (
    ABSENT_IN_OLD_MANIFESTS,
    CLIP_FORMAT,
    Planner,
    SynthSettings,
    Worker,
    build_manifest,
    develop,
    render_units,
    write_pair,
)
from footseg.data.synth.floors import SPLITS, split_of
from footseg.data.synth.foot import FootPose
from footseg.data.synth.mesh import Mesh, merge, rotation_z
from footseg.data.synth.post import CameraEffects
from footseg.data.synth.render import look_at, perspective
from footseg.data.synth.scene import FOOT_LENGTH_GUESS, FootModel, FootPlacement, Scene, posed_foot
from footseg.errors import FootsegError


@dataclass
class ClipSettings(SynthSettings):
    """Settings of a clip render: ``n`` counts clips. A setting added here later needs the engine's
    ``ABSENT_IN_OLD_MANIFESTS`` metadata, as one added to ``SynthSettings`` does."""

    frames: int = 24  # per clip
    fps: float = 30.0  # frame rate: the motion is in seconds, so this sets how far things move between frames
    # The hand-held camera paths look down at feet from a standing person's height; walking up to first-person feet
    # brings the cut tops of the legs into frame, so clips have no own-feet scenes until they get paths of their own.
    own_feet_prob: float = field(default=0.0, metadata={ABSENT_IN_OLD_MANIFESTS: 0.0})

    def validate(self) -> None:
        if self.n < 1:
            raise FootsegError(f"--clips must be at least 1 (got {self.n})")
        if not 1 <= self.frames <= 100_000:
            raise FootsegError(f"--frames must be between 1 and 100000 (got {self.frames})")
        if not 1.0 <= self.fps <= 1000.0:
            raise FootsegError(f"fps must be between 1 and 1000 (got {self.fps})")
        if self.cutouts is not None:
            raise FootsegError("--cutouts composites still photos; clips are 3D renders only (leave out --cutouts)")
        if self.own_feet_prob:
            raise FootsegError("own-feet scenes are still images only: their camera paths are not made yet "
                               "(own_feet_prob must be 0 for clips)")
        super().validate()


def clip_name(c: int, s: ClipSettings) -> str:
    return f"clip_{c:0{max(5, len(str(s.n - 1)))}d}"


def frame_paths(out: Path, c: int, f: int, s: ClipSettings) -> tuple[Path, Path]:
    """(image, mask) of frame ``f`` of clip ``c``: ``out/<split>/clip_00007/images/f000.jpg`` and its mask."""
    folder = out / split_of(c) / clip_name(c, s)
    stem = f"f{f:0{max(3, len(str(s.frames - 1)))}d}"
    return folder / "images" / f"{stem}.{s.image_format}", folder / "masks" / f"{stem}.png"


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Curve:
    """A smooth random signal of ``dims`` channels over time (s): per channel a sum of ``k`` sinusoids with random
    frequencies in [lo, hi] Hz, phases and weights, scaled to unit RMS. Hand motion has no period: a few incommensurate
    frequencies never visibly repeat within a clip."""

    def __init__(self, rng: np.random.Generator, dims: int, lo: float, hi: float, k: int = 3):
        self.freq = rng.uniform(lo, hi, (k, dims))
        self.phase = rng.uniform(0, 2 * np.pi, (k, dims))
        a = rng.uniform(0.5, 1.0, (k, dims))
        self.amp = a / np.sqrt((a**2).sum(0) / 2)

    def __call__(self, t: float) -> np.ndarray:
        return (self.amp * np.sin(2 * np.pi * self.freq * t + self.phase)).sum(0)


@dataclass
class Camera:
    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray
    fovy: float


class CameraPath:
    """The hand-held phone's path around the scene's camera: ``at(t)`` is the camera ``t`` seconds into the clip."""

    def __init__(self, rng: np.random.Generator, scene: Scene):
        self.eye0, self.target0 = np.asarray(scene.eye, float), np.asarray(scene.target, float)
        self.up0, self.fovy0 = np.asarray(scene.up, float), float(scene.fovy)
        d = self.eye0 - self.target0
        self.dist0 = float(np.linalg.norm(d))
        self.theta0 = float(np.arccos(np.clip(d[2] / self.dist0, -1, 1)))  # from vertical
        self.phi0 = float(np.arctan2(d[1], d[0]))
        reach = self.dist0 * np.tan(self.fovy0 / 2)  # half the frame's height on the floor, m
        self.pan, self.pan_amp = Curve(rng, 2, 0.15, 0.6), reach * rng.uniform(0.05, 0.25)
        self.orbit, self.orbit_amp = Curve(rng, 1, 0.1, 0.4), rng.uniform(0.0, 0.2)
        self.tilt, self.tilt_amp = Curve(rng, 1, 0.1, 0.5), rng.uniform(0.02, 0.1)
        self.roll, self.roll_amp = Curve(rng, 1, 0.1, 0.5), rng.uniform(0.02, 0.15)
        self.zoom, self.zoom_amp = Curve(rng, 1, 0.05, 0.3), rng.uniform(0.0, 0.12)
        self.shake, self.shake_amp = Curve(rng, 3, 0.3, 1.5), rng.uniform(0.003, 0.02)
        self.tremor, self.tremor_amp = Curve(rng, 3, 4.0, 11.0), rng.uniform(0.0005, 0.003)
        self.walk = rng.random() < 0.3
        # walking up: from k0 times the distance, slowing to a stop at the scene's distance, bobbing with the gait
        self.walk_k0, self.walk_time = rng.uniform(1.25, 1.8), rng.uniform(0.6, 1.6)
        self.bob_freq, self.bob_phase, self.bob_amp = rng.uniform(1.6, 2.2), rng.uniform(0, 2 * np.pi), 0.01
        self.offset = np.zeros(3)  # of the hand, set by ``keep_clear``

    def at(self, t: float) -> Camera:
        theta = float(np.clip(self.theta0 + self.tilt_amp * self.tilt(t)[0], 0.0, 1.3))
        dphi = float(self.orbit_amp * self.orbit(t)[0])
        phi = self.phi0 + dphi
        dist, bob = self.dist0, 0.0
        if self.walk:
            left = 1.0 - _smoothstep(t / self.walk_time)
            dist *= 1.0 + (self.walk_k0 - 1.0) * left
            bob = self.bob_amp * np.sin(2 * np.pi * self.bob_freq * t + self.bob_phase) * left
        direction = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
        eye = self.target0 + dist * direction + self.shake_amp * self.shake(t) + np.array([0.0, 0.0, bob])
        eye += self.offset
        eye[2] = max(eye[2], 0.1)
        # a pan turns the phone: its aim wanders over the floor while the hand stays about where it was
        target = self.target0 + np.array([*(self.pan_amp * self.pan(t)), 0.0])
        # the phone turns with its orbit; roll and tremor then turn it about its view axis
        forward = target - eye
        forward /= np.linalg.norm(forward)
        up = rotation_z(dphi) @ self.up0
        up = up - (up @ forward) * forward
        up /= max(float(np.linalg.norm(up)), 1e-9)
        side = np.cross(forward, up)
        tremor = self.tremor_amp * self.tremor(t)
        aim = target + dist * (tremor[0] * side + tremor[1] * up)  # small angles: a turn is a shift of the aim
        roll = float(self.roll_amp * self.roll(t)[0] + tremor[2])
        up = np.cos(roll) * up + np.sin(roll) * np.cross(forward, up)
        fovy = self.fovy0 * float(np.exp(self.zoom_amp * self.zoom(t)[0]))
        return Camera(eye, aim, up, fovy)

    def keep_clear(self, points: np.ndarray, times: np.ndarray, clearance: float = 0.15) -> None:
        """Move the whole path sideways, away from the legs, until no frame's eye comes within ``clearance`` of
        ``points`` (the legs' vertices), still aiming where it aimed: the still scene keeps the phone off the ankles
        only, and a moving phone must not pass through a leaning leg or over the cut top of one."""
        if not len(points):
            return
        for _ in range(16):
            eyes = np.array([self.at(float(t)).eye for t in times])
            dist = np.linalg.norm(points[None] - eyes[:, None], axis=2)
            k, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
            if dist[k, j] >= clearance:
                return
            away = eyes[k, :2] - points[j, :2]
            norm = float(np.linalg.norm(away))
            away = away / norm if norm > 1e-6 else (eyes[k, :2] - self.target0[:2]) / max(
                float(np.linalg.norm(eyes[k, :2] - self.target0[:2])), 1e-6)
            self.offset[:2] += 0.05 * away


def _project(cam: Camera, aspect: float, size: int, points: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> output pixels (N, 2); NaN for points behind the camera."""
    m = perspective(cam.fovy, aspect, 0.02, 40.0) @ look_at(cam.eye, cam.target, cam.up)
    q = np.c_[points, np.ones(len(points))] @ m.T
    w = np.where(q[:, 3] > 1e-6, q[:, 3], np.nan)
    return np.c_[(q[:, 0] / w + 1) / 2 * size, (1 - q[:, 1] / w) / 2 * size]


def _seen_points(cam: Camera, aspect: float) -> np.ndarray:
    """World points seen through a 5 x 5 grid of the frame: on the floor, or 3 m away where a ray misses it."""
    inv = np.linalg.inv(perspective(cam.fovy, aspect, 0.02, 40.0) @ look_at(cam.eye, cam.target, cam.up))
    g = np.linspace(-0.8, 0.8, 5)
    ndc = np.array([(x, y) for y in g for x in g])
    ends = []
    for z in (-1.0, 1.0):
        h = np.c_[ndc, np.full(len(ndc), z), np.ones(len(ndc))] @ inv.T
        ends.append(h[:, :3] / h[:, 3:])
    near, far = ends
    ray = far - near
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    down = ray[:, 2] < -1e-6
    to_floor = -near[:, 2] / np.where(down, ray[:, 2], -1.0)
    return near + ray * np.where(down & (to_floor < 40.0), to_floor, 3.0)[:, None]


def motion_blur(path: CameraPath, t: float, exposure: float, aspect: float, size: int) -> tuple[float, float]:
    """(length in pixels, angle) of the blur that the camera's motion during an exposure of ``exposure`` seconds
    centred on ``t`` draws: the principal direction and RMS length of the image motion of points on the floor."""
    a, b = path.at(t - exposure / 2), path.at(t + exposure / 2)
    points = _seen_points(path.at(t), aspect)
    d = _project(b, aspect, size, points) - _project(a, aspect, size, points)
    d = d[np.isfinite(d).all(1)]
    if not len(d):
        return 0.0, 0.0
    w, v = np.linalg.eigh(d.T @ d / len(d))
    return float(np.sqrt(max(w[-1], 0.0))), float(np.arctan2(v[1, -1], v[0, -1]))


@dataclass
class FootMotion:
    """How one foot moves in a clip: ``at(t)`` is its placement ``t`` seconds in."""

    base: FootPlacement
    heel: tuple[float, float, float] | None = None  # start (s), duration (s), most raise (rad): a heel lifts and sets
    turn: Curve | None = None  # yaw wobble about the heel or the ball
    turn_amp: float = 0.0
    pivot: float = 0.0  # local x of the turn's pivot (m from the back of the heel)
    step_from: FootPlacement | None = None  # a step between this placement and ``base``
    step: tuple[float, float, float] = (0.0, 1.0, 0.0)  # start (s), duration (s), lift (m)
    arrive: bool = True  # the step goes from ``step_from`` to ``base`` (else the other way)
    moving: bool = field(init=False)

    def __post_init__(self) -> None:
        self.moving = self.heel is not None or self.turn is not None or self.step_from is not None

    def at(self, t: float) -> FootPlacement:
        p = self.base
        raise_ = 0.0
        if self.step_from is not None:
            t0, dur, lift = self.step
            u = _smoothstep((t - t0) / dur)
            a, b = (self.step_from, self.base) if self.arrive else (self.base, self.step_from)
            swing = float(np.sin(np.pi * u)) if 0.0 < u < 1.0 else 0.0  # exactly on the floor before and after
            p = replace(p, center=a.center + (b.center - a.center) * u, yaw=a.yaw + (b.yaw - a.yaw) * u,
                        height=lift * swing)
            raise_ += 0.3 * swing  # the heel leaves the floor first (toe-off)
        if self.heel is not None:
            t0, dur, most = self.heel
            raise_ += most * float(np.sin(np.pi * min(max((t - t0) / dur, 0.0), 1.0)) ** 2)
        if self.turn is not None:
            yaw = p.yaw + self.turn_amp * float(self.turn(t)[0])
            v = np.array([self.pivot - 0.5 * FOOT_LENGTH_GUESS, 0.0])  # the pivot, from the middle of the foot
            center = p.center + rotation_z(p.yaw)[:2, :2] @ v - rotation_z(yaw)[:2, :2] @ v
            p = replace(p, center=center, yaw=yaw)
        if raise_:
            # a raised heel leans the leg forward as ``FootPose.sample`` couples them
            p = replace(p, pose=replace(p.pose, heel_raise=p.pose.heel_raise + raise_,
                                        lean_forward=p.pose.lean_forward + 0.8 * raise_))
        return p


def _standing(pose: FootPose) -> bool:
    return pose.lean_forward > -0.3  # seated poses lean the shin back 0.45 rad or more


def foot_motions(rng: np.random.Generator, feet: list[FootPlacement], duration: float) -> list[FootMotion]:
    """Random motions of a scene's feet over a clip of ``duration`` seconds, maybe with a foot that steps in."""
    motions = []
    for p in feet:
        m = FootMotion(p)
        if _standing(p.pose) and rng.random() < 0.3:
            m.heel = (rng.uniform(-0.3, 0.8) * duration, rng.uniform(0.6, 1.6), rng.uniform(0.1, 0.45))
        if rng.random() < 0.5:
            m.turn, m.turn_amp = Curve(rng, 1, 0.2, 0.7), np.deg2rad(rng.uniform(2, 8))
            m.pivot = 0.0 if rng.random() < 0.5 else 0.7 * FOOT_LENGTH_GUESS
        motions.append(m)
    u = rng.random()
    step = (rng.uniform(0.0, 0.5) * duration, rng.uniform(0.4, 0.8), rng.uniform(0.02, 0.06))
    if feet and len(feet) == 1 and u < 0.2 and _standing(feet[0].pose):
        # the other foot steps in beside the lone one, from behind or the side, as the sample_scene pair stands
        first = feet[0]
        rot = rotation_z(first.yaw)[:2, :2]
        lateral = rng.uniform(0.09, 0.25) * (1 if first.right else -1)
        end = FootPlacement(first.center + rot @ np.array([rng.uniform(-0.1, 0.1), lateral]), not first.right,
                            first.yaw + rng.normal(0, 0.15), first.pose)
        start = replace(end, center=end.center + rot @ np.array([-rng.uniform(0.15, 0.4), lateral * rng.uniform(0, 1)]),
                        yaw=end.yaw + rng.normal(0, 0.3))
        motions.append(FootMotion(end, step_from=start, step=step, arrive=True))
    elif len(feet) == 2 and u < 0.25 and all(_standing(p.pose) for p in feet):
        j = int(rng.integers(2))
        base = feet[j]
        rot = rotation_z(base.yaw)[:2, :2]
        away = base.center - feet[1 - j].center
        away /= max(float(np.linalg.norm(away)), 1e-6)
        target = base.center + rot @ np.array([rng.choice([-1, 1]) * rng.uniform(0.1, 0.3), 0.0]) + \
            away * rng.uniform(0.02, 0.1)
        motions[j] = replace(motions[j], step_from=replace(base, center=target, yaw=base.yaw + rng.normal(0, 0.2)),
                             step=step, arrive=bool(rng.random() < 0.5))
    return motions


class Filming:
    """How one clip is filmed: the camera's path, the feet's motions and the camera effects over time."""

    def __init__(self, rng: np.random.Generator, scene: Scene, foot: FootModel, s: ClipSettings):
        duration = s.frames / s.fps
        self.scene, self.s = scene, s
        self.path = CameraPath(rng, scene)
        self.feet = foot_motions(rng, scene.feet, duration)
        legs = [posed_foot(foot, p, rng) for m in self.feet for p in (m.base, m.step_from) if p is not None]
        points = np.concatenate([part.positions for parts in legs for part in parts] or [np.zeros((0, 3))])
        self.path.keep_clear(points[::3], np.arange(0, s.frames, max(1, s.frames // 48)) / s.fps)
        self.fx = CameraEffects.sample(rng) if s.camera_effects else None
        self.drift, self.drift_amp = Curve(rng, 1, 0.05, 0.3), rng.uniform(0.03, 0.12)
        self.shutter = rng.uniform(0.25, 1.0)  # of the frame time: longer exposures in dim rooms blur more
        self.quality = int(rng.integers(55, 86))  # video encoders keep less than a photo's JPEG
        self._static: list[list[Mesh] | None] | None = None

    def frame(self, foot: FootModel, t: float, rng: np.random.Generator) -> Scene:
        """The scene at ``t`` seconds: the camera on its path, the feet where their motions have them."""
        mesh = self.scene.mesh  # the feet as placed, then the props: what a clip without foot motion shows
        if any(m.moving for m in self.feet):
            if self._static is None:  # feet that never move are posed once per clip
                self._static = [None if m.moving else posed_foot(foot, m.base, rng) for m in self.feet]
            meshes: list[Mesh] = []
            for m, still in zip(self.feet, self._static, strict=True):
                meshes.extend(still if still is not None else posed_foot(foot, m.at(t), rng))
            mesh = merge(meshes + self.scene.props)
        cam = self.path.at(t)
        return replace(self.scene, eye=cam.eye, target=cam.target, up=cam.up, fovy=cam.fovy, mesh=mesh)

    def effects(self, t: float, rng: np.random.Generator) -> CameraEffects | None:
        """The camera effects of the frame at ``t``: slow exposure drift, blur along the image motion, video JPEG."""
        if self.fx is None:
            return None
        s = self.s
        aspect = self.scene.aspect or 1.0
        length, angle = motion_blur(self.path, t, self.shutter / s.fps, aspect, s.size)
        return replace(self.fx, exposure=self.fx.exposure * float(np.exp(self.drift_amp * self.drift(t)[0])),
                       motion=length if length >= 0.75 else 0.0, motion_angle=angle,
                       jpeg_quality=int(np.clip(self.quality + rng.integers(-3, 4), 30, 95)))


class ClipWorker(Worker):
    """A worker whose unit is a clip: the scene of a still image, filmed (see the module's docstring)."""

    unit = "clip"

    def frames(self, c: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """(image, mask 0/255, JPEG quality) of every frame of clip ``c``, in order."""
        s = self.s
        rng, _, foot, scene = self.scene(c)
        filming = Filming(rng, scene, foot, s)
        for f in range(s.frames):
            t = f / s.fps
            frng = np.random.default_rng([s.seed, c, f, 17])
            image, coverage = self.renderer.render(filming.frame(foot, t, frng))
            yield develop(image, coverage, filming.effects(t, frng), frng, s.size)

    def write(self, out: Path, c: int) -> None:
        for f, (image, mask, quality) in enumerate(self.frames(c)):
            img_path, mask_path = frame_paths(out, c, f, self.s)
            if f == 0:
                img_path.parent.mkdir(parents=True, exist_ok=True)
                mask_path.parent.mkdir(parents=True, exist_ok=True)
            write_pair(out, img_path, mask_path, image, mask, quality)

    @staticmethod
    def paths(out: Path, c: int, s: ClipSettings) -> list[Path]:
        return [p for f in range(s.frames) for p in frame_paths(out, c, f, s)]

    @staticmethod
    def manifest(s: ClipSettings, planner: Planner) -> dict:
        m = build_manifest(s, planner)  # what went where: a clip draws its scene as the image of its index does
        units = {"images": "clips", "empty_images": "empty_clips"}
        splits = {sp: {units.get(k, k): v for k, v in d.items()} for sp, d in m["splits"].items()}
        return {"format": CLIP_FORMAT, "seed": s.seed, "clips": s.n, "frames": s.frames, "fps": s.fps,
                "size": s.size, "settings": m["settings"], "counts": m["counts"],
                "frame_counts": {sp: v * s.frames for sp, v in m["counts"].items()}, "splits": splits}

    @staticmethod
    def prepare(out: Path, s: ClipSettings) -> None:
        for sp in SPLITS:
            (out / sp).mkdir(parents=True, exist_ok=True)


def synthesize_clips(out: Path, s: ClipSettings, workers: int = 1, resume: bool = False,
                     shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict:
    """Write clips ``c`` with ``c % N == I`` to ``out``; returns the manifest (written to ``out/manifest.json``)."""
    return render_units(out, s, ClipWorker, workers=workers, resume=resume, shard=shard, progress=progress)
