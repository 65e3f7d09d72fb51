"""Timelines: exact frame counts (the exhibition's ballad), sequences, screens, batches, file errors."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from latentstudio.errors import UserError
from latentstudio.latent.io import save_latents
from latentstudio.latent.timeline_spec import build_timeline, load_timeline_spec, parse_timeline

DOCS = Path(__file__).resolve().parents[2] / "docs" / "timelines"
WALKS_MD = DOCS.parent / "walks.md"

BALLAD = {
    "keys": {"line1": 1, "line2": 2, "line3": 3, "line4": 4, "line5": 5},
    "sequence": {"keys": ["line1", "line2", "line3", "line4", "line5"],
                 "at_key": {"move": "noise-loop", "stops": 7, "frames": 30, "sigma": 0.3},
                 "between": {"move": "interpolate", "frames": 150}},
}


def test_ballad_has_the_exhibitions_frame_count_and_no_cuts(tiny_nets):
    G, _ = tiny_nets
    spec = parse_timeline(BALLAD)
    names = [name for name, _ in spec.moves]
    assert names == ["noise-loop", "interpolate"] * 4 + ["noise-loop"]
    timeline = build_timeline(spec, G)
    assert timeline.num_frames == 5 * 7 * 30 + 4 * 150 == 1650  # 55 s at 30 fps
    assert timeline.cuts() == []  # loops end on their key, morphs start from it
    starts = [s["start"] for s in timeline.describe()["segments"]]
    assert starts == [0, 210, 360, 570, 720, 930, 1080, 1290, 1440]
    keys = build_timeline(parse_timeline({"keys": BALLAD["keys"], "segments": [
        {"move": "hold", "key": k, "frames": 1} for k in BALLAD["keys"]]}), G).latents(np.arange(5))
    frames = timeline.latents(np.array([0, 210, 360, 570, 1440, 1649]))
    assert torch.equal(frames[0], keys[0]) and torch.equal(frames[1], keys[0])  # loop closed, morph begins
    assert torch.equal(frames[2], keys[1]) and torch.equal(frames[4], keys[4])
    assert not torch.allclose(frames[5], keys[4])  # last frame is one step before the loop closes


def test_negative_seeds_are_their_own_seeds(tiny_nets):
    G, _ = tiny_nets

    def loop(seed=0, move_seed=None, screen_seed=0):
        data = {"seed": seed, "keys": {"a": 1}, "screens": [{"seed": screen_seed}],
                "segments": [{"move": "noise-loop", "key": "a", "stops": 3, "frames": 2, "seed": move_seed}]}
        spec = parse_timeline(data)
        return build_timeline(spec, G, spec.screen_specs()[0]).latents(np.arange(6))

    for field in ("seed", "move_seed", "screen_seed"):
        plus, minus = loop(**{field: 1}), loop(**{field: -1})
        assert not torch.allclose(plus, minus), field  # -1 is not 1
        assert torch.equal(plus, loop(**{field: 1}))  # and each is reproducible


def test_in_memory_latents_are_keys(tiny_nets):
    G, _ = tiny_nets
    a, b = G.mapping(torch.randn(2, G.z_dim), None)
    spec = parse_timeline({"keys": {"a": a, "b": b}, "sequence": {"keys": ["a", "b"], "loop": True,
                                                                  "between": {"frames": 5}}})
    timeline = build_timeline(spec, G)
    assert timeline.num_frames == 10
    assert torch.equal(timeline.latents([0])[0], a) and torch.equal(timeline.latents([5])[0], b)
    assert spec.to_dict()["keys"] == {"a": "<latent in memory>", "b": "<latent in memory>"}
    with pytest.raises(UserError, match="does not fit"):
        bad = {"keys": {"a": torch.zeros(3, 3)}, "segments": [{"move": "hold", "key": "a"}]}
        build_timeline(parse_timeline(bad), G)


def test_iter_ws_covers_every_frame_in_batches(tiny_nets):
    G, _ = tiny_nets
    timeline = build_timeline(parse_timeline({"segments": [{"move": "interpolate", "keys": [1, 2], "frames": 10}],
                                              "end_frame": True}), G)
    batches = list(timeline.iter_ws(G, batch=4))
    assert [b.shape[0] for b in batches] == [4, 4, 3]
    assert torch.allclose(torch.cat(batches), timeline.ws(G, np.arange(11)))
    z_timeline = build_timeline(parse_timeline({"space": "z", "truncation": 0.5, "segments": [
        {"move": "interpolate", "keys": [1, 2], "frames": 10}], "end_frame": True}), G)
    ws = z_timeline.ws(G, np.array([0, 10]))
    want = G.mapping(z_timeline.latents(np.array([0, 10])), None, truncation_psi=0.5)
    assert torch.allclose(ws, want, atol=1e-5)


def test_screens_share_frame_counts_with_offsets_seeds_and_keys(tiny_nets, tmp_path):
    G, _ = tiny_nets
    save_latents(tmp_path / "other.npz", G.mapping(torch.randn(1, G.z_dim), None))
    data = dict(BALLAD, screens=[{}, {"offset": 45}, {"seed": 1}, {"keys": {"line3": "other.npz"}}])
    spec = parse_timeline(data, base_dir=tmp_path)
    base, shifted, reseeded, rekeyed = [build_timeline(spec, G, s) for s in spec.screen_specs()]
    n = base.num_frames
    assert shifted.num_frames == reseeded.num_frames == rekeyed.num_frames == n
    idx = np.array([0, 100, n - 45, n - 1])
    assert torch.equal(shifted.latents(idx), base.latents((idx + 45) % n))
    assert torch.equal(reseeded.latents([0]), base.latents([0]))  # same keys ...
    assert not torch.allclose(reseeded.latents([15]), base.latents([15]))  # ... other noise loops
    same = np.arange(0, 500)  # before line3's morph starts, the rekeyed screen is the same picture
    assert torch.equal(rekeyed.latents(same), base.latents(same))
    assert not torch.allclose(rekeyed.latents([720]), base.latents([720]))
    with_count = parse_timeline(dict(BALLAD, screens={"count": 7, "offset": 30}))
    assert [s.offset for s in with_count.screen_specs()] == [0, 30, 60, 90, 120, 150, 180]
    assert with_count.screen_specs()[6].name == "screen7"


@pytest.mark.parametrize("data,needle", [
    ({"segments": [{"move": "noise-loop", "key": 1, "stop": 7}]}, "unknown field(s) ['stop']"),
    ({"segments": [{"move": "wobble", "key": 1}]}, "move 'wobble'"),
    ({"segments": [], "sequence": {}}, "either `segments`"),
    ({"segments": [{"key": 1}]}, "needs `move:`"),
    ({"space": "q", "segments": [{"move": "hold", "key": 1}]}, "space"),
    ({"segments": [{"move": "hold", "key": 1}], "colour": 1}, "unknown field(s) ['colour']"),
    ({"sequence": {"keys": [1, 2], "between": {"move": "noise-loop"}}}, "between"),
    ({"segments": [{"move": "hold", "key": 1}], "screens": [{"name": "a"}, {"name": "a"}]}, "distinct names"),
    ({"segments": [{"move": "hold", "key": 1}], "screens": [{"name": "../x"}]}, "file names"),
])
def test_bad_timelines_name_the_field(data, needle):
    from latentstudio.config import ConfigError

    with pytest.raises(ConfigError) as exc:
        parse_timeline(data, "t.yaml")
    assert needle in str(exc.value) and "t.yaml" in str(exc.value)


def test_unresolvable_keys_are_user_errors(tiny_nets, tmp_path):
    G, _ = tiny_nets
    for segment, needle in [({"move": "noise-loop"}, "needs a key"),
                            ({"move": "noise-loop", "key": "nope.npz"}, "no such latent file"),
                            ({"move": "interpolate", "keys": [1]}, "two or more keys"),
                            ({"move": "noise-loop", "key": "0-3"}, "4 seeds")]:
        with pytest.raises(UserError, match=needle):
            build_timeline(parse_timeline({"segments": [segment]}, base_dir=tmp_path), G)
    (tmp_path / "broken.yaml").write_text("segments: [\n")
    with pytest.raises(UserError, match="broken.yaml: not valid YAML"):
        load_timeline_spec(tmp_path / "broken.yaml")


def test_documented_example_timelines_are_valid(tiny_nets, tmp_path):
    G, _ = tiny_nets
    files = sorted(DOCS.glob("*.yaml")) + sorted(DOCS.glob("*.json"))
    assert len(files) >= 3
    for path in files:
        spec = load_timeline_spec(path)  # parses and validates every move and screen
        assert spec.moves
        if "npz" not in path.read_text():  # seed-only examples resolve against any model
            timelines = [build_timeline(spec, G, s) for s in spec.screen_specs()]
            assert len({t.num_frames for t in timelines}) == 1


def test_yaml_in_walks_md_is_valid(tiny_nets):
    """Every ```yaml block of docs/walks.md parses and builds; a block without moves (the screens example) is
    checked on top of the timeline before it. Latent-file keys become seeds so the moves can be built."""
    G, _ = tiny_nets
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", WALKS_MD.read_text(), re.DOTALL)]
    assert len(blocks) >= 3
    base = None
    for data in blocks:
        full = "segments" in data or "sequence" in data
        base = data if full else base
        data = data if full else {**base, **data}
        seeded = {**data, "keys": {name: i + 1 for i, name in enumerate(data.get("keys", {}))}}
        spec = parse_timeline(seeded, "docs/walks.md")
        timelines = [build_timeline(spec, G, screen) for screen in spec.screen_specs()]
        assert len({t.num_frames for t in timelines}) == 1
        if data.get("sequence", {}).get("keys") == ["line1", "line2", "line3", "line4", "line5"]:
            assert timelines[0].num_frames == 1650  # the ballad's length, as the text says
