r"""Evaluates a trained run's checkpoint without changing any parameter or statistic.

Usage::

  python -m experiments.evaluate --workdir=/tmp/jaxseg/fcn8s_shapes [--checkpoint=best|latest|STEP]
      [--split=test] [--sliding_window=CROP,STRIDE] [--scales=1,0.75,0.5 --flip] [--crf]

Prints the task's table (per-class IoU by name for segmentation) and writes
``<workdir>/eval_<split>_<step>.json``. Without a test-time recipe it runs the training loop's
own eval step on the run's eval pipeline, so on the run's eval split it reproduces the numbers
``metrics.jsonl`` logged for that step.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from experiments import recipe_flags

from experiments import compilation_cache
from jaxseg.train import evaluation
from jaxseg.train import inference
from jaxseg.train import platform

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run directory.')
_CACHE = compilation_cache.define_flag()
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'latest' or a step number.")
_SPLIT = flags.DEFINE_string('split', '', "Dataset split; '' -> the run's eval split.")
_RECIPE = recipe_flags.define_flags()
_MAX_BATCHES = flags.DEFINE_integer('max_batches', -1, 'Stop after this many batches.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    recipe = _RECIPE.recipe()
    run = inference.load_run(_WORKDIR.value, checkpoint=_CHECKPOINT.value)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'error: {e}')
  compilation_cache.enable(_CACHE.value)
  platform.announce_platform()
  split = _SPLIT.value or run.info.eval_split
  print(f'evaluating {_WORKDIR.value} at step {run.step} on split {split!r} ({recipe.describe()})')
  metrics = evaluation.evaluate_run(run, split=split, recipe=recipe, max_batches=_MAX_BATCHES.value)
  print(evaluation.metrics_table(run.task, metrics, name=run.config.model.name))
  path = evaluation.write_results(_WORKDIR.value, split, run.step, metrics, recipe)
  print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
