"""Render settings shared by `walk`, `render` and timeline files (the `render:` section)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import Config
from ..data.images import parse_color
from ..errors import UserError
from .layout import FrameLayout, parse_size
from .video import FrameWriter, format_for, open_writer, x264_preset


@dataclasses.dataclass(frozen=True)
class RenderSettings(Config):
    fps: float = 30.0
    size: str | None = None  # WxH; None: the model's resolution
    fit: str = "fit"  # fit | fill | pad | stretch
    filter: str = "bicubic"  # nearest | bilinear | bicubic | area | lanczos
    background: str = "black"  # border colour for fit / pad
    format: str | None = None  # mp4 | gif | png (default: from the output's suffix)
    crf: int = 18  # H.264 quality: 0 lossless, 18 visually lossless, 23 FFmpeg's default, 51 worst
    preset: str = "auto"  # x264 speed vs file size: auto (ultrafast up to 65,536 pixels, else veryfast) or x264's
    backend: str = "auto"  # pyav | ffmpeg (imageio-ffmpeg) | auto
    threads: int | None = None  # x264 threads (default: 1 up to 640x640 frames, else FFmpeg's choice)
    batch: int = 8  # frames per generator call
    noise_mode: str = "const"  # const | random | none (per-pixel noise of the generator)
    preview: bool = True  # multi-screen renders: also a tiled preview video
    preview_cols: int | None = None
    preview_tile: int = 256  # width of one screen in the preview

    def __post_init__(self):
        if self.noise_mode not in ("const", "random", "none"):
            raise UserError(f"noise_mode {self.noise_mode!r}: use const, random or none")
        if self.batch < 1 or not 0 <= self.crf <= 51 or self.preview_tile < 16:
            raise UserError("render settings: batch must be >= 1, crf 0..51 and preview_tile >= 16")
        self.layout()  # checks size, fit, filter and background now rather than after the first batch
        x264_preset((1, 1), self.preset)  # and the preset's name

    def layout(self) -> FrameLayout:
        return FrameLayout(size=parse_size(self.size), fit=self.fit, filter=self.filter,
                           background=parse_color(self.background))

    def output_size(self, resolution: int) -> tuple[int, int]:
        return self.layout().output_size(resolution)

    def writer(self, path: str | Path, resolution: int, size: tuple[int, int] | None = None) -> FrameWriter:
        return open_writer(path, size or self.output_size(resolution), fps=self.fps, format=self.format,
                           backend=self.backend, crf=self.crf, preset=self.preset, threads=self.threads)

    def suffix(self) -> str:
        fmt = format_for("x.mp4", self.format)
        return "" if fmt == "png" else f".{fmt}"
