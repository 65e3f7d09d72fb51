"""The training loop: phases per step, ticks, snapshots, resume.

    from latentstudio.training import train
    train("datasets/smiles", "runs/smiles", preset="cpu128", kimg=200, aug="ada")

One step reads one batch of reals and runs the StyleGAN2 phases: G main loss, G path-length (every 4th
step), D main loss, D R1 (every 16th step); then the EMA and ADA updates. A tick is `tick_kimg` thousand
images; every `snap` ticks (and at the end, and on Ctrl-C / SIGTERM between two steps) a snapshot is
written. Everything that influences the next step is in the snapshot, so resuming continues the same run.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import MappingProxyType

import torch

from ..config import ConfigError
from ..errors import UserError
from ..utils.progress import bar
from . import report, snapshots
from .config import AUG_OPTIONS, TrainConfig, resolve
from .data import DataOrder, RealBatches, dataset_identity, open_dataset
from .distributed import Dist, init_distributed, shutdown
from .ema import ema_beta, update_ema
from .session import Session, build_finetune, build_fresh, build_resume, capture_state
from .writer import RunWriter

# Options that may change when a run is resumed; everything else comes from the snapshot.
RESUMABLE = ("kimg", "snap", "keep", "tick_kimg", "metrics", "metrics_num_gen", "grid_seeds")
# ... and augmentation options that may (the mode, ada / diffaugment / none, may not).
RESUMABLE_AUG = MappingProxyType({k: f for k, f in AUG_OPTIONS.items() if k != "aug"})


def train(dataset, run_dir, *, preset: str | None = None, resume: str | None = None, device="auto",
          workers: int | None = None, command: str = "", dist: Dist | None = None, log=print,
          **options) -> Path | None:
    """Train on `dataset` (a prepared dataset path, or an object like `ImageDataset`) into `run_dir`.

    `resume`: 'latest', a run directory, a snapshot (full resume when it was trained on this dataset) or
    any model directory / NVIDIA .pkl (fine-tuning). `options`: fields of TrainConfig / LossConfig /
    AugmentConfig (kimg, batch, gamma, aug, target, mirror, snap, seed, freezed, metrics, ...).
    Returns the newest snapshot."""
    own = dist is None
    dist = dist or init_distributed(device)
    try:
        s, dataset, ident = start(dataset, Path(run_dir), preset, resume, dist, options, log)
        if workers is None:
            workers = 2 if dist.device.type == "cuda" else 0
        return run_loop(s, dataset, Path(run_dir), ident, command, workers, log)
    finally:
        if own:
            shutdown(dist)


def start(dataset, run_dir: Path, preset, resume, dist: Dist, options: dict, log):
    """Open the dataset and build the session (fresh, resumed or fine-tuned)."""
    check_metrics(options.get("metrics"))  # a typo fails now, not at the first snapshot an hour later
    path = snapshots.find_resume(resume, run_dir) if resume else None
    if path is None and snapshots.list_snapshots(run_dir):
        raise UserError(f"--out {run_dir}: already holds a run; continue it with --resume latest, or choose a new "
                        "--out")
    meta = snapshots.read_state(path)[0] if path is not None and snapshots.is_training_snapshot(path) else None
    if isinstance(dataset, (str, Path)):
        # --mirror / --no-mirror given > the resumed run's own setting > what `prepare --mirror` recorded.
        mirror = options.get("mirror")
        if mirror is None and meta is not None:
            mirror = meta["config"].get("mirror", False)
        dataset = open_dataset(dataset, mirror=mirror, use_labels=bool(options.pop("cond", False)))
        if mirror is None and dataset.mirror and dist.is_main:
            log(f"{dataset.path}: mirrored copies on (recorded by prepare --mirror; --no-mirror turns them off)")
    options = {**options, "mirror": bool(getattr(dataset, "mirror", options.get("mirror") or False))}
    ident = dataset_identity(dataset)
    preset = preset or (meta["config"]["preset"] if meta else None) or "cpu128"
    try:
        cfg, net_preset = resolve(preset, ident["resolution"], ident["channels"], ident["label_dim"],
                                  dist.world_size, **options)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if meta is not None and same_dataset(meta.get("dataset"), ident):
        cfg = resumed_config(meta, cfg, options, log if dist.is_main else None)
        check_metrics(cfg.metrics)  # the run's own metrics: their package may be gone since
        if dist.is_main:
            log(f"resuming {path} at {meta['progress']['nimg'] / 1000:.3f} kimg")
        return build_resume(cfg, path, dist), dataset, ident
    if path is not None:
        if dist.is_main:
            log(f"fine-tuning from {path}: networks from the model, fresh optimizers, kimg from 0")
        return build_finetune(cfg, net_preset, path, dist), dataset, ident
    return build_fresh(cfg, net_preset, dist), dataset, ident


def check_metrics(metrics) -> None:
    """Names the metrics parser knows, that training can compute (no Inception weights can be passed to
    `train`), with their feature network's package installed. Raises UserError naming --metrics."""
    if not metrics:
        return
    from ..metrics.compute import FEATURE_NETS, parse_metrics

    names = parse_metrics(metrics)
    given = ",".join(names)
    inception = [m for m in names if FEATURE_NETS.get(m) == "inception"]
    if inception:
        raise UserError(f"--metrics {given}: {'/'.join(inception)} need Inception weights, which train cannot load; "
                        "use fd_effnet_lite0/kid_effnet_lite0 while training and `latentstudio metrics MODEL DATASET "
                        "--metrics fid --inception PATH` afterwards")
    if any(FEATURE_NETS.get(m) == "effnet_lite0" for m in names):
        from ..metrics.effnet import weights_path

        try:
            weights_path()
        except UserError as exc:
            raise UserError(f"--metrics {given}: {exc}") from None


