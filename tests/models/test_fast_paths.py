"""The fast inference paths against the reference path they must reproduce (tiny shapes, float64 where the
ops allow it, so a wrong tap or offset shows up far above rounding)."""

import itertools

import pytest
import torch

from latentstudio.models import Generator, get_preset, inference, ops, synthesis, winograd
from latentstudio.models.inference import modulated_conv2d_inference, squared_weight_norms, transposed_weight
from latentstudio.models.layers import modulated_conv2d

from ..helpers import make_tiny


def test_upfirdn2d_fast_equals_reference_for_all_paddings_and_factors():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    for taps in ([1, 3, 3, 1], [2, 1, 3, 5, 1]):
        f = ops.setup_filter(taps).double()
        f = f + 0.01 * torch.randn_like(f)  # asymmetric, so a missing flip cannot cancel out
        pads = ([0, 0, 0, 0], [2, 1, 2, 1], [3, 2, 1, 0], [-1, 2, 0, -1])
        for up, down, flip, pad in itertools.product((1, 2, 3), (1, 2), (False, True), pads):
            if up > 1 and down > 1:
                continue  # not a fast path
            ref = ops.upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=1.7, impl="ref")
            fast = ops.upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=1.7)
            assert fast.shape == ref.shape
            torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,up,down,groups", [(3, 2, 1, 1), (3, 1, 2, 1), (1, 2, 1, 1), (1, 1, 2, 1), (3, 2, 1, 2),
                                              (3, 1, 1, 1)])
def test_conv2d_resample_fast_equals_reference(k, up, down, groups):
    torch.manual_seed(1)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, k, k, dtype=torch.float64)
    for flip in (True, False):
        kw = dict(f=f, up=up, down=down, padding=k // 2, groups=groups, flip_weight=flip)
        torch.testing.assert_close(ops.conv2d_resample(x, w, **kw), ops.conv2d_resample(x, w, impl="ref", **kw),
                                   rtol=1e-12, atol=1e-12)


def test_upconv_with_transposed_weight_and_bias():
    torch.manual_seed(2)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(1, 5, 6, 6, dtype=torch.float64)
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    b = torch.randn(7, dtype=torch.float64)
    ref = ops.conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False, impl="ref") + b.reshape(1, -1, 1, 1)
    got = ops.upconv2d_transposed_weight(x, w.transpose(0, 1).contiguous(), f, up=2, padding=1, bias=b)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


_EPILOGUES = [("lrelu", None, "const"), ("lrelu", 0.5, "random"), ("linear", None, None), ("relu", 0.5, "const")]
def test_transposed_conv_as_gemm_plus_col2im():
    torch.manual_seed(4)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 5, 4, 6, dtype=torch.float64)
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    b = torch.randn(7, dtype=torch.float64)
    w2 = w.permute(1, 2, 3, 0).reshape(5, -1).contiguous()
    xc = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ops.conv_transpose2d_gemm(xc, w2, 3, 3, 2),
                               torch.nn.functional.conv_transpose2d(x, w.transpose(0, 1), stride=2), rtol=0, atol=1e-12)
    ref = ops.conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False, impl="ref") + b.reshape(1, -1, 1, 1)
    torch.testing.assert_close(ops.upconv2d_gemm(xc, w2, f, bias=b), ref, rtol=1e-12, atol=1e-12)


def test_separable_taps_upsample_equals_2d_filter_with_gradients():
    torch.manual_seed(5)
    for taps in ([1, 3, 3, 1], [1, 2, 1], [2, 1, 3, 5, 1, 4]):
        t = ops.setup_filter(taps, separable=True).double()
        x = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
        ref = ops.upsample2d(x, torch.outer(t, t), impl="ref")
        for fast in (ops.upsample2d(x, t), ops.upsample2d(x.detach(), t), ops.upsample2d(x, t, impl="ref")):
            torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
        g = torch.randn_like(ref)
        torch.testing.assert_close(torch.autograd.grad(ops.upsample2d(x, t), x, g)[0],
                                   torch.autograd.grad(ref, x, g)[0], rtol=1e-12, atol=1e-12)


CASES = [(n, up, fold, *_EPILOGUES[i % len(_EPILOGUES)])
         for i, (n, up, fold) in enumerate(itertools.product((1, 3), (1, 2), (None, True, False)))]


