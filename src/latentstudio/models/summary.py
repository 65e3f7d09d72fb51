"""Model facts for `latentstudio info` and benchmarks: parameter counts and FLOPs per image."""

from __future__ import annotations

import torch


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def synthesis_flops(G) -> int:
    """FLOPs (2 x multiply-adds) of the matrix products and convolutions of one mapping + synthesis pass, per
    image, in NVIDIA's reference formulation (unfused modulation, upsampling as stride-2 transposed conv + FIR,
    literal upfirdn2d), so the number describes the network, not whichever fast path happens to run.

    Worked out from the layer shapes, so it is instant and needs no memory even at 1024 px (a counted forward
    pass takes seconds and gigabytes there); tests check it equals `counted_flops`, PyTorch's FlopCounterMode
    over that reference forward."""
    total = sum(2 * fc.in_features * fc.out_features for fc in _linears(G.mapping))
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        taps = block.resample_filter.numel()  # the 2D FIR filter's taps (4x4 for [1,3,3,1])
        for name in ("conv0", "conv1"):
            layer = getattr(block, name, None)
            if layer is not None:
                total += _synthesis_layer_flops(layer, taps)
        if getattr(block, "skip", None) is not None:  # resnet: 1x1 conv at the input size, then FIR upsampling
            o, i = block.skip.weight.shape[:2]
            total += 2 * o * i * (res // 2) ** 2 + 2 * o * taps * res**2
        if res > 4 and block.architecture == "skip":  # the running image's FIR upsampling
            total += 2 * G.img_channels * taps * res**2
        if getattr(block, "torgb", None) is not None:
            o, i, kh, kw = block.torgb.weight.shape
            total += 2 * block.torgb.affine.in_features * i + 2 * o * i * kh * kw * res**2
    return total


def _synthesis_layer_flops(layer, taps: int) -> int:
    o, i, kh, kw = layer.weight.shape
    r = layer.resolution
    flops = 2 * layer.affine.in_features * i + 2 * i * o  # styles (affine) and demodulation statistics
    if layer.up == 1:
        return flops + 2 * o * i * kh * kw * r * r
    # Transposed convolution over the input pixels, then the FIR filter at the output resolution.
    return flops + 2 * o * i * kh * kw * (r // layer.up) ** 2 + 2 * o * taps * r * r


def _linears(mapping):
    embed = [mapping.embed] if getattr(mapping, "embed", None) is not None else []
    return embed + [getattr(mapping, f"fc{i}") for i in range(mapping.num_layers)]


@torch.no_grad()
def counted_flops(G, batch: int = 1) -> int:
    """synthesis_flops measured: FlopCounterMode over a real mapping + reference synthesis forward."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(G.parameters()).device
    z = torch.randn([batch, G.z_dim], device=device)
    c = torch.zeros([batch, G.c_dim], device=device) if G.c_dim else None
    counter = FlopCounterMode(display=False)
    with counter:
        ws = G.mapping(z, c)
        G.synthesis(ws, noise_mode="const", fused_modconv=False, impl="ref")
    return counter.get_total_flops() // batch
