"""Frame writers: H.264 MP4 (PyAV, or imageio-ffmpeg's ffmpeg), GIF (Pillow), numbered PNG frames.

All take uint8 batches [B, H, W, C] and stream them out, so memory does not grow with the video's length:

    with open_writer("walk.mp4", fps=30, size=(1920, 1080)) as out:
        for frames in batches:
            out.write(frames)

A file is written under a temporary name and renamed when `close()` succeeds; `abort()` (called when the
`with` block raises) removes it, so a failed render never leaves a truncated video behind. Both MP4
backends ship FFmpeg (with libx264) in their wheels: `pip install 'latentstudio[video]'`; GIF and PNG
need nothing beyond Pillow.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError, require

FORMATS = ("mp4", "gif", "png")
BACKENDS = ("auto", "pyav", "ffmpeg")


def _fps(fps) -> Fraction:
    value = Fraction(fps).limit_denominator(1001)
    if value <= 0 or value > 240:
        raise UserError(f"--fps {fps}: use a frame rate between 1 and 240")
    return value


def _rgb(frame: np.ndarray) -> np.ndarray:
    return frame if frame.shape[2] == 3 else np.repeat(frame, 3, axis=2)


def encoder_threads(size: tuple[int, int], threads: int | None) -> int:
    """x264 threads: one for small frames, so the encoder does not crowd the generator's threads off the CPU
    (it keeps up easily: ~1.5 ms a frame at 128 px); FFmpeg's automatic choice (0) for large frames."""
    if threads is not None:
        return max(0, int(threads))
    return 1 if size[0] * size[1] <= 640 * 640 else 0


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
SMALL_FRAME = 256 * 256  # pixels; up to here "auto" takes ultrafast


def x264_preset(size: tuple[int, int], preset: str = "auto") -> str:
    """x264's preset; "auto": ultrafast for frames of up to 256 x 256 = 65,536 pixels, veryfast above.

    Small frames make small files whatever the preset (a 128 px walk: ~190 KiB per 8 s with ultrafast at
    crf 18 against ~80 KiB with veryfast, at a higher PSNR: 49.3 against 43.2 dB), while x264's cost per
    frame there is a real share of the generator's (128 px, one core: 0.13-0.17 against 0.35-0.45 ms a
    frame, of ~6.5 ms of generator CPU time; docs/walks.md). Above that, file size matters more and
    veryfast's cost is a small share of a large frame's generation."""
    if preset == "auto":
        return "ultrafast" if size[0] * size[1] <= SMALL_FRAME else "veryfast"
    if preset not in X264_PRESETS:
        raise UserError(f"--preset {preset!r}: use auto or one of x264's: {', '.join(X264_PRESETS)}")
    return preset


