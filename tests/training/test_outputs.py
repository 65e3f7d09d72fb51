"""What a run leaves behind and shows: files in RUN_DIR, the progress bar, DiffAugment and metrics end to end,
and fine-tuning from an NVIDIA .pkl through the command line."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tqdm import tqdm

from latentstudio.cli import main
from latentstudio.training.distributed import Dist
from latentstudio.training.loop import _postfix, progress_bar, start
from latentstudio.training.report import TickStats
from latentstudio.training.session import Progress

from ..helpers import make_tiny
from ..io.nvidia_fixtures import write_pytorch_pickle


@pytest.fixture(scope="module")
def smiles16(tmp_path_factory):
    from latentstudio.data.demo import make_demo

    path = tmp_path_factory.mktemp("data") / "smiles16"
    make_demo("smiles", path, count=8, size=16, seed=0, contact_sheet=False)
    return path


def train_cli(*args) -> int:
    return main(["train", *map(str, args), "--preset", "tiny", "--device", "cpu", "--threads", "1", "--tick", "0.008",
                 "--snap", "2"])


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_tiny_run_writes_everything(smiles16, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "1")
    run_dir = tmp_path / "run"
    assert train_cli(smiles16, "--out", run_dir, "--kimg", "0.032") == 0
    err = capsys.readouterr().err
    for name in ("reals.png", "curves.png", "log.txt", "metrics.jsonl", "training_config.json", "train.json"):
        assert (run_dir / name).is_file(), name
    samples = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert samples == ["init.png", "snapshot-000000.016kimg.png", "snapshot-000000.032kimg.png"]
    reals, init = Image.open(run_dir / "reals.png"), Image.open(run_dir / "samples" / "init.png")
    assert reals.width == init.width and init.height > 3 * reals.height  # 8 reals in a row, 32 seeds in 4
    assert len(np.unique(np.asarray(reals.convert("L")))) > 20  # pictures, not a blank page
    rows = rows_of(run_dir)
    assert [r["tick"] for r in rows] == [1, 2, 3, 4]
    assert [r.get("snapshot") for r in rows] == [None, "snapshot-000000.016kimg", None, "snapshot-000000.032kimg"]
    assert all(math.isfinite(r["loss/G"]) and math.isfinite(r["loss/D"]) and "aug/p" in r for r in rows)
    assert len((run_dir / "log.txt").read_text().splitlines()) == 4
    # The bar: kimg done / total, ETA, the losses and p.
    final = err.replace("\r", "\n").splitlines()
    bar_lines = [line for line in final if line.startswith("train ") and "0.032/0.032 kimg" in line]
    assert bar_lines and all(k in bar_lines[-1] for k in ("G=", "D=", "p=", "<"))

    # Resumed: the bar starts at the kimg already done.
    assert train_cli(smiles16, "--out", run_dir, "--kimg", "0.048", "--resume", "latest") == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    first = next(line for line in err.splitlines() if line.startswith("train "))
    assert "0.032/0.048 kimg" in first
    assert [r["nimg"] for r in rows_of(run_dir)] == [8, 16, 24, 32, 40, 48]


def test_progress_bar_eta_counts_only_this_session(monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "1")
    s = SimpleNamespace(cfg=SimpleNamespace(kimg=2.0), progress=Progress(nimg=1500),
                        ada=object(), augment=SimpleNamespace(p=torch.tensor(0.25)))
    pbar = progress_bar(s)
    stats = TickStats()
    stats.add({"loss/G": torch.tensor(1.0), "loss/D": torch.tensor(2.0), "loss/r1": torch.tensor(9.0)})
    pbar.set_postfix(_postfix(s, stats), refresh=False)
    # 0.125 kimg in 8 s since the resume: 0.375 kimg left is 24 s (not the 2 s that 1.625 kimg / 8 s would give).
    text = tqdm.format_meter(**{**pbar.format_dict, "n": 1.625, "elapsed": 8})
    pbar.close()
    assert "1.625/2 kimg" in text and "00:08<00:24" in text
    assert "G=1.000, D=2.000, p=0.250" in text and "r1" not in text


def test_diffaugment_with_swd_metrics(smiles16, tmp_path):
    run_dir = tmp_path / "run"
    assert train_cli(smiles16, "--out", run_dir, "--kimg", "0.016", "--aug", "diffaugment", "--metrics", "swd",
                     "--metrics-num-gen", "16") == 0
    rows = rows_of(run_dir)
    snap = rows[-1]
    assert snap["snapshot"] == "snapshot-000000.016kimg" and "aug/p" not in snap  # no ADA
    assert snap["metrics"]["swd"] > 0 and all(math.isfinite(v) for v in snap["metrics"].values())
    assert "metrics" not in rows[0]  # only snapshot ticks are scored
    assert "swd " in (run_dir / "log.txt").read_text()
    prov = json.loads((run_dir / "latest" / "config.json").read_text())["provenance"]
    assert prov["augment"] == "diffaugment"
    assert json.loads((run_dir / "training_config.json").read_text())["augment"]["mode"] == "diffaugment"


def test_finetune_from_an_nvidia_pickle(tmp_path):
    from latentstudio.data.demo import make_demo

    G, D = make_tiny(seed=7)  # 32 px
    pkl = write_pytorch_pickle(tmp_path / "network-snapshot-000100.pkl", G, D)
    data = tmp_path / "smiles32"
    make_demo("smiles", data, count=4, size=32, seed=1, contact_sheet=False)
    s, _, _ = start(str(data), tmp_path / "probe", "tiny", str(pkl), Dist(), {}, lambda *a: None)
    assert s.origin["start"] == "fine-tune" and s.progress.nimg == 0
    for name, t in G.state_dict().items():
        assert torch.equal(s.G_ema.state_dict()[name], t), name
    for name, t in D.state_dict().items():
        assert torch.equal(s.D.state_dict()[name], t), name

    run_dir = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run_dir), "--preset", "tiny", "--device", "cpu", "--threads", "1",
                 "--kimg", "0.008", "--tick", "0.008", "--resume", str(pkl)]) == 0
    prov = json.loads((run_dir / "latest" / "config.json").read_text())["provenance"]
    assert prov["finetuned_from"] == str(pkl) and prov["start"] == "fine-tune" and prov["kimg"] == 0.008
    from safetensors.torch import load_file

    trained = load_file(str(run_dir / "latest" / "generator_train.safetensors"))
    changed = [k for k, t in G.state_dict().items() if not torch.equal(trained[k], t)]
    assert changed  # it trained from the pickle's weights ...
    ema = load_file(str(run_dir / "latest" / "generator.safetensors"))

    def distance(state):
        return sum((ema[k] - t).abs().mean().item() for k, t in state.items() if t.is_floating_point())

    other, _ = make_tiny(seed=8)
    assert distance(G.state_dict()) < 0.1 * distance(other.state_dict())  # ... and stayed close to them
