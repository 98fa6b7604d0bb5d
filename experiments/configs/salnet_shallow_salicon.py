r"""Pan et al.'s shallow saliency ConvNet trained on SALICON.

Command::

  python -m experiments.main --config=experiments/configs/salnet_shallow_salicon.py \
      --workdir=/tmp/salnet_shallow_salicon

Hardware: one GPU (the model has 64.4M parameters, mostly fc1; memory is dominated by them, see
``jaxseg.models.memory.memory_table``). Needs SALICON prepared from its manual files (see
``docs/saliency.md``).
Expected time: about an hour on one current GPU (not measured here).
Expected metric: Pan et al., CVPR 2016, report for the shallow ConvNet on SALICON's test set a CC
of about 0.56 and a shuffled AUC of about 0.66 (our recollection of their SALICON table; check the
paper before quoting). The engine reports CC, NSS, AUC-Judd, SIM and KLD on SALICON's validation
split.

As the authors ran it (their ``shallow/train.py``): 96 x 96 RGB input scaled to [0, 1], a 48 x 48
target map in [0, 1], Euclidean loss, SGD with Nesterov momentum 0.9, batch 128, learning rate
decayed linearly from 0.05 to 0.0001, random horizontal flips. Their momentum also rose linearly
from 0.9 to 0.999, which our optimizer does not schedule (it stays 0.9), and they trained 1200
epochs; we train about 100 (12,000 steps), which has not been validated here.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the shallow ConvNet on SALICON."""
  config = base.get_base_config()
  config.task = 'saliency'
  config.total_steps = 12_000
  config.batch_size = 128
  config.eval_every = 1000
  config.checkpoint_every = 1000
  config.log_every = 100
  config.best_metric = 'cc'
  config.best_mode = 'max'

  config.model.name = 'salnet_shallow'
  config.model.features = (32, 64, 128)  # conv1..conv3, the paper's figure
  config.model.hidden = 4608  # fc1, before the maxout over 2 pieces
  config.model.output_shape = (48, 48)

  config.data.name = 'salicon'
  config.data.image_size = (96, 96)
  config.data.map_size = (480, 640)  # metrics at SALICON's resolution; the loss uses 48 x 48
  config.data.normalization = 'none'  # x / 255, as the authors' preprocessing
  config.data.flip = True

  config.loss.name = 'euclidean'
  config.loss.target = 'max'  # SALICON maps / 255, in [0, 1]

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.05
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.schedule.name = 'poly'
  config.schedule.power = 1.0
  config.schedule.end_value = 0.0001
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic saliency data and a narrow model."""
  return {
    'data.name': 'synthetic_saliency',
    'data.image_size': (64, 64),
    'data.map_size': (64, 64),
    'model.features': (4, 4, 4),
    'model.hidden': 16,
    'model.output_shape': (8, 8),
  }
