r"""ResNet-50 (v1.5) on ImageNet (He, Zhang, Ren & Sun, 2016).

Command::

  python -m experiments.main --config=experiments/configs/resnet50_imagenet.py \
      --workdir=/tmp/resnet50_imagenet

Hardware: 8 GPUs or a TPU v3-8 (global batch 256, data parallel; ``--config.dtype=bfloat16`` on
accelerators that support it); ImageNet prepared by hand in ``data.manual_dir`` (tfds
``imagenet2012``).
Expected time: about a day on 8 V100-class GPUs for 90 epochs (estimate, not measured).
Expected metric: top-1 error about 23.9%, top-5 about 7.1% on one centre crop (``top1_error``,
``top5_error``): torchvision's ResNet-50 v1.5 reference trained with this recipe (76.13% /
92.86% accuracy). The paper's Table 3 reports 22.85% / 6.71% with 10-crop testing.

Recipe (paper Sec. 3.4): SGD with momentum 0.9, batch 256, weight decay 1e-4, no dropout,
learning rate 0.1 divided by 10 when the error plateaus; the plateaus fell near epochs 30 and 60
(paper Fig. 4), so the divisions are scheduled there (and at 80), for 90 epochs in all.

Compute dtype (issue 16, benchmarks/README.md): ``--config.dtype=bfloat16`` on GPUs/TPUs; float32 on
CPUs (with issue 16's float32 lowerings, bfloat16 made ResNet-50's train step only 5% faster and
DeepLabV3's 3% slower on an AVX512-BF16 CPU).
"""

import ml_collections

from experiments.configs import base

_STEPS_PER_EPOCH = 1_281_167 // 256


def get_config() -> ml_collections.ConfigDict:
  """Returns the ResNet-50 ImageNet experiment."""
  config = base.get_base_config()
  config.task = 'classification'
  config.total_steps = 90 * _STEPS_PER_EPOCH
  config.batch_size = 256
  config.eval_every = 2 * _STEPS_PER_EPOCH
  config.checkpoint_every = _STEPS_PER_EPOCH
  config.log_every = 500
  config.best_metric = 'accuracy'

  config.model.name = 'resnet50'
  config.model.num_filters = 64
  config.model.stage_sizes = (3, 4, 6, 3)

  config.data.name = 'imagenet2012'
  config.data.image_size = 224
  config.data.flip = True
  # Random-resized crops for training; shorter side to 256 then a centre crop for evaluation.
  config.data.augment = 'imagenet'
  config.data.normalization = 'imagenet'

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = 'step'
  config.schedule.decay_factor = 0.1
  config.schedule.boundaries = tuple(e * _STEPS_PER_EPOCH for e in (30, 60, 80))
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: digits, a bottleneck ResNet 4 filters wide with one
  block per stage."""
  return {
    'data.name': 'digits',
    'data.augment': 'resize',
    'data.image_size': 32,
    'model.num_filters': 4,
    'model.stage_sizes': (1, 1, 1, 1),
  }
