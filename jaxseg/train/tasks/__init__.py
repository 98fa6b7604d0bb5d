"""Tasks adapt a model family (classification, segmentation, saliency) to the training loop.

A task owns what differs between families: the loss, the metric *sums* accumulated over an
evaluation split, how those sums become final metrics, and optional example images. The loop
(:mod:`jaxseg.train.loop`) owns everything else.

A task is bound once, before anything is traced, to the experiment's loss options and to what the
dataset knows about itself::

    info = jaxseg.data.dataset_info(config.data)
    task = get_task(info.task).bind(config.loss, info)

The bound task is a frozen dataclass: it holds the ignore label, the class count and names, the
palette and the input normalisation (all from :class:`jaxseg.data.DatasetInfo`) and its validated
loss options (from ``config.loss``), so the loop, the steps and the image writers never read the
config again. Bad options raise here, naming the field, not inside ``jit``.

Task modules live in ``jaxseg/train/tasks/<name>.py`` and expose a module-level ``TASK``: the
task's class, with ``name``, ``bind(loss_config, info)`` and ``model_kwargs(info)``. They are
imported on first use by :func:`get_task`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax

KNOWN_TASKS = ('classification', 'segmentation', 'saliency')

# Every loss option with its default: ``experiments/configs/base.py`` declares exactly these (a
# test holds the two together), so any of them can be overridden under the locked config.
LOSS_DEFAULTS: dict[str, Any] = {
    'label_smoothing': 0.0,  # classification
    'top_k': (1, 5),  # classification: the top-k errors reported
    'aux_weight': 0.3,  # classification, segmentation: weight of each auxiliary head's loss
    'normalize': True,  # segmentation: mean over valid pixels (False: FCN's per-image sum)
    'class_weights': (),  # segmentation: () or one weight per class
    'name': 'euclidean',  # saliency: 'euclidean' | 'bce' | 'kl'
    'target': 'max',  # saliency: 'max' | 'sum' | 'centered'
}


@runtime_checkable
class Task(Protocol):
  """What the training loop needs from a bound task.

  :meth:`loss` and :meth:`eval_sums` are pure and traced inside ``jax.jit``; :meth:`finalize` and
  :meth:`write_images` run on the host. ``outputs`` are already cast to float32.
  """

  name: str

  def loss(self, outputs: Any, endpoints: Mapping[str, jax.Array],
           batch: Mapping[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns ``(scalar_loss, dict_of_scalars)`` for one (global) training batch."""

  def eval_sums(self, outputs: Any, endpoints: Mapping[str, jax.Array],
                batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Returns arrays *summed* over the valid examples of ``batch`` (``batch['valid']``).

    Sums merge across batches and devices with ``+``; an average of averages would weigh a padded
    last batch wrongly.
    """

  def finalize(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """Turns the split-wide sums into final metrics (host side, numpy)."""

  def write_images(self, workdir: str, step: int, batch: Mapping[str, Any], outputs: Any, *,
                   num_images: int = 4) -> None:
    """Optionally writes example PNGs under ``workdir``; may do nothing."""


def loss_options(task: str, fields: tuple[str, ...], loss_config: Any) -> dict[str, Any]:
  """The loss options ``fields`` of ``task`` from ``config.loss``, defaults filled in.

  Args:
    task: the task's name (for messages).
    fields: the options this task reads (keys of :data:`LOSS_DEFAULTS`).
    loss_config: ``config.loss`` (a ``ConfigDict`` or mapping), or None for all defaults.

  Returns:
    ``{field: value}`` for each of ``fields``.

  Raises:
    ValueError: for an option no task defines, ``ignore_label`` (the dataset's), or an option of
      another task set to a non-default value (it would be silently ignored).
  """
  if loss_config is None:
    given = {}
  elif hasattr(loss_config, 'to_dict'):
    given = loss_config.to_dict()
  elif isinstance(loss_config, Mapping):
    given = dict(loss_config)
  else:
    raise TypeError(f'config.loss must be a ConfigDict or a mapping, got {loss_config!r}')
  if 'ignore_label' in given:
    raise ValueError('config.loss.ignore_label is no longer an option: the ignore label is the '
                     "dataset's (DatasetInfo.ignore_label)")
  unknown = sorted(set(given) - set(LOSS_DEFAULTS))
  if unknown:
    raise ValueError(f'unknown config.loss option(s) {unknown}; known: {sorted(LOSS_DEFAULTS)}')
  for key, value in given.items():
    if key not in fields and value != LOSS_DEFAULTS[key]:
      raise ValueError(f'config.loss.{key}={value!r} has no meaning for task {task!r} (it reads '
                       f'{list(fields)}); leave it at {LOSS_DEFAULTS[key]!r}')
  return {key: given.get(key, LOSS_DEFAULTS[key]) for key in fields}


def check_info(task: str, info: Any) -> None:
  """Raises ValueError unless ``info`` (a ``DatasetInfo``) describes a ``task`` dataset."""
  if getattr(info, 'task', None) != task:
    raise ValueError(f'task {task!r} cannot be bound to a dataset of task '
                     f'{getattr(info, "task", None)!r}')


def get_task(name: str) -> Any:
  """Returns the task class called ``name``, importing ``jaxseg.train.tasks.<name>`` on first use.

  Args:
    name: one of ``'classification'``, ``'segmentation'``, ``'saliency'`` (or any module under
      ``jaxseg/train/tasks`` defining ``TASK``).

  Returns:
    The module's ``TASK`` class: ``TASK.bind(config.loss, info)`` makes the bound :class:`Task`,
    ``TASK.model_kwargs(info)`` the model arguments the dataset implies.

  Raises:
    ValueError: if ``name`` is not a valid module name or the module does not exist.
    TypeError: if the module's ``TASK`` has no ``bind``.

  Example:
    >>> get_task('classification').name
    'classification'
  """
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f'task name must be an identifier such as {KNOWN_TASKS}, got {name!r}')
  module_name = f'{__name__}.{name}'
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name != module_name:
      raise
    raise ValueError(
        f'unknown task {name!r}: no module {module_name} (known tasks: {KNOWN_TASKS})') from None
  task = getattr(module, 'TASK', None)
  if not callable(getattr(task, 'bind', None)) or not callable(getattr(task, 'model_kwargs', None)):
    raise TypeError(f'{module_name}.TASK must have bind(loss_config, info) and model_kwargs(info), '
                    f'got {task!r}')
  return task
