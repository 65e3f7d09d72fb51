"""Everything rank 0 writes into RUN_DIR, in an order that survives `kill -9` at any moment.

A snapshot tick writes: the snapshot directory (atomically), its sample grid, the metrics.jsonl row,
curves.png and the log line, and only then moves RUN_DIR/latest to the new snapshot. A kill before the
link moves resumes from the previous snapshot and writes the whole tick again (the JSONL is cut back to that
snapshot); a kill after it finds everything in place. The tick's row is also kept inside the snapshot
(training_state.json), so a run resumed from a snapshot whose row never reached the log (killed before the
first link existed, or written by an older version that logged after linking) puts the row back, and a
missing sample grid is redrawn from the snapshot's own EMA generator.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from ..io.model_dir import atomic_write_text
from . import report, snapshots
from .session import Session


class RunWriter:
    def __init__(self, s: Session, dataset, run_dir: Path, ident: dict, command: str, log):
        self.s, self.dataset, self.run_dir, self.ident, self.command, self.log = s, dataset, run_dir, ident, \
            command, log
        self.jsonl = run_dir / report.METRICS_LOG

    def begin(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / report.SAMPLES).mkdir(exist_ok=True)
        snapshots.remove_stale(self.run_dir)
        rows = snapshots.truncate_jsonl(self.jsonl, self.s.progress.nimg)
        atomic_write_text(self.run_dir / "training_config.json", self.s.cfg.to_json() + "\n")
        if self.s.progress.nimg == 0:
            report.save_grid_atomic(report.reals_grid(self.dataset), self.run_dir / "reals.png")
            report.save_grid_atomic(report.sample_grid(self.s.G_ema, self.s.cfg.grid_seeds),
                                    self.run_dir / report.SAMPLES / "init.png")
        elif "resumed_from" in self.s.origin:
            self.recover(Path(self.s.origin["resumed_from"]), rows)

    def recover(self, snap: Path, rows: list[dict]) -> None:
        """Put back what a kill between writing `snap` and logging it lost: its JSONL row and sample grid."""
        if snap.resolve().parent != (self.run_dir / snapshots.SNAPSHOT_DIR).resolve():
            return  # resumed from another run's snapshot: its log lives there
        grid = self.run_dir / report.SAMPLES / f"{snap.name}.png"
        if not grid.is_file():
            report.save_grid_atomic(report.sample_grid(self.s.G_ema, self.s.cfg.grid_seeds), grid)
        try:
            row = json.loads((snap / snapshots.STATE_JSON).read_text()).get(snapshots.TICK_ROW)
        except (OSError, ValueError):
            row = None
        if row is not None and not any(r.get("nimg") == row.get("nimg") for r in rows):
            self.tick(row)
        if not (self.run_dir / snapshots.LATEST).exists():
            snapshots.point_latest(self.run_dir, snap)

    def provenance(self) -> dict:
        s = self.s
        prov = {"source": "latentstudio train", "command": self.command, "preset": s.cfg.preset,
                "dataset": self.ident, "kimg": s.progress.kimg, "augment": s.cfg.augment.mode,
                "wall_time_s": round(s.progress.train_seconds, 1), "machine": report.machine(),
                "world_size": s.dist.world_size}
        if s.augment is not None and hasattr(s.augment, "p"):
            prov["ada_p"] = round(float(s.augment.p), 4)
        prov.update({k: v for k, v in s.origin.items() if k in ("finetuned_from", "start")})
        return prov

    def snapshot(self, meta: dict, tensors: dict, row: dict) -> Path:
        """Write the snapshot and its sample grid (not yet `latest`: see `commit`). Adds the metrics and the
        snapshot name to `row`."""
        s = self.s
        name = snapshots.snapshot_name(s.progress.nimg)
        if s.cfg.metrics:
            row["metrics"] = self.metrics()
        row["snapshot"] = name
        meta["dataset"] = self.ident
        meta[snapshots.TICK_ROW] = row
        path = snapshots.save_snapshot(self.run_dir, name, s.G_ema, s.G, s.D, self.provenance(), meta, tensors)
        report.save_grid_atomic(report.sample_grid(s.G_ema, s.cfg.grid_seeds),
                                self.run_dir / report.SAMPLES / f"{name}.png")
        return path

    def commit(self, path: Path) -> None:
        """The tick is fully written: make `path` the run's latest snapshot, then drop old ones."""
        snapshots.point_latest(self.run_dir, path)
        snapshots.prune(self.run_dir, self.s.cfg.keep)

    def metrics(self) -> dict:
        """The metrics API (data engineer's `latentstudio.metrics`); it must not disturb the training RNG."""
        from ..metrics import compute_metrics

        s = self.s
        devices = [s.device.index or 0] if s.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), _eval_mode(s.G_ema):
            result = compute_metrics(s.G_ema, self.dataset, metrics=list(s.cfg.metrics),
                                     num_gen=s.cfg.metrics_num_gen, device=s.device)
        return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}

    def tick(self, row: dict) -> None:
        from .curves import plot_curves, read_jsonl

        report.append_jsonl(self.jsonl, row)
        plot_curves(read_jsonl(self.jsonl), self.run_dir / report.CURVES)
        parts = [f"tick {row['tick']}", f"kimg {row['kimg']:.3f}", f"sec/kimg {row['sec_per_kimg']:.1f}"]
        parts += [f"{k.split('/')[-1]} {row[k]:.3f}" for k in ("loss/G", "loss/D", "aug/p", "aug/rt") if k in row]
        parts += [f"{k} {v:.4g}" for k, v in row.get("metrics", {}).items()]
        if "snapshot" in row:
            parts.append(f"-> {row['snapshot']}")
        line = "  ".join(parts)
        with open(self.run_dir / "log.txt", "a") as f:
            f.write(line + "\n")
        self.log(line)


@contextlib.contextmanager
def _eval_mode(module):
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)
