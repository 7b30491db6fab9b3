"""Headless OpenGL renderer (moderngl on EGL; Mesa's llvmpipe on a CPU-only machine) for synthetic scenes.

One ``Renderer`` per process: it creates its context once and reuses its programs, buffers and framebuffers for every
image. A frame is drawn in three steps: (1) a small top-down pass renders the objects' contact occlusion and their
cast shadow along the key light into a shadow map, which is blurred (soft shadows) and sampled by the floor;
(2) the ground, rugs and the wall are drawn with the procedural or photo floor materials of ``floors.py``;
(3) the meshes are drawn with Lambert + a little specular lighting. The label of every mesh vertex (1 foot, 0 anything
else) goes to the alpha channel, so the mask comes from the same rasterisation and depth test as the image: whatever
hides the foot (trousers, a shoe in front) hides it in the mask too. Optional MSAA gives anti-aliased edges (the
resolved alpha is then the foot coverage of each pixel) but costs about 3x the time on llvmpipe, so it is off by
default; the resize to the square output smooths edges along the long side.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from footseg.data.io import read_image
from footseg.data.synth.floors import FLOOR_GLSL, OUTDOOR, PHOTO
from footseg.data.synth.scene import Scene
from footseg.errors import FootsegError

if TYPE_CHECKING:  # moderngl is imported where a GL context is made
    import moderngl

_STRIDE = 56  # pos 3f, normal 3f, colour 3f, material 1f, label 1f, pattern 3f

_MESH_VS = """
#version 330
uniform mat4 vp;
in vec3 in_pos; in vec3 in_nrm; in vec3 in_col; in float in_mat; in float in_label; in vec3 in_pat;
out vec3 v_pos; out vec3 v_nrm; out vec3 v_col; flat out int v_mat; out float v_label; out vec3 v_pat;
void main() {
    v_pos = in_pos; v_nrm = in_nrm; v_col = in_col; v_mat = int(in_mat + 0.5); v_label = in_label; v_pat = in_pat;
    gl_Position = vp * vec4(in_pos, 1.0);
}
"""

_MESH_FS = """
#version 330
uniform vec3 eye; uniform vec3 light_dir; uniform vec3 light_col; uniform vec3 ambient;
uniform vec4 m_a[8];   // pattern type, pattern scale, specular strength, casts shadow
uniform vec3 m_b[8];   // colour 1
uniform vec3 m_c[8];   // colour 2
in vec3 v_pos; in vec3 v_nrm; in vec3 v_col; flat in int v_mat; in float v_label; in vec3 v_pat;
out vec4 frag;

float hash3(vec3 p) { return fract(sin(dot(p, vec3(127.1, 311.7, 74.7))) * 43758.5453); }
float noise3(vec3 p) {
    vec3 i = floor(p); vec3 f = fract(p); f = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash3(i), hash3(i + vec3(1, 0, 0)), f.x), mix(hash3(i + vec3(0, 1, 0)),
               hash3(i + vec3(1, 1, 0)), f.x), f.y),
               mix(mix(hash3(i + vec3(0, 0, 1)), hash3(i + vec3(1, 0, 1)), f.x), mix(hash3(i + vec3(0, 1, 1)),
               hash3(i + vec3(1, 1, 1)), f.x), f.y), f.z);
}

vec3 albedo(int m) {
    // llvmpipe runs every branch, so: one noise lookup, cheap pattern maths, then a select
    int t = int(m_a[m].x);
    float k = m_a[m].y;
    vec3 p = v_pat * k;
    vec3 c1 = m_b[m], c2 = m_c[m];
    float nf = t == 1 ? 400.0 : (t == 6 ? 300.0 : (t == 8 ? k : 800.0));
    float n = noise3(v_pat * nf);
    float tw = 0.5 + 0.5 * sin((v_pat.x + v_pat.y + v_pat.z) * 1500.0);
    vec3 c = v_col;
    if (t == 1) c = v_col * (0.95 + 0.1 * n);                                               // skin
    if (t == 2) c = c1 * (0.85 + 0.15 * n);                                                 // knit, solid
    if (t == 3) c = mix(c1, c2, step(0.5, fract(p.z))) * (0.9 + 0.1 * n);                   // stripes
    if (t == 4) c = mix(c1, c2, step(1.0, mod(floor(p.x) + floor(p.y) + floor(p.z), 2.0)));  // checks
    if (t == 5) c = mix(c1, c2, step(length(fract(p) - 0.5), 0.25));                        // dots
    if (t == 6) c = c1 * (0.75 + 0.2 * tw + 0.15 * n);                                      // denim
    if (t == 7) c = mix(c1, c2, 0.5 * step(0.7, fract(p.z)) + 0.5 * step(0.7, fract(p.x + p.y)));  // plaid
    if (t == 8) c = v_col * (0.85 + 0.3 * n);                                               // mottled
    return c;
}

