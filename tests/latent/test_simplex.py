"""OpenSimplex noise: the package's values, σ ≈ 1, continuity, seamless loops, seeds reproduce; read ahead."""

import threading

import numpy as np
import pytest

from latentstudio.errors import UserError
from latentstudio.latent.simplex import SCALE, NoiseField, OpenSimplex3, ReadAhead, permutation


def test_matches_the_opensimplex_package():
    opensimplex = pytest.importorskip(
        "opensimplex", reason="the reference comparison needs the `opensimplex` package (latentstudio[video])")
    for seed in (0, -7, 2**40 + 1):
        reference = opensimplex.OpenSimplex(seed)
        perm = permutation(seed)
        assert np.array_equal(perm, reference._perm)
        assert np.array_equal((perm % 24) * 3, reference._perm_grad_index3)
        rng = np.random.RandomState(abs(seed) % 2**32)
        points = rng.uniform(-300, 300, (2000, 3))
        points[:500] = np.round(points[:500] * 6) / 6  # on region boundaries: in_sum exactly 1 or 2, ins 0
        expected = np.array([reference.noise3(*p) for p in points])  # ~250 µs a point: few points here
        assert np.abs(OpenSimplex3(seed)(points) - expected).max() < 1e-12


def test_float32_sums_stay_within_1e6_of_float64():
    noise = OpenSimplex3(seed=9)
    points = np.random.RandomState(9).uniform(-1500, 1500, (20000, 3))  # as far out as a field's centres go
    exact, fast = noise(points), noise(points, dtype=np.float32)
    assert fast.dtype == np.float32 and exact.dtype == np.float64
    assert np.abs(fast - exact).max() < 1e-6
    field = NoiseField(300, speed=0.01, seed=9, loop_frames=300)
    values = field(np.arange(0, 300, 37))
    t = field.time_coords(np.arange(0, 300, 37))
    expected = noise.__class__(9)((t[:, None, :] + field.centres[None]).reshape(-1, 3)).reshape(values.shape) * SCALE
    assert values.dtype == np.float32 and np.abs(values - expected).max() < 1e-5


def test_reference_value_without_the_package():
    # The package's documented example: noise3(0.5, 0.5, 0.5) with its default seed 3.
    assert OpenSimplex3(3)(np.array([[0.5, 0.5, 0.5]]))[0] == pytest.approx(0.39504955501618155, abs=1e-14)


def test_noise_is_continuous_everywhere():
    noise = OpenSimplex3(seed=5)
    rng = np.random.RandomState(1)
    for _ in range(3):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        h = 2e-4
        t = np.arange(0, 20, h)  # crosses dozens of cells and hundreds of region boundaries
        values = noise(rng.uniform(-50, 50, 3) + t[:, None] * direction) * SCALE
        # Bounded slope: steps of h change the value by a few h at most. A vertex entering or leaving the sum
        # while its weight is not ~0 (a wrong region rule) would jump by ~0.1-1.
        assert np.abs(np.diff(values)).max() < 30 * h
        assert values.std() > 0.5


def test_scaled_noise_has_unit_sigma_and_zero_mean():
    for seed in (11, 12, 13):  # not the seeds SCALE was measured on
        values = OpenSimplex3(seed)(np.random.RandomState(seed).uniform(-500, 500, (40000, 3))) * SCALE
        assert abs(values.std() - 1) < 0.03 and abs(values.mean()) < 0.03


@pytest.mark.parametrize("loop", [None, 1000])
def test_field_curves_have_unit_sigma_and_are_independent(loop):
    values = NoiseField(256, speed=0.1, seed=2, loop_frames=loop)(np.arange(1000))
    assert abs(values.std() - 1) < 0.05 and abs(values.mean()) < 0.05
    corr = np.abs(np.corrcoef(values.T)[np.triu_indices(256, 1)])
    # Independent dimensions: what 1000 frames (~100 noise units) of two unrelated curves give; curves in
    # lockstep, or paths closer than the noise's reach, would correlate far more.
    assert corr.mean() < 0.1 and corr.max() < 0.5


def test_field_is_reproducible_and_batches_agree():
    field = NoiseField(64, speed=0.05, seed=4, loop_frames=90)
    a = field(np.arange(90))
    assert np.array_equal(a, NoiseField(64, speed=0.05, seed=4, loop_frames=90)(np.arange(90)))
    assert not np.allclose(a, NoiseField(64, speed=0.05, seed=5, loop_frames=90)(np.arange(90)))
    assert np.array_equal(field(np.array([10, 11])), a[10:12])  # a batch gives the same values as the whole run
    assert np.array_equal(field(np.array([90, 181])), a[[0, 1]])  # a loop: frame F + k is frame k