@pytest.mark.parametrize("n,up,fold,act,clamp,noise_kind", CASES)
def test_modulated_conv2d_inference_equals_reference(n, up, fold, act, clamp, noise_kind, monkeypatch):
    if n == 3 and up == 2 and fold is None:  # also cover the GEMM transposed convolution and banded epilogue
        monkeypatch.setattr(inference, "GEMM_UPCONV_MIN_CHANNELS", 1)
        monkeypatch.setattr(inference, "EPILOGUE_BAND_BYTES", 64)
    torch.manual_seed(3)
    dt = torch.float64
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(n, 4, 5, 5, dtype=dt)
    weight = torch.randn(6, 4, 3, 3, dtype=dt)
    styles = torch.randn(n, 4, dtype=dt) + 1
    bias = torch.randn(6, dtype=dt)
    res = 5 * up
    noise = {"const": torch.randn(res, res, dtype=dt) * 0.3, "random": torch.randn(n, 1, res, res, dtype=dt),
             None: None}[noise_kind]
    gain, flip = 0.7 * ops.ACTIVATION_GAINS[act], up == 1
    ref = modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=1, resample_filter=f, flip_weight=flip,
                           fused_modconv=bool(fold), impl="ref")
    ref = ops.bias_act(ref, bias, act=act, gain=gain, clamp=clamp)
    got = modulated_conv2d_inference(x, weight, styles, bias, noise=noise, up=up, padding=1, resample_filter=f,
                                     flip_weight=flip, gain=gain, act=act, clamp=clamp, fold=fold)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n,up,fold", [(1, 1, True), (1, 2, True), (3, 1, False), (3, 2, False)])
def test_channels_last_inputs_get_their_weight_in_that_layout_once(n, up, fold):
    torch.manual_seed(4)
    dt = torch.float64
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(n, 4, 6, 6, dtype=dt).contiguous(memory_format=torch.channels_last)
    weight, styles, bias = torch.randn(5, 4, 3, 3, dtype=dt), torch.randn(n, 4, dtype=dt) + 1, torch.randn(5, dtype=dt)
    layer = torch.nn.Module()  # the cache owner, as a synthesis layer is
    ref = modulated_conv2d(x.contiguous(), weight, styles, up=up, padding=1, resample_filter=f, flip_weight=up == 1,
                           fused_modconv=fold, impl="ref")
    ref = ops.bias_act(ref, bias, act="lrelu", gain=1.0)
    for _ in range(2):  # the second call reuses the cached channels-last weight
        got = modulated_conv2d_inference(x, weight, styles, bias, up=up, padding=1, resample_filter=f,
                                         flip_weight=up == 1, act="lrelu", fold=fold, cache=layer)
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    cached_cl = [v[2] for k, v in vars(layer).items() if k.endswith("_cl")]
    # one cached weight in the input's layout whether the styles are folded into it per image (the multiply
    # then reads and writes memory in order) or scale the activations
    assert len(cached_cl) == 1
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in cached_cl)
    assert inference.weight_like(x, weight, layer, "_w_cl") is inference.weight_like(x, weight, layer, "_w_cl")
    assert inference.weight_like(x.contiguous(), weight) is weight  # NCHW input: the weight as it is


def _compare(G, ws, **kw):
    for mode in ("const", "none", "random"):
        torch.manual_seed(11)
        ref = G.synthesis(ws, noise_mode=mode, impl="ref", **kw)
        torch.manual_seed(11)
        fast = G.synthesis(ws, noise_mode=mode, **kw)
        assert fast.is_contiguous() and fast.shape == ref.shape
        assert (fast - ref).abs().max() < 2e-5 * ref.abs().max(), mode


@pytest.mark.parametrize("arch,channels", [("skip", 3), ("resnet", 3), ("orig", 1)])
@torch.no_grad()
def test_synthesis_fast_equals_reference(arch, channels):
    G, _ = make_tiny(resolution=32, img_channels=channels, architecture=arch)
    for n in (1, 3):
        _compare(G, G.mapping(torch.randn(n, G.z_dim), None, truncation_psi=0.8))
    _compare(G, G.mapping(torch.randn(2, G.z_dim), None), fused_modconv=True)
    _compare(G, G.mapping(torch.randn(2, G.z_dim), None), fused_modconv=False)


@torch.no_grad()
def test_chunked_channels_last_plan_equals_reference(monkeypatch):
    # Force the CPU plan's batch chunking and channels-last layout onto a tiny network.
    monkeypatch.setattr(synthesis, "CHUNK_BYTES", 16 * 16 * 16 * 4)
    monkeypatch.setattr(synthesis, "CHANNELS_LAST_MIN_RES", 8)
    for arch in ("skip", "resnet"):
        G, _ = make_tiny(resolution=32, architecture=arch)
        assert synthesis._chunk_plan([getattr(G.synthesis, f"b{r}") for r in G.synthesis.block_resolutions], 5)
        _compare(G, G.mapping(torch.randn(5, G.z_dim), None))