void main() {
    vec3 n = normalize(v_nrm);
    vec3 v = normalize(eye - v_pos);
    if (dot(n, v) < 0.0) n = -n;
    vec3 a = albedo(v_mat);
    float wrap = 0.25;   // a touch of light wrapping around, as skin and cloth scatter
    float diff = max((dot(n, light_dir) + wrap) / (1.0 + wrap), 0.0);
    float spec = pow(max(dot(reflect(-light_dir, n), v), 0.0), 24.0) * m_a[v_mat].z;
    float ao = mix(0.5, 1.0, smoothstep(0.0, 0.03, v_pos.z));   // darker where it meets the floor
    vec3 c = a * (ambient * ao + light_col * diff * mix(0.75, 1.0, ao)) + spec * light_col;
    frag = vec4(c, v_label);
}
"""

_SURF_VS = """
#version 330
uniform mat4 vp;
in vec3 in_pos;
out vec3 v_pos;
void main() { v_pos = in_pos; gl_Position = vp * vec4(in_pos, 1.0); }
"""

_SURF_FS = FLOOR_GLSL + """
uniform vec3 eye; uniform vec3 light_dir; uniform vec3 light_col; uniform vec3 ambient;
uniform vec3 normal; uniform float gloss; uniform vec3 lamps[3]; uniform float lamp_power;
uniform sampler2D shadow; uniform vec3 shadow_rect; uniform int use_shadow;
uniform vec2 shadow_strength;  // contact, cast
uniform vec2 shadow_lod;       // blur of each, as a mip level
in vec3 v_pos;
out vec4 frag;
void main() {
    vec3 a = surface_color(v_pos);
    float contact = 0.0, castsh = 0.0;
    if (use_shadow == 1) {
        vec2 st = (v_pos.xy - shadow_rect.xy) / shadow_rect.z + 0.5;
        if (all(greaterThan(st, vec2(0.0))) && all(lessThan(st, vec2(1.0)))) {
            contact = textureLod(shadow, st, shadow_lod.x).r * shadow_strength.x;
            castsh = textureLod(shadow, st, shadow_lod.y).g * shadow_strength.y;
        }
    }
    vec3 v = normalize(eye - v_pos);
    vec3 r = reflect(-v, normal);
    float refl = 0.0;
    for (int k = 0; k < 3; k++) {
        vec3 d = normalize(lamps[k] - v_pos);
        refl += pow(max(dot(r, d), 0.0), 300.0) + 0.15 * pow(max(dot(r, d), 0.0), 20.0);
    }
    float diff = max(dot(normal, light_dir), 0.0);
    vec3 c = a * (ambient * (1.0 - contact) + light_col * diff * (1.0 - castsh) * (1.0 - 0.6 * contact))
             + gloss * lamp_power * refl * (1.0 - 0.8 * max(castsh, contact));
    frag = vec4(c, 0.0);
}
"""

_SHADOW_VS = """
#version 330
uniform mat4 proj;
uniform float contact_k;
in vec3 in_pos; in float in_mat;
out float v_val; flat out int v_mat;
void main() {
    v_val = exp(-max(in_pos.z, 0.0) / contact_k);
    v_mat = int(in_mat + 0.5);
    gl_Position = proj * vec4(in_pos, 1.0);
}
"""

_SHADOW_FS = """
#version 330
uniform vec4 m_a[8];
uniform int pass_id;
in float v_val; flat in int v_mat;
out vec4 frag;
void main() {
    if (m_a[v_mat].w < 0.5) discard;
    frag = pass_id == 0 ? vec4(v_val, 0.0, 0.0, 1.0) : vec4(0.0, 1.0, 0.0, 1.0);
}
"""


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    f = target - eye
    f = f / np.linalg.norm(f)
    s = np.cross(f, up)
    s = s / np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fovy: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / np.tan(fovy / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def shadow_projection(center: np.ndarray, size: float, direction: np.ndarray) -> np.ndarray:
    """World -> shadow-map clip space: project along ``direction`` (towards the light) onto z = 0."""
    d = direction / max(direction[2], 0.2)
    m = np.zeros((4, 4))
    m[0, 0] = m[1, 1] = 2.0 / size
    m[0, 2], m[1, 2] = -d[0] * 2.0 / size, -d[1] * 2.0 / size
    m[0, 3], m[1, 3] = -center[0] * 2.0 / size, -center[1] * 2.0 / size
    m[3, 3] = 1.0
    return m


def _set(prog: moderngl.Program, name: str, value: float | tuple | bytes) -> None:
    """Set a uniform if the compiled program kept it (each floor kind uses a different subset)."""
    if name in prog:
        if isinstance(value, bytes):
            prog[name].write(value)
        else:
            prog[name].value = value


def _write_array(prog: moderngl.Program, name: str, rows: np.ndarray) -> None:
    """Write a uniform array; GLSL compilers drop unused trailing elements, so write only what the program kept."""
    if name in prog:
        u = prog[name]
        prog[name].write(np.ascontiguousarray(np.asarray(rows, "f4")[: u.array_length]).tobytes())


def _mat(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m.T, dtype="f4").tobytes()


class Renderer:
    """Owns one EGL context; ``render(scene)`` -> (RGB uint8 image, foot coverage uint8) at the scene's resolution."""

    def __init__(self, max_vertices: int = 400_000, shadow_res: int = 128, photo_cache_mb: int = 256, msaa: int = 0):
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # no EGL / no GL driver: report it as a user-facing problem
            raise FootsegError(f"cannot create a headless OpenGL (EGL) context: {exc}") from exc
        ctx = self.ctx
        self.mesh_prog = ctx.program(vertex_shader=_MESH_VS, fragment_shader=_MESH_FS)
        self.quad = ctx.buffer(reserve=4 * 12)
        self.surf_progs = {}
        for kind in range(OUTDOOR + 1):
            prog = ctx.program(vertex_shader=_SURF_VS,
                               fragment_shader=f"#version 330\n#define KIND {kind}\n" + _SURF_FS)
            quad_vao = ctx.vertex_array(prog, [(self.quad, "3f", "in_pos")])
            for name, unit in (("photo", 0), ("shadow", 1)):
                if name in prog:
                    prog[name].value = unit
            self.surf_progs[kind] = (prog, quad_vao)
        self.shadow_prog = ctx.program(vertex_shader=_SHADOW_VS, fragment_shader=_SHADOW_FS)
        self.max_vertices = max_vertices
        self.msaa = min(msaa, ctx.max_samples)
        self.vbo = ctx.buffer(reserve=max_vertices * _STRIDE)
        self.ibo = ctx.buffer(reserve=max_vertices * 2 * 12)
        self.mesh_vao = ctx.vertex_array(
            self.mesh_prog,
            [(self.vbo, "3f 3f 3f 1f 1f 3f", "in_pos", "in_nrm", "in_col", "in_mat", "in_label", "in_pat")],
            self.ibo)
        self.shadow_vao = ctx.vertex_array(self.shadow_prog, [(self.vbo, "3f 24x 1f 16x", "in_pos", "in_mat")],
                                           self.ibo)
        # the triangles near the floor, the only ones that can darken the contact shadow (see ``_shadows``)
        self.low_ibo = ctx.buffer(reserve=max_vertices * 2 * 12)
        self.low_vao = ctx.vertex_array(self.shadow_prog, [(self.vbo, "3f 24x 1f 16x", "in_pos", "in_mat")],
                                        self.low_ibo)
        self.shadow_res = shadow_res
        self.shadow_maps: dict[int, tuple] = {}  # resolution -> (texture, framebuffer)
        self.shadow_target, self.shadow_fbo = self._shadow_map(shadow_res)
        self.blank = ctx.texture((1, 1), 3, b"\x80\x80\x80")
        self.targets: dict[tuple[int, int], tuple] = {}
        self.photos: OrderedDict[str, object] = OrderedDict()
        self.photo_cache_mb = photo_cache_mb
        self.photo_bytes = 0

    def _shadow_map(self, res: int) -> tuple:
        """The shadow map (texture, framebuffer) of a resolution: a scene in hard sunlight asks for a finer one."""
        import moderngl

        if res not in self.shadow_maps:
            tex = self.ctx.texture((res, res), 4)
            tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            self.shadow_maps[res] = (tex, self.ctx.framebuffer(color_attachments=[tex]))
        return self.shadow_maps[res]

    def _target(self, width: int, height: int) -> tuple:
        key = (width, height)
        if key not in self.targets:
            ctx = self.ctx
            ms = ctx.framebuffer(color_attachments=[ctx.renderbuffer(key, 4, samples=self.msaa)],
                                 depth_attachment=ctx.depth_renderbuffer(key, samples=self.msaa))
            resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer(key, 4)]) if self.msaa else ms
            self.targets[key] = (ms, resolved)
        return self.targets[key]

    def _photo(self, path: str):
        import moderngl

        if path in self.photos:
            self.photos.move_to_end(path)
            return self.photos[path]
        img = read_image(path)
        tex = self.ctx.texture((img.shape[1], img.shape[0]), 3, np.ascontiguousarray(img[::-1]).tobytes())
        tex.build_mipmaps()
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        self.photos[path] = tex
        self.photo_bytes += img.size * 4 // 3
        # keep photos up to a memory budget (not a count): a worker with a few hundred phone-size floor photos then
        # decodes and uploads each once instead of once per use (about 4 ms each)
        while len(self.photos) > 1 and self.photo_bytes > self.photo_cache_mb * 2**20:
            old = self.photos.popitem(last=False)[1]
            self.photo_bytes -= old.width * old.height * 3 * 4 // 3
            old.release()
        return tex

    def _upload(self, scene: Scene) -> int:
        m = scene.mesh
        if m.n_vertices > self.max_vertices or len(m.indices) * 3 > self.max_vertices * 6:
            raise FootsegError(f"scene too large for the renderer ({m.n_vertices} vertices)")
        data = np.concatenate([m.positions, m.normals, m.colors, m.material[:, None], m.label[:, None], m.pattern],
                              1).astype("f4")
        if len(m.indices):
            self.vbo.write(data.tobytes())
            self.ibo.write(np.ascontiguousarray(m.indices, dtype="u4").tobytes())
        return len(m.indices) * 3

    def _set_materials(self, prog: moderngl.Program, scene: Scene) -> None:
        mats = scene.materials
        _write_array(prog, "m_a", mats[:, :4])
        _write_array(prog, "m_b", mats[:, 4:7])
        _write_array(prog, "m_c", mats[:, 7:10])

    def _shadows(self, scene: Scene, n_indices: int) -> None:
        import moderngl

        ctx = self.ctx
        self.shadow_target, self.shadow_fbo = self._shadow_map(scene.shadow_res or self.shadow_res)
        self.shadow_fbo.use()
        self.shadow_fbo.clear(0, 0, 0, 0)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.enable(moderngl.BLEND)
        ctx.blend_equation = moderngl.MAX
        prog = self.shadow_prog
        self._set_materials(prog, scene)
        prog["contact_k"].value = scene.contact_k
        # The contact pass writes exp(-z / contact_k), below half a step of the 8-bit map (so 0) for a triangle whose
        # corners all stand higher than 7 contact_k: it draws only the others (the feet and the
        # bottom of the legs, about two thirds of the triangles), with the same result.
        n_low = 0
        if n_indices:
            m = scene.mesh
            low = m.indices[(m.positions[:, 2] < 7.0 * scene.contact_k)[m.indices].any(1)]
            n_low = low.size
            if n_low:
                self.low_ibo.write(np.ascontiguousarray(low, dtype="u4").tobytes())
        for pass_id, direction in enumerate((np.array([0.0, 0.0, 1.0]), scene.light_dir)):
            prog["pass_id"].value = pass_id
            prog["proj"].write(_mat(shadow_projection(scene.shadow_center, scene.shadow_size, direction)))
            if pass_id == 0 and n_low:
                self.low_vao.render(moderngl.TRIANGLES, vertices=n_low)
            elif pass_id == 1 and n_indices:
                self.shadow_vao.render(moderngl.TRIANGLES, vertices=n_indices)
        ctx.blend_equation = moderngl.FUNC_ADD
        ctx.disable(moderngl.BLEND)
        # soft shadows from the mip chain (no read-back: that would stall the pipeline)
        self.shadow_target.build_mipmaps()

    def render(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        # Make this context current first: any other context made in the process since (a probe such as
        # headless_gl_problem, another renderer) leaves EGL drawing elsewhere, and the images would silently differ.
        with self.ctx:
            return self._render(scene)

    def _render(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        import moderngl

        ctx = self.ctx
        n_indices = self._upload(scene)
        self._shadows(scene, n_indices)
        ms, resolved = self._target(scene.width, scene.height)
        ms.use()
        ms.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        view = look_at(scene.eye, scene.target, scene.up)
        proj = perspective(scene.fovy, scene.aspect or scene.width / scene.height, 0.02, 40.0)
        vp = _mat(proj @ view)
        common = {"eye": scene.eye, "light_dir": scene.light_dir, "light_col": scene.light_color,
                  "ambient": scene.ambient}

        # Upper surface layers (paper on a rug on the ground) first: llvmpipe tests depth before shading, so the
        # ground under a sheet of paper is never shaded; the depth test decides what is seen, as before.
        lamps = np.zeros((3, 3), "f4")
        lamps[: len(scene.lamps)] = scene.lamps[:3]
        self.shadow_target.use(1)
        for quad in reversed(scene.surfaces):
            s = quad.surface
            sp, vao = self.surf_progs[s.kind]
            _set(sp, "vp", vp)
            for k, v in common.items():
                _set(sp, k, tuple(float(x) for x in v))
            _write_array(sp, "lamps", lamps)
            _set(sp, "lamp_power", float(scene.lamp_power))
            _set(sp, "shadow_rect", (*map(float, scene.shadow_center[:2]), float(scene.shadow_size)))
            _set(sp, "shadow_strength", tuple(float(x) for x in scene.shadow_strength))
            px = scene.shadow_size / self.shadow_target.width
            lods = (np.log2(max(0.006 / px, 1.0)), np.log2(max(scene.shadow_blur / px, 1.0)))
            _set(sp, "shadow_lod", tuple(float(x) for x in lods))
            (self._photo(s.photo) if s.kind == PHOTO and s.photo else self.blank).use(0)
            _write_array(sp, "s_p", s.params)
            _write_array(sp, "s_c", s.colors)
            _set(sp, "s_rot", (float(np.cos(s.angle)), float(np.sin(s.angle))))
            _set(sp, "s_offset", (float(s.offset[0]), float(s.offset[1])))
            _set(sp, "normal", tuple(float(x) for x in quad.normal))
            _set(sp, "gloss", float(s.gloss))
            _set(sp, "use_shadow", int(quad.shadowed))
            self.quad.write(np.asarray(quad.corners, "f4").tobytes())
            vao.render(moderngl.TRIANGLE_STRIP, vertices=4)

        mp = self.mesh_prog
        mp["vp"].write(vp)
        for k, v in common.items():
            mp[k].value = tuple(float(x) for x in v)
        self._set_materials(mp, scene)
        if n_indices:
            self.mesh_vao.render(moderngl.TRIANGLES, vertices=n_indices)

        if resolved is not ms:
            ctx.copy_framebuffer(resolved, ms)
        raw = np.frombuffer(resolved.read(components=4, alignment=1), np.uint8)
        raw = raw.reshape(scene.height, scene.width, 4)[::-1]
        return np.ascontiguousarray(raw[..., :3]), np.ascontiguousarray(raw[..., 3])

    def release(self) -> None:
        self.ctx.release()


def lp_threads_for(workers: int) -> None:
    """llvmpipe rasterises with one thread per core by default; with several worker processes that oversubscribes.
    With a worker per core, rasterising in the worker's own thread (0) also saves the hand-over to a helper thread
    (about 1 ms of CPU per image); with cores to spare each worker keeps one helper."""
    if workers > 1:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        os.environ.setdefault("LP_NUM_THREADS", "0" if workers >= cores else "1")


def headless_gl_problem() -> str | None:
    """Why no headless OpenGL context can be made here, or None when one can (the renderer's only system need)."""
    try:
        import moderngl

        moderngl.create_standalone_context(backend="egl").release()
    except Exception as exc:  # moderngl raises plain Exceptions for missing EGL/drivers
        return f"{type(exc).__name__}: {exc}"
    return None
