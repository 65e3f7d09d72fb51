"""A training session: networks, optimizers, augmentation, loss and progress counters, and how to build one
fresh, from a snapshot (full resume) or from another model (fine-tuning / transfer learning)."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import torch

from ..errors import UserError
from ..io.model_dir import DISCRIMINATOR_FILE, GENERATOR_FILE, load_weights, read_config
from ..models import Discriminator, Generator
from ..models.config import Preset
from . import snapshots
from .ada import AdaController
from .augment import AugmentPipe
from .config import TrainConfig
from .diffaugment import DiffAugment
from .distributed import Dist
from .loss import StyleGAN2Loss


@dataclasses.dataclass
class Progress:
    step: int = 0
    nimg: int = 0
    tick: int = 0
    tick_start_nimg: int = 0
    train_seconds: float = 0.0

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


@dataclasses.dataclass
class Phase:
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int
    fn: object  # loss method: (real, c_real, z, c, gain) -> stats


@dataclasses.dataclass
class Session:
    cfg: TrainConfig
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    augment: torch.nn.Module | None
    ada: AdaController | None
    loss: StyleGAN2Loss
    dist: Dist
    progress: Progress
    origin: dict  # how the networks were obtained (fresh / resumed / fine-tuned), for provenance

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def phases(self) -> list[Phase]:
        lc = self.cfg.loss
        out = [Phase("Gmain", self.G, self.opt_G, 1, lambda r, cr, z, c, g: self.loss.generator_main(z, c, g))]
        if lc.pl_weight > 0:
            out.append(Phase("Gpl", self.G, self.opt_G, lc.pl_interval,
                             lambda r, cr, z, c, g: self.loss.generator_pl(z, c, g)))
        out.append(Phase("Dmain", self.D, self.opt_D, 1,
                         lambda r, cr, z, c, g: self.loss.discriminator_main(r, cr, z, c, g)))
        if lc.r1_gamma > 0:
            out.append(Phase("Dr1", self.D, self.opt_D, lc.r1_interval,
                             lambda r, cr, z, c, g: self.loss.discriminator_r1(r, cr, g)))
        return out


def make_optimizer(module, lr: float, betas, reg_interval: int | None) -> torch.optim.Adam:
    """Adam; with lazy regularisation every k steps, lr and betas are rescaled by k / (k + 1) so the
    optimizer's effective speed matches non-lazy training (StyleGAN2 paper, appendix B)."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=[b ** ratio for b in betas], eps=1e-8)


def make_augment(cfg: TrainConfig, device):
    a = cfg.augment
    if a.mode == "none":
        return None, None
    if a.mode == "diffaugment":
        return DiffAugment(a.diffaugment_policy).to(device), None
    pipe = AugmentPipe(a.pipe, p=a.fixed_p if a.fixed_p is not None else a.initial_p).to(device)
    return pipe, AdaController(pipe, a, cfg.batch, device)


def assemble(cfg: TrainConfig, G, D, G_ema, dist: Dist, progress: Progress, origin: dict) -> Session:
    lc = cfg.loss
    for net in (G, D, G_ema):
        net.to(dist.device)
    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    G_ema.eval().requires_grad_(False)
    opt_G = make_optimizer(G, cfg.lrate_g, cfg.betas, lc.pl_interval if lc.pl_weight > 0 else None)
    opt_D = make_optimizer(D, cfg.lrate_d, cfg.betas, lc.r1_interval if lc.r1_gamma > 0 else None)
    augment, ada = make_augment(cfg, dist.device)
    loss = StyleGAN2Loss(G, D, lc, augment=augment, ada=ada, all_mean=dist.all_mean if dist.enabled else None)
    return Session(cfg, G, D, G_ema, opt_G, opt_D, augment, ada, loss, dist, progress, origin)


def build_fresh(cfg: TrainConfig, preset: Preset, dist: Dist) -> Session:
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    G, D = Generator(preset.generator), Discriminator(preset.discriminator)
    G_ema = copy.deepcopy(G)
    seed_training_rng(cfg.seed, dist)
    return assemble(cfg, G, D, G_ema, dist, Progress(), {"start": "random-init"})


def seed_training_rng(seed: int, dist: Dist) -> None:
    """Different random streams per rank (z, noise, augmentation), reproducible from the seed."""
    torch.manual_seed(seed * 7919 + 1 + dist.rank)


def build_finetune(cfg: TrainConfig, preset: Preset, path: Path, dist: Dist) -> Session:
    """Networks from another model (directory or NVIDIA .pkl); fresh optimizers and counters (transfer
    learning). D's first `cfg.freezed` layers are frozen."""
    gcfg, dcfg, states, prov = load_source(path)
    if (gcfg.img_resolution, gcfg.img_channels) != (cfg.resolution, cfg.img_channels):
        raise UserError(f"--resume {path}: the model makes {gcfg.img_resolution} px images with "
                        f"{gcfg.img_channels} channel(s) but the dataset has {cfg.resolution} px with "
                        f"{cfg.img_channels}; re-run prepare with --size {gcfg.img_resolution}")
    if gcfg.c_dim != cfg.c_dim:
        raise UserError(f"--resume {path}: the model has {gcfg.c_dim} classes, the dataset {cfg.c_dim}")
    torch.manual_seed(cfg.seed)
    G_ema, G = Generator(gcfg), Generator(gcfg)
    G_ema.load_state_dict(states["G_ema"])
    G.load_state_dict(states["G"] if states.get("G") is not None else states["G_ema"])
    dcfg = dcfg or preset.discriminator
    dcfg = dcfg.replace(epilogue=dcfg.epilogue.replace(mbstd_group_size=cfg.mbstd_group),
                        block=dcfg.block.replace(freeze_layers=cfg.freezed))
    D = Discriminator(dcfg)  # frozen layers are buffers with the same names, so the weights load as-is
    if states.get("D") is not None:
        D.load_state_dict(states["D"])
    else:
        warnings.warn(f"{path} has no discriminator; fine-tuning starts with a fresh one", stacklevel=2)
    seed_training_rng(cfg.seed, dist)
    origin = {"start": "fine-tune", "finetuned_from": str(path), "base_provenance": prov}
    return assemble(cfg, G, D, G_ema, dist, Progress(), origin)


