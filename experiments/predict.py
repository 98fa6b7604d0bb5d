r"""Applies a trained run to your own images: masks, saliency maps or class scores.

Usage::

  python -m experiments.predict --workdir=RUN --input=DIR_OR_FILE --output=DIR \
      [--checkpoint=best|latest|STEP] [--crf] [--sliding_window=CROP,STRIDE] \
      [--scales=1,0.75,0.5 --flip] [--batch_size=N] [--save_logits]

Reads the run's saved config and dataset info, restores the checkpoint for inference only,
preprocesses each image as the run did and writes, per image, a palette label PNG at the input's
size and a colour overlay (segmentation), a grey map and a heatmap (saliency), or a row of
``predictions.csv`` (classification). Any image Pillow reads works (grey, RGBA, 16-bit are
converted, with a note). An unreadable file is reported by name and skipped; a summary lists
the failures and the exit code is 1 if any image failed.
"""

import os
import sys
import time

from absl import app
from absl import flags
from absl import logging

from experiments import recipe_flags

from experiments import compilation_cache
from jaxseg.train import inference
from jaxseg.train import platform
from jaxseg.train import prediction
from jaxseg.train.logging import ProgressLine

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run directory.')
_CACHE = compilation_cache.define_flag()
_INPUT = flags.DEFINE_string('input', None, 'An image file or a folder of images.')
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the predictions (created).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'latest' or a step number.")
_RECIPE = recipe_flags.define_flags()
_BATCH = flags.DEFINE_integer(
  'batch_size',
  1,
  'Images per network call (classification and '
  'saliency; segmentation images of different sizes run one by one).',
)
_SAVE_LOGITS = flags.DEFINE_boolean('save_logits', False, 'Also write <stem>.npy logits.')
flags.mark_flags_as_required(['workdir', 'input', 'output'])


def _predict_one(run, recipe, path, writer):
  image, note = prediction.read_image(path)
  stem = os.path.splitext(os.path.basename(path))[0]
  task = run.info.task
  if task == 'segmentation':
    logits = prediction.predict_segmentation(run, image, recipe)
    prediction.write_segmentation(
      _OUTPUT.value, stem, image, logits, run, save_logits=_SAVE_LOGITS.value
    )
  elif task == 'saliency':
    prediction.write_saliency(_OUTPUT.value, stem, image, prediction.predict_saliency(run, image))
  else:
    writer.add(os.path.basename(path), prediction.predict_classification(run, image))
  return note


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.ERROR)
  try:
    recipe = _RECIPE.recipe()
    if _BATCH.value < 1:
      raise ValueError(f'--batch_size must be a positive int, got {_BATCH.value}.')
    files = prediction.list_inputs(_INPUT.value)
    run = inference.load_run(_WORKDIR.value, checkpoint=_CHECKPOINT.value)
    if run.info.task != 'segmentation' and not recipe.as_trained:
      raise ValueError(
        f'--sliding_window, --scales, --flip and --crf apply to segmentation; '
        f'this run is {run.info.task!r}.'
      )
    os.makedirs(_OUTPUT.value, exist_ok=True)
  except (FileNotFoundError, ValueError, NotADirectoryError) as e:
    sys.exit(f'error: {e}')
  compilation_cache.enable(_CACHE.value)
  platform.announce_platform()
  print(
    f'predicting {len(files)} image(s) with {_WORKDIR.value} (step {run.step}, '
    f'{run.info.task}, {recipe.describe()}) into {_OUTPUT.value}'
  )
  writer = (
    prediction.ClassificationCsv(
      os.path.join(_OUTPUT.value, 'predictions.csv'), run.task.class_names
    )
    if run.info.task == 'classification'
    else None
  )
  progress = ProgressLine(len(files))
  failures, start = [], time.perf_counter()
  for done, path in enumerate(files, start=1):
    try:
      note = _predict_one(run, recipe, path, writer)
      if note:
        progress.break_line()
        print(f'note: {path}: {note}')
    except ValueError as e:
      progress.break_line()
      print(f'error: {e}')
      failures.append((path, str(e)))
    rate = done / max(time.perf_counter() - start, 1e-9)
    progress.update(done, steps_per_sec=rate, images_per_sec=rate, scalars={})
  if writer is not None:
    writer.close()
  print(f'done: {len(files) - len(failures)} of {len(files)} image(s) written to {_OUTPUT.value}')
  if failures:
    print(f'{len(failures)} failed:')
    for path, message in failures:
      print(f'  {path}: {message}')
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
