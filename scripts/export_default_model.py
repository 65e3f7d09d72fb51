"""Export a training snapshot as the built-in default model: EMA generator only, with its recipe in the
provenance, plus the 64-seed grid for the README.

    .venv/bin/python scripts/export_default_model.py runs/default-smiles/snapshots/snapshot-... \
        --out src/latentstudio/assets/default_model --grid docs/images/default-model-grid.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATASET_RECIPE = "latentstudio prepare --demo smiles --out runs/data/smiles  (144 images, 128 px, seed 0)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("snapshot")
    p.add_argument("--out", required=True)
    p.add_argument("--grid", default=None)
    p.add_argument("--note", default="", help="free text added to the provenance")
    args = p.parse_args()

    from latentstudio.io.model_dir import load_model, save_model
    from latentstudio.render.images import make_grid, save_png, tensor_to_pils
    from latentstudio.render.generate import seeds_to_ws, synthesize

    snap = Path(args.snapshot).resolve()
    model = load_model(snap, device="cpu")
    train_prov = model.provenance
    state = json.loads((snap / "training_state.json").read_text())
    provenance = {
        "source": "latentstudio train (built-in default model)",
        "dataset_recipe": DATASET_RECIPE,
        "dataset": train_prov.get("dataset"),
        "command": train_prov.get("command"),
        "snapshot": snap.name,
        "kimg": train_prov.get("kimg"),
        "wall_time_s": train_prov.get("wall_time_s"),
        "wall_time_h": round(train_prov.get("wall_time_s", 0) / 3600, 2),
        "machine": train_prov.get("machine"),
        "augment": train_prov.get("augment"),
        "ada_p": train_prov.get("ada_p"),
        "training_config": state["config"],
        "exported": "EMA generator only (no discriminator, no training state)",
        "note": args.note,
    }
    out = save_model(args.out, model.G, provenance=provenance)
    size = sum(f.stat().st_size for f in Path(out).iterdir())
    print(f"wrote {out} ({size / 2**20:.1f} MB)")
    if args.grid:
        seeds = list(range(64))
        pils = []
        for images in synthesize(model.G, seeds_to_ws(model.G, seeds), batch=16):
            pils.extend(tensor_to_pils(images))
        save_png(make_grid(pils, [f"seed {s}" for s in seeds], cols=8), args.grid)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
