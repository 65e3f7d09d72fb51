"""StyleGAN2 training with adaptive discriminator augmentation: `train(dataset, run_dir, **options)`.

Modules: config (hyper-parameters), loss, augment (ADA pipeline), diffaugment, ada (p controller), ema,
data (deterministic data order), session (networks/optimizers/state), snapshots, distributed, loop, report,
curves.
"""

from .loop import train

__all__ = ["train"]
