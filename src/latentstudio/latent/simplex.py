"""OpenSimplex noise (Kurt Spencer's original 3-D algorithm), vectorised over thousands of points (numpy).

The school's spacewalk moved every latent dimension along its own OpenSimplex noise curve. `OpenSimplex3`
gives the same values as `opensimplex.OpenSimplex(seed).noise3(x, y, z)` of the PyPI package (0.4.x, to
float rounding) for the same seed, but for a whole batch of points in one call: 512 dimensions × 8 frames
take a few milliseconds, where the package's pure-Python path takes about a second (~250 µs a point).

OpenSimplex's value at a point is the sum over nearby lattice vertices v of attn⁴ · (gradient(v) · d),
attn = 2 - |d|², d the offset from v. The reference code visits the 4 or 6 vertices of the region (two
tetrahedra and an octahedron per stretched cube) plus two "extra" vertices picked by comparing the point's
coordinates; a few vertices with attn > 0 are left out (the noise has tiny seams, ~2e-4 of its σ), so
summing every vertex in range would not give the package's values. `_extra_keys` makes the same choice
for all points at once with masks instead of branches.

`NoiseField` turns the noise into one smooth curve per latent dimension (see there).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..errors import UserError

STRETCH = -1.0 / 6  # (1/sqrt(3+1) - 1) / 3: from the input space to the lattice (simplectic honeycomb)
SQUISH = 1.0 / 3  # (sqrt(3+1) - 1) / 3: back from the lattice
NORM = 103.0  # the reference's normalisation (values stay within [-1, 1])
# Brings the noise to σ ≈ 1, so a walk's `radius` is in the units of a latent's σ. Measured: the std of
# OpenSimplex3 at 200,000 uniform random points in [-500, 500]³ for each of seeds 0-9 was 0.3144 on average
# (0.3114-0.3162); tests/latent/test_simplex.py checks the scaled σ the same way for other seeds and points.
SCALE = 1 / 0.3144
NOISES = ("opensimplex",)

# The 24 gradients (directions to the vertices of a rhombicuboctahedron, skewed), in the reference's order:
# octants x-, x+ for y+ z+, then y- z+, y+ z-, y- z-; in each, the long axis first along x, then y, then z.
_SIGNS = np.array([(sx, sy, sz) for sz in (1, -1) for sy in (1, -1) for sx in (-1, 1)], dtype=np.float64)
GRADIENTS = (_SIGNS[:, None, :] * np.array([(11, 4, 4), (4, 11, 4), (4, 4, 11)], np.float64)).reshape(24, 3)

_MASK64 = (1 << 64) - 1


def _lcg(state: int) -> int:
    """One step of the reference's 64-bit LCG, with its signed (two's complement) overflow."""
    state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
    return state - (1 << 64) if state >= 1 << 63 else state


def permutation(seed: int) -> np.ndarray:
    """The reference's seeded permutation of 0..255 (`opensimplex.internals._init`)."""
    state = int(seed)
    for _ in range(3):
        state = _lcg(state)
    source = list(range(256))
    perm = np.zeros(256, dtype=np.int64)
    for i in range(255, -1, -1):
        state = _lcg(state)
        r = (state + 31) % (i + 1)  # Python's % is never negative, as the reference makes sure
        perm[i] = source[r]
        source[r] = source[i]
    return perm


def _bits(c: int) -> np.ndarray:
    """A set of axes as bits (1: x, 2: y, 4: z) -> 0/1 per axis."""
    return np.array([c & 1, (c >> 1) & 1, (c >> 2) & 1])


def _flip_first_clear(c: int) -> tuple:
    """(-1, 1, 1) with the -1 at the first axis not in c (z when x and y are)."""
    return (-1, 1, 1) if not c & 1 else (1, -1, 1) if not c & 2 else (1, 1, -1)


def _two_at_first_set(c: int) -> tuple:
    return (2, 0, 0) if c & 1 else (0, 2, 0) if c & 2 else (0, 0, 2)


