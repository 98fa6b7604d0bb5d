r"""LeNet-5 on MNIST (LeCun, Bottou, Bengio & Haffner, 1998).

Command::

  python -m experiments.main --config=experiments/configs/lenet5_mnist.py \
      --workdir=/tmp/lenet5_mnist

Hardware: a CPU is enough (one GPU is faster). MNIST is downloaded and built on the first run
(needs internet once), or read from ``data.manual_dir``.
Expected time: about 10 minutes on a few CPU cores (20 epochs of 60,000 images; estimate).
Expected metric: test error about 1% (``top1_error`` ~ 0.01). LeCun et al. (1998), Sec. III-C
and Fig. 7, report 0.95% for LeNet-5 without distortions.

As in the paper the 28x28 digits are brought to 32x32 (here resized, the paper padded) and the
network uses tanh and average subsampling. The paper's stochastic diagonal Levenberg-Marquardt
is replaced by SGD with momentum, its schedule (rate lowered after 2, 5, 8, 12 epochs) by a step
schedule at the same epochs.
"""

import ml_collections

from experiments.configs import base

_STEPS_PER_EPOCH = 60_000 // 64


def get_config() -> ml_collections.ConfigDict:
  """Returns the LeNet-5 MNIST experiment."""
  config = base.get_base_config()
  config.task = 'classification'
  config.total_steps = 20 * _STEPS_PER_EPOCH
  config.batch_size = 64
  config.eval_every = 2 * _STEPS_PER_EPOCH
  config.checkpoint_every = 2 * _STEPS_PER_EPOCH
  config.log_every = 200
  config.best_metric = 'accuracy'

  config.model.name = 'lenet5'
  config.model.activation = 'tanh'
  config.model.pooling = 'avg'

  config.data.name = 'mnist'
  config.data.image_size = 32
  config.data.normalization = 'none'

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.05
  config.optimizer.momentum = 0.9
  config.schedule.name = 'step'
  config.schedule.decay_factor = 0.5
  config.schedule.boundaries = tuple(e * _STEPS_PER_EPOCH for e in (2, 5, 8, 12))
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: scikit-learn's digits instead of MNIST (same
  32 x 32 input and ten classes); LeNet-5 is already small."""
  return {'data.name': 'digits'}
