"""bench/project.py: runs on any model, stops with one line when a model or encoder is missing, and its
verdicts say PASS only when the encoder start is both better and >= 5x faster."""

import importlib
import json
from pathlib import Path

import pytest
import torch

from ..features.vgg_fixtures import tiny_convs, write_torchvision


@pytest.fixture(scope="module")
def bench():
    import sys

    path = str(Path(__file__).resolve().parents[2] / "bench")
    sys.path.insert(0, path)
    try:
        yield importlib.import_module("project")
    finally:
        sys.path.remove(path)


def test_missing_default_model_is_one_line(bench, tmp_path, monkeypatch, capsys):
    import latentstudio.io.registry as registry

    monkeypatch.setattr(registry, "default_model_path", lambda: tmp_path / "not-installed")
    monkeypatch.setattr(bench, "default_model_path", lambda: tmp_path / "not-installed")
    assert bench.main(["--out", str(tmp_path / "o"), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model DIR" in err and "not installed" in err


def test_missing_encoder_is_one_line(bench, tmp_path, tiny_model_dir, capsys):
    assert bench.main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--encoder train" in err and "--encoder none" in err


def test_quick_run_with_an_encoder_trained_in_memory(bench, tmp_path, tiny_model_dir, capsys):
    vgg = write_torchvision(tmp_path / "vgg16-tiny.pth", tiny_convs())
    threads = torch.get_num_threads()
    out = tmp_path / "o"
    assert bench.main(["--model", str(tiny_model_dir), "--encoder", "train", "--train-encoder-steps", "3",
                       "--steps", "2,3", "--encoder-steps", "1", "--spaces", "w+", "--generated", "1",
                       "--drawings", "2", "--loss", "pixel", "--features", str(vgg), "--live-budget", "0.5",
                       "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # the live rows' 2 threads are given back
    text = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    for kind in ("generated", "drawings"):
        rows = results["kinds"][kind]["rows"]
        got = [(r["start"], r["space"], r["steps"], r["noise"]) for r in rows]
        assert got == [("mean", "w+", 2, "const"), ("mean", "w+", 3, "const"), ("encoder", "w+", 1, "const"),
                       ("mean", "w+", 3, "optimize")]
        assert all(r["feature_distance"] is not None and r["seconds_per_step"] > 0 for r in rows)
        assert f"- {kind}, W+: encoder start + 1 steps beats mean-w start + 3 steps at >= 5x less time:" in text
    assert "w_error" in results["kinds"]["generated"]["rows"][0]
    assert {v["kind"] for v in results["verdicts"]} == {"generated", "drawings"}
    live = results["live"]
    assert live["threads"] == 2 and live["targets"] == 2 and live["encoder"] and live["setup_s"] > 0
    assert live["pass"] == (live["seconds_max"] <= 10) and "live path: every drawing within 10 s" in text
    assert (out / "drawings.png").is_file() and (out / "generated.png").is_file()


def _row(start, steps, psnr, seconds, noise="const"):
    return {"start": start, "space": "w+", "steps": steps, "noise": noise, "psnr": psnr, "ssim": psnr / 100,
            "feature_distance": 1 / psnr, "seconds_per_target": seconds}


@pytest.mark.parametrize("enc_psnr,enc_seconds,verdict", [
    (30.0, 10.0, True),    # better on all three numbers, 10x less time
    (30.0, 25.0, False),   # better, but only 4x less time
    (24.0, 10.0, False),   # fast, but worse
])
def test_verdict_needs_better_numbers_and_5x_less_time(bench, capsys, enc_psnr, enc_seconds, verdict):
    rows = [_row("mean", 100, 20.0, 10.0), _row("mean", 1000, 25.0, 100.0), _row("mean", 1000, 40.0, 1.0, "optimize"),
            _row("encoder", 300, 35.0, 30.0), _row("encoder", 100, enc_psnr, enc_seconds)]
    (v,) = bench.verdicts("drawings", rows)  # optimised-noise rows are not the reference
    assert v["pass"] is verdict and v["encoder_steps"] == 100 and v["mean_steps"] == 1000
    line = capsys.readouterr().out.strip()
    assert line.startswith("- drawings, W+: encoder start + 100 steps beats mean-w start + 1000 steps at >= 5x "
                           f"less time: {'PASS' if verdict else 'FAIL'} (")


@pytest.fixture()
def refine_bench(bench):
    return importlib.import_module("refine_lr")


def test_refine_lr_sweep_on_a_tiny_model(refine_bench, tmp_path, tiny_model_dir, capsys):
    from latentstudio.invert import EncoderConfig, EncoderTrainConfig, save_encoder, train_encoder
    from latentstudio.io.registry import open_model

    assert refine_bench.main(["--model", str(tiny_model_dir), "--encoder", str(tmp_path / "none")]) == 2
    assert "no encoder in" in capsys.readouterr().err
    G = open_model(str(tiny_model_dir), device="cpu").G
    cfg = EncoderTrainConfig(steps=5, batch=4, vgg_weight=0.0, val_size=4, log_every=0)
    encoder, _ = train_encoder(G, cfg, EncoderConfig.for_generator(G, channel_base=256, channel_max=32, hidden=64),
                               device="cpu", progress=False)
    save_encoder(tmp_path / "enc", encoder)
    out = tmp_path / "rows.json"
    assert refine_bench.main(["--model", str(tiny_model_dir), "--encoder", str(tmp_path / "enc"), "--loss", "pixel",
                              "--lrs", "0.0,0.05", "--steps", "3", "--generated", "1", "--drawings", "1",
                              "--threads", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kind"], r["space"], r["lr"]) for r in rows] == [
        (k, s, lr) for k in ("generated", "drawings") for s in ("w", "w+") for lr in (0.0, 0.05)]
    table = capsys.readouterr().out
    assert table.count("\n") == 2 + len(rows) and "| generated | W+ | 0.05 |" in table
    # lr 0 leaves the encoder's start where it was, so a run that moves must differ from it
    by = {(r["kind"], r["space"], r["lr"]): r["psnr"] for r in rows}
    assert by[("generated", "w+", 0.0)] != by[("generated", "w+", 0.05)]