def _extras_of(region: int, key: int):
    """The reference's two extra vertices (offsets from the cell origin) for a region (0: tetrahedron at
    (0,0,0), 1: at (1,1,1), 2: octahedron) and the closest-corner choice `key` made by `_extra_keys`. Used
    only to fill the vertex tables."""
    if region == 0:  # key: the closest corner besides (0,0,0) (1, 2, 4), or the two closest (3, 5, 6)
        near = {1: ((1, -1, 0), (1, 0, -1)), 2: ((-1, 1, 0), (0, 1, -1)), 4: ((-1, 0, 1), (0, -1, 1))}
        return near[key] if key in near else (_bits(key), 2 * _bits(key) - 1)
    if region == 1:  # key: the closest corner besides (1,1,1) (3, 5, 6), or the axis the two closest share
        near = {3: ((2, 1, 0), (1, 2, 0)), 5: ((2, 0, 1), (1, 0, 2)), 6: ((0, 2, 1), (0, 1, 2))}
        return near[key] if key in near else (_bits(key), 2 * _bits(key))
    a, b = divmod(key, 8)  # the two closest octahedron corners; 3, 5, 6 lie on the (1,1,1) side
    a_far, b_far = a in (3, 5, 6), b in (3, 5, 6)
    if a_far and b_far:
        return (1, 1, 1), _two_at_first_set(a & b)
    if not a_far and not b_far:
        return (0, 0, 0), _flip_first_clear(a | b)
    far, near_side = (a, b) if a_far else (b, a)
    return _flip_first_clear(far), _two_at_first_set(near_side)


def _extras_table() -> np.ndarray:
    """[64 · region + key, 2 extras, 3 axes] vertex offsets (unused keys: zeros, never looked up)."""
    table = np.zeros((192, 2, 3), dtype=np.int64)
    octahedron_keys = [a * 8 + b for a in (1, 3, 4, 6) for b in (1, 2, 5, 6)]
    for region, keys in ((0, range(1, 7)), (1, range(1, 7)), (2, octahedron_keys)):
        for key in keys:
            table[64 * region + key] = _extras_of(region, key)
    return table


def _vertex_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each key of `_extra_keys` (64 · region + choice): the 8 vertices a point sums over, as offsets
    from its cell origin — the region's own (the cube's corners with coordinate sum <= 1 for the
    tetrahedron at the origin, >= 2 for the one at (1,1,1), 1 or 2 for the octahedron between; a
    tetrahedron's 4 padded to 6 with weight-0 vertices) and the two extras. Returns integer offsets
    [192, 8, 3], the same offsets in input space (offset + squish, subtracted from a point's position in
    its cell) [192, 8, 3] and weights [192, 8]."""
    extras = _extras_table()
    corners = [(i & 1, (i >> 1) & 1, i >> 2) for i in range(8)]
    rules = (lambda c: sum(c) <= 1, lambda c: sum(c) >= 2, lambda c: sum(c) in (1, 2))
    offsets, weights = np.zeros((192, 8, 3), dtype=np.int32), np.zeros((192, 8))
    for region, rule in enumerate(rules):
        own = [c for c in corners if rule(c)]
        rows = slice(64 * region, 64 * region + 64)
        offsets[rows, :len(own)] = own
        weights[rows, :len(own)] = 1.0
        offsets[rows, 6:] = extras[rows]
        weights[rows, 6:] = 1.0
    return offsets, offsets + offsets.sum(2, keepdims=True) * SQUISH, weights


_OFFSETS, _INPUT_OFFSETS, _WEIGHTS = _vertex_tables()
# One [192, 8] table per axis: looked up per point, they give [P, 8] arrays that the sums below run over
# contiguously (with a [P, 8, 3] array and einsum over its last axis the noise took 1.4x as long: 0.27
# against 0.19 ms a frame for 256 dimensions, median of 10 rounds).
_AXIS_OFFSETS = tuple(np.ascontiguousarray(_OFFSETS[..., k]) for k in range(3))
_AXIS_INPUT_OFFSETS = tuple(np.ascontiguousarray(_INPUT_OFFSETS[..., k]) for k in range(3))


def _two_closest(score_a, score_b, zins, point_a: int, point_b: int, closer):
    """The reference's choice of the two closest corners of a tetrahedron among three candidates (a, b and
    the z one: 4 or 3); `closer(u, v)` is u > v in the tetrahedron at the origin, u < v in the other."""
    swap_b = ~closer(score_b, score_a) & closer(zins, score_b)
    swap_a = ~swap_b & closer(score_b, score_a) & closer(zins, score_a)
    z_point = 4 if point_a == 1 else 3
    return (np.where(swap_a, z_point, point_a), np.where(swap_a, zins, score_a),
            np.where(swap_b, z_point, point_b), np.where(swap_b, zins, score_b))


def _extra_keys(ins: np.ndarray, in_sum: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Index into the vertex tables for every point: the reference's branches on the point's cell coordinates, as masks
    (each region's rule runs on all points, then the point's own region picks)."""
    x, y, z = ins  # [3, P], axis-major
    a, sa, b, sb = _two_closest(x, y, z, 1, 2, np.greater)
    own = (1 - in_sum > sa) | (1 - in_sum > sb)  # (0,0,0) is one of the two closest corners
    key0 = np.where(own, np.where(sb > sa, b, a), a | b)
    a, sa, b, sb = _two_closest(x, y, z, 6, 5, np.less)
    own = (3 - in_sum < sa) | (3 - in_sum < sb)  # (1,1,1) is one of the two closest corners
    key1 = np.where(own, np.where(sb < sa, b, a), a & b)
    # Octahedron: (0,0,1) or (1,1,0), and (0,1,0) or (1,0,1); the closest of (1,0,0) and (0,1,1) replaces the
    # further of the two when it is closer.
    p1, p2, p3 = x + y, x + z, y + z
    sa, sb, s3 = np.abs(p1 - 1), np.abs(p2 - 1), np.abs(p3 - 1)
    take_a = (sa <= sb) & (sa < s3)
    take_b = ~take_a & (sa > sb) & (sb < s3)
    third = np.where(p3 > 1, 6, 1)
    a = np.where(take_a, third, np.where(p1 > 1, 3, 4))
    b = np.where(take_b, third, np.where(p2 > 1, 5, 2))
    return np.where(region == 0, key0, np.where(region == 1, 64 + key1, 128 + 8 * a + b))


