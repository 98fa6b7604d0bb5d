"""Learning-rate schedules from ``config.schedule``, built from optax.

Schedules count *optimizer updates*: with ``optimizer.accumulate_steps = k`` a run of
``total_steps`` train steps makes ``total_steps // k`` updates, and ``warmup_steps`` and
``boundaries`` are in updates too.

``reduce-on-plateau`` is not a function of the step: it is ``optax.contrib.reduce_on_plateau`` fed
the validation metric at each evaluation (:func:`update_plateau`); its scale multiplies every update
in the train step. For the other schedules the plateau state stays at scale 1.
"""

from typing import Any

import jax.numpy as jnp
import ml_collections
import optax

from jaxseg.train import promotion

SCHEDULES = ('constant', 'step', 'poly', 'warmup_cosine', 'plateau')


def make_schedule(
  schedule_config: ml_collections.ConfigDict, *, learning_rate: float, total_updates: int
) -> optax.Schedule:
  """Returns the learning rate as a function of the optimizer-update count.

  * ``constant``: ``lr``.
  * ``step``: ``lr * decay_factor ** (number of boundaries <= t)``.
  * ``poly``: ``end + (lr - end) * (1 - t / T) ** power`` (DeepLab's "poly", power 0.9), ``T`` =
    total updates after warm-up.
  * ``warmup_cosine``: linear 0 -> lr over ``warmup_steps``, then
    ``end + (lr - end) * (1 + cos(pi * t / T)) / 2``.
  * ``plateau``: ``lr`` (the plateau scale is applied separately).

  Any schedule but ``warmup_cosine`` gets a linear warm-up from 0 when ``warmup_steps > 0``.

  Args:
    schedule_config: ``config.schedule`` (``name``, ``warmup_steps``, ``decay_factor``,
      ``boundaries``, ``power``, ``end_value``).
    learning_rate: the base rate ``lr``.
    total_updates: number of optimizer updates in the run.

  Returns:
    An ``optax.Schedule`` (traced under standard dtype promotion:
    :func:`jaxseg.train.promotion.standard_promotion_schedule`).

  Raises:
    ValueError: for an unknown name or inconsistent fields.

  Example:
    >>> cfg = ml_collections.ConfigDict(dict(name='step', warmup_steps=0, decay_factor=0.1,
    ...     boundaries=(10,), power=0.9, end_value=0.0))
    >>> float(make_schedule(cfg, learning_rate=1.0, total_updates=20)(15))
    0.1...
  """
  name = schedule_config.name
  warmup = int(schedule_config.get('warmup_steps', 0))
  if name not in SCHEDULES:
    raise ValueError(f'schedule.name must be one of {SCHEDULES}, got {name!r}')
  if warmup < 0 or warmup > total_updates:
    raise ValueError(f'schedule.warmup_steps must be in [0, {total_updates}], got {warmup}')
  if total_updates < 1:
    raise ValueError(f'the run must make at least one optimizer update, got {total_updates}')
  return promotion.standard_promotion_schedule(
    _optax_schedule(name, schedule_config, learning_rate, total_updates, warmup)
  )


def _optax_schedule(name, schedule_config, learning_rate, total_updates, warmup) -> optax.Schedule:
  end_value = float(schedule_config.get('end_value', 0.0))
  if name == 'warmup_cosine':
    return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=learning_rate,
      warmup_steps=warmup,
      decay_steps=total_updates,
      end_value=end_value,
    )
  decay_updates = max(total_updates - warmup, 1)
  if name in ('constant', 'plateau'):
    main = optax.constant_schedule(learning_rate)
  elif name == 'step':
    boundaries = tuple(int(b) for b in schedule_config.boundaries)
    if list(boundaries) != sorted(boundaries) or any(b <= 0 for b in boundaries):
      raise ValueError(f'schedule.boundaries must be increasing positive steps, got {boundaries}')
    factor = float(schedule_config.decay_factor)
    # Boundaries are absolute update counts; the joined schedule sees counts relative to warm-up.
    main = optax.piecewise_constant_schedule(
      learning_rate, {max(b - warmup, 0): factor for b in boundaries}
    )
  else:  # poly
    main = optax.polynomial_schedule(
      init_value=learning_rate,
      end_value=end_value,
      power=float(schedule_config.power),
      transition_steps=decay_updates,
    )
  if warmup == 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup), main], [warmup])


def make_plateau(
  schedule_config: ml_collections.ConfigDict,
) -> optax.GradientTransformationExtraArgs:
  """Returns ``optax.contrib.reduce_on_plateau`` configured from ``config.schedule``.

  After ``patience`` evaluations without the metric improving by more than ``min_delta``, the scale
  is multiplied by ``decay_factor`` (AlexNet: divide by 10 when validation accuracy plateaus).

  Args:
    schedule_config: ``config.schedule`` (``patience``, ``decay_factor``, ``min_delta``).

  Returns:
    The transformation; only its ``init`` and ``update(..., value=)`` are used.
  """
  factor = float(schedule_config.get('decay_factor', 0.1))
  min_delta = float(schedule_config.get('min_delta', 1e-4))
  if not 0.0 < factor < 1.0:
    raise ValueError(f'schedule.decay_factor must be in (0, 1) for plateau, got {factor}')
  if min_delta <= 0.0:
    raise ValueError(f'schedule.min_delta must be > 0, got {min_delta}')
  plateau = optax.contrib.reduce_on_plateau(
    factor=factor, patience=int(schedule_config.get('patience', 5)), rtol=0.0, atol=min_delta
  )
  return promotion.standard_promotion(plateau)


def update_plateau(
  plateau_tx: optax.GradientTransformationExtraArgs, plateau_state: Any, *, metric: float, mode: str
) -> Any:
  """Feeds one validation metric to the plateau state and returns the new state.

  Args:
    plateau_tx: from :func:`make_plateau`.
    plateau_state: the current ``ReduceLROnPlateauState``.
    metric: the validation metric (``config.best_metric``).
    mode: ``'max'`` if larger is better (accuracy, mIoU), ``'min'`` otherwise (loss).

  Returns:
    The updated state; ``state.scale`` is the new multiplier.
  """
  if mode not in ('max', 'min'):
    raise ValueError(f"best_mode must be 'max' or 'min', got {mode!r}")
  value = -metric if mode == 'max' else metric  # optax's plateau minimises.
  _, new_state = plateau_tx.update({}, plateau_state, value=jnp.float32(value))
  return new_state
