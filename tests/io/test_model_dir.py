"""The model directory format: bit-exact round trip, atomic writes, clear errors."""

import json

import pytest
import torch

from latentstudio.errors import ModelFormatError, UserError
from latentstudio.io.model_dir import load_model, save_model
from latentstudio.io.weights import fetch, sha256_file

from ..helpers import make_tiny


def test_save_load_bit_exact(tmp_path):
    G, D = make_tiny(seed=1, c_dim=2)
    save_model(tmp_path / "m", G, D=D, provenance={"dataset": "smiles", "kimg": 12})
    model = load_model(tmp_path / "m", device="cpu", with_discriminator=True)
    for a, b in ((G, model.G), (D, model.D)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    z = torch.randn(2, G.z_dim)
    c = torch.eye(2)
    assert torch.equal(G(z, c), model.G(z, c))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["arch"] == "stylegan2"
    assert cfg["provenance"] == {"dataset": "smiles", "kimg": 12} and "package_version" in cfg
    assert model.config.generator == G.config


def test_save_replaces_atomically(tmp_path):
    G, _ = make_tiny(seed=1)
    save_model(tmp_path / "m", G)
    G2, _ = make_tiny(seed=2)
    save_model(tmp_path / "m", G2)
    assert torch.equal(load_model(tmp_path / "m", "cpu").G.mapping.fc0.weight, G2.mapping.fc0.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp or .old directories left behind


def test_failed_save_leaves_previous_model(tmp_path):
    G, _ = make_tiny(seed=1)
    save_model(tmp_path / "m", G)
    with pytest.raises(TypeError):
        save_model(tmp_path / "m", G, extra_files={"x": "not bytes"})
    assert load_model(tmp_path / "m", "cpu").G.config == G.config
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.mark.parametrize("corrupt,message", [
    (lambda d: (d / "config.json").unlink(), "config.json: missing"),
    (lambda d: (d / "config.json").write_text("{oops"), "not valid JSON"),
    (lambda d: _edit(d, format_version=99), "format_version 99 is not supported"),
    (lambda d: _edit(d, arch="stylegan3"), "arch 'stylegan3'"),
    (lambda d: _edit_cfg(d, lambda c: c["generator"].update(z_dimm=3)), "unknown field"),
    (lambda d: _edit_cfg(d, lambda c: c["generator"].update(w_dim=16)), "has shape"),
    (lambda d: (d / "generator.safetensors").write_bytes(b"garbage"), "not a readable safetensors"),
    (lambda d: (d / "generator.safetensors").unlink(), "generator.safetensors: missing"),
])
def test_load_errors_name_file_and_problem(tmp_path, corrupt, message):
    G, _ = make_tiny()
    d = save_model(tmp_path / "m", G)
    corrupt(d)
    with pytest.raises(ModelFormatError, match=message):
        load_model(d, "cpu")


def test_missing_directory_and_pkl_hint(tmp_path):
    with pytest.raises(ModelFormatError, match="no such model directory"):
        load_model(tmp_path / "nope", "cpu")


def _edit(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


def _edit_cfg(d, fn):
    cfg = json.loads((d / "config.json").read_text())
    fn(cfg["config"])
    (d / "config.json").write_text(json.dumps(cfg))


def test_fetch_local_override_and_checksum(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    digest = sha256_file(f)
    assert fetch("https://example.invalid/w.bin", sha256=digest, local_path=f) == f
    with pytest.raises(UserError, match="does not match"):
        fetch("https://example.invalid/w.bin", sha256="0" * 64, local_path=f)
    with pytest.raises(UserError, match="offline"):
        fetch("http://127.0.0.1:9/w.bin", cache_dir=tmp_path / "cache", timeout=2, progress=False)
    assert not list((tmp_path / "cache").glob("*"))  # no partial download left behind


def test_fetch_downloads_and_verifies(tmp_path):
    import http.server
    import threading

    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "w.bin").write_bytes(b"abc" * 1000)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "srv"), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/w.bin"
        digest = sha256_file(tmp_path / "srv" / "w.bin")
        path = fetch(url, sha256=digest, cache_dir=tmp_path / "cache", progress=False)
        assert path.read_bytes() == b"abc" * 1000
        assert fetch(url, sha256=digest, cache_dir=tmp_path / "cache", progress=False) == path  # cached
    finally:
        server.shutdown()
