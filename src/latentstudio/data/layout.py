"""The on-disk layout of a prepared dataset, shared by the writer (prepare, demo sets) and the reader.

It is the layout of NVIDIA's `dataset_tool.py`, so their training code reads our datasets and we read theirs:
images at `00000/img00000000.png` (1,000 per folder), and `dataset.json` at the root with
`{"labels": [["00000/img00000000.png", 3], ...]}` or `{"labels": null}`. NVIDIA only reads "labels"; we add
"class_names", "mirror", "resolution", "channels" and "count", which their tools ignore.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from ..errors import UserError

META_FILE = "dataset.json"


def image_name(index: int) -> str:
    """NVIDIA's file name for image `index`: 1,000 images per numbered folder."""
    idx = f"{index:08d}"
    return f"{idx[:5]}/img{idx}.png"


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=4)
    return buf.getvalue()


def build_meta(names: list[str], labels: list[int] | None, class_names: list[str] | None, mirror: bool,
               resolution: int, channels: int, extra: dict | None = None) -> dict:
    meta = {"labels": [[n, int(c)] for n, c in zip(names, labels, strict=True)] if labels is not None else None}
    if class_names is not None:
        meta["class_names"] = {str(i): name for i, name in enumerate(class_names)}
    meta.update({"mirror": bool(mirror), "resolution": resolution, "channels": channels, "count": len(names)})
    meta.update(extra or {})
    return meta


def meta_json(meta: dict) -> str:
    """dataset.json text: one key per line and one label per line (readable and diffable for big sets)."""
    lines = []
    for key, value in meta.items():
        if key == "labels" and value:
            body = ",\n".join("  " + json.dumps(v) for v in value)
            lines.append(f' "labels": [\n{body}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def output_paths(out: str | Path, fmt: str) -> tuple[Path | None, Path | None, Path]:
    """(folder, zip, stem) for `--out OUT --format fmt`. An OUT ending in .zip means the zip format.
    Reports and contact sheets go next to the dataset (`<stem>.report.json`), never inside it, because
    NVIDIA's reader takes every image file it finds in a dataset folder."""
    out = Path(out)
    if out.suffix.lower() == ".zip":
        if fmt == "folder":
            raise UserError(f"--out {out}: a .zip path needs --format zip (or give a folder path)")
        stem = out.with_suffix("")
        return (stem if fmt == "both" else None), out, stem
    if fmt not in ("folder", "zip", "both"):
        raise UserError(f"--format {fmt!r}: use folder, zip or both")
    folder = out if fmt in ("folder", "both") else None
    zpath = out.with_name(out.name + ".zip") if fmt in ("zip", "both") else None
    return folder, zpath, out


def check_writable(paths: Iterable[Path | None], overwrite: bool) -> None:
    for path in paths:
        if path is None or not path.exists():
            continue
        if path.is_dir() and not any(path.iterdir()):
            continue
        if not overwrite:
            raise UserError(f"--out {path}: already exists; choose another --out or pass --overwrite")


class DatasetWriter:
    """Writes images one by one into a folder and/or a zip, atomically: everything goes to temporary
    paths that replace the targets only in `close()`, so an interrupted run leaves no half dataset."""

    def __init__(self, folder: Path | None, zip_path: Path | None):
        self.folder, self.zip_path = folder, zip_path
        self._tmp_folder = folder.with_name(folder.name + ".tmp-writing") if folder else None
        self._tmp_zip = zip_path.with_name(zip_path.name + ".tmp-writing") if zip_path else None
        self._zip = None
        self.names: list[str] = []
        if self._tmp_folder:
            shutil.rmtree(self._tmp_folder, ignore_errors=True)
            self._tmp_folder.mkdir(parents=True)
        if self._tmp_zip:
            self._tmp_zip.parent.mkdir(parents=True, exist_ok=True)
            # PNGs are already compressed; storing them keeps reading fast (NVIDIA does the same).
            self._zip = zipfile.ZipFile(self._tmp_zip, "w", compression=zipfile.ZIP_STORED)

    def add(self, img: Image.Image) -> str:
        name = image_name(len(self.names))
        data = png_bytes(img)
        if self._tmp_folder:
            path = self._tmp_folder / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        if self._zip:
            self._zip.writestr(name, data)
        self.names.append(name)
        return name

    def close(self, meta: dict) -> None:
        text = meta_json(meta)
        if self._zip:
            self._zip.writestr(META_FILE, text)
            self._zip.close()
            self._zip = None
            self._tmp_zip.replace(self.zip_path)
        if self._tmp_folder:
            (self._tmp_folder / META_FILE).write_text(text)
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self._tmp_folder.replace(self.folder)

    def abort(self) -> None:
        if self._zip:
            self._zip.close()
            self._zip = None
        if self._tmp_zip:
            self._tmp_zip.unlink(missing_ok=True)
        if self._tmp_folder:
            shutil.rmtree(self._tmp_folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False
