"""Networks: classification backbones, segmentation and saliency models, and their registry.

Every model is reachable by name::

  model = jaxseg.models.get_model('resnet50', num_classes=21, output_stride=16)
  logits, endpoints = model.apply(variables, images, train=False)

Importing a model module registers its variants; this package imports them all and exports the
segmentation and saliency variants and the backbones by name (``help(jaxseg.models.fcn8s)`` shows
FCN-8s's documentation).
"""

from jaxseg.models import alexnet, googlenet, lenet, resnet, vgg
from jaxseg.models import deeplab, fcn  # noqa: F401  (segmentation; after the backbones)
from jaxseg.models import saliency  # noqa: F401  (salnet_shallow, salnet_deep, center_bias)
from jaxseg.models.memory import memory_report, memory_table
from jaxseg.models.convolutionalize import (
  adaptive_avg_pool,
  convolutionalize,
  convolutionalize_variables,
)
from jaxseg.models.deeplab import deeplab_v1, deeplab_v2, deeplab_v3, deeplab_v3plus
from jaxseg.models.fcn import fcn8s, fcn16s, fcn32s
from jaxseg.models.registry import get_model, list_models, register_model
from jaxseg.models.resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from jaxseg.models.saliency import center_bias, salnet_deep, salnet_shallow
from jaxseg.models.vgg import vgg11, vgg13, vgg16, vgg19
from jaxseg.models.weights import import_torchvision, load_state_dict, torchvision_layout

__all__ = [
  'adaptive_avg_pool',
  'center_bias',
  'deeplab_v1',
  'deeplab_v2',
  'deeplab_v3',
  'deeplab_v3plus',
  'fcn16s',
  'fcn32s',
  'fcn8s',
  'resnet101',
  'resnet152',
  'resnet18',
  'resnet34',
  'resnet50',
  'salnet_deep',
  'salnet_shallow',
  'vgg11',
  'vgg13',
  'vgg16',
  'vgg19',
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
