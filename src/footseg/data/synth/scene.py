"""One synthetic photo's scene: feet placed on the ground, a phone camera, lights, floor, wall and distractors.

``sample_scene`` draws everything from the image's random generator, given the foot model (the identity) and the
floor material chosen by the engine for the image's split. The camera is a phone held 0.3-1.2 m from the feet,
looking down 0-60 degrees from vertical, with random roll and a phone's field of view; frames are 3:4 portrait,
4:3 landscape or square, squashed into the square output as ``resize_image`` does to a phone photo.

With ``own_feet_prob`` a scene is instead a first-person photo of one's own feet (``_own_feet_scene``): the phone at
knee to hip height just in front of the legs, looking down and forward along the shins, which enter the frame from
its bottom edge; no paper; indoors (often a painted wall with a skirting board ahead) or outdoors on paving, asphalt or
gravel; in soft room light or hard, warm sunlight with crisp cast shadows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from footseg.data.synth.distractors import (
    SurfaceQuad,
    flat_quad,
    paper_sheet,
    random_solid,
    rug,
)
from footseg.data.synth.floors import (
    PHOTO,
    Surface,
    outdoor_ground,
    painted_wall,
    random_color,
    wall_surface,
    weathered_photo,
)
from footseg.data.synth.foot import SOCK_PROB, FootPose
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
    shadow_res: int | None = None  # of the shadow map; None: the renderer's (hard sunlight asks for a finer one)
    # what kind of photo this is (the renderer ignores it): a first-person view of one's own feet, outdoors, in sun
    own_feet: bool = False
    outdoor: bool = False
    sun: bool = False


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


def _room_light(rng: np.random.Generator, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Soft indoor light: a key light from above at 25-85 degrees, warm or cool, ambient fill and 1-3 ceiling lamps
    (which glossy floors reflect). Returns (direction to the light, key colour, ambient, lamp positions)."""
    elev = rng.uniform(np.deg2rad(25), np.deg2rad(85))
    laz = rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.cos(elev) * np.cos(laz), np.cos(elev) * np.sin(laz), np.sin(elev)])
    warm = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.12 * warm, 1.0, 1.0 - 0.18 * warm])
    key = rng.uniform(0.35, 0.85)
    amb = rng.uniform(0.3, 0.65)
    lamps = np.array([[*(target[:2] + rng.uniform(-2, 2, 2)), rng.uniform(2.2, 2.8)]
                      for _ in range(int(rng.integers(1, 4)))])
    return light_dir, key * tint, amb * (tint * 0.5 + 0.5 * np.array([0.95, 1.0, 1.08])), lamps


def sample_scene(rng: np.random.Generator, size: int, foot: FootModel, floor: Surface, *, distractors: bool = True,
                 shadows: bool = True, paper: bool = True, seated_prob: float = 0.2,
                 own_feet_prob: float = 0.0, clothes: bool = True, sock_prob: float = SOCK_PROB) -> Scene:
    width, height = _frame(rng, size)

    # Users film their own feet too, looking down along their legs: see ``_own_feet_scene``. (No draw when off, so
    # ``--without own-feet`` renders the same bytes as before such scenes existed.)
    if own_feet_prob > 0 and rng.random() < own_feet_prob:
        return _own_feet_scene(rng, width, height, size, foot, floor, distractors=distractors, shadows=shadows,
                               clothes=clothes, sock_prob=sock_prob)

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
        placements.append(FootPlacement(c, right, fyaw, FootPose.sample(rng, seated=seated, clothes=clothes,
                                                                                sock_prob=sock_prob)))
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
        surfaces.append(SurfaceQuad(wall_surface(rng), corners, (-forward).astype(np.float32), shadowed=False,
                                    what="wall"))
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

    light_dir, light_color, ambient, lamps = _room_light(rng, target)
    # A phone frame (3:4, 4:3 or 1:1) drawn straight into the square output: the same squash as evaluation's plain
    # resize of a phone photo, without rendering the pixels that the resize would throw away.
    return Scene(
        width=size, height=size, aspect=width / height, eye=eye, target=target, up=up, fovy=float(fovy),
        light_dir=light_dir, light_color=light_color, ambient=ambient, lamps=lamps,
        lamp_power=float(rng.uniform(0.3, 1.5)), mesh=merge(meshes), materials=_materials(rng),
        surfaces=surfaces, feet=placements, props=meshes[n_foot_meshes:], shadow_center=feet_center.copy(),
        shadow_size=1.8,
        shadow_strength=(rng.uniform(0.4, 0.85), rng.uniform(0.3, 0.8)) if shadows else (0.0, 0.0),
        shadow_blur=float(rng.uniform(0.008, 0.04)), contact_k=float(rng.uniform(0.012, 0.03)),
    )


