"""One synthetic photo's scene: feet placed on the ground, a phone camera, lights, floor, wall and distractors.

``sample_scene`` draws everything from the image's random generator, given the foot model (the identity) and the
floor material chosen by the engine for the image's split. The camera is a phone held 0.3-1.2 m from the feet,
looking down 0-60 degrees from vertical, with random roll and a phone's field of view; frames are 3:4 portrait,
4:3 landscape or square, squashed into the square output as ``resize_image`` does to a phone photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from footseg.data.synth.distractors import (
    SurfaceQuad,
    flat_quad,
    paper_sheet,
    random_solid,
    rug,
)
from footseg.data.synth.floors import Surface, random_color, wall_surface
from footseg.data.synth.foot import FootPose
from footseg.data.synth.mesh import Mesh, merge, rotation_z

# (pose, rng) -> meshes of a left foot in its local frame (heel at the origin, toes along +x)
FootModel = Callable[[FootPose, np.random.Generator], list[Mesh]]

FOOT_LENGTH_GUESS = 0.26  # m: where a foot of unknown length stands, about its middle


@dataclass
class FootPlacement:
    """Where one foot of a scene stands and how: kept with the scene so a clip can re-pose and move it per frame."""

    center: np.ndarray  # (2,) ground point under the middle of the foot
    right: bool  # a right foot (the model's left foot mirrored)
    yaw: float  # radians, toes direction about the vertical axis
    pose: FootPose
    height: float = 0.0  # m above the floor (a foot lifted while it steps)


def posed_foot(foot: FootModel, placement: FootPlacement, rng: np.random.Generator) -> list[Mesh]:
    """The meshes of ``foot`` in ``placement``'s pose, mirrored for a right foot, turned and moved into the world."""
    rot = rotation_z(placement.yaw)
    at = np.array([*(placement.center - rot[:2, :2] @ np.array([0.5 * FOOT_LENGTH_GUESS, 0])), placement.height])
    return [(part.mirrored_y() if placement.right else part).transformed(rot, at) for part in foot(placement.pose, rng)]


@dataclass
class Scene:
    width: int
    height: int
    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray
    fovy: float
    light_dir: np.ndarray
    light_color: np.ndarray
    ambient: np.ndarray
    lamps: np.ndarray
    lamp_power: float
    mesh: Mesh
    materials: np.ndarray  # (8, 10): pattern type, scale, specular, casts shadow, colour 1, colour 2
    surfaces: list[SurfaceQuad] = field(default_factory=list)
    shadow_center: np.ndarray = field(default_factory=lambda: np.zeros(2))
    shadow_size: float = 1.6
    shadow_strength: tuple[float, float] = (0.7, 0.5)
    shadow_blur: float = 0.02
    contact_k: float = 0.02
    aspect: float | None = None  # of the phone frame; None = width / height (else the frame is squashed into it)
    # what ``mesh`` was merged from: the feet (``posed_foot``) first, then the other things on the floor
    feet: list[FootPlacement] = field(default_factory=list)
    props: list[Mesh] = field(default_factory=list)


