"""Image losses for projection and encoder training, all returning one value per image.

A loss is a sum of weighted terms written like `vgg+pixel` or `vgg+0.5*multiscale`:
- `vgg`: LPIPS-style VGG16 feature distance (features from `latentstudio.features`)
- `pixel`: mean squared error of pixels in [-1, 1]
- `multiscale`: pixel MSE summed over an image pyramid (full size, 1/2, 1/4, ... down to 8 px), which weighs
  the layout of an image more than its fine detail

Per-image values (never batch means) keep the images of a batch independent of each other: the projector sums
them, so each target gets exactly the gradient it would get alone.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from ..errors import UserError

TERM_NAMES = ("vgg", "pixel", "multiscale")


class PixelTerm(torch.nn.Module):
    name = "pixel"

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [images.to(torch.float32)]

    def distance(self, fa, fb) -> torch.Tensor:
        return (fa[0] - fb[0]).square().mean(dim=[1, 2, 3])


class MultiScalePixelTerm(torch.nn.Module):
    name = "multiscale"

    def __init__(self, min_side: int = 8):
        super().__init__()
        self.min_side = min_side

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images.to(torch.float32)
        out = [x]
        while x.shape[-1] // 2 >= self.min_side:
            x = F.avg_pool2d(x, 2)
            out.append(x)
        return out

    def distance(self, fa, fb) -> torch.Tensor:
        return sum((a - b).square().mean(dim=[1, 2, 3]) for a, b in zip(fa, fb, strict=True))


class PerceptualTerm(torch.nn.Module):
    """VGG16 distance; images larger than `max_side` are area-downsampled first (speed on CPUs)."""

    name = "vgg"

    def __init__(self, vgg, max_side: int | None = None):
        super().__init__()
        self.vgg, self.max_side = vgg, max_side

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.max_side is not None and images.shape[-1] > self.max_side:
            images = F.interpolate(images.to(torch.float32), size=(self.max_side, self.max_side), mode="area")
        return self.vgg(images)

    def distance(self, fa, fb) -> torch.Tensor:
        return self.vgg.distance(fa, fb)


class ImageLoss(torch.nn.Module):
    """Weighted sum of terms. `target_features(targets)` once, then `forward(images, feats)` -> [N]."""

    def __init__(self, terms: list[tuple[float, torch.nn.Module]], spec: str = ""):
        super().__init__()
        self.weights = [float(w) for w, _ in terms]
        self.terms = torch.nn.ModuleList([t for _, t in terms])
        self.spec = spec

    @property
    def vgg(self):
        """The VGG16 feature net of the `vgg` term, if there is one."""
        return next((t.vgg for t in self.terms if isinstance(t, PerceptualTerm)), None)

    @torch.no_grad()
    def target_features(self, targets: torch.Tensor) -> list[list[torch.Tensor]]:
        return [[f.detach() for f in term.features(targets)] for term in self.terms]

    def forward(self, images: torch.Tensor, target_feats) -> torch.Tensor:
        total = 0
        for w, term, tf in zip(self.weights, self.terms, target_feats, strict=True):
            total = total + w * term.distance(term.features(images), tf)
        return total

    def select(self, target_feats, index) -> list[list[torch.Tensor]]:
        """Target features of a subset of the targets (index: slice or index tensor)."""
        return [[f[index] for f in feats] for feats in target_feats]


def parse_loss_spec(spec: str) -> list[tuple[float, str]]:
    """'vgg+0.5*pixel' -> [(1.0, 'vgg'), (0.5, 'pixel')]."""
    terms = []
    for part in str(spec).replace(" ", "").split("+"):
        m = re.fullmatch(r"(?:(\d+(?:\.\d*)?(?:e-?\d+)?)\*)?([a-z]+)", part)
        if not m or m.group(2) not in TERM_NAMES:
            raise UserError(f"--loss {spec!r}: use terms {', '.join(TERM_NAMES)} joined by '+', each with an "
                            "optional weight, e.g. vgg+0.5*pixel")
        terms.append((float(m.group(1)) if m.group(1) else 1.0, m.group(2)))
    if len({name for _, name in terms}) != len(terms):
        raise UserError(f"--loss {spec!r}: each term at most once")
    return terms


def build_loss(spec: str = "vgg+pixel", features=None, vgg=None, perceptual_side: int | None = None,
               device="cpu") -> ImageLoss:
    """An ImageLoss from a spec. `features`: --features paths (default: bundled HED VGG16); `vgg`: an already
    loaded VGG16Features to reuse (the server keeps one)."""
    terms = []
    for weight, name in parse_loss_spec(spec):
        if name == "vgg":
            if vgg is None:
                from ..features import load_vgg16

                vgg = load_vgg16(features, device=device)
            terms.append((weight, PerceptualTerm(vgg, max_side=perceptual_side)))
        elif name == "pixel":
            terms.append((weight, PixelTerm()))
        else:
            terms.append((weight, MultiScalePixelTerm()))
    return ImageLoss(terms, spec=spec).to(device)