def same_dataset(a: dict | None, b: dict) -> bool:
    keys = ("images", "resolution", "channels", "label_dim", "names_sha256")
    return a is not None and all(a.get(k) == b.get(k) for k in keys)


def resumed_config(meta: dict, fresh: TrainConfig, options: dict, log) -> TrainConfig:
    cfg = TrainConfig.from_dict(meta["config"])
    changes = {k: getattr(fresh, k) for k in RESUMABLE if options.get(k) is not None}
    # The augmentation may change on resume (e.g. --augpipe bg when colour augmentation leaks into a white-paper
    # set as inverted luminance); ADA's p carries over. Its mode (ada / diffaugment / none) may not.
    aug = {field: getattr(fresh.augment, field) for key, field in RESUMABLE_AUG.items() if options.get(key) is not None}
    if aug:
        changes["augment"] = cfg.augment.replace(**aug)
        if log:
            log("resuming with augmentation " + ", ".join(f"{k}={v}" for k, v in aug.items()))
    given = [k for k, v in options.items() if v is not None and k not in RESUMABLE and k not in RESUMABLE_AUG
             and k != "mirror"]
    # Options that live in nested configs (gamma, lrate, aug, ...) are never silently dropped: they are named.
    ignored = sorted(k for k in given if not hasattr(cfg, k) or getattr(cfg, k) != options[k])
    if ignored and log:
        log(f"note: resuming keeps the run's own {', '.join(ignored)} (only "
            f"{', '.join((*RESUMABLE, *RESUMABLE_AUG))} can change)")
    return cfg.replace(**changes)


def train_step(s: Session, phases, data: RealBatches, stats: report.TickStats) -> None:
    cfg, step = s.cfg, s.progress.step
    real, c_real = data.get(step)
    rounds = real.shape[0] // cfg.batch_gpu
    reals = real.split(cfg.batch_gpu)
    c_reals = c_real.split(cfg.batch_gpu) if c_real is not None else [None] * rounds
    d_only = s.progress.nimg < cfg.d_warmup_kimg * 1000
    for ph in phases:
        if step % ph.interval or (d_only and ph.module is s.G):
            continue
        ph.module.requires_grad_(True)
        ph.opt.zero_grad(set_to_none=True)
        for r in range(rounds):
            z = torch.randn([cfg.batch_gpu, s.G.z_dim], device=s.device)
            c = data.random_labels(cfg.batch_gpu)
            stats.add(ph.fn(reals[r], c_reals[r], z, c, ph.interval / rounds))
        ph.module.requires_grad_(False)
        s.dist.average_gradients(ph.module.parameters())
        ph.opt.step()
    s.dist.sync_buffers(s.G)
    update_ema(s.G_ema, s.G, ema_beta(cfg.ema_kimg, cfg.ema_rampup, s.progress.nimg, cfg.batch))
    if s.ada is not None:
        s.ada.update(step, s.dist.all_sum if s.dist.enabled else None)
    s.progress.step += 1
    s.progress.nimg += cfg.batch


class StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step (and write a snapshot)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False