def _materials(rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((8, 10), np.float32)
    m[:, 3] = 1.0

    def sock_like(row: int) -> None:
        m[row, 0] = rng.choice([2, 3, 4, 5], p=[0.5, 0.25, 0.1, 0.15])
        m[row, 1] = rng.uniform(15, 70)
        dark = rng.random() < 0.3
        m[row, 4:7] = np.full(3, rng.uniform(0.03, 0.2)) if dark else (
            np.full(3, rng.uniform(0.75, 0.98)) if rng.random() < 0.35 else random_color(rng))
        m[row, 7:10] = random_color(rng)
        m[row, 2] = 0.03

    m[0, :3] = [1, 1, rng.uniform(0.05, 0.3)]  # skin
    sock_like(1)
    m[2, 0] = rng.choice([6, 2, 7, 4], p=[0.35, 0.4, 0.13, 0.12])  # trousers
    m[2, 1] = rng.uniform(10, 40)
    m[2, 4:7] = (np.array([0.15, 0.22, 0.42]) * rng.uniform(0.5, 1.6) if m[2, 0] == 6 else random_color(rng))
    m[2, 7:10] = random_color(rng)
    m[2, 2] = 0.02
    m[3, :3] = [0, 1, rng.uniform(0.05, 0.5)]  # plain objects
    m[4, :4] = [0, 1, 0.05, 0.0]  # flat, casts no shadow
    m[5, 0] = rng.choice([3, 4, 5, 7])
    m[5, 1] = rng.uniform(5, 40)
    m[5, 4:7], m[5, 7:10] = random_color(rng), random_color(rng)
    m[6, :3] = [1, 1, rng.uniform(0.05, 0.3)]  # skin-like
    sock_like(7)
    return m


def _frame(rng: np.random.Generator, size: int) -> tuple[int, int]:
    long = round(size * 4 / 3)
    k = rng.choice(3, p=[0.6, 0.25, 0.15])
    return ((size, long), (long, size), (size, size))[int(k)]  # (width, height)


def sample_scene(rng: np.random.Generator, size: int, foot: FootModel, floor: Surface, *, distractors: bool = True,
                 shadows: bool = True, paper: bool = True, seated_prob: float = 0.2) -> Scene:
    width, height = _frame(rng, size)

    # Some photos are taken sitting down: the shins slope back from the feet across the floor, and the camera is in
    # front of or beside the feet, never where the legs are. Real photos had such legs, missed off the paper.
    # (no draw when off, so ``--without seated`` renders the same bytes as before seated scenes existed)
    seated = seated_prob > 0 and rng.random() < seated_prob
    # feet: one or two, a left/right pair standing side by side
    yaw = rng.uniform(0, 2 * np.pi)
    two = rng.random() < 0.55
    first_right = rng.random() < 0.5
    length_guess = FOOT_LENGTH_GUESS
    centers = [np.zeros(2)]
    sides = [first_right]
    yaws = [yaw]
    if two:
        gap = rng.uniform(0.09, 0.3)
        shift = rng.uniform(-0.12, 0.12)
        lateral = -gap if not first_right else gap  # the right foot stands to the left foot's right (-y)
        centers.append(rotation_z(yaw)[:2, :2] @ np.array([shift, lateral]))
        sides.append(not first_right)
        yaws.append(yaw + rng.normal(0, 0.2))
    feet_center = np.mean(centers, axis=0)

    # camera
    # Most phone photos of feet are taken close (foot and shin fill the frame, the leg leaves it); far shots with
    # small feet are the minority. Close shots were too rare before: the model missed the shin in real photos.
    far = 1.2 if rng.random() < 0.4 else 0.6
    d = float(np.exp(rng.uniform(np.log(0.3), np.log(far))))
    tilt = rng.uniform(0, np.deg2rad(60))
    az = yaw + np.pi + rng.normal(0, 0.5) if rng.random() < 0.55 else rng.uniform(0, 2 * np.pi)
    if seated:
        az = yaw + rng.uniform(-0.5 * np.pi, 0.5 * np.pi)
    fov_long = np.deg2rad(rng.uniform(55, 72))
    fovy = fov_long if height >= width else 2 * np.arctan(np.tan(fov_long / 2) * height / width)
    reach = d * np.tan(fovy / 2)
    # People often photograph one foot of a pair: the other then stands at the edge or in a corner of the frame,
    # cut by it. Real photos showed that case missed when the camera always aimed between the feet.
    aim = centers[int(rng.integers(len(centers)))] if two and rng.random() < 0.35 else feet_center
    target = np.array([*(aim + rng.uniform(-0.35, 0.35, 2) * reach), 0.04])
    horiz = np.array([np.cos(az), np.sin(az), 0.0])
    eye = target + d * (np.sin(tilt) * horiz + np.array([0, 0, np.cos(tilt)]))
    forward = -horiz
    side = np.array([-forward[1], forward[0], 0.0])
    roll = rng.normal(0, 0.15) if rng.random() < 0.85 else rng.uniform(-np.pi, np.pi)
    up = np.cos(roll) * forward + np.sin(roll) * side

    # nobody holds a phone inside their own leg: move the camera sideways out of it, looking at the same point
    for c, fyaw in zip(centers, yaws, strict=True):
        ankle = c + rotation_z(fyaw)[:2, :2] @ np.array([-0.3 * length_guess, 0.0])
        away = eye[:2] - ankle
        dist = float(np.linalg.norm(away))
        if dist < 0.25:
            away = away / dist if dist > 1e-6 else horiz[:2]
            eye[:2] = ankle + away * 0.25
    forward = target - eye
    forward = np.array([forward[0], forward[1], 0.0]) / max(float(np.linalg.norm(forward[:2])), 1e-6)
    side = np.array([-forward[1], forward[0], 0.0])
    up = np.cos(roll) * forward + np.sin(roll) * side

    meshes: list[Mesh] = []
    placements = []
    for c, right, fyaw in zip(centers, sides, yaws, strict=True):
        placements.append(FootPlacement(c, right, fyaw, FootPose.sample(rng, seated=seated)))
        meshes.extend(posed_foot(foot, placements[-1], rng))
    n_foot_meshes = len(meshes)

    # surfaces: ground, maybe a wall, rugs and a sheet of paper under the feet
    g = 15.0
    gx, gy = target[:2]
    surfaces = [SurfaceQuad(floor, np.array([[gx - g, gy - g, 0], [gx + g, gy - g, 0], [gx - g, gy + g, 0],
                                             [gx + g, gy + g, 0]], np.float32), np.array([0, 0, 1.0], np.float32))]
    if rng.random() < 0.6:
        dist = rng.uniform(0.6, 3.0)
        base = target[:2] + forward[:2] * dist
        corners = np.array([[*(base - side[:2] * g), 0], [*(base + side[:2] * g), 0],
                            [*(base - side[:2] * g), 3.0], [*(base + side[:2] * g), 3.0]], np.float32)
        surfaces.append(SurfaceQuad(wall_surface(rng), corners, (-forward).astype(np.float32), shadowed=False))
    z = 0.0015
    if distractors and rng.random() < 0.3:
        under = rng.random() < 0.4
        at = feet_center + (rng.normal(0, 0.1, 2) if under else rng.uniform(-1.0, 1.0, 2))
        surfaces.append(rug(rng, at, z))
        z += 0.0015
    if paper and rng.random() < 0.7:
        at = centers[int(rng.integers(len(centers)))] + rng.normal(0, 0.04, 2)
        surfaces.append(paper_sheet(rng, at, yaw + np.pi / 2 + rng.normal(0, 0.4), z))
        z += 0.001
    if distractors:
        for _ in range(int(rng.poisson(0.5))):
            surfaces.append(paper_sheet(rng, feet_center + rng.uniform(-0.8, 0.8, 2), rng.uniform(0, 7), z))
            z += 0.001
        for _ in range(int(rng.poisson(1.6))):
            thing = random_solid(rng)
            ang = rng.uniform(0, 2 * np.pi)
            r = rng.uniform(0.22, 0.9)
            at = feet_center + r * np.array([np.cos(ang), np.sin(ang)])
            meshes.append(thing.transformed(rotation_z(rng.uniform(0, 2 * np.pi)), np.array([*at, 0.0])))
    if not distractors:
        surfaces = [s for s in surfaces if s.surface is floor or s.normal[2] < 0.5]

    # light
    elev = rng.uniform(np.deg2rad(25), np.deg2rad(85))
    laz = rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.cos(elev) * np.cos(laz), np.cos(elev) * np.sin(laz), np.sin(elev)])
    warm = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.12 * warm, 1.0, 1.0 - 0.18 * warm])
    key = rng.uniform(0.35, 0.85)
    amb = rng.uniform(0.3, 0.65)
    lamps = np.array([[*(target[:2] + rng.uniform(-2, 2, 2)), rng.uniform(2.2, 2.8)]
                      for _ in range(int(rng.integers(1, 4)))])
    # A phone frame (3:4, 4:3 or 1:1) drawn straight into the square output: the same squash as evaluation's plain
    # resize of a phone photo, without rendering the pixels that the resize would throw away.
    return Scene(
        width=size, height=size, aspect=width / height, eye=eye, target=target, up=up, fovy=float(fovy),
        light_dir=light_dir, light_color=key * tint, ambient=amb * (tint * 0.5 + 0.5 * np.array([0.95, 1.0, 1.08])),
        lamps=lamps, lamp_power=float(rng.uniform(0.3, 1.5)), mesh=merge(meshes), materials=_materials(rng),
        surfaces=surfaces, feet=placements, props=meshes[n_foot_meshes:], shadow_center=feet_center.copy(),
        shadow_size=1.8,
        shadow_strength=(rng.uniform(0.4, 0.85), rng.uniform(0.3, 0.8)) if shadows else (0.0, 0.0),
        shadow_blur=float(rng.uniform(0.008, 0.04)), contact_k=float(rng.uniform(0.012, 0.03)),
    )


__all__ = ["FOOT_LENGTH_GUESS", "FootModel", "FootPlacement", "Scene", "flat_quad", "posed_foot", "sample_scene"]
