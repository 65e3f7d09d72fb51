"""Two training processes on CPU under torchrun (gloo): the batch is split, weights stay identical on both
ranks (checked at every snapshot), and only rank 0 writes."""

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from latentstudio.training import snapshots


@pytest.mark.slow
def test_two_processes_train_one_model(tmp_path):
    from latentstudio.data.demo import make_demo

    data = tmp_path / "data"
    make_demo("smiles", data, count=8, size=16, seed=0)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "latentstudio.cli", "train", str(data), "--out", str(out), "--preset", "tiny", "--batch", "8",
           "--kimg", "0.048", "--tick", "0.016", "--snap", "1", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in rows] == [16, 32, 48]  # one line per tick: rank 1 wrote nothing
    snap = (out / snapshots.LATEST).resolve()
    state = json.loads((snap / "training_state.json").read_text())
    assert state["world_size"] == 2 and state["config"]["batch_gpu"] == 4
    tensors = load_file(str(snap / "training_state.safetensors"))
    assert not (tensors["rng/rank0/cpu"] == tensors["rng/rank1/cpu"]).all()  # each rank its own stream
    assert (snap / "discriminator.safetensors").is_file()
