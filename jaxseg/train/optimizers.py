"""The optimizer from ``config.optimizer``, composed from optax transformations.

The chain, in order: clip the global gradient norm -> the base optimizer (SGD with momentum or
Nesterov, Adam or AdamW) with its learning-rate schedule and masked weight decay -> per-parameter
learning-rate multipliers chosen by parameter path -> gradient accumulation (``optax.MultiSteps``)
around all of it.

Parameter paths are the ``'/'``-joined keys of the params pytree, e.g. ``'head/conv/bias'``.
"""

import re
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import optax

from jaxseg.train import promotion

OPTIMIZERS = ('sgd', 'adam', 'adamw')
# The scalars make_optimizer accepts as (possibly traced) values: one per population member.
INJECTABLE_HYPERPARAMS = ('weight_decay', 'momentum', 'b1', 'b2', 'eps')
WEIGHT_DECAY_MASKS = ('all', 'kernels', 'none')


def param_path(key_path: Sequence[Any]) -> str:
  """Returns ``'a/b/c'`` for a pytree key path (dict keys, attributes or indices)."""
  parts = []
  for key in key_path:
    for attr in ('key', 'name', 'idx'):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return '/'.join(parts)


def weight_decay_mask(params: Any, *, mask: str) -> Any:
  """Returns a bool pytree: which parameters get weight decay.

  ``'kernels'`` decays parameters of rank >= 2 (convolution and dense kernels) and leaves biases
  and normalisation scales/offsets (rank 1) alone; ``'all'`` decays everything; ``'none'`` nothing.

  Args:
    params: the params pytree (arrays or ``ShapeDtypeStruct``).
    mask: ``'all'``, ``'kernels'`` or ``'none'``.

  Returns:
    A pytree of Python bools with the structure of ``params``.
  """
  if mask not in WEIGHT_DECAY_MASKS:
    raise ValueError(
      f'optimizer.weight_decay_mask must be one of {WEIGHT_DECAY_MASKS}, got {mask!r}'
    )
  return jax.tree.map(lambda p: mask == 'all' or (mask == 'kernels' and p.ndim >= 2), params)


def lr_multiplier_labels(params: Any, rules: Sequence[tuple[str, float]]) -> Any:
  """Labels each parameter with the multiplier of the first rule whose regex matches its path.

  Args:
    params: the params pytree.
    rules: ``((regex, multiplier), ...)``; ``re.search`` against the ``'/'``-joined path. The first
      match wins; unmatched parameters get multiplier 1.

  Returns:
    A pytree of string labels ``'x<multiplier>'`` with the structure of ``params``.

  Example:
    >>> lr_multiplier_labels({'conv': {'kernel': 0, 'bias': 0}}, (('bias$', 2.0),))
    {'conv': {'bias': 'x2.0', 'kernel': 'x1.0'}}
  """
  compiled = [(re.compile(pattern), float(mult)) for pattern, mult in rules]

  def label(key_path, _):
    path = param_path(key_path)
    for pattern, mult in compiled:
      if pattern.search(path):
        return f'x{mult}'
    return 'x1.0'

  return jax.tree_util.tree_map_with_path(label, params)


def _validate_rules(rules: Any) -> tuple[tuple[str, float], ...]:
  try:
    rules = tuple((str(p), float(m)) for p, m in rules)
  except (TypeError, ValueError):
    raise ValueError(
      f'optimizer.lr_multipliers must be a tuple of (regex, multiplier) pairs, got {rules!r}'
    ) from None
  for pattern, mult in rules:
    try:
      re.compile(pattern)
    except re.error as e:
      raise ValueError(f'optimizer.lr_multipliers: bad regex {pattern!r}: {e}') from None
    if mult < 0:
      raise ValueError(
        f'optimizer.lr_multipliers: multiplier for {pattern!r} must be >= 0, got {mult}'
      )
  return rules


