"""Import NVIDIA network pickles (stylegan2-ada-pytorch and TensorFlow StyleGAN2 / StyleGAN2-ADA).

Both formats are read with the restricted unpickler in `safe_pickle`: we take the stored weights and
constructor arguments as data and rebuild the networks with our own code, which shares NVIDIA's
parameterisation, so the imported model renders the same images as the original.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..errors import ModelFormatError
from ..models.config import (
    DBlockConfig,
    DiscriminatorConfig,
    DMappingConfig,
    EpilogueConfig,
    GeneratorConfig,
    MappingConfig,
    SynthesisConfig,
)
from ..models.discriminator import Discriminator
from ..models.generator import Generator
from .model_dir import check_state, save_model
from .safe_pickle import PersistentObject, TFNetwork, safe_load


def load_nvidia_pickle(path: str | Path) -> dict:
    """Read a .pkl and return {'G_ema': Generator, 'G': ..., 'D': ..., 'format': 'pytorch'|'tensorflow'}."""
    path = Path(path)
    data = safe_load(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        tf_G, tf_D, tf_Gs = data
        return {"format": "tensorflow", "G": _tf_generator(tf_G, path), "D": _tf_discriminator(tf_D, path),
                "G_ema": _tf_generator(tf_Gs, path)}
    if isinstance(data, TFNetwork):
        return {"format": "tensorflow", "G_ema": _tf_generator(data, path)}
    if isinstance(data, dict) and isinstance(data.get("G_ema"), PersistentObject):
        out = {"format": "pytorch", "G_ema": _pt_network(data["G_ema"], "Generator", path)}
        for key, kind in (("G", "Generator"), ("D", "Discriminator")):
            if isinstance(data.get(key), PersistentObject):
                out[key] = _pt_network(data[key], kind, path)
        kwargs = data.get("training_set_kwargs")
        if isinstance(kwargs, dict):
            out["training_set_kwargs"] = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool))}
        return out
    raise ModelFormatError(f"{path}: not a StyleGAN2 network pickle (expected a dict with G_ema, or TensorFlow "
                           "(G, D, Gs) networks)")


def import_nvidia_pickle(path: str | Path, out_dir: str | Path, provenance: dict | None = None) -> Path:
    """Convert a .pkl into a model directory (EMA generator, plus D and the raw G when present)."""
    nets = load_nvidia_pickle(path)
    prov = pickle_provenance(path, nets)
    prov.update(provenance or {})
    return save_model(out_dir, nets["G_ema"], D=nets.get("D"), G_train=nets.get("G"), provenance=prov)


def pickle_provenance(path: str | Path, nets: dict) -> dict:
    """Where an imported network came from: the pickle, its format, the training set when recorded, and the
    training length when the file keeps NVIDIA's snapshot name (network-snapshot-001100.pkl = 1100 kimg)."""
    name = Path(path).name
    prov = {"source": "nvidia-pickle", "pickle": name, "pickle_format": nets["format"]}
    m = re.search(r"network-snapshot-(\d+)", name)
    if m:
        prov["kimg"] = int(m.group(1))
    if "training_set_kwargs" in nets:
        prov["dataset"] = nets["training_set_kwargs"]
    return prov


# ---------------------------------------------------------------------------------------------- PyTorch


def _pt_network(obj: PersistentObject, kind: str, path: Path):
    if obj.class_name != kind:
        raise ModelFormatError(f"{path}: network class {obj.class_name!r} is not supported (StyleGAN2 {kind} "
                               "from stylegan2-ada-pytorch expected; StyleGAN3 pickles are not supported yet)")
    kwargs = dict(obj.state.get("_init_kwargs") or {})
    try:
        if kind == "Generator":
            net = Generator(_pt_generator_config(kwargs))
        else:
            net = Discriminator(_pt_discriminator_config(kwargs))
    except (ConfigError, TypeError) as exc:
        raise ModelFormatError(f"{path}: unsupported {kind} arguments ({exc})") from None
    tensors = {k: v for k, v in _collect_pt_tensors(obj).items() if not k.endswith("resample_filter")}
    check_state(net, tensors, f"{path} ({kind})")
    net.load_state_dict(tensors, strict=True)
    return net.eval().requires_grad_(False)


