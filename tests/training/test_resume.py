"""Resume restores everything: a run split in two processes, or killed with SIGKILL at a random moment and
resumed, ends with bit-identical weights, optimizer state, ADA state and RNG state to an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentstudio.training import snapshots

ROOT = Path(__file__).resolve().parents[2]
# 25 steps of batch 4 on 16 px images (a test changes kimg); ADA adapting fast enough that p really moves; a
# snapshot every 2 steps.
OPTIONS = dict(kimg=0.1, tick=0.008, snap=1, keep=2, ada_kimg=0.3, seed=3)
FILES = ("generator.safetensors", "generator_train.safetensors", "discriminator.safetensors",
         "training_state.safetensors")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from latentstudio.data.demo import make_demo

    path = tmp_path_factory.mktemp("data") / "smiles16"
    make_demo("smiles", path, count=12, size=16, seed=0)
    return path


def launch(dataset: Path, run_dir: Path, **changes) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
    args = [sys.executable, "-m", "latentstudio.cli", "train", str(dataset), "--out", str(run_dir), "--preset", "tiny",
            "--device", "cpu", "--threads", "1"]
    for key, value in {**OPTIONS, **changes}.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(dataset: Path, run_dir: Path, **changes) -> None:
    proc = launch(dataset, run_dir, **changes)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def final_state(run_dir: Path) -> dict:
    snap = (run_dir / snapshots.LATEST).resolve()
    return {f"{f}:{k}": v for f in FILES for k, v in load_file(str(snap / f)).items()}


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_kill_9_then_resume_twice_is_bit_exact(dataset, tmp_path):
    """SIGKILL at a random moment after the first snapshot (possibly mid-write) of a run far too long to end by
    itself, resume in a new process and stop 7 steps after the snapshot it resumed from (mid ADA interval, mid
    tick), resume again to the end: the result equals an uninterrupted run to that end bit for bit (CPU, same
    thread count). Where the kill lands only moves the stops, so a slow or a fast machine never skips it."""
    killed_dir, straight_dir = tmp_path / "killed", tmp_path / "straight"
    killed_dir.mkdir()
    straight_dir.mkdir()
    proc = launch(dataset, killed_dir, kimg=10)  # 2,500 steps: still running whenever the kill comes
    try:
        deadline = time.time() + 300
        while not (killed_dir / snapshots.LATEST).exists():
            assert proc.poll() is None, "training ended before the first snapshot: " + proc.stdout.read()
            assert time.time() < deadline, "no snapshot within 300 s"
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.5))
        assert proc.poll() is None, "the run ended on its own before the kill: " + proc.stdout.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:  # after a failed assertion: do not leave the run behind
            proc.kill()
        proc.wait()
        proc.stdout.close()
    killed = json.loads(((killed_dir / snapshots.LATEST).resolve() / "training_state.json").read_text())
    resumed_at = killed["progress"]["nimg"]
    assert resumed_at >= 8 and resumed_at % 8 == 0, resumed_at  # snapshots come at tick ends: 2 steps of 4 images
    middle, end = resumed_at + 28, max(100, resumed_at + 40)  # 7 steps on: an odd step, mid tick and mid ADA
    run(dataset, killed_dir, resume=str(killed_dir), kimg=middle / 1000)
    assert not list((killed_dir / "snapshots").glob(".snapshot-*"))  # half-written leftovers are cleaned up
    run(dataset, killed_dir, resume="latest", kimg=end / 1000)
    run(dataset, straight_dir, kimg=end / 1000)
    reference = final_state(straight_dir)
    assert float(reference["training_state.safetensors:ada/p"]) > 0  # ADA took part
    assert_identical(final_state(killed_dir), reference)
    rows = [json.loads(line) for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["nimg"] == 8 and rows[-1]["nimg"] == end and middle in [r["nimg"] for r in rows], resumed_at
    assert all(a["nimg"] < b["nimg"] for a, b in zip(rows, rows[1:], strict=False))  # no duplicated ticks
    assert len(snapshots.list_snapshots(killed_dir)) == 2  # --keep 2


def test_resume_may_change_the_augmentation_and_names_what_it_keeps(dataset, tmp_path):
    """--augpipe/--target/--ada-kimg/--aug-p apply on resume; options that cannot change, even nested ones
    such as --gamma, are named instead of dropped silently."""
    run(dataset, tmp_path / "run", kimg=0.016)
    proc = launch(dataset, tmp_path / "run", kimg=0.032, resume="latest", augpipe="bg", gamma=5.0)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "resuming with augmentation pipe=bg" in out
    assert "keeps the run's own gamma" in out
    snap = (tmp_path / "run" / snapshots.LATEST).resolve()
    config = json.loads((snap / "training_state.json").read_text())["config"]
    assert config["augment"]["pipe"] == "bg" and config["loss"]["r1_gamma"] != 5.0
