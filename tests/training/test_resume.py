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
# 25 steps of batch 4 on 16 px images; ADA adapting fast enough that p really moves; a snapshot every 2 steps.
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


@pytest.fixture(scope="module")
def straight(tmp_path_factory, dataset):
    run_dir = tmp_path_factory.mktemp("straight")
    run(dataset, run_dir)
    return final_state(run_dir), run_dir


def test_kill_9_then_resume_twice_is_bit_exact(straight, dataset, tmp_path):
    """SIGKILL at a random moment after the first snapshot (possibly mid-write), resume in a new process and
    stop at 15 steps (mid ADA interval, mid tick), resume again to the end: the result equals the
    uninterrupted run bit for bit (CPU, same thread count)."""
    reference, _ = straight
    assert float(reference["training_state.safetensors:ada/p"]) > 0  # ADA took part
    proc = launch(dataset, tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / snapshots.LATEST).exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the first snapshot"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.5))
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed (machine too fast)")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(((tmp_path / snapshots.LATEST).resolve() / "training_state.json").read_text())
    assert killed_at["progress"]["nimg"] < 60
    run(dataset, tmp_path, resume=str(tmp_path), kimg=0.06)
    assert not list((tmp_path / "snapshots").glob(".snapshot-*"))  # half-written leftovers are cleaned up
    run(dataset, tmp_path, resume="latest")
    assert_identical(final_state(tmp_path), reference)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["nimg"] == 8 and rows[-1]["nimg"] == 100 and 60 in [r["nimg"] for r in rows]
    assert all(a["nimg"] < b["nimg"] for a, b in zip(rows, rows[1:], strict=False))  # no duplicated ticks
    assert len(snapshots.list_snapshots(tmp_path)) == 2  # --keep 2