def without_feet(scene: Scene) -> Scene:
    """The same scene with its feet and legs taken out (their shadows too): nothing in it is foot."""
    return replace(scene, mesh=merge(scene.props), feet=[])


def _camera_coords(eye: np.ndarray, forward: np.ndarray, up: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) in the camera's frame: (right, up, depth along ``forward``)."""
    right = np.cross(forward, up)
    v = points - eye
    return np.stack([v @ right, v @ up, v @ forward], 1)


def _in_frame(eye: np.ndarray, forward: np.ndarray, up: np.ndarray, fovy: float, aspect: float,
              points: np.ndarray) -> np.ndarray:
    c = _camera_coords(eye, forward, up, points)
    ty = np.tan(fovy / 2)
    depth = np.maximum(c[:, 2], 1e-9)
    return (c[:, 2] > 0) & (np.abs(c[:, 1] / depth) < ty) & (np.abs(c[:, 0] / depth) < ty * aspect)


def _sunlight(rng: np.random.Generator, feet_center: np.ndarray,
              leg_top: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Hard sunlight: a low to high sun, warm and strong, with a bluish sky as the only fill. Returns (direction to
    the sun, its colour, ambient, centre and size of the shadow map covering the legs' long shadows)."""
    elev = rng.uniform(np.deg2rad(22), np.deg2rad(65))
    laz = rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.cos(elev) * np.cos(laz), np.cos(elev) * np.sin(laz), np.sin(elev)])
    warm = rng.uniform(0.3, 1.0)
    amb = rng.uniform(0.2, 0.38)
    # a phone exposes for the sunlit ground: it gets about as much light as a room's floor, whatever the sun's height
    key = min((rng.uniform(0.85, 1.15) - amb) / np.sin(elev), 1.4)
    color = key * np.array([1.0 + 0.1 * warm, 1.0, 1.0 - 0.25 * warm])
    ambient = amb * np.array([0.9, 1.0, 1.15])
    # the map must hold the whole shadow of the legs, which falls away from the sun, long when it is low
    length = min(leg_top / np.tan(elev), 2.4)
    away = -light_dir[:2] / max(float(np.linalg.norm(light_dir[:2])), 1e-6)
    return light_dir, color, ambient, feet_center + away * length / 2, float(length + 1.2)


