"""Benchmark: generator images/s on CPU (fp32) against a straightforward reference and a conv ceiling.

    .venv/bin/python bench/generator.py                    # full table (a few minutes on 2 cores)
    .venv/bin/python bench/generator.py --quick            # fewer repetitions, no 256 px paper rows
    .venv/bin/python bench/generator.py --only paper256 --batches 8 --reps 5

Rows: the default preset (`cpu128`) and the ADA paper's `paper256` architecture at 64/128/256 px, plus the
issue's 64 px config (channel_base 8192, channel_max 256), at batch 1 and 8. For each row, three things are
timed interleaved (so they share the machine's load) with the same weights and latents:

- ours: `G.mapping` + `G.synthesis` as shipped (inference path);
- ref: a straightforward implementation of the same network written below in NVIDIA's reference style
  (always-fused grouped modulated convolution, upsampling by zero insertion + full 4x4 FIR + convolution at
  the high resolution, i.e. conv2d_resample's generic fallback, separate bias/activation/gain ops); its
  images are checked against ours (max |diff| column);
- ceiling: plain `F.conv2d` over the network's convolution shapes at the same batch (upsampling layers as
  a 3x3 conv at their input resolution, which has the transposed convolution's multiply-adds), the best of
  whole-batch / per-image and NCHW / channels-last. A big matmul is timed too.

Achieved GFLOP/s = models.summary.synthesis_flops (per image) x images/s. Each repetition runs ours, ref and
the ceiling back to back; img/s columns give the best repetition (least disturbed by other work), speedup and
% of ceiling the median over repetitions of the ratio within each repetition, so they compare runs made under
the same load. On a shared machine use --clock cpu (process CPU time) with --threads 1: other processes then
barely move the numbers (with 2 threads, OpenMP's barriers stall whenever the other core is busy).
Targets (issue 2): ours >= 2x ref at 64 and 128 px; >= 85% of the conv ceiling at 256 px.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from latentstudio.models import Generator, get_preset
from latentstudio.models.summary import synthesis_flops


def configs(only: str | None, quick: bool):
    rows = []
    for res in (64, 128, 256):
        rows.append((f"cpu128 (default) @{res}", get_preset("cpu128", resolution=res).generator))
    for res in (64, 128, 256):
        if not (quick and res == 256):
            rows.append((f"paper256 arch @{res}", get_preset("paper256", resolution=res).generator))
    p = get_preset("paper256", resolution=64).generator
    rows.append(("issue 64px cb8192/cm256", p.replace(synthesis=p.synthesis.replace(channel_base=8192,
                                                                                     channel_max=256))))
    return [r for r in rows if only is None or only in r[0]]


# ----------------------------------------------------------------------------- straightforward reference


def _upfirdn_zero_insert(x, f, up, pad, gain):
    """Literal upfirdn2d: insert zeros, pad, convolve with the full 2D filter (one depthwise conv)."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, pad)
    k = (f * gain).flip([0, 1])[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, k, groups=c)


def _ref_layer(layer, x, w, noise_mode, gain=1.0):
    n, _, h, _ = x.shape
    styles = layer.affine(w)
    wmod = layer.weight[None] * styles[:, None, :, None, None]
    wmod = wmod * (wmod.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    wmod = wmod.reshape(-1, *wmod.shape[2:])
    x = x.reshape(1, -1, *x.shape[2:])
    if layer.up > 1:  # conv2d_resample's generic path: upsample the input, then convolve at the new size
        x = _upfirdn_zero_insert(x, layer.resample_filter, 2, [3, 2, 3, 2], 4.0)
        x = F.conv2d(x, wmod.flip([2, 3]), groups=n)
    else:
        x = F.conv2d(x, wmod, padding=1, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    if layer.use_noise and noise_mode == "const":
        x = x + layer.noise_const * layer.noise_strength
    x = x + layer.bias.reshape(1, -1, 1, 1)
    x = F.leaky_relu(x, 0.2) * (layer.act_gain * gain)
    return x.clamp(-layer.conv_clamp * gain, layer.conv_clamp * gain) if layer.conv_clamp is not None else x


def _ref_torgb(layer, x, w):
    n, c = x.shape[:2]
    styles = layer.affine(w) * layer.weight_gain
    wmod = (layer.weight[None] * styles[:, None, :, None, None]).reshape(-1, c, 1, 1)
    y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), wmod, groups=n).reshape(n, -1, *x.shape[2:])
    y = y + layer.bias.reshape(1, -1, 1, 1)
    return y.clamp(-layer.conv_clamp, layer.conv_clamp) if layer.conv_clamp is not None else y


