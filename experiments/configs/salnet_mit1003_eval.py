r"""Evaluates a SALICON-trained saliency ConvNet on MIT1003's held-out images.

Command (after ``salnet_deep_salicon``)::

  python -m experiments.main --config=experiments/configs/salnet_mit1003_eval.py \
      --workdir=/tmp/salnet_mit1003 \
      --config.init_from=/tmp/salnet_deep_salicon

Hardware: one GPU, or a CPU (slowly). Needs MIT1003 prepared from its manual files (see
``docs/saliency.md``).
Expected time: minutes (100 images).
Expected metric: close to the deep ConvNet's MIT300 numbers in Pan et al., CVPR 2016 (SIM 0.52,
CC 0.58, AUC-Judd 0.83, as we recall them; MIT1003 and MIT300 share their source and protocol).

``init_from`` names the training run whose latest parameters are evaluated. The engine runs one
step with a zero learning rate (parameters unchanged) and evaluates, so the whole path is the
standard one. The engine restores every parameter whose path and shape match from the newest
checkpoint of that run and logs a table of what it restored (see docs/training.md).
Use ``jaxseg.inference.saliency.SaliencyEvaluator`` directly for the full table (with shuffled and
Borji AUC); ``docs/saliency.md`` shows how.
"""

import ml_collections

from experiments.configs import salnet_deep_salicon


def get_config() -> ml_collections.ConfigDict:
  """Returns the MIT1003 evaluation of the deep ConvNet."""
  config = salnet_deep_salicon.get_config()
  config.init_from = ''  # the workdir of a salnet_*_salicon run
  config.total_steps = 1
  config.eval_every = 1
  config.checkpoint_every = 1
  config.log_every = 1
  config.batch_size = 4
  config.optimizer.learning_rate = 0.0
  config.optimizer.weight_decay = 0.0
  config.schedule.name = 'constant'
  config.schedule.boundaries = ()

  config.data.name = 'mit1003'
  config.data.map_size = (768, 1024)
  config.data.flip = False
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic saliency data and a narrow model."""
  return {
    'data.name': 'synthetic_saliency',
    'data.image_size': (64, 64),
    'data.map_size': (64, 64),
    'model.features': (4, 4, 4, 4, 4, 4, 4, 4),
  }
