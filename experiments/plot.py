r"""Draws a run's training curves: ``<workdir>/curves.png`` from its ``metrics.jsonl``.

Usage::

  python -m experiments.plot --workdir=/tmp/jaxseg/fcn8s_shapes [--output=curves.png]

One panel per metric: the training loss, the learning rate and every evaluation metric over
steps (training runs also write this file when they finish).
"""

import os

from absl import app
from absl import flags

from jaxseg.viz import curves

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run directory holding metrics.jsonl.')
_OUTPUT = flags.DEFINE_string('output', '', "The PNG to write; '' -> <workdir>/curves.png.")
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  records = curves.read_metrics(os.path.join(_WORKDIR.value, 'metrics.jsonl'))
  path = _OUTPUT.value or os.path.join(_WORKDIR.value, 'curves.png')
  curves.plot_curves(records, path, title=os.path.abspath(_WORKDIR.value))
  print(f'wrote {path} ({len(records)} records)')


if __name__ == '__main__':
  app.run(main)
