"""Nothing is lost when a run dies at the worst moments of a snapshot tick: each moment is simulated by an
exception nothing catches (like kill -9, no clean-up runs), then the run is resumed with --resume latest and
every tick must have its one metrics.jsonl row, every snapshot its row and its sample grid."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from latentstudio.data.demo import make_demo
from latentstudio.training import snapshots, train, writer
from latentstudio.training.report import CURVES, METRICS_LOG, SAMPLES

from .helpers import TinyDataset

# Batch 4 (tiny preset): a tick every 2 steps, a snapshot every 2 ticks, 4 ticks in all.
OPTS = dict(preset="tiny", device="cpu", log=lambda *a: None, tick_kimg=0.008, snap=2, keep=0, grid_seeds=4)
KIMG = 0.032


class Killed(BaseException):
    """Not an Exception: no handler in the trainer catches it, as with SIGKILL."""


def die_on(monkeypatch, obj, name, call: int, after: bool = False):
    """Make `obj.name` die at its `call`-th call (before doing its work, or right after it)."""
    real = getattr(obj, name)
    count = {"n": 0}

    def wrapper(*args, **kwargs):
        count["n"] += 1
        if count["n"] == call and not after:
            raise Killed(name)
        out = real(*args, **kwargs)
        if count["n"] == call and after:
            raise Killed(name)
        return out

    monkeypatch.setattr(obj, name, wrapper)


def assert_nothing_lost(run_dir):
    rows = [json.loads(line) for line in (run_dir / METRICS_LOG).read_text().splitlines()]
    assert [r["tick"] for r in rows] == [1, 2, 3, 4]
    assert [r["nimg"] for r in rows] == [8, 16, 24, 32]
    snaps = [r["snapshot"] for r in rows if "snapshot" in r]
    assert snaps == [snapshots.snapshot_name(16), snapshots.snapshot_name(32)]
    assert [r["tick"] for r in rows if "snapshot" in r] == [2, 4]
    for name in snaps:
        assert (run_dir / SAMPLES / f"{name}.png").is_file()
    assert (run_dir / CURVES).is_file()
    assert (run_dir / snapshots.LATEST).resolve().name == snaps[-1]
    log = (run_dir / "log.txt").read_text()
    assert all(f"-> {name}" in log for name in snaps)


def finish(run_dir):
    train(TinyDataset(8, 16), run_dir, resume="latest", kimg=KIMG, **OPTS)
    assert_nothing_lost(run_dir)


@pytest.mark.parametrize("where", [
    "commit",            # the second snapshot, its row and grid written; latest not moved yet
    "snapshot-written",  # the second snapshot directory written; no grid, no row yet
])
def test_killed_during_the_second_snapshot(tmp_path, monkeypatch, where):
    with monkeypatch.context() as m:
        if where == "commit":
            die_on(m, writer.RunWriter, "commit", call=2)
        else:
            die_on(m, snapshots, "save_snapshot", call=2, after=True)
        with pytest.raises(Killed):
            train(TinyDataset(8, 16), tmp_path, kimg=KIMG, **OPTS)
    assert (tmp_path / snapshots.LATEST).resolve().name == snapshots.snapshot_name(16)
    finish(tmp_path)


def test_killed_before_the_first_link(tmp_path, monkeypatch):
    """The very first snapshot is whole but `latest` does not exist yet: --resume latest takes it, and its
    JSONL row and grid (never written) come back from the snapshot itself."""
    with monkeypatch.context() as m:
        die_on(m, snapshots, "save_snapshot", call=1, after=True)
        with pytest.raises(Killed):
            train(TinyDataset(8, 16), tmp_path, kimg=KIMG, **OPTS)
    assert not (tmp_path / snapshots.LATEST).exists()
    assert not (tmp_path / SAMPLES / f"{snapshots.snapshot_name(16)}.png").exists()
    finish(tmp_path)


def test_snapshot_linked_but_never_logged(tmp_path):
    """What an older version could leave (it moved `latest` before logging): the newest snapshot's row and
    grid missing. Resuming puts both back before training on."""
    train(TinyDataset(8, 16), tmp_path, kimg=0.016, **OPTS)
    log = tmp_path / METRICS_LOG
    rows = log.read_text().splitlines()
    log.write_text("\n".join(rows[:-1]) + "\n")
    grid = tmp_path / SAMPLES / f"{snapshots.snapshot_name(16)}.png"
    before = grid.read_bytes()
    grid.unlink()
    finish(tmp_path)
    assert grid.read_bytes() == before  # redrawn from the snapshot's own EMA generator, identical


def test_sigterm_writes_a_snapshot_and_exits(tmp_path):
    """What `kill PID` (and bench/train.py's CPU budget) relies on: the trainer finishes the step, writes a
    snapshot of exactly where it stopped, logs it, and exits with 130."""
    data = tmp_path / "smiles16"
    make_demo("smiles", data, count=8, size=16, seed=0, contact_sheet=False)
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "latentstudio.cli", "train", str(data), "--out", str(run_dir), "--preset", "tiny",
           "--device", "cpu", "--threads", "1", "--kimg", "100", "--tick", "0.008", "--snap", "1000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (run_dir / METRICS_LOG).is_file() or not (run_dir / METRICS_LOG).read_text():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    assert not (run_dir / snapshots.LATEST).exists()  # no periodic snapshot before the signal
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    rows = [json.loads(line) for line in (run_dir / METRICS_LOG).read_text().splitlines()]
    latest = (run_dir / snapshots.LATEST).resolve()
    assert rows[-1]["snapshot"] == latest.name and "snapshot" not in rows[0]
    state = json.loads((latest / snapshots.STATE_JSON).read_text())
    assert state["progress"]["nimg"] == rows[-1]["nimg"] and 8 <= rows[-1]["nimg"] < 100000
    assert (run_dir / SAMPLES / f"{latest.name}.png").is_file()
