"""The data order: a pure function of (seed, step), every epoch a permutation, ranks splitting the batch."""

from latentstudio.training.curves import plot_curves, series
from latentstudio.training.data import DataOrder


def test_order_is_deterministic_and_covers_every_image_each_epoch():
    a, b = DataOrder(10, 4, seed=5), DataOrder(10, 4, seed=5)
    assert [a.indices(k) for k in range(10)] == [b.indices(k) for k in reversed(range(10))][::-1]
    stream = [i for k in range(5) for i in a.indices(k)]  # 20 positions = 2 epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert stream[:10] != stream[10:]  # a new shuffle per epoch
    assert DataOrder(10, 4, seed=6).indices(0) != a.indices(0)


def test_ranks_split_the_global_batch():
    single = DataOrder(12, 8, seed=1)
    ranks = [DataOrder(12, 8, seed=1, rank=r, world_size=2) for r in range(2)]
    for step in range(5):
        assert ranks[0].indices(step) + ranks[1].indices(step) == single.indices(step)


def test_curves_plot_every_series(tmp_path):
    rows = [{"kimg": k / 10, "loss/G": 1 + k, "loss/D": 2 - k / 10, "aug/p": k / 20,
             "metrics": {"swd": 50 - k} if k % 2 else {}} for k in range(6)]
    assert series(rows, "swd") == [(0.1, 49.0), (0.3, 47.0), (0.5, 45.0)]
    path = plot_curves(rows, tmp_path / "curves.png")
    from PIL import Image

    img = Image.open(path)
    assert img.height == 3 * 170  # losses, augmentation, metric swd (no regulariser data: no panel)
    colours = {img.getpixel((x, y)) for x in range(0, img.width, 2) for y in range(0, img.height, 2)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # two series drawn in their colours
