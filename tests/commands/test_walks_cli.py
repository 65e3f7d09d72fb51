"""walk, neighbours and render on the command line (tiny model, a few frames each)."""

import inspect
import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.cli import build_parser, main
from latentstudio.commands.walk import walk_timeline_data
from latentstudio.io.model_dir import CONFIG_FILE
from latentstudio.io.registry import default_model_path
from latentstudio.latent.io import load_ws, save_latents
from latentstudio.latent.keys import parse_keys, resolve_keys
from latentstudio.latent.moves import noise_loop
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.latent.space import LatentSpace
from latentstudio.latent.timeline_spec import NoiseLoopSpec, build_timeline, parse_timeline
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
    assert record["render"]["preset"] == "auto"  # as asked; what it resolved to is recorded with the output
    assert record["output"] == {"writer": "PyAVWriter", "size": [48, 32], "fps": 30.0, "codec": "libx264", "crf": 18,
                                "preset": "ultrafast", "threads": 1}


def walk_timeline(G, argv):
    """The timeline `latentstudio walk ARGV` renders: the maths of a walk without its pictures."""
    args = build_parser().parse_args(["walk", *argv, "--out", "x.mp4"])
    return build_timeline(parse_timeline(walk_timeline_data(args), "walk"), G)


def move_params(segment: dict) -> dict:
    return {k: v for k, v in segment.items() if k not in ("start", "seed", "keys")}


@pytest.mark.parametrize("move,options,per_key", [
    ("noise-loop", ["--stops", "3", "--frames", "4", "--sigma", "0.5"], 3 * 4),
    ("spacewalk", ["--frames", "10", "--speed", "0.1"], 10),
    ("circle", ["--frames", "8"], 8),
])
def test_several_keys_are_the_move_at_each_key_joined_by_interpolations(tiny_nets, tmp_path, move, options,
                                                                         per_key):
    G, _ = tiny_nets
    with torch.no_grad():
        save_latents(tmp_path / "pick.npz", G.mapping(torch.randn(1, G.z_dim), None))
    refs = ["3", "9", str(tmp_path / "pick.npz")]
    keys = resolve_keys(parse_keys(",".join(refs)), G, LatentSpace("w"))
    walk = walk_timeline(G, ["--keys", ",".join(refs), "--move", move, "--between", "5", *options])
    assert walk.num_frames == 3 * (per_key + 5)  # K x (move + morph): the last key morphs back to the first
    segments = walk.describe()["segments"]
    starts = [s["start"] for s in segments]
    assert [s["move"] for s in segments] == [move, "interpolate"] * 3
    assert starts == [j * (per_key + 5) + d for j in range(3) for d in (0, per_key)]
    assert [s["keys"] for s in segments] == [[refs[0]], refs[:2], [refs[1]], refs[1:], [refs[2]], [refs[2], refs[0]]]
    at_starts = walk.latents(np.array(starts))
    for j in range(3):
        move_j, morph_j = walk.segments[2 * j], walk.segments[2 * j + 1]
        assert torch.allclose(at_starts[2 * j], keys[j], atol=1e-5)  # the move at key j starts on it ...
        assert torch.allclose(move_j.end(), keys[j], atol=1e-5)  # ... and ends on it,
        assert torch.allclose(at_starts[2 * j + 1], keys[j], atol=1e-5)  # where the morph to the next key starts
        assert torch.allclose(morph_j.end(), keys[(j + 1) % 3], atol=1e-6)
    # The first key's move is exactly the walk of that key alone; every key's move has its settings, own noise.
    single = walk_timeline(G, ["--keys", refs[0], "--move", move, *options])
    assert single.num_frames == per_key
    assert torch.equal(walk.latents(np.arange(per_key)), single.latents(np.arange(per_key)))
    assert all(move_params(s) == move_params(single.describe()["segments"][0]) for s in segments[0::2])
    assert len({s["seed"] for s in segments[0::2]}) == 3
    # Continuous: no segment starts off the previous one's end, and the frame after the last is the first.
    assert walk.cuts() == [] and walk.describe()["cuts"] == []
    assert torch.allclose(walk.segments[-1].end(), walk.latents([0])[0], atol=1e-6)


