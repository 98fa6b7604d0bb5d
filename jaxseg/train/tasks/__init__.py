"""Tasks adapt a model family (classification, segmentation, saliency) to the training loop.

A task owns what differs between families: the loss, the metric *sums* accumulated over an
evaluation split, how those sums become final metrics, and optional example images. The loop
(`jaxseg.train.loop`) owns everything else.

Task modules live in ``jaxseg/train/tasks/<name>.py`` and expose a module-level ``TASK`` object
satisfying :class:`Task`. They are imported lazily by :func:`get_task`, so a task whose module is
missing fails with a clear error only when it is asked for.
"""

import importlib
from typing import Any, Mapping, Protocol, runtime_checkable

import jax
import ml_collections

KNOWN_TASKS = ('classification', 'segmentation', 'saliency')


@runtime_checkable
class Task(Protocol):
  """What the training loop needs from a model family.

  Every method is pure and traced inside ``jax.jit`` except :meth:`finalize` and
  :meth:`write_images`, which run on the host. ``outputs`` are already cast to float32.
  """

  name: str

  def loss(self, outputs: Any, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array],
           config: ml_collections.ConfigDict) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns ``(scalar_loss, dict_of_scalars)`` for one (global) training batch."""

  def eval_sums(self, outputs: Any, endpoints: Mapping[str, jax.Array],
                batch: Mapping[str, jax.Array],
                config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """Returns arrays *summed* over the valid examples of ``batch`` (``batch['valid']``).

    Sums merge across batches and devices with ``+``; an average of averages would weigh a padded
    last batch wrongly.
    """

  def finalize(self, sums: Mapping[str, Any],
               config: ml_collections.ConfigDict) -> dict[str, float]:
    """Turns the split-wide sums into final metrics (host side, numpy)."""

  def write_images(self, workdir: str, step: int, batch: Mapping[str, Any], outputs: Any,
                   config: ml_collections.ConfigDict) -> None:
    """Optionally writes example PNGs under ``workdir``; may do nothing."""


def get_task(name: str) -> Task:
  """Returns the task called ``name``, importing ``jaxseg.train.tasks.<name>`` on first use.

  Args:
    name: one of ``'classification'``, ``'segmentation'``, ``'saliency'`` (or any module under
      ``jaxseg/train/tasks`` defining ``TASK``).

  Returns:
    The module's ``TASK`` object.

  Raises:
    ValueError: if ``name`` is not a valid module name or the module does not exist.
    TypeError: if the module's ``TASK`` does not satisfy :class:`Task`.

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
  if not isinstance(task, Task):
    raise TypeError(f'{module_name}.TASK must implement jaxseg.train.tasks.Task, got {task!r}')
  return task
