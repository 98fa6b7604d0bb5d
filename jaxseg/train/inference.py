"""Restoring a finished (or running) training run for inference only.

``load_for_inference(workdir)`` reads what the run wrote: ``config.json`` (the resolved config),
``dataset_info.json`` (what the dataset told the run: classes and their names, ignore label,
palette, input normalisation) and one checkpoint's ``params`` and ``batch_stats``. Nothing of
the optimizer, the data pipeline or the mesh is built, and nothing in the workdir changes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

# The data layer is imported inside the functions: the loop imports this module, and its building
# blocks stay usable without the data layer (see jaxseg.train.loop).
DatasetInfo = Any  # jaxseg.data.DatasetInfo

CONFIG_FILE = 'config.json'
DATASET_INFO_FILE = 'dataset_info.json'


def save_dataset_info(info: DatasetInfo, workdir: str) -> str:
  """Writes ``info`` to ``<workdir>/dataset_info.json`` (process 0 only) and returns the path."""
  path = os.path.join(workdir, DATASET_INFO_FILE)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    record = dataclasses.asdict(info)
    if record.get('palette') is not None and not isinstance(record['palette'], str):
      record['palette'] = np.asarray(record['palette']).tolist()
    with open(path + '.tmp', 'w') as f:
      json.dump(record, f, indent=2, sort_keys=True)
    os.replace(path + '.tmp', path)  # never a half-written file
  return path


def _tuples(value: Any) -> Any:
  """JSON lists back to the tuples configs and dataclasses use."""
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return value


def load_dataset_info(workdir: str, config: ml_collections.ConfigDict) -> DatasetInfo:
  """The run's :class:`DatasetInfo`: from ``dataset_info.json``, else asked of the dataset."""
  path = os.path.join(workdir, DATASET_INFO_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      record = _tuples(json.load(f))
    from jaxseg.data import registry  # pylint: disable=g-import-not-at-top

    fields = {f.name for f in dataclasses.fields(registry.DatasetInfo)}
    record['splits'] = dict(record.get('splits') or {})
    return registry.DatasetInfo(**{k: v for k, v in record.items() if k in fields})
  # Runs from before dataset_info.json: the dataset answers (it may need preparing).
  from jaxseg import data  # pylint: disable=g-import-not-at-top

  return data.dataset_info(config.data)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """Reads ``<workdir>/config.json`` back into a (unlocked) ``ConfigDict``.

  Raises:
    FileNotFoundError: naming the workdir when it holds no ``config.json``.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f'workdir {workdir!r} has no {CONFIG_FILE}: is it the --workdir of a training run '
      '(python -m experiments.main)?'
    )
  with open(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def checkpoint_step(workdir: str, config: ml_collections.ConfigDict, checkpoint: Any) -> int:
  """The step ``checkpoint`` names: ``'best'``, ``'latest'`` or a step number.

  ``'best'`` falls back to ``'latest'`` when no checkpoint was saved with metrics (a run that
  never evaluated).

  Raises:
    ValueError: naming the choice and the steps that exist.
  """
  from jaxseg.train import checkpoints  # pylint: disable=g-import-not-at-top

  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'workdir {workdir!r} has no checkpoints/ directory yet.')
  ckpt = checkpoints.Checkpointer(
    directory,
    keep=max(1, int(config.get('keep_checkpoints', 1))),
    best_metric=config.best_metric,
    best_mode=config.best_mode,
  )
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise FileNotFoundError(f'workdir {workdir!r} has no complete checkpoint yet.')
    if checkpoint in ('best', None, ''):
      best_step, _ = ckpt.best()
      return best_step if best_step is not None else steps[-1]
    if checkpoint == 'latest':
      return steps[-1]
    try:
      step = int(checkpoint)
    except (TypeError, ValueError):
      step = None
    if step is None or step not in steps:
      raise ValueError(
        f"checkpoint must be 'best', 'latest' or one of the saved steps {steps}, "
        f'got {checkpoint!r}.'
      )
    return step
  finally:
    ckpt.close()


def make_preprocess(normalization: str) -> Callable[[Any], Any]:
  """The run's input normalisation as a function of RGB pixels in ``[0, 255]``.

  Works on NumPy arrays (host) and on jax arrays and tracers (inside ``jit`` or ``jax.export``).

  Example:
    >>> make_preprocess('none')(np.full((1, 1, 1, 3), 255, np.uint8))[0, 0, 0].tolist()
    [1.0, 1.0, 1.0]
  """
  from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top

  if normalization not in transforms.NORMALIZATIONS:
    raise ValueError(
      f'normalization must be one of {transforms.NORMALIZATIONS}, got {normalization!r}.'
    )

  def preprocess(images: Any) -> Any:
    return transforms.normalize(images, normalization)

  preprocess.__doc__ = (
    f'jaxseg.data.transforms.normalize(images, {normalization!r}): RGB in '
    "[0, 255] -> the network's input."
  )
  return preprocess


def zero_pixel(normalization: str) -> np.ndarray:
  """The RGB pixel (float, ``[0, 255]``) that the normalisation maps to exactly 0.

  Padding raw images with it equals padding network inputs with zeros (what FCN and whole-image
  inference do), so an exported model with built-in preprocessing pads the same way.

  Example:
    >>> zero_pixel('none').tolist()
    [0.0, 0.0, 0.0]
  """
  from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top

  means = {
    'imagenet': transforms.IMAGENET_MEAN * 255.0,
    'caffe_bgr': transforms.CAFFE_BGR_MEAN[::-1],
    'salnet': transforms.SALNET_BGR_MEAN[::-1],
    'none': np.zeros(3),
  }
  if normalization not in means:
    raise ValueError(f'normalization must be one of {tuple(means)}, got {normalization!r}.')
  return np.asarray(means[normalization], np.float64)


def load_for_inference(
  workdir: str, *, checkpoint: Any = 'best'
) -> tuple[Any, dict[str, Any], ml_collections.ConfigDict, Callable[[Any], Any]]:
  """A trained run's model, variables, config and preprocessing, for inference only.

  Args:
    workdir: the run's ``--workdir``.
    checkpoint: ``'best'`` (by the run's ``best_metric``; the latest when none was ranked),
      ``'latest'`` or a step number.

  Returns:
    ``(model, variables, config, preprocess)``: the Flax model as the run built it,
    ``{'params': ..., 'batch_stats': ...}`` as NumPy arrays, the run's config, and
    ``preprocess``, the run's normalisation of RGB ``[0, 255]`` images
    (:func:`make_preprocess`). :func:`load_run` also returns the bound task, the dataset info
    and the step.

  Raises:
    FileNotFoundError, ValueError: naming the workdir or the checkpoint that is missing.

  Example::

    model, variables, config, preprocess = load_for_inference('/tmp/jaxseg/fcn8s_shapes')
    logits, _ = model.apply(variables, preprocess(images))     # images (N, H, W, 3) uint8
  """
  run = load_run(workdir, checkpoint=checkpoint)
  return run.model, run.variables, run.config, run.preprocess


@dataclasses.dataclass(frozen=True)
class InferenceRun:
  """Everything a trained run knows for inference (:func:`load_run`).

  Attributes:
    model: the Flax model.
    variables: ``{'params': ..., 'batch_stats': ...}`` (NumPy).
    config: the run's config.
    info: the dataset's :class:`DatasetInfo` as the run saw it.
    task: the task bound to ``config.loss`` and ``info`` (metrics, palette, class names).
    preprocess: RGB ``[0, 255]`` -> the network's input.
    step: the restored checkpoint's step.
  """

  model: Any
  variables: dict[str, Any]
  config: ml_collections.ConfigDict
  info: DatasetInfo
  task: Any
  preprocess: Callable[[Any], Any]
  step: int


def load_run(workdir: str, *, checkpoint: Any = 'best') -> InferenceRun:
  """:func:`load_for_inference` with the bound task, the dataset info and the step."""
  from jaxseg.train import init_from  # pylint: disable=g-import-not-at-top
  from jaxseg.train import loop  # pylint: disable=g-import-not-at-top
  from jaxseg.train.tasks import get_task  # pylint: disable=g-import-not-at-top

  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'workdir {workdir!r} is not a directory.')
  config = load_config(workdir)
  info = load_dataset_info(workdir, config)
  model = loop.build_model(config, info)
  task = get_task(info.task).bind(config.loss, info)
  step = checkpoint_step(workdir, config, checkpoint)
  variables = init_from.load_checkpoint_variables(os.path.join(workdir, 'checkpoints', str(step)))
  variables = {c: v for c, v in variables.items() if v}
  return InferenceRun(
    model, variables, config, info, task, make_preprocess(info.normalization), step
  )
