"""What the DeepLab VOC experiments share (not an experiment: it has no ``get_config``).

DeepLab v1, v2 and v3 (and v3+, which starts from v3) train on VOC 2012 with SBD
(``voc2012_sbd``) from ImageNet weights (``init_from``), with random flips, SGD with momentum 0.9,
an evaluation every 2000 steps at 513 x 513, and keep the checkpoint with the best validation mean
IoU. v2 and v3 share a ResNet-101 backbone, ImageNet normalisation and the poly schedule; v1 is a
VGG16 net (Caffe's BGR normalisation, a step schedule). Each config sets the rest: its model,
crop, scale range, batch, rate and length.
"""

import ml_collections

from experiments.configs import base


def get_voc_segmentation_config(
  *,
  model: str,
  total_steps: int,
  batch_size: int,
  learning_rate: float,
  weight_decay: float,
  crop_size: int,
  scale_range: tuple[float, float],
  backbone: str | None = 'resnet101',
  normalization: str = 'imagenet',
  schedule: str = 'poly',
) -> ml_collections.ConfigDict:
  """Returns the shared DeepLab VOC fields with the experiment's own values filled in.

  Args:
    model: the registry name (``'deeplab_v1'``, ``'deeplab_v2'``, ``'deeplab_v3'``).
    total_steps: training steps.
    batch_size: global batch.
    learning_rate: the poly schedule's base rate.
    weight_decay: SGD's L2 weight decay.
    crop_size: the training crop side (evaluation pads to 513).
    scale_range: the random rescaling range of training.
    backbone: ``model.backbone`` (built at full width, default stages), or None for a model
      without one (DeepLab v1's VGG16 is fixed).
    normalization: ``data.normalization``, what the ImageNet weights were trained with
      (torchvision: ``'imagenet'``; Caffe: ``'caffe_bgr'``).
    schedule: ``schedule.name``; ``'poly'`` sets its power 0.9 down to 0 (DeepLab v2's), any
      other is left for the config to finish.

  Returns:
    A ``ConfigDict`` from :func:`experiments.configs.base.get_base_config`.
  """
  config = base.get_base_config()
  config.task = 'segmentation'
  config.total_steps = total_steps
  config.batch_size = batch_size
  config.eval_every = 2000
  config.checkpoint_every = 2000
  config.log_every = 50
  config.best_metric = 'mean_iou'
  config.best_mode = 'max'
  config.init_from = ''  # torchvision ImageNet weights, .safetensors (see each config's docstring)

  config.model.name = model
  config.model.num_classes = 21
  config.model.width_divisor = 1
  if backbone is not None:
    config.model.backbone = backbone
    config.model.backbone_options = None

  config.data.name = 'voc2012_sbd'
  config.data.normalization = normalization
  config.data.crop_size = crop_size
  config.data.eval_size = 513
  config.data.scale_range = scale_range
  config.data.flip = True

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = learning_rate
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = weight_decay
  config.schedule.name = schedule
  if schedule == 'poly':
    config.schedule.power = 0.9
    config.schedule.end_value = 0.0
  return config


def test_overrides(**extra) -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes, a narrow ResNet-10 backbone."""
  return {
    'data.name': 'shapes_segmentation',
    'data.crop_size': 32,
    'data.eval_size': 32,
    'model.num_classes': 4,
    'model.backbone': 'resnet18',
    'model.width_divisor': 16,
    # One block per stage (a ResNet-10) keeps the compile short.
    'model.backbone_options': {'stage_sizes': (1, 1, 1, 1)},
    **extra,
  }
