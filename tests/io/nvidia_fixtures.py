"""Write network pickles laid out exactly like NVIDIA's, from our own networks, without their code.

PyTorch (stylegan2-ada-pytorch): a dict {G, D, G_ema, augment_pipe, training_set_kwargs} whose networks are
`torch_utils.persistence` objects: reduce -> _reconstruct_persistent_obj(meta) with meta = {type, version,
module_src, class_name, state=<the module's __dict__>}. The state holds _parameters, _buffers, _modules and
_init_kwargs.

TensorFlow (StyleGAN2 / StyleGAN2-ADA): a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects whose
pickled state is {version, name, static_kwargs, components, build_module_src, build_func_name, variables}
with TF variable names and layouts (HWIO kernels, [in, out] dense weights, mod_bias stored minus 1, ...).
The TF names below are written out independently of the importer's own mapping.
"""

from __future__ import annotations

import collections
import contextlib
import math
import pickle
import sys
import types

import numpy as np

EVIL_SOURCE = "import pathlib\npathlib.Path({marker!r}).write_text('module_src was executed')\n"


@contextlib.contextmanager
def fake_modules(*names):
    """Temporarily register empty modules so pickle can reference globals by these module names."""
    added = {}
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub not in sys.modules:
                added[sub] = sys.modules[sub] = types.ModuleType(sub)
    try:
        yield {n: sys.modules[n] for n in names}
    finally:
        for sub in added:
            sys.modules.pop(sub, None)


# ------------------------------------------------------------------------------------------------ PyTorch


def _persistent_state(module, init_kwargs=None):
    state = {"training": False, "_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(),
             "_non_persistent_buffers_set": set(), "_modules": collections.OrderedDict()}
    for name, p in module._parameters.items():
        state["_parameters"][name] = p
    for name, b in module._buffers.items():
        # NVIDIA's modules have resample_filter (persistent there); our other non-persistent helper buffers
        # (e.g. resample_taps) do not exist in their pickles.
        if name in module._non_persistent_buffers_set and name != "resample_filter":
            continue
        state["_buffers"][name] = b
    for name, child in module._modules.items():
        state["_modules"][name] = child
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs or {}
    return state


def write_pytorch_pickle(path, G, D, G_raw=None, marker="/nonexistent/marker", train_py_kwargs=False,
                         nhwc=False):
    """Pickle G/D the way stylegan2-ada-pytorch's training loop does (network-snapshot-*.pkl).

    train_py_kwargs: store the constructor arguments as their train.py does (dnnlib.util.EasyDict, only what
    differs from the networks' defaults) instead of every field; nhwc: as train.py --nhwc, which adds
    fp16_channels_last=True to the synthesis and D block kwargs."""
    import torch

    with fake_modules("torch_utils.persistence", "dnnlib.util") as mods:
        persistence = mods["torch_utils.persistence"]
        easydict = _fake_easydict(mods["dnnlib.util"]) if train_py_kwargs else dict

        def _reconstruct_persistent_obj(meta):  # never called by the safe importer
            raise AssertionError("reconstruct must not run")

        _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
        _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
        persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
        src = EVIL_SOURCE.format(marker=str(marker))

        class Persistent:
            def __init__(self, module, class_name, init_kwargs=None):
                self.meta = dict(type="class", version=6, module_src=src, class_name=class_name,
                                 state=_persistent_state(module, init_kwargs))
                self.meta["state"]["_modules"] = collections.OrderedDict(
                    (k, Persistent(v, type(v).__name__)) for k, v in module._modules.items())

            def __reduce__(self):
                return (_reconstruct_persistent_obj, (self.meta,))

        g_kwargs, d_kwargs = _g_kwargs(G, easydict, nhwc), _d_kwargs(D, easydict, nhwc)
        data = dict(G=Persistent(G_raw or G, "Generator", g_kwargs), D=Persistent(D, "Discriminator", d_kwargs),
                    G_ema=Persistent(G, "Generator", g_kwargs), augment_pipe=None,
                    training_set_kwargs=easydict(path="paintings.zip", resolution=G.img_resolution, xflip=True))
        with torch.no_grad(), open(path, "wb") as f:
            pickle.dump(data, f)
    return path


def _fake_easydict(module):
    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    module.EasyDict = EasyDict
    return EasyDict


def _changed(values: dict, defaults: dict, easydict) -> dict:
    """The fields train.py would have set: those that differ from the defaults (every field for easydict=dict)."""
    if easydict is dict:
        return dict(values)
    return easydict({k: v for k, v in values.items() if v != defaults.get(k)})


def _g_kwargs(G, easydict=dict, nhwc=False):
    from latentstudio.models.config import MappingConfig, SynthesisConfig

    cfg = G.config.to_dict()
    synthesis = _changed(cfg["synthesis"], SynthesisConfig().to_dict(), easydict)
    if nhwc:
        synthesis["fp16_channels_last"] = True
    return easydict(z_dim=cfg["z_dim"], c_dim=cfg["c_dim"], w_dim=cfg["w_dim"], img_resolution=cfg["img_resolution"],
                    img_channels=cfg["img_channels"], synthesis_kwargs=synthesis,
                    mapping_kwargs=_changed(cfg["mapping"], MappingConfig().to_dict(), easydict))


