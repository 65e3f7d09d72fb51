"""Export a training snapshot as the built-in default model: the EMA generator only, with its full recipe in
the provenance (dataset command, training command, kimg, time, machine), plus the 64-seed grid for the README.

    .venv/bin/python scripts/export_default_model.py runs/default-smiles/snapshots/snapshot-... \
        --out src/latentstudio/assets/default_model --grid docs/images/default-model-grid.jpg

The export refuses a model that breaks the limits the default must keep: at most 25 MB on disk and at least
30 images/s at batch 8 on two CPU threads (it drives a live installation). The measured speed is recorded.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path

MAX_MB = 25.0
MIN_IMG_S = 30.0


def dataset_recipe(dataset_path: str | Path, images: int) -> str:
    """The `prepare` command that rebuilds the training set, from the dataset's own dataset.json."""
    meta = json.loads((Path(dataset_path) / "dataset.json").read_text())
    src = meta.get("source") or {}
    if "demo" not in src:
        raise SystemExit(f"{dataset_path}: not a built-in demo set; the default model must be reproducible offline")
    return (f"latentstudio prepare --demo {src['demo']} --out {dataset_path} --count {meta.get('count', images)} "
            f"--size {meta['resolution']} --seed {src.get('seed', 0)}")


def render_speed(G, batch: int = 8, threads: int = 2, seconds: float = 5.0) -> float:
    """Images/s of the inference path at `batch`, const noise, `threads` torch threads (wall clock)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            ws = G.mapping(torch.randn(batch, G.z_dim), None)
            for _ in range(3):
                G.synthesis(ws, noise_mode="const")
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                G.synthesis(ws, noise_mode="const")
                n += batch
            return n / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)


def write_grid(G, path: Path, count: int = 64, psi: float = 1.0) -> None:
    from latentstudio.render.generate import seeds_to_ws, synthesize
    from latentstudio.render.images import make_grid, tensor_to_pils

    seeds = list(range(count))
    pils = []
    for images in synthesize(G, seeds_to_ws(G, seeds, truncation_psi=psi), batch=16):
        pils.extend(tensor_to_pils(images))
    grid = make_grid(pils, [f"seed {s}" for s in seeds], cols=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        grid.convert("RGB").save(path, quality=90)
    else:
        grid.save(path)


def build_provenance(snap: Path, model, note: str, img_s: float, export_command: str) -> dict:
    train_prov = model.provenance
    state = json.loads((snap / "training_state.json").read_text())
    origin = state.get("origin", {})  # how the run began; a fine-tune's holds the base model's provenance
    dataset = train_prov.get("dataset") or {}
    prov = {
        "source": "latentstudio train (built-in default model)",
        "dataset_recipe": dataset_recipe(dataset["path"], dataset.get("images", 0)),
        "dataset": dataset,
        "command": train_prov.get("command"),
        "snapshot": snap.name,
        "kimg": train_prov.get("kimg"),
        "wall_time_s": train_prov.get("wall_time_s"),
        "wall_time_h": round(train_prov.get("wall_time_s", 0) / 3600, 2),
        "machine": train_prov.get("machine"),
        "augment": train_prov.get("augment"),
        "ada_p": train_prov.get("ada_p"),
        "training_config": state["config"],
        "render_img_s_batch8_2threads": round(img_s, 1),
        "exported": "EMA generator only (no discriminator, no training state)",
        "note": note,
    }
    return stack_on_base(prov, {**train_prov, **origin}, export_command)


def stack_on_base(prov: dict, train_prov: dict, export_command: str) -> dict:
    """A run fine-tuned from an earlier built-in model continues its training: kimg and wall time are the sum
    of both stages, the earlier model's whole provenance is kept, and its command list is extended."""
    base = train_prov.get("base_provenance") if train_prov.get("start") == "fine-tune" else None
    if not base or "kimg" not in base:
        return prov
    total_s = base.get("wall_time_s", 0) + (train_prov.get("wall_time_s") or 0)
    return {**prov, "kimg": round(base["kimg"] + prov["kimg"], 3), "kimg_this_stage": prov["kimg"],
            "wall_time_s": round(total_s, 1), "wall_time_h": round(total_s / 3600, 2),
            "commands": [*base.get("commands", []), train_prov.get("command"), export_command],
            "finetuned_from": train_prov.get("finetuned_from"), "base_provenance": base}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("snapshot")
    p.add_argument("--out", required=True)
    p.add_argument("--grid", default=None, help="write the 64-seed grid here (.jpg or .png)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi of the grid (default 1: no truncation)")
    p.add_argument("--note", default="", help="free text added to the provenance (e.g. the wall-clock caveats)")
    args = p.parse_args()

    from latentstudio.io.model_dir import load_model, save_model

    snap = Path(args.snapshot).resolve()
    model = load_model(snap, device="cpu")
    img_s = render_speed(model.G)
    if img_s < MIN_IMG_S:
        raise SystemExit(f"{snap}: renders {img_s:.1f} img/s at batch 8 on 2 threads; the default needs >= "
                         f"{MIN_IMG_S:g} (is the machine busy?)")
    prov = build_provenance(snap, model, args.note, img_s, shlex.join(["python", *sys.argv]))
    out = save_model(args.out, model.G, provenance=prov)
    size_mb = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) / 2**20
    if size_mb > MAX_MB:
        raise SystemExit(f"{out}: {size_mb:.1f} MB is over the {MAX_MB:g} MB limit of the built-in model")
    print(f"wrote {out} ({size_mb:.1f} MB, {img_s:.1f} img/s at batch 8 on 2 threads, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    if args.grid:
        write_grid(model.G, Path(args.grid), psi=args.trunc)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