class OpenSimplex3:
    """3-D OpenSimplex noise of a seed, for arrays of points [P, 3] -> values [P] (the reference's scale)."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.perm = permutation(self.seed).astype(np.int32)
        self.grad = np.asfortranarray(GRADIENTS[self.perm % 24])  # [256, 3]: the reference's perm_grad_index3
        self.tables = {np.dtype(t): _tables(self.grad, t) for t in (np.float64, np.float32)}

    def __call__(self, points: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Noise values [P] of `dtype`. Positions, cells and regions are always worked out in float64 (the
        points may lie far from the origin); float32 is used only for the offsets from the 8 vertices (below
        2 in size) and the sums over them: the values then differ from float64's by < 1e-6 (of a range of
        [-1, 1]), and the sums take about 20 % less time."""
        grads, input_offsets, weights = self.tables[np.dtype(dtype)]
        # Axis-major [3, P]: every step runs on contiguous rows (sums along a [P, 3] array's short last axis and
        # work on its strided columns took a third of the time).
        p = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3).T)
        stretched = p + (p[0] + p[1] + p[2]) * STRETCH
        cell = np.floor(stretched)
        ins = stretched - cell
        d0 = (p - (cell + (cell[0] + cell[1] + cell[2]) * SQUISH)).astype(dtype, copy=False)  # [3, P]
        in_sum = ins[0] + ins[1] + ins[2]
        region = np.where(in_sum <= 1, 0, np.where(in_sum >= 2, 1, 2))
        key = _extra_keys(ins, in_sum, region)
        # Σ attn⁴ · gradient · d over the point's 8 vertices, all points at once, axis by axis: [P, 8] arrays
        # taken from the per-key tables (np.take: several times faster than fancy indexing at these sizes).
        d = [d0[k, :, None] - np.take(input_offsets[k], key, axis=0) for k in range(3)]
        attn = 2 - d[0] * d[0]
        attn -= d[1] * d[1]
        attn -= d[2] * d[2]
        np.maximum(attn, 0.0, out=attn)
        attn *= np.take(weights, key, axis=0)
        corner = cell.astype(np.int32)
        v = [corner[k, :, None] + np.take(_AXIS_OFFSETS[k], key, axis=0) for k in range(3)]
        # The lattice hash (perm[(perm[x & 255] + y) & 255] + z) & 255 (its last lookup, perm_grad_index3, is
        # folded into the gradient tables): mode="wrap" indexes modulo the table's 256 entries (the same as
        # & 255, negatives too) and skips the bounds check that makes the default mode 3x slower on int32
        # indices; h is always in range for the gradient tables ("clip").
        perm = self.perm
        h = (np.take(perm, np.take(perm, v[0], mode="wrap") + v[1], mode="wrap") + v[2]) & 255
        dot = np.take(grads[0], h, mode="clip") * d[0]
        dot += np.take(grads[1], h, mode="clip") * d[1]
        dot += np.take(grads[2], h, mode="clip") * d[2]
        attn *= attn
        attn *= attn
        dot *= attn
        return dot.sum(1) / dot.dtype.type(NORM)


