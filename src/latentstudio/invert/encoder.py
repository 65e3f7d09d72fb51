"""Image -> W+ encoder: a small convolutional network that guesses the latent of an image in one pass, so
the optimiser starts next to the answer (`project --init encoder`, the installation's live path). Encoders
made now also have a W head: one more output row, a single w, the start for projecting in W (`guess`).

Saved in the model format, with its own arch name:

    ENCODER_DIR/
      config.json            format_version, arch "latentstudio-encoder", config (EncoderConfig), provenance
                             (the generator it belongs to and its fingerprint, training settings)
      encoder.safetensors    weights, plus the generator's mean w and spread w_std it predicts around

By default an encoder lives in the model directory it was trained for: `MODEL/encoder/`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from ..config import Config, ConfigError
from ..device import resolve_device
from ..errors import ModelFormatError
from ..io.model_dir import FORMAT_VERSION, atomic_write_text, check_state, staging_dir, state_tensors

ARCH = "latentstudio-encoder"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "encoder.safetensors"


@dataclasses.dataclass(frozen=True)
class EncoderConfig(Config):
    resolution: int
    img_channels: int
    num_ws: int
    w_dim: int
    channel_base: int = 1024  # channels at resolution r: clamp(channel_base // r, channel_min, channel_max)
    channel_min: int = 8
    channel_max: int = 256
    hidden: int = 512  # width of the fully connected head
    # One more output row: a single w for W-space projection (`guess(images, "w")`). Without it a W start is
    # the mean of the W+ rows, which can render far worse than the W+ guess itself (the built-in model's
    # drawing: 14.1 dB against 18.7).
    w_head: bool = False

    def __post_init__(self):
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ConfigError(f"resolution={self.resolution}: must be a power of two >= 8")

    def channels(self, res: int) -> int:
        return int(min(max(self.channel_base // res, self.channel_min), self.channel_max))

    @classmethod
    def for_generator(cls, G, **overrides) -> EncoderConfig:
        """A new encoder's config for G (with a W head unless told otherwise; stored configs without the
        field are older encoders, which have none)."""
        overrides.setdefault("w_head", True)
        return cls(resolution=G.img_resolution, img_channels=G.img_channels, num_ws=G.num_ws, w_dim=G.w_dim,
                   **overrides)


class DownBlock(torch.nn.Module):
    """conv3x3 -> lrelu -> conv3x3 -> lrelu -> 2x average-pool, plus a pooled 1x1 skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = torch.nn.Conv2d(cin, cin, 3, padding=1)
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = torch.nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        y = F.leaky_relu(self.conv0(x), 0.2)
        y = F.leaky_relu(self.conv1(y), 0.2)
        return F.avg_pool2d(y + self.skip(x), 2) * math.sqrt(0.5)


