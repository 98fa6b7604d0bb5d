r"""A narrow shallow saliency ConvNet on synthetic saliency data: the CPU smoke experiment.

Command::

  python -m experiments.main --config=experiments/configs/salnet_shallow_synthetic.py \
      --workdir=/tmp/salnet_syn

Hardware: a CPU (2 cores are enough); the first run also builds the synthetic dataset
(2000 + 200 images of 64 x 64, under ``$JAXSEG_DATA_DIR`` or ``~/jaxseg_data``).
Expected time: a few minutes on 2 CPU cores (3 min 20 s measured on two shared cores with the
dataset already built; the first run builds it too).
Expected metric: CC >= 0.7 on the 200 held-out images (``best_cc`` in ``results.json``; measured
0.85, with NSS 1.38 and AUC-Judd 0.82, where the centre-bias baseline gets CC 0.43). The target is
this repository's acceptance criterion for the synthetic data, whose densities are known mixtures
of Gaussians (``jaxseg.data.synthetic.saliency_example``), not a published number.

The network is Pan et al.'s shallow ConvNet (conv 5x5, pool 2, conv 3x3, pool 3/2, conv 3x3,
pool 3/2, fc, maxout 2, fc reshaped to the map) made narrow (16-32-64 channels, fc1 of 512) for a
64 x 64 input and a 32 x 32 output map; the metrics compare it, resized, with the 64 x 64
fixation maps and densities. Loss: the lecture's Euclidean loss against the density scaled to a
maximum of 1; SGD with Nesterov momentum.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the synthetic shallow-ConvNet experiment."""
  config = base.get_base_config()
  config.task = 'saliency'
  config.total_steps = 600
  config.batch_size = 32
  config.eval_every = 300
  config.checkpoint_every = 300
  config.log_every = 100
  config.best_metric = 'cc'
  config.best_mode = 'max'
  config.num_images = 4

  config.model.name = 'salnet_shallow'
  config.model.features = (16, 32, 64)
  config.model.hidden = 512
  config.model.maxout_pieces = 2
  config.model.output_shape = (32, 32)

  config.data.name = 'synthetic_saliency'
  config.data.synthetic_size = 64
  config.data.num_train = 2000
  config.data.num_test = 200
  config.data.normalization = 'none'

  config.loss.name = 'euclidean'
  config.loss.target = 'max'

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.002
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 5e-4
  config.optimizer.grad_clip_norm = 10.0
  config.schedule.name = 'poly'
  config.schedule.power = 1.0
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: the same data, a narrower model."""
  return {'model.features': (4, 4, 4), 'model.hidden': 16, 'model.output_shape': (8, 8)}