def _d_kwargs(D, easydict=dict, nhwc=False):
    from latentstudio.models.config import DBlockConfig, DiscriminatorConfig, DMappingConfig, EpilogueConfig

    cfg = D.config.to_dict()
    top = {k: v for k, v in cfg.items() if k not in ("block", "mapping", "epilogue")}
    out = _changed(top, DiscriminatorConfig().to_dict(), easydict)
    out.update(c_dim=cfg["c_dim"], img_resolution=cfg["img_resolution"], img_channels=cfg["img_channels"])
    block = _changed(cfg["block"], DBlockConfig().to_dict(), easydict)
    if nhwc:
        block["fp16_channels_last"] = True
    out.update(block_kwargs=block, mapping_kwargs=_changed(cfg["mapping"], DMappingConfig().to_dict(), easydict),
               epilogue_kwargs=_changed(cfg["epilogue"], EpilogueConfig().to_dict(), easydict))
    return out


# --------------------------------------------------------------------------------------------- TensorFlow


def _hwio(a):
    return a.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _numpy_state(net):
    return {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}


def tf_generator_variables(G, lod=False):
    """Our generator's weights under TF StyleGAN2(-ADA) names and layouts: (mapping, synthesis) variables.
    lod=True (orig architecture): the output layer as `ToRGB_lod0`, with an unused `ToRGB_lod1` beside it."""
    sd = _numpy_state(G)
    mapping = {"dlatent_avg": sd["mapping.w_avg"]}
    if G.c_dim:
        mapping["LabelEmbed/weight"] = sd["mapping.embed.weight"].T
        mapping["LabelEmbed/bias"] = sd["mapping.embed.bias"]
    for i in range(G.mapping.num_layers):
        mapping[f"Dense{i}/weight"] = sd[f"mapping.fc{i}.weight"].T
        mapping[f"Dense{i}/bias"] = sd[f"mapping.fc{i}.bias"]
    synth = {"4x4/Const/const": sd["synthesis.b4.const"][None]}
    for res in G.synthesis.block_resolutions:
        layers = [("conv1", "Conv" if res == 4 else "Conv1")] + ([("conv0", "Conv0_up")] if res > 4 else [])
        if f"synthesis.b{res}.torgb.weight" in sd:
            layers.append(("torgb", "ToRGB"))
        for ours, tf in layers:
            p = f"synthesis.b{res}.{ours}"
            scope = "ToRGB_lod0" if lod and ours == "torgb" else f"{res}x{res}/{tf}"
            kernel = _hwio(sd[f"{p}.weight"])
            synth[f"{scope}/weight"] = kernel[::-1, ::-1] if tf == "Conv0_up" else kernel  # TF's conv_transpose
            synth[f"{scope}/bias"] = sd[f"{p}.bias"]
            synth[f"{scope}/mod_weight"] = sd[f"{p}.affine.weight"].T
            synth[f"{scope}/mod_bias"] = sd[f"{p}.affine.bias"] - 1  # TF adds the bias init at run time
            if ours != "torgb":
                synth[f"{scope}/noise_strength"] = sd[f"{p}.noise_strength"]
                idx = int(math.log2(res)) * 2 - (5 if ours == "conv0" else 4)
                synth[f"noise{idx}"] = sd[f"{p}.noise_const"][None, None]
        if f"synthesis.b{res}.skip.weight" in sd:  # resnet: bias-free 1x1 transposed conv
            synth[f"{res}x{res}/Skip/weight"] = _hwio(sd[f"synthesis.b{res}.skip.weight"])[::-1, ::-1]
    if lod:  # a progressive-growing leftover for a lower level: must be ignored
        synth.update({k.replace("_lod0/", "_lod1/"): np.full_like(v, 7.0) for k, v in list(synth.items())
                      if k.startswith("ToRGB_lod0/")})
    return mapping, synth


