r"""Exports a trained run as a standalone model file (StableHLO, symbolic batch/height/width).

Usage::

  python -m experiments.export --workdir=RUN --output=model.jaxexport [--checkpoint=best]
      [--platforms=cpu,cuda] [--raw_input]

The file holds the network, its weights and the run's input normalisation: it takes RGB pixels
``(N, H, W, 3)`` float32 in ``[0, 255]`` of any batch size and image size and returns the
model's output (segmentation logits at the input size). Load it with JAX alone::

  from jaxseg.export import load_exported
  logits = load_exported('model.jaxexport')(images)
"""

import sys

from absl import app
from absl import flags
from absl import logging

from jaxseg import export
from jaxseg.train import inference
from jaxseg.train import platform

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run directory.')
_OUTPUT = flags.DEFINE_string('output', None, 'The file to write (e.g. model.jaxexport).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'latest' or a step number.")
_PLATFORMS = flags.DEFINE_string(
  'platforms', '', "Comma-separated platforms to lower for (e.g. 'cpu,cuda'); '' -> this machine's."
)
_RAW_INPUT = flags.DEFINE_boolean(
  'raw_input',
  False,
  'Leave the normalisation out: the file takes the network input itself, not pixels.',
)
flags.mark_flags_as_required(['workdir', 'output'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.ERROR)
  try:
    run = inference.load_run(_WORKDIR.value, checkpoint=_CHECKPOINT.value)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'error: {e}')
  platform.announce_platform()
  platforms = tuple(p for p in _PLATFORMS.value.split(',') if p) or None
  exported = export.export_model(
    run.model,
    run.variables,
    preprocess=None if _RAW_INPUT.value else run.preprocess,
    platforms=platforms,
  )
  try:
    pad = 0.0 if _RAW_INPUT.value else inference.zero_pixel(run.info.normalization)
    export.save_exported(exported, _OUTPUT.value, pad_value=pad)
  except ValueError as e:
    sys.exit(f'error: {e}')
  shape = ', '.join(str(d) for d in exported.in_avals[0].shape)
  print(
    f'wrote {_OUTPUT.value}: {run.config.model.name} at step {run.step}, input ({shape}) '
    f'{"network input" if _RAW_INPUT.value else "RGB pixels in [0, 255]"}, platforms '
    f'{exported.platforms}'
  )


if __name__ == '__main__':
  app.run(main)
