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
DRIVER = """
import json, sys
from tests.training.helpers import TinyDataset
from latentstudio.training import train
train(TinyDataset(12, 16), sys.argv[1], preset="tiny", device="cpu", log=lambda *a: None, **json.loads(sys.argv[2]))
"""
# 30 steps of batch 4; ADA adapting fast enough that p really moves; a snapshot every 2 steps.
OPTIONS = dict(kimg=0.12, tick_kimg=0.008, snap=1, keep=2, speed_kimg=0.3, grid_seeds=4, seed=3)
FILES = ("generator.safetensors", "generator_train.safetensors", "discriminator.safetensors",
         "training_state.safetensors")


def launch(run_dir: Path, **changes) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
    args = [sys.executable, "-c", DRIVER, str(run_dir), json.dumps({**OPTIONS, **changes})]
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(run_dir: Path, **changes) -> None:
    proc = launch(run_dir, **changes)
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
def straight(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    run(run_dir)
    return final_state(run_dir), run_dir


def test_split_run_resumed_in_a_new_process_is_bit_exact(straight, tmp_path):
    reference, ref_dir = straight
    assert float(reference["training_state.safetensors:ada/p"]) > 0  # ADA took part
    run(tmp_path, kimg=0.028)  # 7 steps: mid ADA interval, mid tick
    run(tmp_path, resume="latest")
    assert_identical(final_state(tmp_path), reference)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["nimg"] == 120 and all(a["nimg"] < b["nimg"] for a, b in zip(rows, rows[1:], strict=False))
    assert len(snapshots.list_snapshots(tmp_path)) == 2  # --keep 2


def test_kill_9_mid_run_then_resume_loses_nothing(straight, tmp_path):
    reference, _ = straight
    proc = launch(tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / snapshots.LATEST).exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the first snapshot"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.6))
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed (machine too fast)")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(((tmp_path / snapshots.LATEST).resolve() / "training_state.json").read_text())
    assert killed_at["progress"]["nimg"] < 120
    run(tmp_path, resume=str(tmp_path))
    assert_identical(final_state(tmp_path), reference)
    assert not list((tmp_path / "snapshots").glob(".snapshot-*"))  # no half-written leftovers
