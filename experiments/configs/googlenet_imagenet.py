r"""GoogLeNet (Inception v1) on ImageNet, the paper's network and recipe (Szegedy et al., 2015).

Command::

  python -m experiments.main --config=experiments/configs/googlenet_imagenet.py \
      --workdir=/tmp/googlenet_imagenet

Hardware: 8 GPUs or a TPU v3-8 (global batch 256, data parallel); ImageNet prepared by hand in
``data.manual_dir`` (tfds ``imagenet2012``).
Expected time: about two days on 8 V100-class GPUs for 120 epochs (estimate, not measured).
Expected metric: top-5 error about 10.1% (``top5_error``): paper Table 5, one model evaluated on
one crop (10.07%). Caffe's reimplementation (``bvlc_googlenet``) reports 31.3% top-1 / 11.1%
top-5 error on one centre crop.

Recipe (paper Sec. 6): SGD with momentum 0.9, the learning rate decreased by 4% every 8 epochs,
the two auxiliary classifiers' losses added with weight 0.3 in training, dropout 0.4 before the
classifier (0.7 in the auxiliary heads). The paper gives no base rate or weight decay; 1e-2 and
2e-4 are Caffe's ``bvlc_googlenet`` solver's. The paper's Polyak averaging and photometric
distortions are not reproduced.
"""

import ml_collections

from experiments.configs import base

_STEPS_PER_EPOCH = 1_281_167 // 256
_EPOCHS = 120


def get_config() -> ml_collections.ConfigDict:
  """Returns the GoogLeNet ImageNet experiment."""
  config = base.get_base_config()
  config.task = 'classification'
  config.total_steps = _EPOCHS * _STEPS_PER_EPOCH
  config.batch_size = 256
  config.eval_every = 2 * _STEPS_PER_EPOCH
  config.checkpoint_every = _STEPS_PER_EPOCH
  config.log_every = 500
  config.best_metric = 'accuracy'

  config.model.name = 'googlenet'
  config.model.aux_logits = True
  config.model.dropout_rate = 0.4

  config.data.name = 'imagenet2012'
  config.data.image_size = 224
  config.data.flip = True
  # Random-resized crops for training; shorter side to 256 then a centre crop for evaluation.
  config.data.augment = 'imagenet'
  config.data.normalization = 'imagenet'

  config.loss.aux_weight = 0.3

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1e-2
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 2e-4
  config.schedule.name = 'step'
  config.schedule.decay_factor = 0.96
  config.schedule.boundaries = tuple(
    range(8 * _STEPS_PER_EPOCH, config.total_steps, 8 * _STEPS_PER_EPOCH)
  )
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: digits instead of ImageNet, small images."""
  # GoogLeNet has no width option; 80 x 80 is the smallest input whose stride-16 map (5 x 5)
  # still feeds the auxiliary heads' 5x5/3 pool, so the auxiliary loss is exercised too.
  return {'data.name': 'digits', 'data.augment': 'resize', 'data.image_size': 80}