@torch.no_grad()
def reference_synthesis(synthesis, ws, noise_mode="const"):
    """Skip-architecture synthesis in NVIDIA's reference style (see the module docstring)."""
    x = img = None
    w_idx = 0
    for res in synthesis.block_resolutions:
        block = getattr(synthesis, f"b{res}")
        if block.architecture != "skip":
            raise ValueError("the reference implementation covers the skip architecture only")
        cur = ws[:, w_idx:w_idx + block.num_conv + block.num_torgb].unbind(1)
        w_idx += block.num_conv
        if block.in_channels == 0:
            x = _ref_layer(block.conv1, block.const[None].repeat(ws.shape[0], 1, 1, 1), cur[0], noise_mode)
        else:
            x = _ref_layer(block.conv0, x, cur[0], noise_mode)
            x = _ref_layer(block.conv1, x, cur[1], noise_mode)
        if img is not None:
            img = _upfirdn_zero_insert(img, block.resample_filter, 2, [2, 1, 2, 1], 4.0)
        y = _ref_torgb(block.torgb, x, cur[block.num_conv])
        img = img + y if img is not None else y
    return img


# ----------------------------------------------------------------------------------------- conv ceiling


def conv_shapes(synthesis, n):
    """(input shape, weight shape, padding, flops) of every convolution of the synthesis network."""
    shapes = []
    for res in synthesis.block_resolutions:
        block = getattr(synthesis, f"b{res}")
        for name in ("conv0", "conv1", "torgb"):
            layer = getattr(block, name, None)
            if layer is None:
                continue
            o, i, k, _ = layer.weight.shape
            r = res // 2 if getattr(layer, "up", 1) > 1 else res
            shapes.append(((n, i, r, r), (o, i, k, k), k // 2, 2 * n * o * i * k * k * r * r))
    return shapes


class ConvCeiling:
    """Plain F.conv2d over the network's conv shapes, best layout / batching; inputs made once."""

    def __init__(self, synthesis, n):
        self.shapes = conv_shapes(synthesis, n)
        self.flops = sum(s[3] for s in self.shapes)
        self.variants = {}
        for cl in (False, True):
            fmt = torch.channels_last if cl else torch.contiguous_format
            tensors = [(torch.randn(xs).contiguous(memory_format=fmt), torch.randn(ws).contiguous(memory_format=fmt),
                        p) for xs, ws, p, _ in self.shapes]
            self.variants[f"{'nhwc' if cl else 'nchw'} batch"] = self._run_batch(tensors)
            if n > 1:
                self.variants[f"{'nhwc' if cl else 'nchw'} per-image"] = self._run_split(tensors, n)

    @staticmethod
    def _run_batch(tensors):
        return lambda: [F.conv2d(x, w, padding=p) for x, w, p in tensors]

    @staticmethod
    def _run_split(tensors, n):
        return lambda: [F.conv2d(x[i:i + 1], w, padding=p) for x, w, p in tensors for i in range(n)]


def matmul_gflops(size=2048, reps=5):
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * size**3 / best / 1e9


# ------------------------------------------------------------------------------------------------- timing


def _timed(fn, clock=time.perf_counter) -> float:
    t = clock()
    fn()
    return clock() - t


@torch.no_grad()
def bench_row(name, cfg, batch, reps, clock=time.perf_counter):
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():  # non-trivial noise strengths and biases, as in a trained network
        for pname, p in G.named_parameters():
            if pname.endswith(("noise_strength", "bias")) and "affine" not in pname:
                p.add_(torch.randn_like(p) * 0.1)
    z = torch.randn(batch, G.z_dim)
    flops = synthesis_flops(G)
    ceiling = ConvCeiling(G.synthesis, batch)
    ours = lambda: G.synthesis(G.mapping(z, None), noise_mode="const")
    ref = lambda: reference_synthesis(G.synthesis, G.mapping(z, None), noise_mode="const")
    diff = (ours() - ref()).abs().max().item()
    fns = {"ours": ours, "ref": ref, **{f"ceil {k}": v for k, v in ceiling.variants.items()}}
    times = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (oneDNN primitive creation, allocator)
        fn()
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(_timed(fn, clock))
    best = {k: min(v) for k, v in times.items()}
    ceil_keys = [k for k in best if k.startswith("ceil")]
    ceil_key = min(ceil_keys, key=best.get)
    ceil_per_rep = [min(times[k][i] for k in ceil_keys) for i in range(reps)]
    speedup = statistics.median(r / o for r, o in zip(times["ref"], times["ours"], strict=True))
    pct = statistics.median(flops * batch / o / (ceiling.flops / c) for o, c in zip(times["ours"], ceil_per_rep,
                                                                                     strict=True))
    return dict(name=name, res=cfg.img_resolution, batch=batch, ours=batch / best["ours"],
                ours_median=batch / statistics.median(times["ours"]), ref=batch / best["ref"], speedup=speedup,
                gflop=flops / 1e9, achieved=flops * batch / best["ours"] / 1e9,
                ceiling=ceiling.flops / best[ceil_key] / 1e9, ceil_kind=ceil_key[5:], pct=pct, diff=diff)


def print_table(rows, out=sys.stdout):
    head = (f"{'config':26s} {'batch':>5s} {'ours img/s':>10s} {'(median)':>9s} {'ref img/s':>9s} {'speedup':>7s} "
            f"{'GFLOP/img':>9s} {'GFLOP/s':>7s} {'ceiling':>7s} {'%ceil':>6s} {'ceiling kind':>17s} {'max|diff|':>9s}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        print(f"{r['name']:26s} {r['batch']:5d} {r['ours']:10.2f} {r['ours_median']:9.2f} {r['ref']:9.2f} "
              f"{r['speedup']:6.2f}x {r['gflop']:9.2f} {r['achieved']:7.1f} {r['ceiling']:7.1f} {r['pct']:6.0%} "
              f"{r['ceil_kind']:>17s} {r['diff']:9.1e}", file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repetitions, no 256 px paper rows")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per row (default 3, quick 2)")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--only", default=None, help="run the rows whose name contains this text")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: elapsed time; cpu: process CPU time (robust on a shared machine with --threads 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    reps = args.reps or (2 if args.quick else 3)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {args.threads} threads, fp32, CPU, {args.clock} clock, {reps} repetitions; "
          f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    rows = []
    for name, cfg in configs(args.only, args.quick):
        for batch in (int(b) for b in args.batches.split(",")):
            rows.append(bench_row(name, cfg, batch, reps, clock))
            r = rows[-1]
            print(f"  {name} batch {batch}: ours {r['ours']:.2f} img/s, ref {r['ref']:.2f} img/s, "
                  f"{r['pct']:.0%} of ceiling", flush=True)
    mm = matmul_gflops()
    load1 = os.getloadavg()
    print()
    print_table(rows)
    print(f"\nmatmul 2048^3: {mm:.1f} GFLOP/s; load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          f"(the machine is shared: compare ratios within a row, not absolute numbers across runs)")


if __name__ == "__main__":
    main()
