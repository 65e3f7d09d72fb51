"""Timeline files (YAML or JSON): keys, moves and screens, as written by people (see docs/walks.md).

    spec = load_timeline_spec("ballad.yaml")              # TimelineSpec, validated
    for screen in spec.screen_specs():                    # one ScreenSpec per screen (at least one)
        timeline = build_timeline(spec, G, screen)        # a latent.timeline.Timeline

A file has named `keys` (seeds or latent files; from Python also latent tensors, [num_ws, w_dim] or [z_dim] in
Z), then either explicit `segments` (a list of moves) or a `sequence` (keys joined by
a move `between` consecutive keys, with a move `at_key` shown at each key: the exhibition's ballad is
five keys, a 7-stop noise loop at each, 150-frame interpolations between). `screens` renders the same
timeline several times with per-screen keys, seeds or frame offsets; every screen has the same frames.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import torch
import yaml

from ..config import Config, ConfigError
from ..errors import UserError
from .keys import parse_key, resolve_one
from .moves import NOISE_LOOP_SIGMA, circle, hold, interpolation, noise_loop, spacewalk
from .space import LatentSpace
from .timeline import Timeline


@dataclasses.dataclass(frozen=True)
class InterpolateSpec(Config):
    keys: tuple = ()  # two or more keys: a -> b -> c
    frames: int = 150  # per pair (150 = 5 s at 30 fps, as the exhibition used)
    mode: str = "linear"  # linear | slerp
    easing: str = "linear"  # linear | ease-in | ease-out | ease-in-out | smoothstep
    loop: bool = False  # also go from the last key back to the first
    seed: int | None = None  # unused; accepted so every move takes a seed


@dataclasses.dataclass(frozen=True)
class NoiseLoopSpec(Config):
    key: str | int | None = None
    stops: int = 7
    frames: int = 30  # per stop: stops x frames frames in all
    sigma: float = NOISE_LOOP_SIGMA  # σ of the Gaussian step from one stop to the next
    easing: str = "linear"
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class SpacewalkSpec(Config):
    key: str | int | None = None  # the centre
    frames: int = 300
    radius: float = 0.5  # σ of the drift around the centre
    speed: float = 0.01  # noise units per frame (about 0.9/speed frames from one extreme to the next)
    loop: bool = True  # sample the noise on a circle so the walk closes
    anchored: bool = True  # start (and end) exactly on the key
    noise: str = "opensimplex"  # the only noise (Kurt Spencer's OpenSimplex); kept so a file can name it
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class CircleSpec(Config):
    keys: tuple = ()  # one or two keys; without a second, a random one from the seed
    frames: int = 300
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class HoldSpec(Config):
    key: str | int | None = None
    frames: int = 30
    seed: int | None = None


def move_spec_class(name: str, where: str = "timeline"):
    classes = {"interpolate": InterpolateSpec, "noise-loop": NoiseLoopSpec, "spacewalk": SpacewalkSpec,
               "circle": CircleSpec, "hold": HoldSpec}
    if name not in classes:
        raise ConfigError(f"{where}: move {name!r}: use one of {', '.join(classes)}")
    return classes[name]


def parse_move(data, where: str):
    """{'move': 'noise-loop', 'key': 'a', ...} -> (name, spec)."""
    if not isinstance(data, dict) or "move" not in data:
        raise ConfigError(f"{where}: each move needs `move:` (interpolate, noise-loop, spacewalk, circle, hold)")
    rest = {k: v for k, v in data.items() if k != "move"}
    for name in ("keys",):
        if name in rest and not isinstance(rest[name], (list, tuple)):
            rest[name] = [rest[name]]
    return data["move"], move_spec_class(data["move"], where).from_dict(rest, where)


@dataclasses.dataclass(frozen=True)
class ScreenSpec(Config):
    name: str | None = None
    keys: dict = dataclasses.field(default_factory=dict)  # overrides of the timeline's named keys
    offset: int = 0  # frames: this screen shows frame (f + offset) mod length
    seed: int = 0  # changes every random move on this screen


@dataclasses.dataclass(frozen=True)
class TimelineSpec:
    """A parsed timeline file; `moves` is the expanded list of (move name, spec)."""

    moves: tuple
    keys: dict
    space: str = "w"
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None
    seed: int = 0
    end_frame: bool = False
    screens: tuple = ()
    model: str | None = None
    render: dict = dataclasses.field(default_factory=dict)
    base_dir: str | None = None

    def screen_specs(self) -> list[ScreenSpec]:
        return list(self.screens) or [ScreenSpec()]

    def latent_space(self) -> LatentSpace:
        return LatentSpace(self.space, self.truncation_psi, self.truncation_cutoff, self.class_idx)

    def to_dict(self) -> dict:
        """Plain data with every default filled in (the resolved form written next to outputs)."""
        return {"model": self.model, "space": self.space, "truncation": self.truncation_psi,
                "truncation_cutoff": self.truncation_cutoff, "class": self.class_idx, "seed": self.seed,
                "end_frame": self.end_frame, "keys": {k: _key_text(v) for k, v in self.keys.items()},
                "segments": [{"move": name, **spec.to_dict()} for name, spec in self.moves],
                "screens": [_screen_dict(s) for s in self.screen_specs()], "render": self.render}


TOP_LEVEL = ("model", "space", "truncation", "truncation_cutoff", "class", "seed", "end_frame", "keys", "segments",
             "sequence", "screens", "render")


def _expand_sequence(seq, where: str) -> list:
    """sequence: {keys: [...], at_key: {move...}, between: {move...}, loop: bool} -> list of move dicts."""
    if not isinstance(seq, dict) or not isinstance(seq.get("keys"), list) or not seq["keys"]:
        raise ConfigError(f"{where}: `sequence` needs `keys: [a, b, ...]` and `at_key` and/or `between` moves")
    unknown = sorted(set(seq) - {"keys", "at_key", "between", "loop"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} in `sequence` (keys, at_key, between, loop)")
    keys, at_key, between = seq["keys"], seq.get("at_key"), seq.get("between")
    if between is None and at_key is None:
        raise ConfigError(f"{where}: `sequence` needs an `at_key` move, a `between` move, or both")
    if between is not None and (not isinstance(between, dict) or between.get("move", "interpolate") != "interpolate"):
        raise ConfigError(f"{where}: sequence `between` must be an interpolate move")
    loop = bool(seq.get("loop", False))
    moves = []
    for i, key in enumerate(keys):
        if at_key is not None:
            one = dict(at_key)
            one.update({"keys": [key]} if at_key.get("move") == "circle" else {"key": key})
            moves.append(one)
        if between is not None and (i + 1 < len(keys) or (loop and len(keys) > 1)):
            moves.append({"move": "interpolate", **{k: v for k, v in between.items() if k != "move"},
                          "keys": [key, keys[(i + 1) % len(keys)]]})
    return moves


def _parse_screens(data, where: str) -> tuple:
    if data is None:
        return ()
    if isinstance(data, int) and not isinstance(data, bool):
        data = {"count": data}
    if isinstance(data, dict):  # {count: 7, offset: 30, seed: 1} -> screen i: offset i*30, seed i*1
        unknown = sorted(set(data) - {"count", "offset", "seed"})
        count = data.get("count")
        if unknown or not isinstance(count, int) or count < 1:
            raise ConfigError(f"{where}: `screens` is a list of screens or {{count: N, offset: F, seed: S}}")
        return tuple(ScreenSpec(name=f"screen{i + 1}", offset=i * int(data.get("offset", 0)),
                                seed=i * int(data.get("seed", 0))) for i in range(count))
    if not isinstance(data, list):
        raise ConfigError(f"{where}: `screens` is a list of screens or {{count: N, offset: F, seed: S}}")
    screens = [ScreenSpec.from_dict(s or {}, f"{where}.screens[{i}]") for i, s in enumerate(data)]
    screens = [s if s.name else s.replace(name=f"screen{i + 1}") for i, s in enumerate(screens)]
    names = [str(s.name) for s in screens]
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_.-]+", n) or n.startswith(".")]
    if bad or len(set(names)) != len(names) or "preview" in names:
        raise ConfigError(f"{where}: screen names become file names: use distinct names of letters, digits, "
                          f"'_', '-', '.' (not 'preview'); got {names}")
    return tuple(screens)


def parse_timeline(data: dict, where: str = "timeline", base_dir: str | Path | None = None) -> TimelineSpec:
    """Validate timeline data (from YAML/JSON); every problem is one ConfigError naming the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with `keys` and `segments` or `sequence`")
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields are {list(TOP_LEVEL)}")
    if ("segments" in data) == ("sequence" in data):
        raise ConfigError(f"{where}: give either `segments` (a list of moves) or `sequence`, not both or neither")
    raw = data.get("segments") if "segments" in data else _expand_sequence(data["sequence"], where)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: `segments` must be a non-empty list of moves")
    moves = tuple(parse_move(m, f"{where}.segments[{i}]") for i, m in enumerate(raw))
    keys = data.get("keys") or {}
    if not isinstance(keys, dict):
        raise ConfigError(f"{where}: `keys` maps names to seeds or latent files, e.g. {{a: 7, b: x.npz}}")
    if data.get("space", "w") not in ("z", "w", "w+"):
        raise ConfigError(f"{where}.space: use z, w or w+")
    render = data.get("render") or {}
    if not isinstance(render, dict):
        raise ConfigError(f"{where}.render: expected a mapping (fps, size, fit, ...)")
    try:
        return TimelineSpec(moves=moves, keys=dict(keys), space=data.get("space", "w"),
                            truncation_psi=float(data.get("truncation", 1.0)),
                            truncation_cutoff=data.get("truncation_cutoff"), class_idx=data.get("class"),
                            seed=int(data.get("seed", 0)), end_frame=bool(data.get("end_frame", False)),
                            screens=_parse_screens(data.get("screens"), where), model=data.get("model"),
                            render=dict(render), base_dir=str(base_dir) if base_dir is not None else None)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_timeline_spec(path: str | Path) -> TimelineSpec:
    """Read a .yaml/.yml/.json timeline file; relative key paths are relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such timeline file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} ({exc})") from None
    try:
        return parse_timeline(data, str(path), base_dir=path.parent)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _key_text(value) -> str:
    return "<latent in memory>" if isinstance(value, torch.Tensor) else str(value)


def _screen_dict(screen: ScreenSpec) -> dict:
    return {"name": screen.name, "keys": {k: _key_text(v) for k, v in screen.keys.items()}, "offset": screen.offset,
            "seed": screen.seed}


class _KeyResolver:
    """Named keys (with a screen's overrides) or direct key specs -> one latent each, cached."""

    def __init__(self, spec: TimelineSpec, screen: ScreenSpec, G, space: LatentSpace):
        self.names = {**spec.keys, **screen.keys}
        self.base_dir, self.G, self.space = spec.base_dir, G, space
        self.cache: dict = {}

    def label(self, ref) -> str:
        return str(ref) if str(ref) in self.names else str(parse_key(ref, self.base_dir)[0])

    def __call__(self, ref, where: str):
        if ref is None:
            raise UserError(f"{where}: this move needs a key (a name from `keys`, a seed or a latent file)")
        text = str(ref)
        source = self.names.get(text, ref)
        if text not in self.cache and isinstance(source, torch.Tensor):  # an in-memory latent (the server's)
            latent = source.detach().float().cpu()
            self.cache[text] = self.space.check(self.G, latent[None] if latent.dim() < 3 else latent, where)[0]
        if text not in self.cache:
            specs = parse_key(source, self.base_dir)
            if len(specs) != 1:
                raise UserError(f"{where}: key {ref!r} stands for {len(specs)} seeds; name one key per entry")
            self.cache[text] = resolve_one(specs[0], self.G, self.space)
        return self.cache[text]


def _segment_seed(spec: TimelineSpec, screen: ScreenSpec, own: int | None, index: int) -> int:
    """Every random move gets its own stream: from the timeline's, the move's (default: its position) and the
    screen's seed. SeedSequence takes non-negative numbers: negative seeds enter as their magnitude plus one
    more word saying which were negative (so -1 and 1 differ, and non-negative seeds keep their streams)."""
    entropy = [int(spec.seed), int(own) if own is not None else index, int(screen.seed), 0 if own is None else 1]
    negative = sum(1 << i for i, e in enumerate(entropy) if e < 0)
    words = [abs(e) for e in entropy] + ([negative] if negative else [])
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _build_move(name, m, i, keys: _KeyResolver, spec, screen, G, space) -> list:
    where = f"segments[{i}] ({name})"
    seed = _segment_seed(spec, screen, m.seed, i)
    if name == "interpolate":
        if len(m.keys) < 2:
            raise UserError(f"{where}: interpolate needs two or more keys")
        refs = list(m.keys) + ([m.keys[0]] if m.loop else [])
        origin = space.origin(G)
        return [(interpolation(keys(a, where), keys(b, where), m.frames, m.mode, m.easing, origin),
                 [keys.label(a), keys.label(b)]) for a, b in zip(refs[:-1], refs[1:], strict=True)]
    if name == "noise-loop":
        return [(noise_loop(keys(m.key, where), space, m.stops, m.frames, m.sigma, seed, m.easing),
                 [keys.label(m.key)])]
    if name == "spacewalk":
        return [(spacewalk(keys(m.key, where), space, m.frames, m.radius, m.speed, m.loop, seed, m.anchored,
                           m.noise), [keys.label(m.key)])]
    if name == "circle":
        if not 1 <= len(m.keys) <= 2:
            raise UserError(f"{where}: circle takes one or two keys")
        second = keys(m.keys[1], where) if len(m.keys) == 2 else None
        return [(circle(keys(m.keys[0], where), second, space, G, m.frames, seed), [keys.label(k) for k in m.keys])]
    return [(hold(keys(m.key, where), m.frames), [keys.label(m.key)])]


def build_timeline(spec: TimelineSpec, G, screen: ScreenSpec | None = None) -> Timeline:
    """Resolve keys and moves of a timeline for one screen into a Timeline over G's latent space."""
    screen = screen or ScreenSpec()
    space = spec.latent_space()
    keys = _KeyResolver(spec, screen, G, space)
    segments = []
    for i, (name, m) in enumerate(spec.moves):
        for segment, labels in _build_move(name, m, i, keys, spec, screen, G, space):
            segment.info["keys"] = labels
            segments.append(segment)
    info = {"screen": _screen_dict(screen),
            "keys": {k: _key_text(v) for k, v in keys.names.items()}}
    return Timeline(space, segments, end_frame=spec.end_frame, offset=screen.offset, info=info)