def make_optimizer(
  optimizer_config: ml_collections.ConfigDict,
  *,
  schedule: optax.Schedule,
  hyperparams: Mapping[str, Any] | None = None,
) -> optax.GradientTransformation:
  """Builds the optimizer described by ``config.optimizer``.

  SGD follows PyTorch: ``v <- momentum * v + (g + wd * p)``, ``p <- p - lr * v`` (Nesterov:
  ``p <- p - lr * (g + wd * p + momentum * v)``). Adam adds ``wd * p`` to the gradient (L2);
  AdamW decays decoupled: ``p <- p - lr * (adam_update + wd * p)``. A multiplier ``m`` from
  ``lr_multipliers`` scales the whole update of the matching parameters, i.e. their rate is
  ``m * lr`` (Caffe's ``lr_mult``).

  Args:
    optimizer_config: ``config.optimizer`` with ``name``, ``learning_rate`` (used through
      ``schedule``), ``momentum``, ``nesterov``, ``b1``, ``b2``, ``eps``, ``weight_decay``,
      ``weight_decay_mask``, ``lr_multipliers``, ``grad_clip_norm`` (0: off), ``accumulate_steps``.
    schedule: the learning rate as a function of the update count (``make_schedule``).
    hyperparams: optional values for the scalars ``weight_decay``, ``momentum``, ``b1``, ``b2``
      and ``eps`` that replace the config's in the arithmetic; they may be traced (one member's
      values under ``vmap``, see :mod:`jaxseg.train.population`). Which transformations the
      chain holds still follows the config: weight decay is in it when
      ``optimizer.weight_decay > 0`` and momentum when ``optimizer.momentum > 0``, so a member
      whose value is 0 computes ``g + 0 * p`` (exactly ``g``).

  Returns:
    An ``optax.GradientTransformation`` (``optax.MultiSteps`` when accumulating; Adam, AdamW and
    MultiSteps wrapped by :func:`jaxseg.train.promotion.standard_promotion`).

  Example:
    >>> cfg = ml_collections.ConfigDict(dict(name='sgd', learning_rate=0.1, momentum=0.9,
    ...     nesterov=False, weight_decay=0.0, weight_decay_mask='kernels', lr_multipliers=(),
    ...     grad_clip_norm=0.0, accumulate_steps=1))
    >>> tx = make_optimizer(cfg, schedule=optax.constant_schedule(0.1))
  """
  cfg = optimizer_config
  name = cfg.name
  if name not in OPTIMIZERS:
    raise ValueError(f'optimizer.name must be one of {OPTIMIZERS}, got {name!r}')
  weight_decay = float(cfg.get('weight_decay', 0.0))
  if weight_decay < 0:
    raise ValueError(f'optimizer.weight_decay must be >= 0, got {weight_decay}')
  accumulate = int(cfg.get('accumulate_steps', 1))
  if accumulate < 1:
    raise ValueError(f'optimizer.accumulate_steps must be >= 1, got {accumulate}')
  clip = float(cfg.get('grad_clip_norm', 0.0))
  if clip < 0:
    raise ValueError(f'optimizer.grad_clip_norm must be >= 0 (0 = off), got {clip}')
  rules = _validate_rules(cfg.get('lr_multipliers', ()))
  mask_name = cfg.get('weight_decay_mask', 'kernels')
  decay_mask = lambda params: weight_decay_mask(params, mask=mask_name)  # noqa: E731

  values = {
    'weight_decay': weight_decay,
    'momentum': float(cfg.get('momentum', 0.0)),
    **{k: float(cfg[k]) for k in ('b1', 'b2', 'eps') if k in cfg},
  }
  unknown = set(hyperparams or {}) - set(INJECTABLE_HYPERPARAMS)
  if unknown:
    raise ValueError(
      f'hyperparams: {sorted(unknown)} cannot be set per call; expected a subset of '
      f'{INJECTABLE_HYPERPARAMS}'
    )
  values.update(hyperparams or {})

  chain = []
  if clip > 0:
    chain.append(optax.clip_by_global_norm(clip))
  if name in ('sgd', 'adam') and weight_decay > 0:
    # Coupled (L2) decay: added to the gradient before momentum / moments, as in torch.optim.
    chain.append(optax.add_decayed_weights(values['weight_decay'], mask=decay_mask))
  if name == 'sgd':
    momentum = values['momentum'] if float(cfg.get('momentum', 0.0)) else None
    chain.append(optax.sgd(schedule, momentum=momentum, nesterov=bool(cfg.nesterov)))
  elif name == 'adam':
    adam = optax.adam(schedule, b1=values['b1'], b2=values['b2'], eps=values['eps'])
    chain.append(promotion.standard_promotion(adam))
  else:
    adamw = optax.adamw(
      schedule,
      b1=values['b1'],
      b2=values['b2'],
      eps=values['eps'],
      weight_decay=values['weight_decay'],
      mask=decay_mask,
    )
    chain.append(promotion.standard_promotion(adamw))
  if rules:
    multipliers = {f'x{float(m)}': float(m) for _, m in rules}
    multipliers.setdefault('x1.0', 1.0)
    chain.append(
      optax.multi_transform(
        {label: optax.scale(m) for label, m in multipliers.items()},
        lambda params: lr_multiplier_labels(params, rules),
      )
    )
  tx = optax.chain(*chain)
  if accumulate > 1:
    tx = promotion.standard_promotion(optax.MultiSteps(tx, every_k_schedule=accumulate))
  return tx
