r"""VGG-16 (configuration D) on ImageNet (Simonyan & Zisserman, 2015).

Command::

  python -m experiments.main --config=experiments/configs/vgg16_imagenet.py \
      --workdir=/tmp/vgg16_imagenet

Hardware: 8 GPUs or a TPU v3-8 (global batch 256, data parallel); ImageNet prepared by hand in
``data.manual_dir`` (tfds ``imagenet2012``).
Expected time: two to three days on 8 V100-class GPUs for 74 epochs (estimate, not measured; the
paper took 2-3 weeks on four Titan Black GPUs).
Expected metric: top-1 error about 27.0%, top-5 about 8.8% (``top1_error``, ``top5_error``):
paper Table 3, configuration D trained at S=256 and evaluated at a single scale. This pipeline
resizes to 224 without the paper's scale jittering, so expect to land near or slightly above it.

Recipe (paper Sec. 3.1): SGD with momentum 0.9, batch 256, weight decay 5e-4, dropout 0.5 in
fc6 and fc7, learning rate 1e-2 divided by 10 when the validation accuracy stops improving (three
times), 74 epochs. He initialisation (jaxseg's default) replaces the paper's staged
initialisation from configuration A.

Compute dtype (issue 16, benchmarks/README.md): float32 on CPUs (bfloat16 made the VGG16/FCN-8s
train steps slower even with AVX512-BF16); ``--config.dtype=bfloat16`` on GPUs/TPUs.
"""

import ml_collections

from experiments.configs import base

_STEPS_PER_EPOCH = 1_281_167 // 256


def get_config() -> ml_collections.ConfigDict:
  """Returns the VGG-16 ImageNet experiment."""
  config = base.get_base_config()
  config.task = 'classification'
  config.total_steps = 74 * _STEPS_PER_EPOCH
  config.batch_size = 256
  config.eval_every = _STEPS_PER_EPOCH
  config.checkpoint_every = _STEPS_PER_EPOCH
  config.log_every = 500
  config.best_metric = 'accuracy'

  config.model.name = 'vgg16'
  config.model.dropout_rate = 0.5
  config.model.stage_features = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
  )
  config.model.fc_features = 4096

  config.data.name = 'imagenet2012'
  config.data.image_size = 224
  config.data.flip = True
  # Random-resized crops for training; shorter side to 256 then a centre crop for evaluation.
  config.data.augment = 'imagenet'
  config.data.normalization = 'imagenet'

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1e-2
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.schedule.name = 'plateau'
  config.schedule.decay_factor = 0.1
  config.schedule.patience = 3
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: digits instead of ImageNet, a narrow VGG-16."""
  return {
    'data.name': 'digits',
    'data.augment': 'resize',
    'data.image_size': 32,
    'model.stage_features': ((4, 4), (4, 4), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
    'model.fc_features': 16,
  }
