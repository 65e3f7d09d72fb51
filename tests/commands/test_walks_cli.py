"""walk, neighbours and render on the command line (tiny model, a few frames each)."""

import inspect
import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.cli import build_parser, main
from latentstudio.io.model_dir import CONFIG_FILE
from latentstudio.io.registry import default_model_path
from latentstudio.latent.io import load_ws
from latentstudio.latent.moves import noise_loop
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.latent.timeline_spec import NoiseLoopSpec
from latentstudio.render.images import to_uint8

av = pytest.importorskip("av")


def decode(path):
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames)


def seed_image(G, seed):
    with torch.no_grad():
        return to_uint8(G(z_from_seeds([seed], G.z_dim), None, noise_mode="const"))[0]


def same_picture(image, reference) -> bool:
    """Equal up to float rounding: a batch of 7 rounds a few values differently than a batch of 1."""
    diff = np.abs(np.asarray(image).astype(int) - reference)
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_walk_interpolation_starts_and_ends_on_the_keys(tiny_model_dir, tiny_nets, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    G, _ = tiny_nets
    out = tmp_path / "frames"
    assert main(["walk", str(tiny_model_dir), "--keys", "3,9", "--frames", "6", "--out", str(out),
                 "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(7)]  # 6 frames per pair + the last key
    assert same_picture(Image.open(out / names[0]), seed_image(G, 3))
    assert same_picture(Image.open(out / names[-1]), seed_image(G, 9))
    record = json.loads((out / "walk.json").read_text())
    assert record["resolved"]["num_frames"] == 7 and record["timeline"]["segments"][0]["move"] == "interpolate"


def test_walk_noise_loop_video(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    out = tmp_path / "loop.mp4"
    assert main(["walk", str(tiny_model_dir), "--keys", "5", "--move", "noise-loop", "--stops", "3", "--frames",
                 "4", "--sigma", "0.5", "--size", "48x32", "--fit", "fill", "--out", str(out)]) == 0
    frames = decode(out)
    assert frames.shape == (12, 32, 48, 3)  # stops x frames, at the asked size
    record = json.loads((tmp_path / "loop.mp4.json").read_text())
    assert record["render"]["size"] == "48x32" and record["resolved"]["segments"][0]["stops"] == 3


def test_neighbours_pick_becomes_a_key(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    out = tmp_path / "nb"
    args = ["neighbours", str(tiny_model_dir), "--key", "7", "--count", "6", "--sigma", "0.5", "--out", str(out)]
    assert main(args + ["--pick", "4"]) == 0
    assert torch.equal(load_ws(out / "pick.npz"), load_ws(out / "004.npz"))
    sheet_time = (out / "sheet.png").stat().st_mtime_ns
    assert main(args + ["--pick", "1,2"]) == 0  # same settings: picks from the folder without re-rendering
    assert (out / "sheet.png").stat().st_mtime_ns == sheet_time and "already holds" in capsys.readouterr().out
    assert load_ws(out / "pick.npz").shape[0] == 2
    gif = tmp_path / "w.gif"
    assert main(["walk", str(tiny_model_dir), "--keys", f"{out / 'pick.npz'},{out / '005.npz'}", "--frames", "3",
                 "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames == 3 * 2 + 1  # pick.npz holds two keys: three keys in all


def test_render_timeline_screens_and_preview(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    timeline = tmp_path / "t.yaml"
    timeline.write_text(f"""
model: {tiny_model_dir}
keys: {{a: 1, b: 2}}
sequence:
  keys: [a, b]
  at_key: {{move: noise-loop, stops: 2, frames: 3, sigma: 0.5}}
  between: {{move: interpolate, frames: 4}}
  loop: true
screens: {{count: 2, offset: 5}}
render: {{size: 40x24, preview_tile: 20}}
""")
    out = tmp_path / "out"
    assert main(["render", str(timeline), "--out", str(out), "--fps", "12"]) == 0
    one, two, preview = decode(out / "screen1.mp4"), decode(out / "screen2.mp4"), decode(out / "preview.mp4")
    assert one.shape == two.shape == (2 * 6 + 2 * 4, 24, 40, 3)
    assert preview.shape[:3] == (20, 12, 44)  # two 20 px tiles, 4 px gap
    assert np.abs(one[5:10].astype(int) - two[0:5]).mean() < 6  # screen 2 runs 5 frames ahead
    resolved = json.loads((out / "timeline.resolved.json").read_text())
    assert [s["offset"] for s in resolved["screens"]] == [0, 5] and resolved["render"]["fps"] == 12


@pytest.mark.parametrize("argv,needle", [
    (["walk", "--keys", "3", "--out", "x.mp4"], "two or more keys"),
    (["walk", "--keys", "3,missing.npz", "--out", "x.mp4"], "missing.npz"),
    (["walk", "--keys", "3,4", "--size", "33x32", "--out", "x.mp4"], "even"),
    (["walk", "--keys", "3,4", "--out", "x.avi"], "--out"),
    (["neighbours", "--count", "6", "--pick", "9", "--out", "nb"], "--pick"),
    (["render", "t.yaml", "--out", "r"], "unknown field(s) ['colour']"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_model_dir, tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").write_text("colour: red\nsegments: [{move: hold, key: 1}]\n")
    if argv[0] != "render":
        argv = [argv[0], str(tiny_model_dir)] + argv[1:]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()


def test_noise_loop_sigma_has_one_default():
    cli = build_parser().parse_args(["walk", "--move", "noise-loop", "--out", "x.mp4"]).sigma
    assert cli == NoiseLoopSpec().sigma == inspect.signature(noise_loop).parameters["sigma"].default == 0.3


def test_walk_without_model_uses_the_default_model(tmp_path, monkeypatch, capsys):
    """No MODEL: the built-in model renders the walk, or, until it is installed, one line says it is missing."""
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    out = tmp_path / "frames"
    code = main(["walk", "--keys", "3,4", "--frames", "2", "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    if (default_model_path() / CONFIG_FILE).is_file():
        assert code == 0 and len(list(out.glob("frame_*.png"))) == 3, err
    else:
        assert code == 2 and len(err.splitlines()) == 1
        assert "default model is not installed" in err and str(default_model_path()) in err
        assert not out.exists()  # nothing written before the model was found
