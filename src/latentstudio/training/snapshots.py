"""Snapshots: everything needed to continue a run, written atomically in the model format.

    RUN_DIR/snapshots/snapshot-000012.345kimg/
        config.json                  networks + provenance (a normal model directory: generate/walk use it)
        generator.safetensors        EMA generator
        generator_train.safetensors  the generator being optimised
        discriminator.safetensors
        training_state.json          the resolved TrainConfig, progress counters, dataset identity
        training_state.safetensors   Adam moments, ADA p and its sign accumulator, path-length mean,
                                     every rank's RNG state
    RUN_DIR/latest -> snapshots/snapshot-...   (symlink, replaced atomically)

No pickles anywhere: tensors in safetensors, the rest in JSON.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..errors import UserError
from ..io.model_dir import CONFIG_FILE, TRAIN_GENERATOR_FILE, load_weights, save_model

STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
STATE_FORMAT = 1  # adding keys keeps the format; older snapshots simply lack them
TICK_ROW = "tick_row"  # key in training_state.json: the snapshot tick's metrics.jsonl row
SNAPSHOT_DIR = "snapshots"
LATEST = "latest"


def snapshot_name(nimg: int) -> str:
    return f"snapshot-{nimg / 1000:010.3f}kimg"


def optimizer_tensors(opt: torch.optim.Optimizer, names: list[str], prefix: str) -> dict[str, torch.Tensor]:
    """Adam state keyed by parameter name (robust to parameter order), e.g. 'opt_G/mapping.fc0.weight/exp_avg'."""
    out = {}
    state = opt.state_dict()["state"]
    for idx, name in enumerate(names):
        for key, value in state.get(idx, {}).items():
            out[f"{prefix}/{name}/{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return out


def load_optimizer(opt: torch.optim.Optimizer, names: list[str], prefix: str, tensors: dict) -> None:
    sd = opt.state_dict()
    state = {}
    for idx, name in enumerate(names):
        keys = {k.rsplit("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{prefix}/{name}/")}
        if keys:
            state[idx] = keys
    sd["state"] = state
    opt.load_state_dict(sd)


def save_snapshot(run_dir: Path, name: str, G_ema, G, D, provenance: dict, state_json: dict,
                  state_tensors: dict[str, torch.Tensor]) -> Path:
    """Write RUN_DIR/snapshots/NAME atomically. The caller points RUN_DIR/latest at it (`point_latest`) once
    the rest of the tick (log row, sample grid) is written, so a kill in between loses nothing: the run
    resumes from the previous snapshot and writes this tick again."""
    from safetensors.torch import save

    path = Path(run_dir) / SNAPSHOT_DIR / name
    extra = {STATE_JSON: (json.dumps(state_json, indent=2) + "\n").encode(),
             STATE_TENSORS: save({k: v.contiguous() for k, v in state_tensors.items()})}
    save_model(path, G_ema, D=D, G_train=G, provenance=provenance, extra_files=extra)
    return path


def point_latest(run_dir: Path, target: Path) -> None:
    link = run_dir / LATEST
    tmp = run_dir / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, run_dir), tmp)
    os.replace(tmp, link)


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` snapshots (0 keeps all); never the one `latest` points at."""
    if keep <= 0:
        return
    snaps = list_snapshots(run_dir)
    latest = (run_dir / LATEST).resolve() if (run_dir / LATEST).exists() else None
    for old in snaps[:-keep]:
        if old.resolve() != latest:
            shutil.rmtree(old, ignore_errors=True)


def remove_stale(run_dir: Path) -> None:
    """Remove what a killed writer left behind: half-written snapshot staging dirs, temporary links."""
    for tmp in (Path(run_dir) / SNAPSHOT_DIR).glob(".snapshot-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tmp in Path(run_dir).glob(f".{LATEST}.*"):
        tmp.unlink(missing_ok=True)


def list_snapshots(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / SNAPSHOT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("snapshot-")
                  and (p / STATE_JSON).is_file())


def is_training_snapshot(path: Path) -> bool:
    return (path / STATE_JSON).is_file() and (path / STATE_TENSORS).is_file()


def find_resume(spec: str, out_dir: Path) -> Path:
    """`latest` (this run's newest snapshot), a run directory, a snapshot or any model directory."""
    if spec == "latest":
        path = Path(out_dir)
        if not (path / LATEST).exists():
            if not list_snapshots(path):
                raise UserError(f"--resume latest: {path} has no snapshot yet; start without --resume")
            return list_snapshots(path)[-1]  # killed before the link was made; the snapshot itself is whole
    else:
        path = Path(spec).expanduser()
    if (path / LATEST).exists():
        path = (path / LATEST).resolve()
    if not path.exists():
        raise UserError(f"--resume {spec}: no such run, snapshot or model directory")
    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        snaps = list_snapshots(path)
        if not snaps:
            raise UserError(f"--resume {spec}: {path} holds no snapshot or model (config.json missing)")
        path = snaps[-1]
    return path


def read_state(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    try:
        meta = json.loads((path / STATE_JSON).read_text())
        tensors = load_file(str(path / STATE_TENSORS))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable training state ({exc}); resume from an older snapshot") from None
    if meta.get("format") != STATE_FORMAT:
        raise UserError(f"{path / STATE_JSON}: training-state format {meta.get('format')!r} is not supported")
    return meta, tensors


def load_train_generator(G, path: Path) -> bool:
    """Load the non-EMA generator if the model has one; returns whether it did."""
    file = path / TRAIN_GENERATOR_FILE
    if not file.is_file():
        return False
    load_weights(G, file)
    return True


def truncate_jsonl(path: Path, max_nimg: int) -> list[dict]:
    """Drop log lines written after the snapshot being resumed (they will be written again); returns the
    rows kept."""
    if not path.is_file():
        return []
    keep, rows = [], []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(row, dict) and row.get("nimg", 0) <= max_nimg:
            keep.append(line)
            rows.append(row)
    from ..io.model_dir import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in keep))
    return rows
