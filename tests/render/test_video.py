"""Writers: videos decode with the right frame count, size and picture; failures leave no files."""

import numpy as np
import pytest
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.render.video import format_for, open_writer

av = pytest.importorskip("av")


def moving_frames(n, w=48, h=32):
    """Smooth frames whose brightness follows the frame number (survives lossy compression)."""
    x = np.linspace(0, 1, w)[None, :, None]
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = np.clip((0.2 + 0.6 * i / max(n - 1, 1)) * 255 * (0.5 + 0.5 * x), 0, 255).astype(np.uint8)
    return frames


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames), stream.average_rate


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_mp4_decodes_to_the_same_frames(tmp_path, backend):
    if backend == "ffmpeg":
        pytest.importorskip("imageio_ffmpeg")
    frames = moving_frames(37)
    with open_writer(tmp_path / "v.mp4", (48, 32), fps=24, backend=backend) as writer:
        for i in range(0, 37, 8):  # batches of 8, the last one short
            writer.write(frames[i:i + 8])
    got, rate = decode(tmp_path / "v.mp4")
    assert got.shape == (37, 32, 48, 3) and rate == 24
    assert np.abs(got.astype(int) - frames).mean() < 4  # H.264 at crf 18 is visually lossless
    assert got[0].mean() < got[-1].mean() - 50  # frame order kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_gif_and_png_frames(tmp_path):
    frames = moving_frames(12)
    with open_writer(tmp_path / "v.gif", (48, 32), fps=10) as writer:
        writer.write(frames)
    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames == 12 and gif.size == (48, 32)
    gif.seek(11)
    assert np.abs(np.asarray(gif.convert("RGB")).astype(int) - frames[11]).mean() < 3
    with open_writer(tmp_path / "frames", (48, 32)) as writer:
        writer.write(frames[:5])
        writer.write(frames[5:7, :, :, :1])  # grayscale frames stay grayscale
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(7)]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frames" / "frame_000004.png")), frames[4])
    assert Image.open(tmp_path / "frames" / "frame_000006.png").mode == "L"


def test_failed_render_leaves_no_partial_file(tmp_path):
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / "v.mp4", (48, 32)) as writer:
            writer.write(moving_frames(3))
            raise RuntimeError("generator died")
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs(tmp_path):
    with pytest.raises(UserError, match="even"):
        open_writer("x.mp4", (33, 32))
    with pytest.raises(UserError, match="--out"):
        format_for("walk.avi")
    with pytest.raises(UserError, match="--fps"):
        open_writer("x.mp4", (32, 32), fps=0)
    assert format_for("out/frames") == "png" and format_for("a.GIF") == "gif" and format_for("a.x", "mp4") == "mp4"
    with pytest.raises(ValueError, match="uint8"):
        open_writer(tmp_path / "frames", (32, 32)).write(np.zeros((1, 32, 32, 3), np.float32))
