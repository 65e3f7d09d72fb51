"""`latentstudio import`: convert an NVIDIA network pickle into a model directory, safely."""

from __future__ import annotations

from .common import add_command


def register(sub) -> None:
    p = add_command(sub, "import", "convert an NVIDIA StyleGAN2(-ADA) .pkl (PyTorch or TensorFlow) to a model "
                    "directory without executing anything stored in the pickle",
                    "latentstudio import network-snapshot-001000.pkl --out models/paintings")
    p.add_argument("pickle", metavar="NETWORK.pkl", help="path or https URL of the network pickle")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--sha256", default=None, help="expected SHA-256 when NETWORK is a URL")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.nvidia import import_nvidia_pickle
    from ..io.registry import resolve_model_path

    source = resolve_model_path(args.pickle, sha256=args.sha256)
    out = import_nvidia_pickle(source, args.out)
    print(f"imported {source} -> {out}")
    return 0