def tf_discriminator_variables(D, lod=False):
    """Our discriminator's weights under TF names; lod=True (orig): the input layer as `FromRGB_lod0`."""
    sd = _numpy_state(D)
    out = {}
    for res in D.block_resolutions + [4]:
        for ours, tf in (("fromrgb", "FromRGB"), ("conv0", "Conv0"), ("conv1", "Conv1_down"), ("skip", "Skip")):
            if f"b{res}.{ours}.weight" in sd:
                scope = "FromRGB_lod0" if lod and ours == "fromrgb" else f"{res}x{res}/{tf}"
                out[f"{scope}/weight"] = _hwio(sd[f"b{res}.{ours}.weight"])
                if f"b{res}.{ours}.bias" in sd:
                    out[f"{scope}/bias"] = sd[f"b{res}.{ours}.bias"]
    out["4x4/Conv/weight"] = _hwio(sd["b4.conv.weight"])
    out["4x4/Conv/bias"] = sd["b4.conv.bias"]
    out["4x4/Dense0/weight"] = sd["b4.fc.weight"].T
    out["4x4/Dense0/bias"] = sd["b4.fc.bias"]
    out["Output/weight"] = sd["b4.out.weight"].T
    out["Output/bias"] = sd["b4.out.bias"]
    if D.c_dim:  # conditional: label embedding, then the mapping to the projection's class vector
        out["LabelEmbed/weight"] = sd["mapping.embed.weight"].T
        out["LabelEmbed/bias"] = sd["mapping.embed.bias"]
        for i in range(D.mapping.num_layers):
            out[f"Mapping{i}/weight"] = sd[f"mapping.fc{i}.weight"].T
            out[f"Mapping{i}/bias"] = sd[f"mapping.fc{i}.bias"]
    return out


# TF StyleGAN2-ADA's D_main defaults; a pickle's static_kwargs hold only what its run set.
TF_D_DEFAULTS = dict(architecture="resnet", mbstd_group_size=4, mapping_layers=0, mapping_lrmul=0.1,
                     mapping_fmaps=None)


def tf_static_kwargs(G, D, lod=False):
    """(G kwargs, D kwargs) as TF StyleGAN2-ADA stores them; lod=True leaves `architecture` out, so the
    importer has to infer orig from the *_lod names."""
    g, d = G.config, D.config
    g_kwargs = dict(num_channels=g.img_channels, resolution=g.img_resolution, label_size=g.c_dim,
                    latent_size=g.z_dim, dlatent_size=g.w_dim, mapping_layers=g.mapping.num_layers,
                    fmap_base=g.synthesis.channel_base // 2, fmap_max=g.synthesis.channel_max,
                    architecture=g.synthesis.architecture, truncation_psi=0.5)
    d_kwargs = dict(num_channels=d.img_channels, resolution=d.img_resolution, label_size=d.c_dim,
                    fmap_base=d.channel_base // 2, fmap_max=d.channel_max, architecture=d.architecture,
                    mbstd_group_size=d.epilogue.mbstd_group_size)
    if d.c_dim:  # TF's mapping_fmaps sets the class-vector size and the mapping's widths together
        d_kwargs.update(mapping_layers=d.mapping.num_layers, mapping_lrmul=d.mapping.lr_multiplier,
                        mapping_fmaps=D.b4.cmap_dim)
    d_kwargs = {k: v for k, v in d_kwargs.items() if k not in TF_D_DEFAULTS or TF_D_DEFAULTS[k] != v}
    if lod:
        g_kwargs.pop("architecture")
        d_kwargs.pop("architecture", None)
    return g_kwargs, d_kwargs


def write_tf_networks(path, g_kwargs, g_vars, d_kwargs=None, d_vars=None, marker="/nonexistent/marker"):
    """Pickle TF networks given as plain dicts of TF variables, named relative to their network as dnnlib stores
    them: g_vars = {'dlatent_avg': array, 'mapping': {'Dense0/weight': ...}, 'synthesis': {'noise0': ...}}.
    With D: the (G, D, Gs) tuple of TF StyleGAN2-ADA's `network-snapshot-*.pkl` (G = Gs); without: Gs alone."""
    with fake_modules("dnnlib.tflib.network") as mods:
        module = mods["dnnlib.tflib.network"]

        class Network:
            def __init__(self, name, static_kwargs, variables, components=None):
                self.state = dict(version=4, name=name, static_kwargs=static_kwargs,
                                  components=components or {}, build_module_src=EVIL_SOURCE.format(marker=marker),
                                  build_func_name="G_main", variables=list(variables.items()))

            def __getstate__(self):
                return self.state

        Network.__module__ = "dnnlib.tflib.network"
        Network.__qualname__ = "Network"
        module.Network = Network
        comps = {"mapping": Network("G_mapping", {}, g_vars["mapping"]),
                 "synthesis": Network("G_synthesis", {}, g_vars["synthesis"])}
        Gs = Network("G", g_kwargs, {"dlatent_avg": g_vars["dlatent_avg"]}, comps)
        data = Gs if d_vars is None else (Gs, Network("D", d_kwargs, d_vars), Gs)
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    return path


def write_tf_pickle(path, G, D, marker="/nonexistent/marker", lod=False):
    """Pickle (G, D, Gs) as TF StyleGAN2-ADA's `network-snapshot-*.pkl` does (dnnlib.tflib Networks)."""
    g_kwargs, d_kwargs = tf_static_kwargs(G, D, lod)
    mapping, synth = tf_generator_variables(G, lod)
    g_vars = {"dlatent_avg": mapping.pop("dlatent_avg"), "mapping": mapping, "synthesis": synth}
    return write_tf_networks(path, g_kwargs, g_vars, d_kwargs, tf_discriminator_variables(D, lod), marker)
