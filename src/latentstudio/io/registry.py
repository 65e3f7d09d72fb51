"""Finding a model from what a user typed: nothing (the built-in default), a model directory, an NVIDIA
.pkl (converted in memory through the safe importer) or an https URL (downloaded once, SHA-256 checked)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ModelFormatError
from .model_dir import CONFIG_FILE, LoadedModel, ModelConfig, load_model


def default_model_path() -> Path:
    """The generator shipped inside the package (trained with `latentstudio train`, see docs/default-model.md)."""
    return Path(str(resources.files("latentstudio"))) / "assets" / "default_model"


def resolve_model_path(spec: str | Path | None, cache_dir: str | Path | None = None,
                       sha256: str | None = None) -> Path:
    if spec is None or str(spec) in ("", "default"):
        path = default_model_path()
        if not (path / CONFIG_FILE).is_file():
            raise ModelFormatError(f"{path}: the built-in default model is not installed; pass a MODEL directory "
                                   "(train one with `latentstudio train` or import a .pkl)")
        return path
    text = str(spec)
    if text.startswith(("http://", "https://")):
        from .weights import fetch

        return fetch(text, sha256=sha256, cache_dir=cache_dir)
    return Path(text).expanduser()


def open_model(spec: str | Path | None = None, device="auto", with_discriminator: bool = False,
               sha256: str | None = None) -> LoadedModel:
    """Load any model a user can name. NVIDIA pickles are converted in memory (nothing in them is run)."""
    from ..device import resolve_device

    path = resolve_model_path(spec, sha256=sha256)
    if path.is_file() and path.suffix == ".pkl":
        from .nvidia import load_nvidia_pickle, pickle_provenance

        nets = load_nvidia_pickle(path)
        dev = resolve_device(device)
        D = nets.get("D") if with_discriminator else None
        config = ModelConfig(generator=nets["G_ema"].config, discriminator=D.config if D is not None else None)
        return LoadedModel(path=path, config=config, provenance=pickle_provenance(path, nets),
                           G=nets["G_ema"].to(dev).eval(), D=D.to(dev).eval() if D is not None else None)
    return load_model(path, device=device, with_discriminator=with_discriminator)