def _collect_pt_tensors(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (obj.state.get(group) or {}).items():
            if isinstance(value, torch.Tensor):
                out[prefix + name] = value.detach().to(torch.float32)
    for name, child in (obj.state.get("_modules") or {}).items():
        if isinstance(child, PersistentObject):
            out.update(_collect_pt_tensors(child, prefix + name + "."))
    return out


# Constructor arguments that only choose a memory layout (train.py --nhwc), not the numbers computed.
_PT_LAYOUT_ONLY = ("fp16_channels_last",)


def _sub(config_cls, data: dict | None, where: str):
    data = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(data or {}).items()
            if k not in _PT_LAYOUT_ONLY}
    return config_cls.from_dict(data, where=where)


def _pt_generator_config(kw: dict) -> GeneratorConfig:
    return GeneratorConfig(
        z_dim=kw["z_dim"], c_dim=kw.get("c_dim", 0), w_dim=kw["w_dim"], img_resolution=kw["img_resolution"],
        img_channels=kw.get("img_channels", 3),
        mapping=_sub(MappingConfig, kw.get("mapping_kwargs"), "mapping_kwargs"),
        synthesis=_sub(SynthesisConfig, kw.get("synthesis_kwargs"), "synthesis_kwargs"))


def _pt_discriminator_config(kw: dict) -> DiscriminatorConfig:
    nested = ("block_kwargs", "mapping_kwargs", "epilogue_kwargs", "class_name") + _PT_LAYOUT_ONLY
    top = {k: v for k, v in kw.items() if k not in nested}
    return DiscriminatorConfig(
        **top, block=_sub(DBlockConfig, kw.get("block_kwargs"), "block_kwargs"),
        mapping=_sub(DMappingConfig, kw.get("mapping_kwargs"), "mapping_kwargs"),
        epilogue=_sub(EpilogueConfig, kw.get("epilogue_kwargs"), "epilogue_kwargs"))


# ------------------------------------------------------------------------------------------- TensorFlow

# Static kwargs that do not change the architecture (training-time or runtime options).
_TF_IGNORED = {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning",
               "fused_modconv", "randomize_noise", "dlatent_avg_beta", "is_template_graph", "dtype"}


class _KwargReader:
    def __init__(self, kwargs: dict, path: Path):
        self.kwargs, self.path, self.known = dict(kwargs), path, set(_TF_IGNORED)

    def __call__(self, name, default=None, none=None):
        self.known.add(name)
        value = self.kwargs.get(name, default)
        return value if value is not None else none

    def check(self):
        unknown = sorted(set(self.kwargs) - self.known)
        if unknown:
            raise ModelFormatError(f"{self.path}: unsupported TensorFlow network option(s) {unknown}")