def _x264_settings(size: tuple[int, int], crf: int, preset: str, threads: int | None) -> dict:
    return {"codec": "libx264", "crf": int(crf), "preset": x264_preset(size, preset),
            "threads": encoder_threads(size, threads)}


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class FrameWriter:
    """Base class: `write(frames [B, H, W, C] uint8)`, `close()`, `abort()`; a context manager. Writers whose
    `takes_yuv420` is true (H.264) also take planar YUV 4:2:0 frames, `write_yuv420(planes [B, H * 3 / 2, W])`
    (see render.color), so that nothing converts RGB on the way."""

    takes_yuv420 = False

    def __init__(self, path: str | Path, size: tuple[int, int], fps=30):
        self.encoding: dict = {}  # H.264 writers: codec, the preset actually used, crf, threads
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = _fps(fps)
        self.frames_written = 0

    def describe(self) -> dict:
        """What the output is made with, resolved (written next to it): format, size, fps, encoder settings."""
        return {"writer": type(self).__name__, "size": list(self.size), "fps": float(self.fps), **self.encoding}

    def write(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        ok = frames.ndim == 4 and (frames.shape[2], frames.shape[1]) == self.size
        self._write_each(frames, ok, f"frames [B, {self.size[1]}, {self.size[0]}, C]", self._write_one)

    def write_yuv420(self, planes: np.ndarray) -> None:
        planes = np.asarray(planes)
        w, h = self.size
        ok = planes.ndim == 3 and planes.shape[1:] == (h * 3 // 2, w)
        self._write_each(planes, ok, f"yuv420p frames [B, {h * 3 // 2}, {w}]", self._write_one_yuv420)

    def _write_each(self, batch: np.ndarray, shape_ok: bool, expected: str, write_one) -> None:
        if not shape_ok or batch.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected uint8 {expected}, got {batch.dtype} {list(batch.shape)}")
        for item in batch:
            write_one(item)
            self.frames_written += 1

    def _write_one(self, frame: np.ndarray) -> None:
        """Write one [H, W, C] frame (C = 1 or 3)."""
        raise NotImplementedError

    def _write_one_yuv420(self, plane: np.ndarray) -> None:
        """Write one [H * 3 / 2, W] yuv420p frame (writers with `takes_yuv420`)."""
        raise NotImplementedError(f"{type(self).__name__} takes RGB frames only")

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Stop and remove what was written (best effort)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


class PyAVWriter(FrameWriter):
    """MP4 (libx264, yuv420p) through PyAV's bundled FFmpeg."""

    takes_yuv420 = True

    def __init__(self, path, size, fps=30, crf: int = 18, preset: str = "auto", threads: int | None = None):
        super().__init__(path, size, fps)
        av = require("av", "video", "writing MP4 video")
        self.av = av
        self.wrap = getattr(av.VideoFrame, "from_numpy_buffer", None)  # PyAV >= 13: frames without a copy
        self.tmp = _partial(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=self.fps)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.time_base = 1 / self.fps  # a Fraction, made once rather than for every frame
        self.encoding = _x264_settings(self.size, crf, preset, threads)
        self.stream.options = {k: str(v) for k, v in self.encoding.items() if k != "codec"}

    def _write_one(self, frame):
        self._encode(self._frame(np.ascontiguousarray(_rgb(frame)), "rgb24"))

    def _write_one_yuv420(self, plane):
        self._encode(self._frame(np.ascontiguousarray(plane), "yuv420p"))

    def _frame(self, array: np.ndarray, fmt: str):
        """A frame over the array's own memory where PyAV can (x264 copies the picture in encode, and the
        array is not written again): 6 us a 128 px frame against 71 for from_ndarray's copy."""
        if self.wrap is not None:
            try:
                return self.wrap(array, format=fmt)
            except ValueError:  # a layout it does not wrap (e.g. padded rows): the copy
                pass
        return self.av.VideoFrame.from_ndarray(array, format=fmt)

    def _encode(self, vf):
        vf.pts = self.frames_written
        vf.time_base = self.time_base
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def close(self):
        if self.frames_written == 0:  # PyAV writes the header at the first packet: without one, no file at all
            self.container.start_encoding()
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the container may already be broken; removing the file matters
            pass
        self.tmp.unlink(missing_ok=True)


class GifWriter(FrameWriter):
    """Looping animated GIF through Pillow, one 256-colour palette per frame, written frame by frame (Pillow's
    own multi-frame save keeps every frame until the end, which a long GIF cannot afford). GIF delays are
    whole hundredths of a second; they alternate (3, 3, 4 at 30 fps) so the average rate is exact."""

    def __init__(self, path, size, fps=30):
        super().__init__(path, size, fps)
        self.tmp = _partial(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed by close() / abort()

    def _write_one(self, frame):
        from PIL import GifImagePlugin

        image = Image.fromarray(_rgb(frame)).quantize(256, dither=Image.Dither.NONE)
        if self.frames_written == 0:  # the header's global palette goes unused: every frame has its own
            header, _ = GifImagePlugin.getheader(image.copy(), info={"loop": 0})
            self.file.write(b"".join(header))
        k = self.frames_written
        delay = round((k + 1) * 100 / self.fps) - round(k * 100 / self.fps)  # hundredths of a second
        self.file.write(b"".join(GifImagePlugin.getdata(image, duration=10 * delay, include_color_table=True)))

    def close(self):
        self.file.write(b";")  # the GIF trailer
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class FFmpegWriter(FrameWriter):
    """MP4 (libx264) through the ffmpeg executable that imageio-ffmpeg ships, fed through a pipe. ffmpeg starts
    at the first write, told the pixel format of that write (RGB or yuv420p; one video takes one of them)."""

    takes_yuv420 = True

    def __init__(self, path, size, fps=30, crf: int = 18, preset: str = "auto", threads: int | None = None):
        super().__init__(path, size, fps)
        self.iio = require("imageio_ffmpeg", "video", "writing MP4 video")
        self.tmp = _partial(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.encoding = _x264_settings(self.size, crf, preset, threads)
        self.output_params = [a for k in ("crf", "preset", "threads") for a in (f"-{k}", str(self.encoding[k]))]
        self.output_params += ["-movflags", "+faststart"]
        self.gen, self.pix_fmt_in = None, None

    def _feed(self, data: np.ndarray, pix_fmt_in: str) -> None:
        if self.gen is None:
            gen = self.iio.write_frames(str(self.tmp), self.size, fps=float(self.fps), codec="libx264",
                                        pix_fmt_in=pix_fmt_in, pix_fmt_out="yuv420p", quality=None,
                                        macro_block_size=1, output_params=self.output_params,
                                        ffmpeg_log_level="error")
            gen.send(None)  # starts ffmpeg; only a started writer is kept
            self.gen, self.pix_fmt_in = gen, pix_fmt_in
        if pix_fmt_in != self.pix_fmt_in:
            raise ValueError(f"{self.path}: this video was started with {self.pix_fmt_in} frames, not {pix_fmt_in}")
        self.gen.send(np.ascontiguousarray(data).tobytes())

    def _write_one(self, frame):
        self._feed(_rgb(frame), "rgb24")

    def _write_one_yuv420(self, plane):
        self._feed(plane, "yuv420p")

    def close(self):
        if self.gen is None:  # no frame written: still an (empty) video, as PyAV's writer leaves
            self._feed(np.zeros((0,), np.uint8), "rgb24")
        self.gen.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        try:
            if self.gen is not None:
                self.gen.close()
        except Exception:  # noqa: BLE001 - ffmpeg may have died already; removing the file matters
            pass
        self.tmp.unlink(missing_ok=True)


class PngWriter(FrameWriter):
    """Numbered PNG frames in a directory: frame_000000.png, frame_000001.png, ..."""

    def __init__(self, path, size, fps=30, compress_level: int = 3):
        super().__init__(path, size, fps)
        self.path.mkdir(parents=True, exist_ok=True)
        self.compress_level = compress_level

    def _write_one(self, frame):
        image = Image.fromarray(frame[..., 0], "L") if frame.shape[2] == 1 else Image.fromarray(frame, "RGB")
        image.save(self.path / f"frame_{self.frames_written:06d}.png", compress_level=self.compress_level)

    def close(self):
        pass


def format_for(path: str | Path, format: str | None = None) -> str:
    """'mp4', 'gif' or 'png' (a directory of frames) from an explicit format or the output's suffix."""
    if format:
        if format not in FORMATS:
            raise UserError(f"--format {format!r}: use mp4, gif or png")
        return format
    suffix = Path(path).suffix.lower()
    if suffix in (".mp4", ".gif"):
        return suffix[1:]
    if suffix in ("", "/") or Path(path).is_dir():
        return "png"
    raise UserError(f"--out {path}: use a .mp4 or .gif file, or a directory for PNG frames")


def pick_backend(backend: str = "auto") -> str:
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: use auto, pyav or ffmpeg")
    if backend != "auto":
        return backend
    import importlib.util

    if importlib.util.find_spec("av") is not None:
        return "pyav"
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        return "ffmpeg"
    raise UserError("writing MP4 video needs PyAV or imageio-ffmpeg: pip install 'latentstudio[video]'")


def open_writer(path: str | Path, size: tuple[int, int], fps=30, format: str | None = None, backend: str = "auto",
                crf: int = 18, preset: str = "auto", threads: int | None = None) -> FrameWriter:
    """A writer for `path` by format (mp4 / gif / png, from the suffix when not given)."""
    fmt = format_for(path, format)
    if fmt == "png":
        return PngWriter(path, size, fps)
    if fmt == "gif":
        return GifWriter(path, size, fps)
    if size[0] % 2 or size[1] % 2:
        raise UserError(f"--size {size[0]}x{size[1]}: H.264 video needs an even width and height")
    if pick_backend(backend) == "pyav":
        return PyAVWriter(path, size, fps, crf=crf, preset=preset, threads=threads)
    return FFmpegWriter(path, size, fps, crf=crf, preset=preset, threads=threads)