@pytest.mark.parametrize("n,k,layout,clamp", [(1, 1, "nchw", None), (3, 1, "nchw", 0.5), (3, 1, "channels_last", None),
                                                (2, 1, "sliced", None), (2, 3, "nchw", None)])
def test_torgb_inference_equals_per_sample_convolution(n, k, layout, clamp):
    torch.manual_seed(4)
    x = torch.randn(n, 5, 6, 7 if layout != "sliced" else 9, dtype=torch.float64)
    x = {"nchw": x, "channels_last": x.contiguous(memory_format=torch.channels_last), "sliced": x[..., 1:8]}[layout]
    weight, styles, bias = (torch.randn(3, 5, k, k, dtype=torch.float64), torch.randn(n, 5, dtype=torch.float64),
                            torch.randn(3, dtype=torch.float64))
    ref = torch.cat([torch.nn.functional.conv2d(x[i:i + 1], weight * styles[i].reshape(1, -1, 1, 1), bias,
                                                padding=0) for i in range(n)])
    ref = ref.clamp(-clamp, clamp) if clamp is not None else ref
    torch.testing.assert_close(inference.torgb_inference(x, weight, styles, bias, clamp), ref, rtol=1e-12, atol=1e-12)


@torch.no_grad()
def test_caches_follow_in_place_weight_updates():
    G, _ = make_tiny()
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    layer = G.synthesis.b16.conv0
    before_wsq, before_wt = squared_weight_norms(layer), transposed_weight(layer)
    assert squared_weight_norms(layer) is before_wsq  # cached while the weight is unchanged
    G.synthesis(ws)
    for p in G.parameters():
        p.mul_(1.1)
    assert not torch.equal(squared_weight_norms(layer), before_wsq)
    torch.testing.assert_close(transposed_weight(layer), layer.weight.transpose(0, 1))
    assert not torch.equal(transposed_weight(layer), before_wt)
    _compare(G, ws)
    G.load_state_dict(make_tiny(seed=7)[0].state_dict())
    torch.testing.assert_close(squared_weight_norms(layer), layer.weight.square().sum(dim=[2, 3]))
    _compare(G, ws)


@torch.no_grad()
def test_caches_follow_replaced_parameters():
    """A parameter replaced by another tensor object must not be served from the old one's cache entry, even
    when the new tensor has the same address, version and shape (freed memory reused) or shares the storage."""
    G, _ = make_tiny()
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    layer = G.synthesis.b16.conv0
    G.synthesis(ws)
    shape = layer.weight.shape
    for _ in range(3):  # fresh tensors of the same shape, the previous one dropped first (version 0 each time)
        layer.weight = None
        layer.weight = torch.nn.Parameter(torch.randn(shape), requires_grad=False)
        torch.testing.assert_close(squared_weight_norms(layer), layer.weight.square().sum(dim=[2, 3]))
        torch.testing.assert_close(transposed_weight(layer), layer.weight.transpose(0, 1))
        _compare(G, ws)
    # Same storage, pointer and version counter, other values (a view with the kernel transposed).
    old = layer.weight
    layer.weight = torch.nn.Parameter(old.detach().transpose(2, 3), requires_grad=False)
    assert layer.weight.data_ptr() == old.data_ptr() and layer.weight._version == old._version
    torch.testing.assert_close(transposed_weight(layer), layer.weight.transpose(0, 1))
    _compare(G, ws)
    # `.data =` keeps the Parameter object but not the storage.
    layer.weight.data = torch.randn(shape)
    torch.testing.assert_close(squared_weight_norms(layer), layer.weight.square().sum(dim=[2, 3]))
    _compare(G, ws)


def test_autograd_uses_the_reference_path_and_matches_it():
    G, _ = make_tiny()
    ws = G.mapping(torch.randn(2, G.z_dim), None).detach()
    grads = []
    for impl in ("auto", "ref"):
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, noise_mode="const", impl=impl).square().sum().backward()
        grads.append(w.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4 * grads[1].abs().max().item())
    G.requires_grad_(True)
    G.synthesis(ws, noise_mode="random").mean().backward()  # parameters require grad: no in-place errors
    assert G.synthesis.b32.conv1.weight.grad is not None


