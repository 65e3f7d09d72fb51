"""The command line, run in-process."""

import json

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import COMMANDS, main
from latentstudio.io.model_dir import save_model

from .helpers import make_tiny
from .io.nvidia_fixtures import write_tf_pickle


def test_generate_writes_pngs_grid_and_record(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", str(tiny_model_dir), "--seeds", "0-2,7", "--trunc", "0.7", "--out", str(out),
                 "--grid", "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.glob("seed*.png"))
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    assert Image.open(out / "seed0000.png").size == (32, 32)
    assert (out / "grid.png").is_file()
    record = json.loads((out / "generate.json").read_text())
    assert record["settings"]["seeds"] == "0-2,7" and record["settings"]["trunc"] == 0.7
    # Same seed, same image, whatever else is in the batch.
    out2 = tmp_path / "gen2"
    main(["generate", str(tiny_model_dir), "--seeds", "7", "--trunc", "0.7", "--out", str(out2)])
    assert np.array_equal(np.asarray(Image.open(out2 / "seed0007.png")), np.asarray(Image.open(out / "seed0007.png")))


@pytest.fixture(scope="module")
def cond_model_dir(tmp_path_factory):
    G, D = make_tiny(seed=21, c_dim=3)
    return save_model(tmp_path_factory.mktemp("models") / "cond", G, D=D, provenance={"source": "tests"})


def _pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def test_generate_class_on_a_conditional_model(cond_model_dir, tmp_path, capsys):
    outs = []
    for idx in (0, 2):
        out = tmp_path / f"class{idx}"
        assert main(["generate", str(cond_model_dir), "--seeds", "3", "--class", str(idx), "--out", str(out)]) == 0
        outs.append(_pixels(out / "seed0003.png"))
    assert not np.array_equal(outs[0], outs[1])  # the class changes the image of the same seed
    for argv, needle in ((["--class", "3"], "--class 3: this model has classes 0..2"),
                         ([], "--class: this model is conditional")):
        assert main(["generate", str(cond_model_dir), "--seeds", "3", "--out", str(tmp_path / "bad"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad" / "seed0003.png").exists()


def test_generate_class_on_an_unconditional_model_is_refused(tiny_model_dir, tmp_path, capsys):
    assert main(["generate", str(tiny_model_dir), "--class", "0", "--out", str(tmp_path / "x")]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_generate_noise_modes(tiny_model_dir, tmp_path):
    def render(mode, name, *extra):
        out = tmp_path / name
        assert main(["generate", str(tiny_model_dir), "--seeds", "1", "--noise-mode", mode, "--out", str(out),
                     *extra]) == 0
        return _pixels(out / "seed0001.png"), json.loads((out / "generate.json").read_text())["noise_seed"]

    (r1, s1), (r2, s2) = render("random", "r1"), render("random", "r2")
    assert s1 != s2 and not np.array_equal(r1, r2)  # fresh noise each run
    r3, _ = render("random", "r3", "--noise-seed", str(s1))
    assert np.array_equal(r1, r3)  # the recorded seed repeats a run
    for mode in ("none", "const"):
        a, _ = render(mode, f"{mode}1")
        b, _ = render(mode, f"{mode}2")
        assert np.array_equal(a, b) and not np.array_equal(a, r1)
    assert not np.array_equal(render("none", "n3")[0], render("const", "c3")[0])


def test_generate_grayscale_writes_mode_L_pngs(tmp_path):
    G, D = make_tiny(seed=22, img_channels=1)
    model = save_model(tmp_path / "gray", G, D=D)
    out = tmp_path / "out"
    assert main(["generate", str(model), "--seeds", "0-1", "--out", str(out), "--grid"]) == 0
    img = Image.open(out / "seed0000.png")
    assert img.mode == "L" and img.size == (32, 32)


def test_grid_has_a_label_band_with_text(tiny_model_dir, tmp_path):
    out = tmp_path / "grid"
    assert main(["generate", str(tiny_model_dir), "--seeds", "0-3", "--out", str(out), "--grid"]) == 0
    grid = np.asarray(Image.open(out / "grid.png").convert("L"))
    tile, pad = 32, 2
    band = grid.shape[0] // 2 - (tile + pad)  # 2 x 2 tiles; each row = pad + tile + label band
    assert grid.shape[1] == 2 * (tile + pad) + pad and band >= 8, grid.shape
    seed0 = np.asarray(Image.open(out / "seed0000.png").convert("L"))
    assert np.array_equal(grid[pad:pad + tile, pad:pad + tile], seed0)
    label = grid[pad + tile:pad + tile + band, pad:pad + tile]
    assert (label < 128).sum() > 5  # dark text on the white band under the image


def test_info_prints_facts(tiny_model_dir, tiny_nets, capsys):
    from latentstudio.models.summary import count_parameters, counted_flops

    assert main(["info", str(tiny_model_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["resolution"] == 32 and info["num_ws"] == 8
    assert info["generator_parameters"] == count_parameters(tiny_nets[0])
    # FLOPs from the layer shapes, the same number as counting a reference forward pass.
    assert info["gflops_per_image"] == round(counted_flops(tiny_nets[0]) / 1e9, 3) > 0
    assert info["provenance"] == {"source": "tests"}
    assert main(["info", str(tiny_model_dir)]) == 0
    assert "gflops_per_image" in capsys.readouterr().out


def test_import_command(tmp_path, capsys):
    G, D = make_tiny(seed=9)
    pkl = write_tf_pickle(tmp_path / "net.pkl", G, D)
    assert main(["import", str(pkl), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "config.json").is_file()


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--seeds", "3-1", "--out", "x"], "--seeds"),
    (["generate", "/nonexistent/model", "--out", "x"], "no such model directory"),
    (["generate", "--device", "tpu", "--out", "x"], "--device"),
    (["import", "/nonexistent.pkl", "--out", "x"], "no such file"),
    (["init-model", "--preset", "tiny", "--resolution", "48", "--out", "x"], "resolution=48"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[1] == "--seeds" or argv[1] == "--device":
        argv = [argv[0], str(tiny_model_dir)] + argv[1:]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--trunc", "abc", "--out", "x"], "--trunc"),
    (["generate", "--noise-mode", "loud", "--out", "x"], "--noise-mode"),
    (["generate", "--bogus", "--out", "x"], "unrecognized arguments: --bogus"),
    (["info", "--nope"], "unrecognized arguments: --nope"),
    (["generate"], "--out"),
])
def test_argparse_errors_are_one_line_and_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and not captured.out, captured.err
    cmd = f"latentstudio {argv[0]}"
    assert lines[0].startswith(f"{cmd}: error: ") and lines[0].endswith(f"(see {cmd} --help)")
    assert needle in lines[0]


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_help_shows_defaults_and_example(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "(default:" in text
    example = text.split("example:", 1)[1].strip().splitlines()[0].strip()
    assert example.startswith(f"latentstudio {name} "), example


def test_train_command_end_to_end(tmp_path, capsys):
    """prepare a tiny demo set, train a few steps, generate from the snapshot; bad datasets exit 2."""
    from latentstudio.data.demo import make_demo

    data = tmp_path / "data"
    make_demo("smiles", data, count=8, size=16, seed=0)
    out = tmp_path / "run"
    argv = ["train", str(data), "--out", str(out), "--preset", "tiny", "--kimg", "0.008", "--tick", "0.004",
            "--snap", "1", "--aug", "diffaugment", "--device", "cpu", "--threads", "1", "--metrics", "swd",
            "--metrics-num-gen", "8"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["metrics"]["swd"] > 0 for r in rows)  # the metrics API at every snapshot
    record = json.loads((out / "train.json").read_text())
    assert record["settings"]["aug"] == "diffaugment" and "kimg" in record["settings"]
    assert (out / "latest" / "generator.safetensors").is_file()
    assert main(["generate", str(out / "latest"), "--seeds", "0-1", "--out", str(tmp_path / "gen")]) == 0
    assert Image.open(tmp_path / "gen" / "seed0001.png").size == (16, 16)
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert "missing" in capsys.readouterr().err