def _tables(grad: np.ndarray, dtype) -> tuple[tuple, tuple, np.ndarray]:
    """The per-axis gradients, vertex offsets in input space and vertex weights in `dtype`."""
    return (tuple(np.ascontiguousarray(grad[:, k], dtype=dtype) for k in range(3)),
            tuple(a.astype(dtype) for a in _AXIS_INPUT_OFFSETS), _WEIGHTS.astype(dtype))


class NoiseField:
    """Smooth per-dimension noise curves: values [n_frames, size] (float32, σ ≈ 1) for any frame indices.

    Dimension d reads 3-D OpenSimplex noise along its own path: an open walk along a line,
    (speed · frame, 0, 0) + c_d, a looping one (`loop_frames` frames) around a circle,
    (R cos θ, R sin θ, 0) + c_d with θ = 2π frame / loop_frames and R = speed · loop_frames / 2π (the same
    speed, and it comes back exactly to where it started). The centres c_d lie on a grid in the y-z plane,
    4 apart (further along y for circles: 2R + 4), each moved by up to 1 in x, y and z (a low-discrepancy
    sequence): at least 3 apart, more than the 2√2 within which two points share a lattice vertex, so no
    two dimensions share a vertex at the same time and their curves are uncorrelated; and the moves put
    the paths at all positions within the lattice's cells (on the grid alone they would all run through
    lattice vertices and along symmetry planes, where the noise is weaker). The grid fits in one period of
    the lattice hash for tens of thousands of dimensions (curves repeat beyond: 23,000 for open walks,
    fewer for very long loops).
    """

    ROWS = 62  # centres per column along z, 4 apart: within 250, inside the hash's 256-unit period along z
    PERIOD_Y = 1536  # the hash repeats every 1536 units along y (at fixed x and z)
    SPACING = 4.0
    # Additive recurrence with the powers of 1/1.2207... (x⁴ = x + 1): evenly spread points in the unit cube.
    SPREAD = np.array([0.8191725134, 0.6710436067, 0.5497004779])

    def __init__(self, size: int, speed: float, seed: int = 0, loop_frames: int | None = None,
                 noise: str = "opensimplex"):
        if noise not in NOISES:
            raise UserError(f"noise {noise!r}: use {' or '.join(NOISES)} (the built-in classic simplex noise was "
                            "replaced by OpenSimplex)")
        if loop_frames is not None and loop_frames <= 0:
            raise UserError(f"frames {loop_frames}: a looping walk needs at least one frame")
        self.size, self.speed, self.loop_frames, self.noise = size, float(speed), loop_frames, noise
        self.radius = self.speed * loop_frames / (2 * np.pi) if loop_frames else 0.0
        self.opensimplex = OpenSimplex3(seed)
        self.centres = self._centres(size, self.SPACING + 2 * self.radius)

    @classmethod
    def _centres(cls, size: int, gap: float) -> np.ndarray:
        columns = max(1, int((cls.PERIOD_Y - 1) // gap))
        d = np.arange(size) % (cls.ROWS * columns)
        grid = np.stack([np.zeros(size), gap * (d // cls.ROWS), cls.SPACING * (d % cls.ROWS)], axis=1)
        return grid + np.mod(np.arange(1, size + 1)[:, None] * cls.SPREAD, 1.0)

    def time_coords(self, frames: np.ndarray) -> np.ndarray:
        """[n, 3] positions along the path (before adding a dimension's centre) for frame indices."""
        frames = np.asarray(frames, dtype=np.float64)
        if not self.loop_frames:
            return np.stack([frames * self.speed, np.zeros_like(frames), np.zeros_like(frames)], axis=1)
        theta = 2 * np.pi * np.mod(frames, self.loop_frames) / self.loop_frames
        return np.stack([self.radius * np.cos(theta), self.radius * np.sin(theta), np.zeros_like(theta)], axis=1)

    def __call__(self, frames) -> np.ndarray:
        t = self.time_coords(np.atleast_1d(frames))
        points = t[:, None, :] + self.centres[None]
        values = self.opensimplex(points.reshape(-1, 3), dtype=np.float32).reshape(len(t), self.size)
        return values * np.float32(SCALE)


class ReadAhead:
    """A NoiseField read in chunks of frames: a walk asks for 8 frames at a time, in order, and gets them from a
    chunk of `chunk` frames worked out in one call.

    Why: inside a render, the noise of each 8-frame batch ran right after a synthesis and cost 2-3x its time
    alone (the synthesis had filled the caches with other data, and the noise's temporaries then evicted the
    synthesis's weights). One call per chunk pays that once per chunk: built-in model, 480-frame spacewalk,
    the walk's CPU time over its own synthesis went from +9.9 % to +7.6 % (docs/walks.md). The values are the
    field's own, bit for bit.

    A chunk is worked out by the reader that starts it or comes to it from the chunk before, and the next one
    as soon as a reader is half way through it, so a render's reader seldom finds its chunk missing. Nobody
    waits for a chunk another thread is working out (the render's other worker would sit idle on a core):
    they work out their own few frames meanwhile, as does a read anywhere else (one frame of a preview, say)
    and of frames outside 0..`frames`-1 (the segment's own; a chunk stops at its last frame). Up to `keep`
    chunks are kept, the least recently used dropped first (a few MB). Thread-safe."""

    POINTS = 65536  # noise points a chunk works out at once: 256 frames of 256 dimensions (~30 MB of temporaries)
    MAX_FRAMES = 256

    def __init__(self, field: NoiseField, frames: int, chunk: int | None = None, keep: int = 16):
        self.field, self.frames, self.keep = field, int(frames), max(2, int(keep))
        fit = (self.POINTS // max(1, field.size)) // 8 * 8  # whole batches of 8 frames
        self.chunk = int(chunk) if chunk else max(8, min(self.MAX_FRAMES, fit))
        self.chunks: OrderedDict[int, np.ndarray] = OrderedDict()
        self.busy: set[int] = set()  # chunks being worked out
        self.lock = threading.Lock()

    def __call__(self, frames) -> np.ndarray:
        frames = np.atleast_1d(np.asarray(frames, dtype=np.int64))
        which = frames // self.chunk
        if len(frames) and which[0] == which[-1] and (which == which[0]).all():  # one chunk: a render's batch
            return self._from_chunk(int(which[0]), frames)
        out = np.empty((len(frames), self.field.size), dtype=np.float32)
        for c in np.unique(which):  # e.g. a looping walk's batch across its end: the last frames, then the first
            rows = np.nonzero(which == c)[0]
            out[rows] = self._from_chunk(int(c), frames[rows])
        return out

    def _from_chunk(self, c: int, frames: np.ndarray) -> np.ndarray:
        start = c * self.chunk
        if start < 0 or int(frames.max()) >= self.frames:
            return self.field(frames)
        with self.lock:
            values = self.chunks.get(c)
            if values is not None:
                self.chunks.move_to_end(c)
            claim = values is None and (int(frames[0]) == start or c - 1 in self.chunks) and self._free(c)
            ahead = (values is not None and int(frames[-1]) - start >= self.chunk // 2
                     and (c + 1) * self.chunk < self.frames and self._free(c + 1))
        if claim:
            values = self._work_out(c)
        out = self.field(frames) if values is None else values[frames - start]
        if ahead:
            self._work_out(c + 1)
        return out

    def _free(self, c: int) -> bool:
        """Claims chunk c for the caller when nobody has it or is working it out (called under the lock)."""
        if c in self.chunks or c in self.busy:
            return False
        self.busy.add(c)
        return True

    def _work_out(self, c: int) -> np.ndarray:
        start, values = c * self.chunk, None
        try:
            values = self.field(np.arange(start, min(start + self.chunk, self.frames)))
        finally:  # one lock section: release the claim and keep the chunk (if it was worked out)
            with self.lock:
                self.busy.discard(c)
                if values is not None:
                    self.chunks[c] = values
                    while len(self.chunks) > self.keep:
                        self.chunks.popitem(last=False)
        return values