def test_fast_path_on_a_realistic_width():
    # cpu128's widths (256 channels at low resolution, wider than `tiny`): same images as the reference path.
    torch.manual_seed(0)
    G = Generator(get_preset("cpu128", resolution=16).generator).eval()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), None)
        _compare(G, ws)
        _compare(G, ws[:1])


def test_unknown_impl_is_refused():
    G, _ = make_tiny()
    with pytest.raises(ValueError, match="impl"):
        G.synthesis(torch.zeros(1, G.num_ws, G.w_dim), impl="fast")


def test_bench_reference_generator_computes_our_images(monkeypatch):
    """bench/generator.py's straightforward reference is only a fair baseline if it is the same network."""
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    bench = importlib.import_module("generator")
    G, _ = make_tiny(seed=5)
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(bench.reference_generator(G, z), G(z, noise_mode="const"), atol=1e-4, rtol=0)
        torch.testing.assert_close(bench.reference_generator(G, z[:1]), G(z[:1], noise_mode="const"), atol=1e-4,
                                   rtol=0)


@pytest.mark.parametrize("n,h,w,layout", [(1, 6, 8, torch.contiguous_format), (3, 4, 4, torch.channels_last),
                                          (2, 2, 10, torch.channels_last)])
def test_winograd_conv3x3_equals_the_direct_convolution(n, h, w, layout):
    torch.manual_seed(5)
    x = torch.randn(n, 5, h, w, dtype=torch.float64).contiguous(memory_format=layout)
    weight = torch.randn(7, 5, 3, 3, dtype=torch.float64)  # asymmetric: a flipped or shifted tap shows
    got = winograd.conv3x3(x, winograd.transform_weight(weight))
    torch.testing.assert_close(got, torch.nn.functional.conv2d(x, weight, padding=1), rtol=1e-11, atol=1e-11)


def test_winograd_applies_where_it_was_measured_faster():
    w512 = torch.empty(512, 512, 3, 3)
    assert winograd.applies(torch.empty(1, 512, 32, 32), w512, 1)
    assert winograd.applies(torch.empty(8, 512, 16, 16), w512, 1)
    assert not winograd.applies(torch.empty(8, 512, 32, 32), w512, 1)  # too many pixels
    w256 = torch.empty(256, 256, 3, 3)
    assert winograd.applies(torch.empty(1, 256, 64, 64), w256, 1)  # 256 channels: a middle band of pixels
    assert not winograd.applies(torch.empty(8, 256, 8, 8), w256, 1)  # too few pixels for 256 channels
    assert not winograd.applies(torch.empty(8, 256, 32, 32), w256, 1)  # too many
    assert not winograd.applies(torch.empty(1, 128, 64, 64), torch.empty(128, 128, 3, 3), 1)  # too few channels
    assert not winograd.applies(torch.empty(1, 512, 5, 5), w512, 1)  # odd size
    assert not winograd.applies(torch.empty(1, 512, 8, 8), torch.empty(512, 512, 1, 1), 0)
    assert not winograd.applies(torch.empty(1, 512, 8, 8, dtype=torch.float16), w512, 1)


@pytest.mark.parametrize("n", [1, 3])
def test_modulated_conv2d_inference_by_winograd_equals_reference(n, monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    calls = []
    conv = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *a: calls.append(1) or conv(*a))
    torch.manual_seed(4)
    dt = torch.float64
    x, weight = torch.randn(n, 4, 6, 6, dtype=dt), torch.randn(6, 4, 3, 3, dtype=dt)
    styles, bias, noise = torch.randn(n, 4, dtype=dt) + 1, torch.randn(6, dtype=dt), torch.randn(6, 6, dtype=dt)
    gain = 0.7 * ops.ACTIVATION_GAINS["lrelu"]
    ref = modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=False, impl="ref")
    ref = ops.bias_act(ref, bias, act="lrelu", gain=gain, clamp=0.5)
    cache = torch.nn.Module()
    for _ in range(2):  # the second call uses the cached transformed weight
        got = modulated_conv2d_inference(x, weight, styles, bias, noise=noise, padding=1, gain=gain, act="lrelu",
                                         clamp=0.5, cache=cache)
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    assert len(calls) == 2 and "_winograd" in cache.__dict__


def test_fast_path_with_winograd_layers():
    # paper256's 512-channel blocks up to 32 px take the Winograd path at batch 1 and 8: same images.
    torch.manual_seed(0)
    G = Generator(get_preset("paper256", resolution=32).generator).eval()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), None)
        _compare(G, ws[:1])
        _compare(G, ws)
