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


def write_pytorch_pickle(path, G, D, G_raw=None, marker="/nonexistent/marker"):
    """Pickle G/D the way stylegan2-ada-pytorch's training loop does (network-snapshot-*.pkl)."""
    import torch

    with fake_modules("torch_utils.persistence") as mods:
        persistence = mods["torch_utils.persistence"]

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

        data = dict(G=Persistent(G_raw or G, "Generator", _g_kwargs(G)), D=Persistent(D, "Discriminator", _d_kwargs(D)),
                    G_ema=Persistent(G, "Generator", _g_kwargs(G)), augment_pipe=None,
                    training_set_kwargs={"path": "paintings.zip", "resolution": G.img_resolution, "xflip": True})
        with torch.no_grad(), open(path, "wb") as f:
            pickle.dump(data, f)
    return path


def _g_kwargs(G):
    cfg = G.config.to_dict()
    return dict(z_dim=cfg["z_dim"], c_dim=cfg["c_dim"], w_dim=cfg["w_dim"], img_resolution=cfg["img_resolution"],
                img_channels=cfg["img_channels"], mapping_kwargs=cfg["mapping"], synthesis_kwargs=cfg["synthesis"])


def _d_kwargs(D):
    cfg = D.config.to_dict()
    out = {k: v for k, v in cfg.items() if k not in ("block", "mapping", "epilogue")}
    out.update(block_kwargs=cfg["block"], mapping_kwargs=cfg["mapping"], epilogue_kwargs=cfg["epilogue"])
    return out


# --------------------------------------------------------------------------------------------- TensorFlow


def tf_generator_variables(G):
    """Our generator's weights under TF StyleGAN2 names and layouts: {component: {name: array}}."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in G.state_dict().items()}
    hwio = lambda a: a.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    mapping = {"dlatent_avg": sd["mapping.w_avg"]}
    for i in range(G.mapping.num_layers):
        mapping[f"Dense{i}/weight"] = sd[f"mapping.fc{i}.weight"].T
        mapping[f"Dense{i}/bias"] = sd[f"mapping.fc{i}.bias"]
    synth = {"4x4/Const/const": sd["synthesis.b4.const"][None]}
    for res in G.synthesis.block_resolutions:
        layers = [("conv1", "Conv" if res == 4 else "Conv1")] + ([("conv0", "Conv0_up")] if res > 4 else [])
        layers.append(("torgb", "ToRGB"))
        for ours, tf in layers:
            p = f"synthesis.b{res}.{ours}"
            kernel = hwio(sd[f"{p}.weight"])
            synth[f"{res}x{res}/{tf}/weight"] = kernel[::-1, ::-1] if tf == "Conv0_up" else kernel
            synth[f"{res}x{res}/{tf}/bias"] = sd[f"{p}.bias"]
            synth[f"{res}x{res}/{tf}/mod_weight"] = sd[f"{p}.affine.weight"].T
            synth[f"{res}x{res}/{tf}/mod_bias"] = sd[f"{p}.affine.bias"] - 1
            if ours != "torgb":
                synth[f"{res}x{res}/{tf}/noise_strength"] = sd[f"{p}.noise_strength"]
                idx = int(math.log2(res)) * 2 - (5 if ours == "conv0" else 4)
                synth[f"noise{idx}"] = sd[f"{p}.noise_const"][None, None]
    return mapping, synth


def tf_discriminator_variables(D):
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in D.state_dict().items()}
    hwio = lambda a: a.transpose(2, 3, 1, 0)
    out = {}
    for res in D.block_resolutions:
        for ours, tf in (("fromrgb", "FromRGB"), ("conv0", "Conv0"), ("conv1", "Conv1_down"), ("skip", "Skip")):
            if f"b{res}.{ours}.weight" in sd:
                out[f"{res}x{res}/{tf}/weight"] = hwio(sd[f"b{res}.{ours}.weight"])
                if f"b{res}.{ours}.bias" in sd:
                    out[f"{res}x{res}/{tf}/bias"] = sd[f"b{res}.{ours}.bias"]
    out["4x4/Conv/weight"] = hwio(sd["b4.conv.weight"])
    out["4x4/Conv/bias"] = sd["b4.conv.bias"]
    out["4x4/Dense0/weight"] = sd["b4.fc.weight"].T
    out["4x4/Dense0/bias"] = sd["b4.fc.bias"]
    out["Output/weight"] = sd["b4.out.weight"].T
    out["Output/bias"] = sd["b4.out.bias"]
    return out


def write_tf_pickle(path, G, D, marker="/nonexistent/marker"):
    """Pickle (G, D, Gs) as TF StyleGAN2-ADA's `network-snapshot-*.pkl` does (dnnlib.tflib Networks)."""
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
        g = G.config
        g_kwargs = dict(num_channels=g.img_channels, resolution=g.img_resolution, label_size=g.c_dim,
                        latent_size=g.z_dim, dlatent_size=g.w_dim, mapping_layers=g.mapping.num_layers,
                        fmap_base=g.synthesis.channel_base // 2, fmap_max=g.synthesis.channel_max,
                        architecture="skip", truncation_psi=0.5)
        mapping, synth = tf_generator_variables(G)
        comps = {"mapping": Network("G_mapping", {}, {k: v for k, v in mapping.items() if k != "dlatent_avg"}),
                 "synthesis": Network("G_synthesis", {}, synth)}
        Gs = Network("G", g_kwargs, {"dlatent_avg": mapping["dlatent_avg"]}, comps)
        d = D.config
        d_kwargs = dict(num_channels=d.img_channels, resolution=d.img_resolution, label_size=d.c_dim,
                        fmap_base=d.channel_base // 2, fmap_max=d.channel_max,
                        mbstd_group_size=d.epilogue.mbstd_group_size)
        tf_D = Network("D", d_kwargs, tf_discriminator_variables(D))
        with open(path, "wb") as f:
            pickle.dump((Gs, tf_D, Gs), f, protocol=2)
    return path