def _tf_params(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    params = {prefix + name: np.asarray(value) for name, value in net.variables}
    for name, comp in net.components.items():
        params.update(_tf_params(comp, prefix + name + "/"))
    return params


def _check_tf(net: TFNetwork, path: Path):
    if not isinstance(net.version, int) or net.version < 4:
        raise ModelFormatError(f"{path}: TensorFlow network version {net.version!r} is too old (need >= 4)")


def _tf_generator(net: TFNetwork, path: Path) -> Generator:
    _check_tf(net, path)
    kw = _KwargReader(net.static_kwargs, path)
    params = _tf_params(net)
    w_dim = kw("dlatent_size", 512)
    mapping = MappingConfig(
        num_layers=kw("mapping_layers", 8), activation=kw("mapping_nonlinearity", "lrelu"),
        lr_multiplier=kw("mapping_lrmul", 0.01), w_avg_beta=kw("w_avg_beta", 0.995, none=1),
        **_tf_mapping_widths(params, kw("label_fmaps"), kw("mapping_fmaps"), w_dim))
    synthesis = dict(
        channel_base=kw("fmap_base", 16384) * 2, channel_max=kw("fmap_max", 512),
        num_fp16_res=kw("num_fp16_res", 0), conv_clamp=kw("conv_clamp"), architecture=kw("architecture", "skip"),
        resample_filter=tuple(kw("resample_kernel", [1, 3, 3, 1])), use_noise=kw("use_noise", True),
        activation=kw("nonlinearity", "lrelu"))
    res = kw("resolution", 1024)
    gen = dict(z_dim=kw("latent_size", 512), c_dim=kw("label_size", 0), w_dim=w_dim,
               img_resolution=res, img_channels=kw("num_channels", 3))
    kw.check()
    if any(name.endswith("LabelConcat/weight") for name in params):
        raise ModelFormatError(f"{path}: a conditional model of the original TensorFlow StyleGAN2 (labels joined by "
                               "LabelConcat, without normalisation) is a different network; only StyleGAN2-ADA's "
                               "LabelEmbed conditioning is supported")
    for name, value in list(params.items()):
        m = re.fullmatch(r"(?:synthesis/)?ToRGB_lod(\d+)/(.*)", name)
        if m:  # progressive-growing layout: one ToRGB per level, only the last one is used
            r = res // 2 ** int(m.group(1))
            params[f"synthesis/{r}x{r}/ToRGB/{m.group(2)}"] = value
            synthesis["architecture"] = "orig"
    G = Generator(GeneratorConfig(**gen, mapping=mapping, synthesis=SynthesisConfig(**synthesis)))
    _populate(G, params, _tf_generator_name, path)
    return G.eval().requires_grad_(False)


def _tf_mapping_widths(params: dict, label_fmaps, mapping_fmaps, w_dim: int) -> dict:
    """The mapping's label-embedding and hidden widths, read from its weights. A pickle stores only the kwargs its
    run set and the unstored defaults differ: StyleGAN2-ADA embeds labels latent_size wide and its hidden layers
    are dlatent_size wide, TF StyleGAN2's hidden layers are 512 whatever dlatent_size is, and ours (those of
    stylegan2-ada-pytorch) are w_dim for both. None = w_dim, so the configs of w_dim-wide networks stay default."""
    def width(name, stored):
        value = params.get(f"mapping/{name}/weight")  # [in, out]; a missing one is reported by _populate
        return value.shape[1] if value is not None and value.ndim == 2 else stored

    # With one layer Dense0 is [in, w_dim] and the hidden width, unused, comes out as the default.
    embed, hidden = width("LabelEmbed", label_fmaps), width("Dense0", mapping_fmaps)
    return {"embed_features": None if embed == w_dim else embed, "layer_features": None if hidden == w_dim else hidden}


def _tf_generator_name(name: str):
    """Our parameter name -> (TF variable name, transform) for the generator."""
    if name == "mapping.w_avg":
        return "dlatent_avg", None
    m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
    if m:
        tf = "mapping/LabelEmbed" if m.group(1) == "embed" else f"mapping/Dense{m.group(2)}"
        return f"{tf}/{m.group(3)}", "T" if m.group(3) == "weight" else None
    if name == "synthesis.b4.const":
        return "synthesis/4x4/Const/const", "first"
    m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\.(.+)", name)
    if not m:
        return None
    res, layer, field = int(m.group(1)), m.group(2), m.group(3)
    scope = {"conv0": "Conv0_up", "conv1": "Conv1" if res > 4 else "Conv", "torgb": "ToRGB", "skip": "Skip"}[layer]
    base = f"synthesis/{res}x{res}/{scope}"
    if field == "noise_const":
        return f"synthesis/noise{int(math.log2(res)) * 2 - (5 if layer == 'conv0' else 4)}", "noise"
    if field == "weight":
        return f"{base}/weight", "conv_flip" if layer in ("conv0", "skip") else "conv"
    if field == "affine.weight":
        return f"{base}/mod_weight", "T"
    if field == "affine.bias":
        return f"{base}/mod_bias", "plus1"
    return f"{base}/{field}", None


def _tf_discriminator(net: TFNetwork, path: Path) -> Discriminator:
    _check_tf(net, path)
    kw = _KwargReader(net.static_kwargs, path)
    cfg = dict(
        c_dim=kw("label_size", 0), img_resolution=kw("resolution", 1024), img_channels=kw("num_channels", 3),
        architecture=kw("architecture", "resnet"), channel_base=kw("fmap_base", 16384) * 2,
        channel_max=kw("fmap_max", 512), num_fp16_res=kw("num_fp16_res", 0), conv_clamp=kw("conv_clamp"),
        cmap_dim=kw("mapping_fmaps"),
        block=DBlockConfig(activation=kw("nonlinearity", "lrelu"),
                           resample_filter=tuple(kw("resample_kernel", [1, 3, 3, 1])),
                           freeze_layers=kw("freeze_layers", 0)),
        mapping=DMappingConfig(num_layers=kw("mapping_layers", 0), embed_features=kw("mapping_fmaps"),
                               layer_features=kw("mapping_fmaps"), activation=kw("nonlinearity", "lrelu"),
                               lr_multiplier=kw("mapping_lrmul", 0.1)),
        # TF's D default group is 4 (pickles store only what a run set; NVIDIA's legacy.py reads a missing
        # value as None = the whole batch, which changes D's output for batches above 4).
        epilogue=EpilogueConfig(mbstd_group_size=kw("mbstd_group_size", 4),
                                mbstd_num_channels=kw("mbstd_num_features", 1),
                                activation=kw("nonlinearity", "lrelu")))
    kw.check()
    params = _tf_params(net)
    for name, value in list(params.items()):
        m = re.fullmatch(r"FromRGB_lod(\d+)/(.*)", name)
        if m:
            r = cfg["img_resolution"] // 2 ** int(m.group(1))
            params[f"{r}x{r}/FromRGB/{m.group(2)}"] = value
            cfg["architecture"] = "orig"
    D = Discriminator(DiscriminatorConfig(**cfg))
    _populate(D, params, _tf_discriminator_name, path)
    return D.eval().requires_grad_(False)


def _tf_discriminator_name(name: str):
    m = re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name)
    if m:
        res, layer, field = m.groups()
        scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[layer]
        return f"{res}x{res}/{scope}/{field}", "conv" if field == "weight" else None
    m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
    if m:
        tf = "LabelEmbed" if m.group(1) == "embed" else f"Mapping{m.group(2)}"
        return f"{tf}/{m.group(3)}", "T" if m.group(3) == "weight" else None
    m = re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name)
    if m:
        tf = {"conv": "4x4/Conv", "fc": "4x4/Dense0", "out": "Output"}[m.group(1)]
        transform = ("conv" if m.group(1) == "conv" else "T") if m.group(2) == "weight" else None
        return f"{tf}/{m.group(2)}", transform
    return None