def load_source(path: Path):
    """(generator config, discriminator config or None, state dicts {G_ema, G, D}, provenance)."""
    if path.is_file() and path.suffix == ".pkl":
        from ..io.nvidia import load_nvidia_pickle

        nets = load_nvidia_pickle(path)
        G_ema = nets.get("G_ema") or nets["G"]
        D = nets.get("D")
        states = {"G_ema": G_ema.state_dict(), "G": nets["G"].state_dict() if "G" in nets else None,
                  "D": D.state_dict() if D is not None else None}
        return G_ema.config, D.config if D is not None else None, states, {"source": "nvidia-pickle"}
    mcfg, prov = read_config(path)
    G_ema = Generator(mcfg.generator)
    load_weights(G_ema, path / GENERATOR_FILE)
    G = Generator(mcfg.generator)
    has_G = snapshots.load_train_generator(G, path)
    D = None
    if mcfg.discriminator is not None and (path / DISCRIMINATOR_FILE).is_file():
        D = Discriminator(mcfg.discriminator)
        load_weights(D, path / DISCRIMINATOR_FILE)
    states = {"G_ema": G_ema.state_dict(), "G": G.state_dict() if has_G else None,
              "D": D.state_dict() if D is not None else None}
    return mcfg.generator, mcfg.discriminator if D is not None else None, states, prov


def build_resume(cfg: TrainConfig, path: Path, dist: Dist) -> Session:
    """Everything from a training snapshot: networks, optimizers, ADA, counters, RNG."""
    meta, tensors = snapshots.read_state(path)
    mcfg, _ = read_config(path)
    G, G_ema, D = Generator(mcfg.generator), Generator(mcfg.generator), Discriminator(mcfg.discriminator)
    load_weights(G_ema, path / GENERATOR_FILE)
    load_weights(D, path / DISCRIMINATOR_FILE)
    if not snapshots.load_train_generator(G, path):
        raise UserError(f"{path}: generator_train.safetensors is missing; cannot resume exactly")
    progress = Progress(**meta["progress"])
    origin = {**meta.get("origin", {}), "resumed_from": str(path)}  # "start" keeps how the run began
    s = assemble(cfg, G, D, G_ema, dist, progress, origin)
    restore_state(s, meta, tensors)
    return s


def capture_state(s: Session) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON-able dict, tensors) that `restore_state` turns back into this exact training state.
    Collective in distributed runs: every rank must call it."""
    t = {}
    t.update(snapshots.optimizer_tensors(s.opt_G, param_names(s.G), "opt_G"))
    t.update(snapshots.optimizer_tensors(s.opt_D, param_names(s.D), "opt_D"))
    if s.ada is not None:
        t.update(s.ada.state_tensors())
    t["loss/pl_mean"] = s.loss.pl_mean.detach().cpu().reshape(1)
    for r, state in enumerate(s.dist.gather(torch.get_rng_state())):
        t[f"rng/rank{r}/cpu"] = state
    if s.device.type == "cuda":
        for r, state in enumerate(s.dist.gather(torch.cuda.get_rng_state(s.device))):
            t[f"rng/rank{r}/cuda"] = state
    meta = {"format": snapshots.STATE_FORMAT, "config": s.cfg.to_dict(), "progress": dataclasses.asdict(s.progress),
            "world_size": s.dist.world_size, "origin": {k: v for k, v in s.origin.items() if k != "resumed_from"}}
    return meta, t


def restore_state(s: Session, meta: dict, t: dict[str, torch.Tensor]) -> None:
    snapshots.load_optimizer(s.opt_G, param_names(s.G), "opt_G", t)
    snapshots.load_optimizer(s.opt_D, param_names(s.D), "opt_D", t)
    if s.ada is not None and "ada/p" in t:
        s.ada.load_state_tensors({k: v.to(s.device) for k, v in t.items() if k.startswith("ada/")})
    s.loss.pl_mean.copy_(t["loss/pl_mean"].reshape([]))
    key = f"rng/rank{s.dist.rank}/cpu"
    if meta.get("world_size") == s.dist.world_size and key in t:
        torch.set_rng_state(t[key])
        if s.device.type == "cuda" and f"rng/rank{s.dist.rank}/cuda" in t:
            torch.cuda.set_rng_state(t[f"rng/rank{s.dist.rank}/cuda"], s.device)
    else:
        warnings.warn(f"the snapshot was written by {meta.get('world_size')} process(es), this run has "
                      f"{s.dist.world_size}: random streams are re-seeded (the run continues, not bit-exactly)",
                      stacklevel=2)
        seed_training_rng(s.cfg.seed + s.progress.step, s.dist)


def param_names(module: torch.nn.Module) -> list[str]:
    return [name for name, _ in module.named_parameters()]