def test_several_key_noise_loop_steps_evenly_through_every_join(tiny_nets):
    """Linear loops and morphs: the step into each join (and from the last frame round to the first) is the
    step before it, so nothing jumps where one move hands over to the next."""
    G, _ = tiny_nets
    walk = walk_timeline(G, ["--keys", "3,9,12", "--move", "noise-loop", "--stops", "2", "--frames", "3",
                             "--between", "4"])
    n = walk.num_frames
    assert n == 3 * (2 * 3 + 4)
    frames = walk.latents(np.arange(n + 1))  # frame n is frame 0 again
    steps = frames[1:] - frames[:-1]
    joins = [int(s) for s in walk.starts[1:]]  # each segment's first frame; the last is n: the loop's closing
    assert joins == [6, 10, 16, 20, 26, 30] and joins[-1] == n
    for join in joins:
        assert torch.allclose(steps[join - 1], steps[join - 2], atol=1e-5), join


def test_several_key_walk_is_the_timeline_sequence(tiny_nets):
    G, _ = tiny_nets
    walk = walk_timeline(G, ["--keys", "3,9", "--move", "noise-loop", "--stops", "2", "--frames", "3",
                             "--between", "4", "--seed", "5"])
    spec = parse_timeline({"seed": 5, "sequence": {"keys": [3, 9], "at_key": {"move": "noise-loop", "stops": 2,
                                                                               "frames": 3},
                                                    "between": {"move": "interpolate", "frames": 4}, "loop": True}})
    timeline = build_timeline(spec, G)
    assert timeline.num_frames == walk.num_frames == 2 * (2 * 3 + 4)
    assert torch.equal(timeline.latents(np.arange(20)), walk.latents(np.arange(20)))


def test_two_key_circle_is_one_turn_through_both_keys(tiny_nets):
    G, _ = tiny_nets
    keys = resolve_keys(parse_keys("3,9"), G, LatentSpace("w"))
    walk = walk_timeline(G, ["--keys", "3,9", "--move", "circle", "--frames", "8"])
    assert walk.num_frames == 8 and len(walk.segments) == 1
    frames = walk.latents(np.array([0, 2]))  # 0 and 90 degrees
    assert torch.allclose(frames[0], keys[0], atol=1e-5) and torch.allclose(frames[1], keys[1], atol=1e-5)


def test_walk_noise_loop_through_several_keys_renders_every_frame(tiny_model_dir, tiny_nets, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "0")
    G, _ = tiny_nets
    out = tmp_path / "frames"
    assert main(["walk", str(tiny_model_dir), "--keys", "3,9", "--move", "noise-loop", "--stops", "2", "--frames",
                 "2", "--between", "3", "--out", str(out), "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(2 * (2 * 2 + 3))]
    for frame, seed in [(0, 3), (4, 3), (7, 9), (11, 9)]:  # each loop and each morph starts on its key
        assert same_picture(Image.open(out / names[frame]), seed_image(G, seed)), frame
    record = json.loads((out / "walk.json").read_text())
    assert record["resolved"]["num_frames"] == 14 and record["resolved"]["cuts"] == []
    assert [s["move"] for s in record["timeline"]["segments"]] == ["noise-loop", "interpolate"] * 2


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
    assert [s["output"]["preset"] for s in resolved["screens"]] == ["ultrafast", "ultrafast"]


@pytest.mark.parametrize("argv,needle", [
    (["walk", "--keys", "3", "--out", "x.mp4"], "two or more keys"),
    (["walk", "--keys", "3,missing.npz", "--out", "x.mp4"], "missing.npz"),
    (["walk", "--keys", "3,4", "--size", "33x32", "--out", "x.mp4"], "even"),
    (["walk", "--keys", "3,4", "--out", "x.avi"], "--out"),
    (["walk", "--keys", "3,4", "--move", "spacewalk", "--no-loop", "--out", "x.mp4"], "--no-loop"),
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
