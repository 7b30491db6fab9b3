"""``load_mesh_file`` on PLY layouts real scanners write: binary with extra vertex and face properties, either byte
order, polygons, colours; and a one-line ``FootsegError`` naming the file for anything unreadable."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from footseg.data.synth.mesh import load_mesh_file
from footseg.errors import FootsegError

# a square pyramid: four base corners and an apex; the base is one quad, the sides are triangles
VERTS = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 1.5, 0.0], [0.0, 1.5, 0.0], [1.0, 0.75, 3.25]])
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [51, 102, 153]])
FACES = [[0, 3, 2, 1], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]
TRIANGLES = np.array([[0, 3, 2], [0, 2, 1], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])  # the quad fanned


def _binary_ply(order: str) -> bytes:
    """Vertices with normals, colours and a confidence; faces with a flags byte after the index list."""
    fmt = {"<": "binary_little_endian", ">": "binary_big_endian"}[order]
    header = "\n".join([
        "ply", f"format {fmt} 1.0", "comment written by a scanner",
        f"element vertex {len(VERTS)}",
        "property float x", "property float y", "property float z",
        "property float nx", "property float ny", "property float nz",
        "property uchar red", "property uchar green", "property uchar blue",
        "property double confidence",
        f"element face {len(FACES)}",
        "property list uchar int vertex_indices", "property uchar flags", "property float quality",
        "end_header",
    ]) + "\n"
    body = b""
    for k, ((x, y, z), (r, g, b)) in enumerate(zip(VERTS, COLOURS, strict=True)):
        body += struct.pack(order + "6f3Bd", x, y, z, 0.0, 0.0, 1.0, r, g, b, 0.5 + k)
    for k, face in enumerate(FACES):
        body += struct.pack(order + "B", len(face)) + struct.pack(order + f"{len(face)}i", *face)
        body += struct.pack(order + "Bf", 0xA0 + k, 0.25)  # values that would read as indices at a wrong offset
    return header.encode("ascii") + body


@pytest.mark.parametrize("order", ["<", ">"])
def test_binary_ply_with_extra_properties(tmp_path: Path, order: str) -> None:
    path = tmp_path / "scan.ply"
    path.write_bytes(_binary_ply(order))
    verts, cols, tris = load_mesh_file(path)
    np.testing.assert_array_equal(verts, VERTS)
    np.testing.assert_array_equal(tris, TRIANGLES)
    assert cols is not None
    np.testing.assert_allclose(cols, COLOURS / 255.0)


@pytest.mark.parametrize("flags_first", [False, True])
def test_binary_ply_all_triangles(tmp_path: Path, flags_first: bool) -> None:
    # the common layout (every face a triangle) with one extra face property after or before the index list
    face_props = ["property list uchar uint vertex_indices", "property ushort flags"]
    header = "\n".join(["ply", "format binary_little_endian 1.0", f"element vertex {len(VERTS)}",
                        "property double x", "property double y", "property double z", "property int tag",
                        f"element face {len(TRIANGLES)}", *(face_props[::-1] if flags_first else face_props),
                        "end_header"]) + "\n"
    body = b"".join(struct.pack("<3di", *v, 7) for v in VERTS)
    body += b"".join(struct.pack("<HB3I", 1, 3, *t) if flags_first else struct.pack("<B3IH", 3, *t, 1)
                     for t in TRIANGLES)
    path = tmp_path / "tris.ply"
    path.write_bytes(header.encode("ascii") + body)
    verts, cols, tris = load_mesh_file(path)
    np.testing.assert_array_equal(verts, VERTS)
    np.testing.assert_array_equal(tris, TRIANGLES)
    assert cols is None


def test_ascii_ply_polygons_and_colours(tmp_path: Path) -> None:
    lines = ["ply", "format ascii 1.0", f"element vertex {len(VERTS)}", "property float x", "property float y",
             "property float z", "property uchar red", "property uchar green", "property uchar blue",
             f"element face {len(FACES)}", "property list uchar int vertex_indices", "property uchar flags",
             "end_header"]
    lines += [f"{x} {y} {z} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(VERTS, COLOURS, strict=True)]
    lines += [f"{len(f)} {' '.join(map(str, f))} 1" for f in FACES]
    path = tmp_path / "a.ply"
    path.write_text("\n".join(lines) + "\n")
    verts, cols, tris = load_mesh_file(path)
    np.testing.assert_array_equal(verts, VERTS)
    np.testing.assert_array_equal(tris, TRIANGLES)
    assert cols is not None
    np.testing.assert_allclose(cols, COLOURS / 255.0)


def test_obj_polygons(tmp_path: Path) -> None:
    lines = [f"v {x} {y} {z}" for x, y, z in VERTS] + ["f " + " ".join(f"{k + 1}/1/1" for k in f) for f in FACES]
    path = tmp_path / "a.obj"
    path.write_text("\n".join(lines) + "\n")
    verts, cols, tris = load_mesh_file(path)
    np.testing.assert_array_equal(verts, VERTS)
    np.testing.assert_array_equal(tris, TRIANGLES)
    assert cols is None


@pytest.mark.parametrize("content", [
    b"not a ply file at all\n",
    b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\n",  # no end_header
    b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    b"0 0 0\n1 0 0\n",  # truncated, and no faces
    b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float y\nproperty float z\nelement face 1\n"
    b"property list uchar int vertex_indices\nend_header\n0 0\n1 0\n0 1\n1 1\n3 0 1 2\n",  # no x
    b"\xff\xfe\x00garbage",
])
def test_bad_ply_is_one_line_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(FootsegError) as info:
        load_mesh_file(path)
    assert info.value.path == path and "\n" not in str(info.value)


def test_truncated_binary_ply(tmp_path: Path) -> None:
    path = tmp_path / "cut.ply"
    path.write_bytes(_binary_ply("<")[:-7])
    with pytest.raises(FootsegError, match="unreadable mesh") as info:
        load_mesh_file(path)
    assert info.value.path == path
