"""StyleGAN2 training with adaptive discriminator augmentation: `train(dataset, run_dir, **options)`.

Modules: config (hyper-parameters), loss, augment (ADA pipeline), diffaugment, ada (p controller), ema,
data (deterministic data order), session (networks/optimizers/state), snapshots, distributed, loop, writer
(what a run writes, in a kill-safe order), report, curves.
"""

from .loop import train

__all__ = ["train"]
