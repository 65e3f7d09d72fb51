"""Fine-tuning / transfer: networks from another model, fresh optimizer and counters, frozen D layers;
and the resume rules (same dataset = exact resume, a finished run does nothing, a model without D)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentstudio.io.model_dir import save_model
from latentstudio.training import train
from latentstudio.training.distributed import Dist
from latentstudio.training.loop import start

from .helpers import TinyDataset

OPTS = dict(preset="tiny", device="cpu", log=lambda *a: None, tick_kimg=0.016, snap=1, grid_seeds=4)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("base")
    last = train(TinyDataset(8, 16, seed=0), run_dir, kimg=0.016, **OPTS)
    return run_dir, last


def test_finetune_on_another_dataset(base_run, tmp_path):
    _, model = base_run
    other = TinyDataset(8, 16, seed=1)  # different images: transfer learning, not resume
    s, _, _ = start(other, tmp_path, "tiny", str(model), Dist(), {"freezed": 2}, lambda *a: None)
    assert s.progress.nimg == 0 and s.origin["start"] == "fine-tune"
    assert not s.opt_G.state and not s.opt_D.state  # fresh optimizers
    for name, t in load_file(str(model / "generator.safetensors")).items():
        assert torch.equal(s.G_ema.state_dict()[name], t)
    d_params = dict(s.D.named_parameters())
    frozen = ["b16.fromrgb.weight", "b16.conv0.weight"]  # the first two layers (image side)
    assert not any(n in d_params for n in frozen) and "b16.conv1.weight" in d_params

    last = train(other, tmp_path, resume=str(model), freezed=2, kimg=0.016, **OPTS)
    before = load_file(str(model / "discriminator.safetensors"))
    after = load_file(str(last / "discriminator.safetensors"))
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert not torch.equal(before["b16.conv1.weight"], after["b16.conv1.weight"])
    prov = json.loads((last / "config.json").read_text())["provenance"]
    assert prov["finetuned_from"] == str(model) and prov["kimg"] == 0.016


def test_same_dataset_resumes_and_finished_run_does_nothing(base_run, tmp_path):
    run_dir, last = base_run
    s, _, _ = start(TinyDataset(8, 16, seed=0), tmp_path, None, str(run_dir), Dist(), {}, lambda *a: None)
    assert s.progress.nimg == 16 and s.origin["resumed_from"] == str(last) and s.opt_G.state
    assert s.cfg.preset == "tiny"  # the run's own settings
    assert train(TinyDataset(8, 16, seed=0), run_dir, resume="latest", **OPTS) == last.resolve()


def test_finetune_from_a_generator_only_model(base_run, tmp_path):
    _, model = base_run
    from latentstudio.io.model_dir import load_model

    exported = Path(tmp_path) / "exported"
    save_model(exported, load_model(model, device="cpu").G)  # EMA generator only, like the built-in model
    with pytest.warns(UserWarning, match="no discriminator"):
        s, _, _ = start(TinyDataset(8, 16, seed=2), tmp_path / "run", "tiny", str(exported), Dist(), {},
                        lambda *a: None)
    assert s.progress.nimg == 0


def test_resolution_mismatch_is_a_user_error(base_run, tmp_path):
    from latentstudio.errors import UserError

    _, model = base_run
    with pytest.raises(UserError, match="--size 16"):
        start(TinyDataset(4, 32), tmp_path, "tiny", str(model), Dist(), {}, lambda *a: None)


def test_fresh_start_refuses_a_used_run_directory(base_run):
    from latentstudio.errors import UserError

    run_dir, _ = base_run
    with pytest.raises(UserError, match="--resume latest"):
        start(TinyDataset(8, 16, seed=0), run_dir, "tiny", None, Dist(), {}, lambda *a: None)


def test_d_warmup_trains_only_the_fresh_discriminator_first(base_run, tmp_path):
    _, model = base_run
    from latentstudio.io.model_dir import load_model

    exported = Path(tmp_path) / "exported"
    save_model(exported, load_model(model, device="cpu").G)
    source = load_file(str(exported / "generator.safetensors"))
    with pytest.warns(UserWarning, match="no discriminator"):
        train(TinyDataset(8, 16, seed=2), tmp_path / "run", resume=str(exported), kimg=0.032, d_warmup_kimg=0.016,
              keep=0, **OPTS)
    snaps = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert len(snaps) == 2
    weights = [n for n in source if not n.endswith("w_avg")]  # w_avg tracks the mapping's output, not a weight

    def same_as_source(snap, file):
        t = load_file(str(snap / file))
        return all(torch.equal(t[n], source[n]) for n in weights)

    assert same_as_source(snaps[0], "generator.safetensors")  # warm-up: G and its EMA untouched
    assert same_as_source(snaps[0], "generator_train.safetensors")
    assert not same_as_source(snaps[1], "generator_train.safetensors")  # after it, G trains
    assert json.loads((tmp_path / "run" / "training_config.json").read_text())["d_warmup_kimg"] == 0.016


def test_d_warmup_must_end_before_the_run(tmp_path):
    from latentstudio.errors import UserError

    with pytest.raises(UserError, match="--d-warmup"):
        train(TinyDataset(8, 16, seed=2), tmp_path / "run", kimg=0.016, d_warmup_kimg=0.016, **OPTS)