_TRANSFORMS = {
    None: lambda a: a,
    "T": lambda a: a.transpose(),
    "conv": lambda a: a.transpose(3, 2, 0, 1),  # TF HWIO -> PyTorch OIHW
    "conv_flip": lambda a: a[::-1, ::-1].transpose(3, 2, 0, 1),  # TF's transposed conv flips the kernel
    "plus1": lambda a: a + 1,  # TF adds the affine bias init (1) at run time
    "first": lambda a: a[0],
    "noise": lambda a: a[0, 0],
}


def _populate(module: torch.nn.Module, params: dict, namer, path: Path) -> None:
    state = {}
    for name, ref in module.state_dict().items():
        found = namer(name)
        if found is None or found[0] not in params:
            tf_name = found[0] if found else "?"
            raise ModelFormatError(f"{path}: TensorFlow variable {tf_name!r} for {name} is missing")
        value = np.array(_TRANSFORMS[found[1]](params[found[0]]), dtype=np.float32)  # copy, keeps 0-d shape
        if tuple(value.shape) != tuple(ref.shape):
            raise ModelFormatError(f"{path}: TensorFlow variable {found[0]!r} has shape {list(value.shape)}, "
                                   f"expected {list(ref.shape)} for {name}")
        state[name] = torch.from_numpy(value)
    module.load_state_dict(state, strict=True)