def test_loop_has_no_seam():
    """The step from the last frame back to the first is an ordinary step: no repeated frame, no jump."""
    frames = 120
    values = NoiseField(128, speed=0.04, seed=6, loop_frames=frames)(np.arange(frames))
    steps = np.sqrt((np.diff(values, axis=0) ** 2).mean(1))  # RMS over dimensions, frame i -> i + 1
    seam = np.sqrt(((values[0] - values[-1]) ** 2).mean())
    assert not np.allclose(values[-1], values[0])
    assert 0.8 < seam / np.median(steps) < 1.25
    open_walk = NoiseField(128, speed=0.04, seed=6)(np.arange(frames + 1))
    assert np.sqrt(((open_walk[frames] - open_walk[0]) ** 2).mean()) > 5 * np.median(steps)  # open: no return


def test_speed_sets_the_pace_and_bad_noise_is_an_error():
    slow = NoiseField(256, speed=0.01, seed=0)(np.arange(200))
    fast = NoiseField(256, speed=0.04, seed=0)(np.arange(200))
    step = lambda v: np.abs(np.diff(v, axis=0)).mean()
    assert 3.0 < step(fast) / step(slow) < 5.0
    with pytest.raises(UserError, match="opensimplex"):
        NoiseField(8, speed=0.01, noise="simplex")


class _Counting:
    """A NoiseField that counts the frames it works out."""

    def __init__(self, field):
        self.field, self.size, self.frames_done = field, field.size, 0

    def __call__(self, frames):
        frames = np.atleast_1d(frames)
        self.frames_done += len(frames)
        return self.field(frames)


def test_read_ahead_gives_the_fields_values_for_every_way_of_reading():
    field = NoiseField(40, speed=0.03, seed=3, loop_frames=100)
    whole = field(np.arange(100))
    ahead = ReadAhead(field, frames=100, chunk=24)
    batches = [np.arange(i, min(i + 8, 100)) for i in range(0, 100, 8)]
    assert np.array_equal(np.concatenate([ahead(b) for b in batches]), whole)  # in order, bit for bit
    for frames in ([97, 98, 99, 0, 1, 2], [5], [60, 3, 99], [], [150, -2]):  # a loop's end, random reads, outside
        frames = np.asarray(frames, dtype=np.int64)
        assert np.array_equal(ahead(frames), field(frames).reshape(len(frames), 40))


def test_read_ahead_works_a_chunk_out_once_for_a_reader_in_order_and_not_for_random_reads():
    counting = _Counting(NoiseField(16, speed=0.05, seed=1))
    ahead = ReadAhead(counting, frames=200, chunk=64, keep=2)
    for i in range(0, 200, 8):
        ahead(np.arange(i, min(i + 8, 200)))
    assert counting.frames_done == 200  # each frame once; the last chunk stops at the segment's end (8 of 64)
    assert len(ahead.chunks) == 2  # at most `keep`
    counting.frames_done = 0
    ahead(np.array([70]))  # chunk 1 was dropped; a reader that neither starts it nor comes from chunk 0
    assert counting.frames_done == 1


def test_read_ahead_serves_screens_at_other_offsets_and_threads_alike():
    field = NoiseField(24, speed=0.02, seed=5, loop_frames=120)
    whole = field(np.arange(120))
    ahead = ReadAhead(field, frames=120, chunk=32)
    results = {}

    def screen(offset):
        idx = (np.arange(240) + offset) % 120
        results[offset] = np.concatenate([ahead(idx[i:i + 8]) for i in range(0, 240, 8)])

    threads = [threading.Thread(target=screen, args=(o,)) for o in (0, 17, 45, 90)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for offset, values in results.items():
        assert np.array_equal(values, whole[(np.arange(240) + offset) % 120])


def test_read_ahead_works_out_the_next_chunk_half_way_through_this_one():
    ahead = ReadAhead(NoiseField(8, speed=0.05, seed=2), frames=1000, chunk=32)
    for i in range(0, 16, 8):
        ahead(np.arange(i, i + 8))
    assert list(ahead.chunks) == [0]
    ahead(np.arange(16, 24))  # reaches the second half of chunk 0
    assert list(ahead.chunks) == [0, 1] and not ahead.busy
