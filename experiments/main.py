r"""Trains and evaluates one experiment.

Usage::

  python -m experiments.main --config=experiments/configs/<name>.py --workdir=/tmp/run \
      [--config.total_steps=100 --config.optimizer.learning_rate=0.01 ...]

The config is locked: a misspelt key or a value of the wrong type on the command line fails at
start, naming it. Starting again with the same ``--workdir`` resumes. See docs/training.md.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import compilation_cache
from jaxseg import train
from jaxseg.train import platform

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to an experiment config file (experiments/configs/*.py).',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.')
_CACHE = flags.DEFINE_string(
    'compilation_cache_dir', None,
    'Persistent XLA compilation cache (reruns, resumes and sweep trials load compiled programs '
    'instead of compiling). Default: $JAXSEG_COMPILATION_CACHE, else ~/.cache/jaxseg/xla; '
    '"off" disables.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  compilation_cache.enable(_CACHE.value)
  platform.announce_platform()
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
