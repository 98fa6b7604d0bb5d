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

The three registries (models, datasets, tasks) have one style: a table filled by a ``register_*``
call beside each definition, ``get_*(name)`` (an unknown name raises ValueError listing the
names) and ``list_*()``. Task modules live in ``jaxseg/train/tasks/<name>.py``; each registers its
class (with ``name``, ``bind(loss_config, info)`` and ``model_kwargs(info)``) with
:func:`register_task`, and this package imports them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax

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

  def loss(
    self, outputs: Any, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns ``(scalar_loss, dict_of_scalars)`` for one (global) training batch."""

  def eval_sums(
    self, outputs: Any, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ) -> dict[str, jax.Array]:
    """Returns arrays *summed* over the valid examples of ``batch`` (``batch['valid']``).

    Sums merge across batches and devices with ``+``; an average of averages would weigh a padded
    last batch wrongly.
    """

  def finalize(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """Turns the split-wide sums into final metrics (host side, numpy)."""

  def write_images(
    self, workdir: str, step: int, batch: Mapping[str, Any], outputs: Any, *, num_images: int = 4
  ) -> None:
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
    raise ValueError(
      'config.loss.ignore_label is no longer an option: the ignore label is the '
      "dataset's (DatasetInfo.ignore_label)"
    )
  unknown = sorted(set(given) - set(LOSS_DEFAULTS))
  if unknown:
    raise ValueError(f'unknown config.loss option(s) {unknown}; known: {sorted(LOSS_DEFAULTS)}')
  for key, value in given.items():
    if key not in fields and value != LOSS_DEFAULTS[key]:
      raise ValueError(
        f'config.loss.{key}={value!r} has no meaning for task {task!r} (it reads '
        f'{list(fields)}); leave it at {LOSS_DEFAULTS[key]!r}'
      )
  return {key: given.get(key, LOSS_DEFAULTS[key]) for key in fields}


def check_info(task: str, info: Any) -> None:
  """Raises ValueError unless ``info`` (a ``DatasetInfo``) describes a ``task`` dataset."""
  if getattr(info, 'task', None) != task:
    raise ValueError(
      f'task {task!r} cannot be bound to a dataset of task {getattr(info, "task", None)!r}'
    )


_TASKS: dict[str, Any] = {}


def register_task(task_class: Any) -> Any:
  """Registers a task class under its ``name`` (a class decorator); returns it unchanged.

  Raises:
    TypeError: the class lacks ``name``, ``bind`` or ``model_kwargs``.
    ValueError: a task of that name is already registered.
  """
  name = getattr(task_class, 'name', None)
  if (
    not isinstance(name, str)
    or not callable(getattr(task_class, 'bind', None))
    or not callable(getattr(task_class, 'model_kwargs', None))
  ):
    raise TypeError(
      f'register_task: {task_class!r} must have a str name, bind(loss_config, '
      'info) and model_kwargs(info)'
    )
  if name in _TASKS:
    raise ValueError(f'register_task: a task named {name!r} is already registered')
  _TASKS[name] = task_class
  return task_class


def list_tasks() -> list[str]:
  """The registered task names, sorted."""
  return sorted(_TASKS)


def get_task(name: str) -> Any:
  """Returns the task class registered as ``name``.

  Args:
    name: one of :func:`list_tasks` (``'classification'``, ``'segmentation'``, ``'saliency'``).

  Returns:
    The task's class: ``get_task(name).bind(config.loss, info)`` makes the bound :class:`Task`,
    ``get_task(name).model_kwargs(info)`` the model arguments the dataset implies.

  Raises:
    ValueError: ``name`` is not registered (the message lists the names).

  Example:
    >>> get_task('classification').name
    'classification'
  """
  if name not in _TASKS:
    raise ValueError(f'unknown task {name!r}; expected one of {list_tasks()}')
  return _TASKS[name]


# Each module registers its task; imported last, since they use the helpers above.
from jaxseg.train.tasks import classification, saliency, segmentation  # noqa: E402,F401
