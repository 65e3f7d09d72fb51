"""The model format: a directory with `config.json` and `*.safetensors` files.

    my-model/
      config.json              format_version, arch, config (generator [+ discriminator]), package_version,
                               provenance (dataset, kimg, command, ...)
      generator.safetensors    EMA generator weights (what people generate with)
      discriminator.safetensors, generator_train.safetensors (non-EMA), training state  (training runs)

Nothing is pickled. Directories are written to a temporary sibling and renamed into place, so a crash
never leaves a half-written model behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .. import __version__
from ..config import Config, ConfigError
from ..device import resolve_device
from ..errors import ModelFormatError
from ..models.config import DiscriminatorConfig, GeneratorConfig
from ..utils.files import current_umask, set_default_mode

FORMAT_VERSION = 1
ARCH = "stylegan2"
CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
TRAIN_GENERATOR_FILE = "generator_train.safetensors"  # the non-EMA generator, needed to resume training


@dataclasses.dataclass(frozen=True)
class ModelConfig(Config):
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig | None = None


@dataclasses.dataclass
class LoadedModel:
    path: Path
    config: ModelConfig
    provenance: dict
    G: torch.nn.Module
    D: torch.nn.Module | None = None


def write_config(directory: Path, config: ModelConfig, provenance: dict | None) -> None:
    data = {
        "format_version": FORMAT_VERSION,
        "arch": ARCH,
        "config": config.to_dict(),
        "package_version": __version__,
        "provenance": provenance or {},
    }
    atomic_write_text(directory / CONFIG_FILE, json.dumps(data, indent=2) + "\n")


def read_config(directory: str | Path) -> tuple[ModelConfig, dict]:
    """Read and validate config.json; every failure is one line naming the file and the fix."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.exists():
        raise ModelFormatError(f"{directory}: no such model directory")
    if not path.is_file():
        hint = " (NVIDIA .pkl files: run `latentstudio import FILE.pkl --out DIR` first)" \
            if directory.suffix == ".pkl" else ""
        raise ModelFormatError(f"{path}: missing; is {directory} a latentstudio model directory?{hint}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version {version!r} is not supported (this latentstudio "
                               f"{__version__} reads version {FORMAT_VERSION}); upgrade latentstudio")
    if data.get("arch") != ARCH:
        raise ModelFormatError(f"{path}: arch {data.get('arch')!r} is not supported; expected {ARCH!r}")
    try:
        config = ModelConfig.from_dict(data.get("config"), where=f"{path}: config")
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from None
    return config, data.get("provenance") or {}


def save_model(directory: str | Path, G, D=None, provenance: dict | None = None, G_train=None,
               extra_files: dict[str, bytes] | None = None) -> Path:
    """Write G (the EMA generator) and optionally D and the non-EMA G_train as a model directory,
    atomically replacing any previous one. `extra_files` maps file names to bytes (training state)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    config = ModelConfig(generator=G.config, discriminator=D.config if D is not None else None)
    with staging_dir(directory) as tmp:
        save_file(state_tensors(G), str(tmp / GENERATOR_FILE), metadata={"format": "pt"})
        if D is not None:
            save_file(state_tensors(D), str(tmp / DISCRIMINATOR_FILE), metadata={"format": "pt"})
        if G_train is not None:
            save_file(state_tensors(G_train), str(tmp / TRAIN_GENERATOR_FILE), metadata={"format": "pt"})
        for name, payload in (extra_files or {}).items():
            (tmp / name).write_bytes(payload)
        write_config(tmp, config, provenance)
    return directory


def state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def load_model(path: str | Path, device="auto", with_discriminator: bool = False) -> LoadedModel:
    """Load a model directory: the EMA generator in eval mode (and D if asked) on `device`."""
    from ..models.discriminator import Discriminator
    from ..models.generator import Generator

    path = Path(path)
    dev = resolve_device(device)
    config, provenance = read_config(path)
    G = Generator(config.generator)
    load_weights(G, path / GENERATOR_FILE)
    D = None
    if with_discriminator:
        if config.discriminator is None:
            raise ModelFormatError(f"{path / CONFIG_FILE}: this model has no discriminator config "
                                   "(it was exported for generation only)")
        D = Discriminator(config.discriminator)
        load_weights(D, path / DISCRIMINATOR_FILE)
        D = D.to(dev).eval()
    return LoadedModel(path=path, config=config, provenance=provenance, G=G.to(dev).eval(), D=D)


def load_weights(module: torch.nn.Module, file: Path) -> None:
    """Load a safetensors file into `module`, checking every name and shape against the config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise ModelFormatError(f"{file}: missing")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ModelFormatError(f"{file}: not a readable safetensors file ({exc})") from None
    check_state(module, tensors, str(file))
    module.load_state_dict(tensors, strict=True)


def check_state(module: torch.nn.Module, tensors: dict, where: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise ModelFormatError(f"{where}: missing tensor(s) {missing[:3]}{'...' if len(missing) > 3 else ''}; "
                               "the weights do not match config.json")
    if unexpected:
        raise ModelFormatError(f"{where}: unexpected tensor(s) {unexpected[:3]}; the weights do not match "
                               "config.json")
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise ModelFormatError(f"{where}: tensor {name} has shape {list(tensors[name].shape)} but "
                                   f"config.json implies {list(ref.shape)}")
        if not torch.isfinite(tensors[name]).all():
            raise ModelFormatError(f"{where}: tensor {name} contains NaN or Inf; the file is corrupt")


class staging_dir:
    """Context manager: yields a temp dir beside `target`; on success it atomically replaces `target`."""

    def __init__(self, target: Path):
        self.target = Path(target)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        # mkdtemp's folder is 0700 and safetensors writes 0600: readable by others as a plain copy would be
        umask = current_umask()
        for path in [self.tmp, *self.tmp.rglob("*")]:
            set_default_mode(path, directory=path.is_dir(), umask=umask)
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temp file in the same directory, fsync, rename: readers never see partial content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        set_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