def run_loop(s: Session, dataset, run_dir: Path, ident: dict, command: str, workers: int, log) -> Path | None:
    cfg, p, main = s.cfg, s.progress, s.dist.is_main
    total = int(round(cfg.kimg * 1000))
    if p.nimg >= total:
        if main:
            log(f"{run_dir}: already trained to {p.kimg:.3f} kimg (--kimg {cfg.kimg}); raise --kimg to go on")
        return _latest(run_dir)
    order = DataOrder(len(dataset), cfg.batch, cfg.seed, s.dist.rank, s.dist.world_size)
    data = RealBatches(dataset, order, s.device, cfg.c_dim, workers)
    writer = RunWriter(s, dataset, run_dir, ident, command, log) if main else None
    if writer is not None:
        writer.begin()
    stats, phases = report.TickStats(), s.phases()
    pbar = progress_bar(s) if main else None
    last_snapshot, tick_time, shown = None, time.time(), 0.0
    with StopFlag() as stop:
        while True:
            train_step(s, phases, data, stats)
            done = p.nimg >= total
            if pbar is not None:
                pbar.update(p.kimg - pbar.n)
                if time.time() - shown > 1:
                    pbar.set_postfix(_postfix(s, stats), refresh=False)
                    shown = time.time()
            stopping = _agree(s.dist, stop.requested)
            if done or stopping or p.nimg >= p.tick_start_nimg + cfg.tick_kimg * 1000:
                last_snapshot = end_tick(s, stats, writer, time.time() - tick_time, done or stopping) \
                    or last_snapshot
                tick_time = time.time()
            if done or stopping:
                break
    if pbar is not None:
        pbar.close()
    if stopping:
        raise KeyboardInterrupt(f"stopped at {p.kimg:.3f} kimg; resume with --resume {run_dir}")
    return last_snapshot


def progress_bar(s: Session):
    """kimg done / total, elapsed < ETA, then G and D losses and ADA p (see `_postfix`). A resumed run starts
    the bar at its kimg, so the ETA comes from this session's speed, not from the kimg done before."""
    return bar(s.cfg.kimg, desc="train", unit="kimg", initial=s.progress.kimg,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.3f}/{total:g} kimg [{elapsed}<{remaining}{postfix}]")


def _agree(dist: Dist, flag: bool) -> bool:
    if not dist.enabled:
        return flag
    return bool(dist.all_sum(torch.tensor([float(flag)], device=dist.device)).item() > 0)


def _postfix(s: Session, stats: report.TickStats) -> dict:
    out = {k.split("/")[-1]: f"{float(v):.3f}" for k, v in stats.last.items() if k in ("loss/G", "loss/D")}
    if s.ada is not None:
        out["p"] = f"{float(s.augment.p):.3f}"
    return out


def end_tick(s: Session, stats: report.TickStats, writer, seconds: float, final: bool) -> Path | None:
    """Close a tick: statistics row, and every `snap` ticks (or at the end) a snapshot. Collective."""
    p, cfg = s.progress, s.cfg
    tick_kimg = (p.nimg - p.tick_start_nimg) / 1000
    row = {"tick": p.tick + 1, "kimg": p.kimg, "nimg": p.nimg, "step": p.step, "sec_per_tick": seconds,
           "sec_per_kimg": seconds / max(tick_kimg, 1e-9), "total_sec": p.train_seconds + seconds,
           **stats.means(s.dist.all_mean if s.dist.enabled else None),
           "peak_mem_mb": report.peak_memory_mb(s.device)}
    if s.augment is not None and hasattr(s.augment, "p"):
        row["aug/p"] = float(s.augment.p)
    if s.ada is not None and s.ada.last_rt is not None:
        row["aug/rt"] = s.ada.last_rt
    stats.reset()
    p.tick += 1
    p.tick_start_nimg = p.nimg
    p.train_seconds += seconds
    path = None
    if final or p.tick % cfg.snap == 0:
        for name, net in (("G", s.G), ("D", s.D), ("G_ema", s.G_ema)):
            s.dist.check_consistent(net, name)
        meta, tensors = capture_state(s)  # every rank takes part (RNG states are gathered)
        if writer is not None:
            path = writer.snapshot(meta, tensors, row)
        s.dist.barrier()
    if writer is not None:
        writer.tick(row)
        if path is not None:
            writer.commit(path)  # only now `latest` moves: a kill before this resumes from the previous one
    return path


def _latest(run_dir: Path) -> Path | None:
    link = run_dir / snapshots.LATEST
    return link.resolve() if link.exists() else None