class Encoder(torch.nn.Module):
    """images [N, C, R, R] in [-1, 1] -> ws [N, num_ws, w_dim] = w_avg + delta * (w_std / sqrt(w_dim)).

    Every block's features are also average-pooled into the head, so fine layers (late ws) see fine detail.
    The last layer starts at zero: an untrained encoder answers the mean w, a safe start for the optimiser.
    With `w_head` the last layer has one more row, the guess of a single w (see `guess`).
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.config = cfg
        res = cfg.resolution
        self.from_rgb = torch.nn.Conv2d(cfg.img_channels, cfg.channels(res), 1)
        self.block_res = []
        pooled = 0
        while res > 4:
            self.add_module(f"b{res}", DownBlock(cfg.channels(res), cfg.channels(res // 2)))
            self.block_res.append(res)
            pooled += cfg.channels(res // 2)
            res //= 2
        c4 = cfg.channels(4)
        self.head0 = torch.nn.Linear(c4 * 16 + pooled, cfg.hidden)
        self.head1 = torch.nn.Linear(cfg.hidden, self.rows * cfg.w_dim)
        torch.nn.init.zeros_(self.head1.weight)
        torch.nn.init.zeros_(self.head1.bias)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.register_buffer("w_std", torch.ones([]))

    @property
    def rows(self) -> int:
        return self.config.num_ws + int(self.config.w_head)

    def guesses(self, images: torch.Tensor) -> torch.Tensor:
        """Every output row [N, rows, w_dim]: the W+ guess, then (with `w_head`) the single-w guess."""
        cfg = self.config
        x = F.leaky_relu(self.from_rgb(images.to(torch.float32)), 0.2)
        pooled = []
        for res in self.block_res:
            x = getattr(self, f"b{res}")(x)
            pooled.append(x.mean(dim=[2, 3]))
        h = torch.cat([x.flatten(1)] + pooled, dim=1)
        delta = self.head1(F.leaky_relu(self.head0(h), 0.2)).reshape(-1, self.rows, cfg.w_dim)
        return self.w_avg + delta * (self.w_std / math.sqrt(cfg.w_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The W+ guess [N, num_ws, w_dim]."""
        return self.guesses(images)[:, :self.config.num_ws]

    def starts(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The projection starts in `guesses`' rows, as ws [N, num_ws, w_dim] by space: "w+" the W+ guess, "w"
        one w repeated on every layer (the W head's; without one, the mean of the W+ rows)."""
        num_ws = self.config.num_ws
        w = rows[:, num_ws:] if self.config.w_head else rows[:, :num_ws].mean(dim=1, keepdim=True)
        return {"w+": rows[:, :num_ws], "w": w.expand(-1, num_ws, -1)}

    def guess(self, images: torch.Tensor, space: str = "w+") -> torch.Tensor:
        """A start for projecting in `space` ("w" or "w+"), as ws [N, num_ws, w_dim] (see `starts`)."""
        if space not in ("w", "w+"):
            raise ValueError(f"space {space!r}: use w or w+")
        return self.starts(self.guesses(images))[space]

    def with_w_head(self) -> Encoder:
        """This encoder with a W head added (itself when it has one): the new row starts as the mean of the
        W+ rows, so its first guesses are what a W start was before, and training takes it from there."""
        if self.config.w_head:
            return self
        cfg = self.config
        grown = Encoder(dataclasses.replace(cfg, w_head=True)).to(self.device)
        state = self.state_dict()
        weight = state["head1.weight"].reshape(cfg.num_ws, cfg.w_dim, cfg.hidden)
        bias = state["head1.bias"].reshape(cfg.num_ws, cfg.w_dim)
        state["head1.weight"] = torch.cat([weight, weight.mean(0, keepdim=True)]).reshape(-1, cfg.hidden)
        state["head1.bias"] = torch.cat([bias, bias.mean(0, keepdim=True)]).reshape(-1)
        grown.load_state_dict(state)
        grown.provenance = getattr(self, "provenance", {})
        return grown.train(self.training)

    def set_w_stats(self, w_avg: torch.Tensor, w_std: float) -> None:
        with torch.no_grad():
            self.w_avg.copy_(w_avg.reshape(-1))
            self.w_std.fill_(float(w_std))

    @property
    def device(self) -> torch.device:
        return self.w_avg.device


def generator_fingerprint(G) -> str:
    """SHA-256 over the generator's weights (name, shape, float32 bytes): the same for a model directory and
    the NVIDIA pickle it came from."""
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def default_encoder_dir(model_path: str | Path) -> Path:
    """Where an encoder for a model lives unless told otherwise: MODEL/encoder (for a .pkl: NAME-encoder/)."""
    path = Path(model_path)
    if path.suffix == ".pkl":
        return path.with_name(path.stem + "-encoder")
    return path / "encoder"


def save_encoder(directory: str | Path, encoder: Encoder, provenance: dict | None = None,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write an encoder directory. `dtype=torch.float16` halves the file (the built-in model ships it so);
    its guesses only start an optimiser, and loading casts back to float32."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_tensors(encoder).items()}
    data = {"format_version": FORMAT_VERSION, "arch": ARCH, "config": encoder.config.to_dict(),
            "package_version": __version__, "provenance": provenance or {}}
    with staging_dir(directory) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(data, indent=2) + "\n")
    return directory


def read_encoder_config(directory: str | Path) -> tuple[EncoderConfig, dict]:
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFormatError(f"{directory}: no encoder here (missing {CONFIG_FILE}); train one with "
                               "`latentstudio train-encoder MODEL`")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("arch") != ARCH:
        got = data.get("arch") if isinstance(data, dict) else None
        raise ModelFormatError(f"{path}: arch {got!r} is not an encoder (expected {ARCH!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version {data.get('format_version')!r} is not supported; "
                               "upgrade latentstudio")
    try:
        cfg = EncoderConfig.from_dict(data.get("config"), where=f"{path}: config")
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from None
    return cfg, data.get("provenance") or {}


def load_encoder(directory: str | Path, G=None, device="auto") -> Encoder:
    """Load an encoder; with G, check that it fits G (shapes: error; other weights: warning)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg, provenance = read_encoder_config(directory)
    if G is not None:
        want = (G.img_resolution, G.img_channels, G.num_ws, G.w_dim)
        got = (cfg.resolution, cfg.img_channels, cfg.num_ws, cfg.w_dim)
        if want != got:
            raise ModelFormatError(f"{directory}: encoder is for (resolution, channels, num_ws, w_dim) = {got} but "
                                   f"the model has {want}; train one for this model with `latentstudio "
                                   "train-encoder`")
        stored = provenance.get("generator_fingerprint")
        if stored and stored != generator_fingerprint(G):
            warnings.warn(f"{directory}: this encoder was trained for other generator weights "
                          f"({provenance.get('generator', '?')}); its guesses may be poor — retrain it with "
                          "`latentstudio train-encoder`", stacklevel=2)
    encoder = Encoder(cfg)
    file = directory / WEIGHTS_FILE
    if not file.is_file():
        raise ModelFormatError(f"{file}: missing")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ModelFormatError(f"{file}: not a readable safetensors file ({exc})") from None
    check_state(encoder, tensors, str(file))
    # float16 files (see save_encoder) are computed in float32 like every other model here.
    encoder.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}, strict=True)
    encoder.provenance = provenance
    return encoder.to(resolve_device(device)).eval().requires_grad_(False)
