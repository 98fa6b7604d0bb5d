"""Networks: classification backbones, segmentation and saliency models, and their registry.

Every model is reachable by name::

  model = jaxseg.models.get_model('resnet50', num_classes=21, output_stride=16)
  logits, endpoints = model.apply(variables, images, train=False)

Importing a model module registers its variants; this package imports them all.
"""

from jaxseg.models import alexnet, googlenet, lenet, resnet, vgg
from jaxseg.models import deeplab, fcn  # noqa: F401  (segmentation; after the backbones)
from jaxseg.models import saliency  # noqa: F401  (salnet_shallow, salnet_deep, center_bias)
from jaxseg.models.memory import memory_report, memory_table
from jaxseg.models.convolutionalize import (adaptive_avg_pool, convolutionalize,
                                            convolutionalize_variables)
from jaxseg.models.registry import get_model, list_models, register_model
from jaxseg.models.weights import import_torchvision, load_state_dict, torchvision_layout

__all__ = [
    'adaptive_avg_pool',
    'alexnet',
    'convolutionalize',
    'convolutionalize_variables',
    'get_model',
    'googlenet',
    'import_torchvision',
    'lenet',
    'list_models',
    'memory_report',
    'memory_table',
    'load_state_dict',
    'register_model',
    'resnet',
    'torchvision_layout',
    'vgg',
]
