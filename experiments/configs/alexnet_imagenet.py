r"""AlexNet on ImageNet with the lecture's recipe (Krizhevsky, Sutskever & Hinton, 2012).

Command::

  python -m experiments.main --config=experiments/configs/alexnet_imagenet.py \
      --workdir=/tmp/alexnet_imagenet

Hardware: 8 GPUs or a TPU v3-8 (global batch 128, data parallel). ImageNet (ILSVRC 2012) must be
downloaded by hand into ``data.manual_dir`` (tfds ``imagenet2012`` instructions) and is built on
the first run.
Expected time: about a day on 8 V100-class GPUs for 90 epochs (estimate, not measured here; the
paper took five to six days on two GTX 580s).
Expected metric: top-1 error about 40.7% and top-5 about 18.2% on the validation set
(``top1_error``, ``top5_error``): the paper's single CNN, Sec. 6, Table 2 (ILSVRC-2012 val).

Recipe (paper Sec. 5, the lecture's slide): SGD with momentum 0.9, batch 128, L2 weight decay
5e-4, dropout 0.5 in fc6 and fc7, learning rate 1e-2 divided by 10 when the validation accuracy
stops improving (three times in the paper), about 90 epochs. The network is the lecture's single
stream at 227x227 (``model.groups=2`` gives the paper's two-GPU split).
"""

import ml_collections

from experiments.configs import base

_STEPS_PER_EPOCH = 1_281_167 // 128


def get_config() -> ml_collections.ConfigDict:
  """Returns the AlexNet ImageNet experiment."""
  config = base.get_base_config()
  config.task = 'classification'
  config.total_steps = 90 * _STEPS_PER_EPOCH
  config.batch_size = 128
  config.eval_every = _STEPS_PER_EPOCH
  config.checkpoint_every = _STEPS_PER_EPOCH
  config.log_every = 500
  config.best_metric = 'accuracy'

  config.model.name = 'alexnet'
  config.model.groups = 1
  config.model.dropout_rate = 0.5
  config.model.conv_features = (96, 256, 384, 384, 256)  # the lecture's single stream
  config.model.fc_features = 4096

  config.data.name = 'imagenet2012'
  config.data.image_size = 227
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
  config.schedule.patience = 3  # epochs without a better validation accuracy
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: digits instead of ImageNet, a narrow AlexNet."""
  # 67 x 67 is about the smallest input the 11x11/4 conv1 and three 3x3/2 pools keep non-empty.
  return {
    'data.name': 'digits',
    'data.augment': 'resize',
    'data.image_size': 67,
    'model.conv_features': (8, 16, 16, 16, 8),
    'model.fc_features': 16,
  }
