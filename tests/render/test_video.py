"""Writers: videos decode with the right frame count, size and picture; failures leave no files."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.render.video import format_for, open_writer


def moving_frames(n, w=48, h=32):
    """Smooth frames whose brightness follows the frame number (survives lossy compression)."""
    x = np.linspace(0, 1, w)[None, :, None]
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = np.clip((0.2 + 0.6 * i / max(n - 1, 1)) * 255 * (0.5 + 0.5 * x), 0, 255).astype(np.uint8)
    return frames


def decode(path):
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames), stream.average_rate


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_mp4_decodes_to_the_same_frames(tmp_path, backend):
    pytest.importorskip("av" if backend == "pyav" else "imageio_ffmpeg")
    frames = moving_frames(37)
    with open_writer(tmp_path / "v.mp4", (48, 32), fps=24, backend=backend) as writer:
        for i in range(0, 37, 8):  # batches of 8, the last one short
            writer.write(frames[i:i + 8])
    got, rate = decode(tmp_path / "v.mp4")
    assert got.shape == (37, 32, 48, 3) and rate == 24
    assert np.abs(got.astype(int) - frames).mean() < 4  # H.264 at crf 18 is visually lossless
    assert got[0].mean() < got[-1].mean() - 50  # frame order kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_gif_needs_only_pillow_and_keeps_time(tmp_path):
    frames = moving_frames(30)
    with open_writer(tmp_path / "v.gif", (48, 32), fps=30) as writer:
        for i in range(0, 30, 7):
            writer.write(frames[i:i + 7])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.gif"]
    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames == 30 and gif.size == (48, 32) and gif.info["loop"] == 0
    durations = []
    for i in range(30):
        gif.seek(i)
        durations.append(gif.info["duration"])
        assert np.array_equal(np.asarray(gif.convert("RGB")), frames[i])  # <= 256 colours a frame: exact
    assert sum(durations) == 1000 and set(durations) == {30, 40}  # 30 frames in 1 s, in whole hundredths
    if importlib.util.find_spec("av") is not None:  # FFmpeg reads it too
        assert decode(tmp_path / "v.gif")[0].shape == (30, 32, 48, 3)


def test_png_frames(tmp_path):
    frames = moving_frames(12)
    with open_writer(tmp_path / "frames", (48, 32)) as writer:
        writer.write(frames[:5])
        writer.write(frames[5:7, :, :, :1])  # grayscale frames stay grayscale
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(7)]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frames" / "frame_000004.png")), frames[4])
    assert Image.open(tmp_path / "frames" / "frame_000006.png").mode == "L"


@pytest.mark.parametrize("name", ["v.mp4", "v.gif"])
def test_failed_render_leaves_no_partial_file(tmp_path, name):
    if name.endswith(".mp4"):
        pytest.importorskip("av")
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / name, (48, 32)) as writer:
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


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_mp4_takes_yuv420_planes_straight(tmp_path, backend):
    pytest.importorskip("av" if backend == "pyav" else "imageio_ffmpeg")
    import torch

    from latentstudio.render.color import yuv420

    frames = moving_frames(20)
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float().add(0.5).sub(128).div(127.5)  # to_uint8's levels
    with open_writer(tmp_path / "v.mp4", (48, 32), fps=30, backend=backend) as writer:
        assert writer.takes_yuv420
        writer.write_yuv420(yuv420(images[:12]))
        writer.write_yuv420(yuv420(images[12:]))
        with pytest.raises(ValueError, match=r"yuv420p frames \[B, 48, 48\]"):
            writer.write_yuv420(np.zeros((1, 32, 48), np.uint8))
    got, _ = decode(tmp_path / "v.mp4")
    assert got.shape == (20, 32, 48, 3)
    assert np.abs(got.astype(int) - frames).mean() < 4
    assert got[0].mean() < got[-1].mean() - 50


def test_ffmpeg_writer_keeps_one_pixel_format(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    with open_writer(tmp_path / "v.mp4", (48, 32), backend="ffmpeg") as writer:
        assert writer.describe() == {"writer": "FFmpegWriter", "size": [48, 32], "fps": 30.0, "codec": "libx264",
                                     "crf": 18, "preset": "ultrafast", "threads": 1}
        writer.write(moving_frames(2))
        with pytest.raises(ValueError, match="started with rgb24 frames, not yuv420p"):
            writer.write_yuv420(np.zeros((1, 48, 48), np.uint8))
    with open_writer(tmp_path / "empty.mp4", (48, 32), backend="ffmpeg"):
        pass  # nothing written: ffmpeg still starts and leaves a file, as the PyAV writer does
    assert (tmp_path / "empty.mp4").exists()


def test_pyav_writer_leaves_a_file_with_no_frame(tmp_path):
    pytest.importorskip("av")
    with open_writer(tmp_path / "empty.mp4", (48, 32), backend="pyav") as writer:
        pass  # PyAV alone writes nothing before the first packet; close() still leaves an (empty) video
    assert writer.frames_written == 0 and (tmp_path / "empty.mp4").stat().st_size > 0
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_and_png_take_rgb_only(tmp_path):
    for name in ("a.gif", "frames"):
        writer = open_writer(tmp_path / name, (48, 32))
        assert not writer.takes_yuv420 and "codec" not in writer.describe()
        with pytest.raises(NotImplementedError, match="RGB frames only"):
            writer.write_yuv420(np.zeros((1, 48, 48), np.uint8))
        writer.abort()


def test_auto_preset_spends_bits_on_small_frames_and_cpu_time_on_large_ones(tmp_path):
    from latentstudio.render.settings import RenderSettings
    from latentstudio.render.video import x264_preset

    assert x264_preset((128, 128)) == x264_preset((256, 256)) == "ultrafast"
    assert x264_preset((258, 256)) == x264_preset((1920, 1080)) == "veryfast"
    assert x264_preset((128, 128), "slow") == "slow"
    with pytest.raises(UserError, match="--preset 'quick'"):
        x264_preset((128, 128), "quick")
    with pytest.raises(UserError, match="--preset 'quick'"):
        RenderSettings(preset="quick")
    if importlib.util.find_spec("av"):
        writer = open_writer(tmp_path / "v.mp4", (48, 32))
        assert writer.stream.options["preset"] == "ultrafast"
        writer.abort()


def test_pyav_frames_over_the_callers_memory_are_encoded_before_it_changes(tmp_path, monkeypatch):
    """PyAVWriter wraps the planes without a copy (from_numpy_buffer): the video must not change when the
    caller reuses its array after each write, and must equal the one written through from_ndarray's copy."""
    av = pytest.importorskip("av")
    import torch

    from latentstudio.render.color import yuv420

    frames = moving_frames(24)
    planes = yuv420(torch.from_numpy(frames).permute(0, 3, 1, 2).float().sub(127.5).div(127.5))
    scratch = np.empty_like(planes[:1])
    with open_writer(tmp_path / "reused.mp4", (48, 32), fps=30, backend="pyav", threads=1) as writer:
        for plane in planes:
            scratch[0] = plane
            writer.write_yuv420(scratch)
            scratch[:] = 0  # what the encoder still had to read would turn black
    monkeypatch.delattr(av.VideoFrame, "from_numpy_buffer", raising=False)
    with open_writer(tmp_path / "copied.mp4", (48, 32), fps=30, backend="pyav", threads=1) as writer:
        writer.write_yuv420(planes)
    reused, _ = decode(tmp_path / "reused.mp4")
    copied, _ = decode(tmp_path / "copied.mp4")
    assert np.array_equal(reused, copied) and reused[-1].mean() > 100
