r"""The centre-bias baseline on MIT1003: one Gaussian for every image, no training.

Command::

  python -m experiments.main --config=experiments/configs/center_bias_mit1003.py \
      --workdir=/tmp/center_bias_mit1003

Hardware: a CPU. Needs MIT1003 prepared from its manual files (see ``docs/saliency.md``).
Expected time: a few minutes (one evaluation of the 100 held-out images at 768 x 1024).
Expected metric: the MIT benchmark lists its centre baseline on MIT300 at about AUC-Judd 0.78,
SIM 0.45, CC 0.38, NSS 0.92, shuffled AUC 0.51 (saliency.mit.edu, "Center" row, as we recall it:
check the live table before quoting); MIT1003 shares MIT300's source and protocol, so this run
should land close (the engine reports CC, NSS, AUC-Judd, SIM, KLD).

The model's only parameters are its two widths; the engine runs one step with a zero learning
rate (they stay at ``model.sigma``), then evaluates. A positive learning rate and more steps fit
the widths to MIT1003's training images instead.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the centre-bias evaluation on MIT1003's held-out images."""
  config = base.get_base_config()
  config.task = 'saliency'
  config.total_steps = 1
  config.batch_size = 4
  config.eval_every = 1
  config.checkpoint_every = 1
  config.log_every = 1
  config.best_metric = 'cc'
  config.best_mode = 'max'

  config.model.name = 'center_bias'
  config.model.sigma = (0.25, 0.25)  # fractions of the height and width

  config.data.name = 'mit1003'
  config.data.image_size = (96, 128)  # the map does not depend on the image
  config.data.map_size = (768, 1024)  # most MIT1003 images are 768 x 1024 (or 1024 x 768)
  config.data.normalization = 'none'

  config.loss.name = 'euclidean'
  config.optimizer.learning_rate = 0.0
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic saliency data and a narrow model."""
  return {
    'data.name': 'synthetic_saliency',
    'data.image_size': (64, 64),
    'data.map_size': (64, 64),
    'model.sigma': (0.3, 0.3),
  }
