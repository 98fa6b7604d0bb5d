"""Checks of an experiment config's values, run before any dataset is built or anything compiled.

Each failure is a :class:`ConfigError` whose message is one line naming the field, the value and
what is allowed, so ``experiments.main`` can print it without a traceback. The loop's own fields
are checked by :func:`jaxseg.train.validate_config`, which calls :func:`check_config`.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from jaxseg.train import optimizers, schedules


class ConfigError(ValueError):
  """A config field holds a value the run cannot use; the message names field, value, allowed."""


def _number(
  config: Any,
  field: str,
  *,
  low: float | None = None,
  high: float | None = None,
  low_open: bool = False,
  high_open: bool = False,
) -> float:
  value = config
  for part in field.split('.'):
    value = value[part]
  if not isinstance(value, numbers.Real) or isinstance(value, bool):
    raise ConfigError(f'config.{field}={value!r} is not a number.')
  below = low is not None and (value <= low if low_open else value < low)
  above = high is not None and (value >= high if high_open else value > high)
  if not math.isfinite(value) or below or above:
    lo = '(-inf' if low is None else ('(' if low_open else '[') + f'{low:g}'
    hi = 'inf)' if high is None else f'{high:g}' + (')' if high_open else ']')
    raise ConfigError(f'config.{field}={value!r} is outside the allowed range {lo}, {hi}.')
  return float(value)


def _int(config: Any, field: str, *, minimum: int) -> int:
  value = config
  for part in field.split('.'):
    value = value[part]
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
    raise ConfigError(f'config.{field}={value!r} must be an int >= {minimum}.')
  return int(value)


def _choice(config: Any, field: str, allowed: tuple[str, ...]) -> str:
  value = config
  for part in field.split('.'):
    value = value[part]
  if value not in allowed:
    raise ConfigError(f'config.{field}={value!r} is not one of {allowed}.')
  return value


def check_config(config: Any) -> None:
  """Checks the optimizer and schedule fields (ranges the libraries would accept silently).

  Args:
    config: an experiment config (``experiments/configs/*.py``).

  Raises:
    ConfigError: naming the first bad field, its value and what is allowed.

  Example:
    >>> import experiments.configs.base as base
    >>> config = base.get_base_config()
    >>> config.optimizer.learning_rate = -0.1
    >>> check_config(config)
    Traceback (most recent call last):
    ...
    jaxseg.train.config_checks.ConfigError: config.optimizer.learning_rate=-0.1 is outside ...
  """
  _choice(config, 'optimizer.name', tuple(optimizers.OPTIMIZERS))
  # 0 is allowed: evaluation-only configs (salnet_mit1003_eval) train nothing.
  _number(config, 'optimizer.learning_rate', low=0.0)
  _number(config, 'optimizer.momentum', low=0.0, high=1.0, high_open=True)
  _number(config, 'optimizer.b1', low=0.0, high=1.0, high_open=True)
  _number(config, 'optimizer.b2', low=0.0, high=1.0, high_open=True)
  _number(config, 'optimizer.eps', low=0.0, low_open=True)
  _number(config, 'optimizer.weight_decay', low=0.0)
  _number(config, 'optimizer.grad_clip_norm', low=0.0)
  if not isinstance(config.optimizer.nesterov, bool):
    raise ConfigError(f'config.optimizer.nesterov={config.optimizer.nesterov!r} must be a bool.')
  accumulate = _int(config, 'optimizer.accumulate_steps', minimum=1)

  total_steps = _int(config, 'total_steps', minimum=1)
  name = _choice(config, 'schedule.name', tuple(schedules.SCHEDULES))
  updates = total_steps // accumulate
  warmup = _int(config, 'schedule.warmup_steps', minimum=0)
  if warmup and warmup >= updates:
    # optax's warmup schedules need at least one update after the warmup.
    raise ConfigError(
      f'config.schedule.warmup_steps={warmup} must be smaller than the number '
      f'of optimizer updates ({updates} = total_steps // accumulate_steps).'
    )
  if name in ('step', 'plateau'):
    _number(
      config, 'schedule.decay_factor', low=0.0, high=1.0, low_open=True, high_open=name == 'plateau'
    )
  if name == 'step':
    boundaries = tuple(config.schedule.boundaries)
    if (
      not boundaries
      or any(not isinstance(b, int) or isinstance(b, bool) for b in boundaries)
      or list(boundaries) != sorted(set(boundaries))
      or boundaries[0] < 1
      or boundaries[-1] >= total_steps
    ):
      raise ConfigError(
        f'config.schedule.boundaries={boundaries!r} must be increasing steps in '
        f'[1, total_steps={total_steps}).'
      )
  if name == 'poly':
    _number(config, 'schedule.power', low=0.0, low_open=True)
  if name in ('poly', 'warmup_cosine'):
    _number(config, 'schedule.end_value', low=0.0)
  if name == 'plateau':
    _int(config, 'schedule.patience', minimum=0)
    _number(config, 'schedule.min_delta', low=0.0, low_open=True)
  if not isinstance(config.best_metric, str) or not config.best_metric:
    raise ConfigError(f'config.best_metric={config.best_metric!r} must name a metric.')
  names = task_metric_names(config)
  # Per-class (iou/<class>) and CRF (crf/<metric>) metrics are named by the data: any 'a/b' passes.
  if names is not None and config.best_metric not in names and '/' not in config.best_metric:
    raise ConfigError(
      f'config.best_metric={config.best_metric!r} is not a metric of task '
      f'{config.task!r}; it reports {sorted(names)}.'
    )


def task_metric_names(config: Any) -> set[str] | None:
  """The evaluation metrics a built-in task reports (without per-class and ``crf/`` ones), or
  None for another task. Kept equal to the tasks' ``finalize`` by tests/test_main_errors.py."""
  from jaxseg.metrics import saliency as sal_metrics  # pylint: disable=g-import-not-at-top

  task = config.get('task')
  if task == 'classification':
    top_k = tuple(config.loss.get('top_k', (1, 5)))
    return (
      {'loss', 'count'} | {f'top{k}_error' for k in top_k} | ({'accuracy'} if 1 in top_k else set())
    )
  if task == 'segmentation':
    return {'pixel_accuracy', 'mean_accuracy', 'mean_iou', 'fw_iou', 'loss'}
  if task == 'saliency':
    return set(sal_metrics.TRAINING_METRICS) | {'loss'}
  return None


def check_workdir(workdir: Any) -> str:
  """Returns ``workdir`` as an absolute path if a run can use it (a folder, or creatable).

  Raises:
    ConfigError: empty, a file, or under a file.
  """
  if not isinstance(workdir, (str, os.PathLike)) or not os.fspath(workdir).strip():
    raise ConfigError(f'--workdir={workdir!r} must name a directory for the run.')
  path = os.path.abspath(os.path.expanduser(os.fspath(workdir)))
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f'--workdir={workdir!r} is a file, not a directory.')
  parent = path
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ConfigError(f'--workdir={workdir!r} lies under {parent!r}, which is a file.')
  if not os.access(parent, os.W_OK):
    raise ConfigError(f'--workdir={workdir!r}: {parent!r} is not writable.')
  return path