def _own_feet_scene(rng: np.random.Generator, width: int, height: int, size: int, foot: FootModel, floor: Surface, *,
                    distractors: bool, shadows: bool, clothes: bool = True, sock_prob: float = SOCK_PROB) -> Scene:
    """A first-person photo of one's own feet: standing, the phone held at knee to hip height just in front of the
    legs, looking down and forward so the legs enter the frame from its bottom edge. Real photos of this kind had
    walls, pavements and sunlight that no paper scene showed. (Seated, the phone would look down on the knees, where
    the modelled legs end: those views are left out.)"""
    # people film their feet with the toes pointing away from them, slightly turned out
    yaw = rng.uniform(0, 2 * np.pi)
    two = rng.random() < 0.85
    first_right = rng.random() < 0.5
    pose = FootPose.sample(rng, clothes=clothes, sock_prob=sock_prob)
    pose.heel_raise, pose.lean_forward = 0.0, rng.uniform(-0.12, 0.08)  # standing still, upright
    centers, sides, yaws, poses = [np.zeros(2)], [first_right], [yaw], [pose]
    turn_out = rng.uniform(0.0, 0.3, 2)
    if two:
        lateral = rng.uniform(0.12, 0.32) * (1 if first_right else -1)  # the right foot stands to the left's right
        centers.append(rotation_z(yaw)[:2, :2] @ np.array([rng.normal(0, 0.04), lateral]))
        sides.append(not first_right)
        yaws.append(yaw)
        poses.append(FootPose(**{**pose.__dict__, "lean_side": rng.uniform(-0.15, 0.15)}))  # one person, one outfit
    yaws = [y + (-a if right else a) for y, right, a in zip(yaws, sides, turn_out, strict=False)]
    feet_center = np.mean(centers, axis=0)
    fwd2 = rotation_z(yaw)[:2, 0]
    # where each leg meets the ankle, as ``posed_foot`` and ``FootPose`` place them
    ankles = [c + rotation_z(y)[:2, :2] @ np.array([(0.2 - 0.5) * FOOT_LENGTH_GUESS, 0.0])
              for c, y in zip(centers, yaws, strict=True)]
    ankle = np.mean(ankles, axis=0)

    placements, meshes = [], []
    for c, right, fyaw, fpose in zip(centers, sides, yaws, poses, strict=True):
        placements.append(FootPlacement(c, right, fyaw, fpose))
        meshes.extend(posed_foot(foot, placements[-1], rng))
    n_foot_meshes = len(meshes)
    body = np.concatenate([m.positions for m in meshes] or [np.zeros((0, 3))])

    fov_long = np.deg2rad(rng.uniform(55, 72))
    fovy = fov_long if height >= width else 2 * np.arctan(np.tan(fov_long / 2) * height / width)
    aspect = width / height
    # the phone: at knee to hip height in front of the legs, below their cut tops (0.9 m), which then never come into
    # view; the frame's bottom edge crosses the shins at the anchor
    eye = np.array([*(ankle + fwd2 * rng.uniform(0.1, 0.28)), rng.uniform(0.45, 0.88)])
    anchor = np.array([*(ankle + fwd2 * 0.05), eye[2] * rng.uniform(0.2, 0.6)])
    side2 = np.array([-fwd2[1], fwd2[0]])
    eye[:2] += side2 * rng.normal(0, 0.05)
    # nobody holds a phone inside their leg: forward, out of it
    for _ in range(20):
        if not len(body) or np.min(np.linalg.norm(body - eye, axis=1)) >= 0.1:
            break
        eye[:2] += fwd2 * 0.02

    # pitch (below the horizontal, towards the toes) so the bottom edge of the frame crosses the shins at the anchor
    look_yaw = float(np.arctan2(fwd2[1], fwd2[0]) + rng.normal(0, 0.12))
    horiz = np.array([np.cos(look_yaw), np.sin(look_yaw), 0.0])
    ray = anchor - eye
    pitch = float(np.arctan2(-ray[2], ray[:2] @ horiz[:2])) - fovy / 2 + rng.uniform(-0.06, 0.1)
    roll = rng.normal(0, 0.08)
    outdoor = rng.random() < 0.45
    wall = not outdoor and rng.random() < 0.55
    margin = rng.uniform(0.08, 0.45)  # of the wall seen above the floor, radians at the frame's top edge

    def camera(pitch: float) -> tuple[np.ndarray, np.ndarray]:
        forward = np.cos(pitch) * horiz + np.array([0.0, 0.0, -np.sin(pitch)])
        up = np.sin(pitch) * horiz + np.array([0.0, 0.0, np.cos(pitch)])
        right = np.cross(forward, up)
        return forward, np.cos(roll) * up + np.sin(roll) * right

    # a wall ahead beyond the toes, seen along the top of the frame: look further up if it would be out of sight
    toes = float(max((body[:, :2] - eye[:2]) @ horiz[:2], default=0.3)) if len(body) else 0.3
    wall_dist = toes + rng.uniform(0.12, 0.9)
    if wall:
        pitch = min(pitch, float(np.arctan2(eye[2], wall_dist)) + fovy / 2 - margin)
        # ... but not so far that the toes drop out of the bottom of the frame
        tips = body[body[:, 2] < 0.05] if len(body) else np.zeros((1, 3))
        tip = tips[np.argmax((tips[:, :2] - eye[:2]) @ horiz[:2])]
        below = float(np.arctan2(eye[2] - tip[2], (tip[:2] - eye[:2]) @ horiz[:2]))
        pitch = max(pitch, below + 0.2 - fovy / 2)
    pitch = float(np.clip(pitch, np.deg2rad(20), np.deg2rad(88)))
    # without a wall the top edge stays below the horizon: the ground ends 15 m away, and nothing is drawn beyond
    lowest = np.deg2rad(20) if wall else fovy / 2 + np.deg2rad(8)
    # the cut top of a leg (and of its trousers) must stay out of the frame: look further up until it does
    if len(body):
        top = body[body[:, 2] > body[:, 2].max() - 0.04]
        for _ in range(40):
            forward, up = camera(pitch)
            if not _in_frame(eye, forward, up, fovy, aspect, top).any():
                break
            pitch -= 0.02
    forward, up = camera(max(pitch, lowest))
    target = eye + forward * (eye[2] / max(-forward[2], 0.05))
    target[2] = 0.0

    # surfaces: the ground, a wall ahead, maybe a rug; never a sheet of paper
    ground = floor
    if outdoor:
        # the photo's folder names its kind; the rest of its path is where the data happens to sit (same bytes anywhere)
        tiles = floor.kind == PHOTO and floor.photo is not None and Path(floor.photo).parent.name == "tiles"
        ground = weathered_photo(floor, rng) if (tiles and rng.random() < 0.5) else outdoor_ground(rng)
    g = 15.0
    gx, gy = target[:2]
    surfaces = [SurfaceQuad(ground, np.array([[gx - g, gy - g, 0], [gx + g, gy - g, 0], [gx - g, gy + g, 0],
                                              [gx + g, gy + g, 0]], np.float32), np.array([0, 0, 1.0], np.float32))]
    wall_normal = None
    if wall:
        along = rotation_z(rng.normal(0, 0.25))[:2, :2] @ side2
        base = eye[:2] + horiz[:2] * wall_dist
        corners = np.array([[*(base - along * g), 0], [*(base + along * g), 0], [*(base - along * g), 3.0],
                            [*(base + along * g), 3.0]], np.float32)
        wall_normal = np.array([along[1], -along[0]])
        wall_normal = wall_normal if wall_normal @ horiz[:2] < 0 else -wall_normal
        surfaces.append(SurfaceQuad(painted_wall(rng), corners, np.array([*wall_normal, 0.0], np.float32),
                                    shadowed=False, what="wall"))
    z = 0.0015
    if distractors and not outdoor and rng.random() < 0.2:
        surfaces.append(rug(rng, feet_center + rng.normal(0, 0.15, 2), z))
    if distractors:
        for _ in range(int(rng.poisson(0.8))):
            thing = random_solid(rng)
            ang = rng.uniform(0, 2 * np.pi)
            at = feet_center + rng.uniform(0.25, 0.9) * np.array([np.cos(ang), np.sin(ang)])
            if wall_normal is not None and (at - base) @ wall_normal < 0.2:
                continue  # it would stand in the wall
            meshes.append(thing.transformed(rotation_z(rng.uniform(0, 2 * np.pi)), np.array([*at, 0.0])))

    sun = rng.random() < (0.7 if outdoor else 0.3)
    shadow_center, shadow_size, shadow_res = feet_center.copy(), 1.8, None
    if sun:
        light_dir, light_color, ambient, shadow_center, shadow_size = _sunlight(rng, feet_center, float(eye[2]))
        lamps = np.array([[*(target[:2] + rng.uniform(-2, 2, 2)), 2.5]])
        strength = (rng.uniform(0.3, 0.6), rng.uniform(0.75, 0.92))
        blur = float(rng.uniform(0.0, 0.005))  # crisp: a few millimetres
        shadow_res = 512  # a fine map over the long shadows, so their edges stay sharp
    else:
        light_dir, light_color, ambient, lamps = _room_light(rng, target)
        strength = (rng.uniform(0.4, 0.85), rng.uniform(0.3, 0.8))
        blur = float(rng.uniform(0.008, 0.04))
    return Scene(
        width=size, height=size, aspect=aspect, eye=eye, target=target, up=up, fovy=float(fovy),
        light_dir=light_dir, light_color=light_color, ambient=ambient, lamps=lamps,
        lamp_power=float(rng.uniform(0.3, 1.5)) * (0.2 if outdoor else 1.0), mesh=merge(meshes),
        materials=_materials(rng), surfaces=surfaces, feet=placements, props=meshes[n_foot_meshes:],
        shadow_center=shadow_center, shadow_size=shadow_size, shadow_strength=strength if shadows else (0.0, 0.0),
        shadow_blur=blur, contact_k=float(rng.uniform(0.012, 0.03)), shadow_res=shadow_res, own_feet=True,
        outdoor=outdoor, sun=sun,
    )


__all__ = ["FOOT_LENGTH_GUESS", "FootModel", "FootPlacement", "Scene", "flat_quad", "posed_foot", "sample_scene"]
