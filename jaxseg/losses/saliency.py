"""Losses for saliency regression: Euclidean (the lecture's), binary cross-entropy and KL.

Layout: predictions ``(N, H, W, 1)`` or ``(N, H, W)`` (a model's single-channel map), targets
``(N, H, W)`` or ``(N, H, W, 1)`` (ground-truth saliency, already at the prediction's size and in
the scale the loss expects; the saliency task resizes and normalises them).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxseg.ops import _validation as v

__all__ = ['euclidean_loss', 'saliency_bce', 'saliency_kl']


def _as_maps(pred: Any, target: Any) -> tuple[jax.Array, jax.Array]:
  """Checks shapes and returns both as float ``(N, H, W)``."""
  for name, x in (('pred', pred), ('target', target)):
    shape = getattr(x, 'shape', None)
    if shape is None:
      raise TypeError(
        f'{name} must be an array of shape (N, H, W) or (N, H, W, 1), got {type(x).__name__}.'
      )
    if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)):
      raise ValueError(f'{name} must have shape (N, H, W) or (N, H, W, 1), got {tuple(shape)}.')
  if pred.shape[0] == 0 or target.shape[0] == 0:
    raise ValueError(
      f'pred and target must hold at least one map, got an empty batch {tuple(pred.shape)}.'
    )
  pred = pred[..., 0] if pred.ndim == 4 else pred
  target = target[..., 0] if target.ndim == 4 else target
  if pred.shape != target.shape:
    raise ValueError(
      f'pred (N, H, W) = {tuple(pred.shape)} must match target (N, H, W) = '
      f"{tuple(target.shape)}; resize the target to the prediction's size first."
    )
  dtype = jnp.promote_types(pred.dtype, jnp.float32)
  return pred.astype(dtype), target.astype(dtype)


def euclidean_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
  r"""The lecture's Euclidean loss: the mean over the batch of squared Frobenius distances.

  .. math:: L = \frac{1}{n} \sum_{i=1}^{n} \lVert Y_i - f(X_i) \rVert_F^2

  (Caffe's ``EuclideanLoss`` has an extra factor 1/2; this is the lecture's form.)

  Args:
    pred: ``(N, H, W)`` or ``(N, H, W, 1)`` predicted maps ``f(X_i)``.
    target: the same shape, ground-truth maps ``Y_i``.

  Returns:
    Scalar loss.

  Example:
    >>> euclidean_loss(jnp.zeros((2, 2, 2)), jnp.ones((2, 2, 2)))
    Array(4., dtype=float32)
  """
  pred, target = _as_maps(pred, target)
  return jnp.sum((target - pred) ** 2) / pred.shape[0]


def saliency_bce(logits: jax.Array, target: jax.Array) -> jax.Array:
  r"""Pixel-wise binary cross-entropy between sigmoid(logits) and targets in ``[0, 1]``.

  .. math:: L = -\frac{1}{N H W} \sum_{i, p} y_{ip} \log \sigma(z_{ip})
             + (1 - y_{ip}) \log (1 - \sigma(z_{ip}))

  computed stably as ``softplus(z) - y z``. Targets are saliency maps scaled to ``[0, 1]``
  (divided by their maximum), as SALICON's released maps are.

  Args:
    logits: ``(N, H, W)`` or ``(N, H, W, 1)`` pre-sigmoid maps ``z``.
    target: the same shape, values in ``[0, 1]``; others raise ``ValueError`` when concrete
      and make the loss NaN under ``jit``.

  Returns:
    Scalar loss, the mean over every pixel of the batch.

  Example:
    >>> round(float(saliency_bce(jnp.zeros((1, 2, 2)), jnp.ones((1, 2, 2)))), 4)
    0.6931
  """
  logits, target = _as_maps(logits, target)
  # Outside [0, 1] the "cross-entropy" is unbounded below: raise when concrete, NaN under jit.
  v.check_range(target, 'target', low=0.0, high=1.0)
  loss = jnp.mean(jax.nn.softplus(logits) - target * logits)
  return jnp.where(jnp.all((target >= 0) & (target <= 1)), loss, jnp.nan)


def saliency_kl(logits: jax.Array, target: jax.Array, *, eps: float = 1e-12) -> jax.Array:
  r"""KL divergence from the ground-truth distribution to the predicted one, per image.

  The prediction is a distribution over pixels, ``P_i = softmax(z_i)`` over all ``H W`` pixels of
  image ``i``; the target is normalised to sum to 1, ``Q_i = Y_i / sum(Y_i)``.

  .. math:: L = \frac{1}{n} \sum_i \sum_p Q_{ip} (\log Q_{ip} - \log P_{ip})

  with ``0 log 0 = 0``. An all-zero target contributes 0.

  Args:
    logits: ``(N, H, W)`` or ``(N, H, W, 1)`` maps ``z``.
    target: the same shape, non-negative; a negative value raises ``ValueError`` when
      concrete and makes the loss NaN under ``jit``.
    eps: guards the division of an all-zero target.

  Returns:
    Scalar loss in nats.

  Example:
    >>> round(float(saliency_kl(jnp.zeros((1, 1, 2)), jnp.array([[[1., 0.]]]))), 4)
    0.6931
  """
  if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
    raise ValueError(f'eps must be a positive number, got {eps!r}.')
  logits, target = _as_maps(logits, target)
  # A negative target is no distribution: raise when concrete, NaN under jit.
  v.check_range(target, 'target', low=0.0)
  n = logits.shape[0]
  log_p = jax.nn.log_softmax(logits.reshape(n, -1), axis=-1)
  q = target.reshape(n, -1)
  q = q / jnp.maximum(jnp.sum(q, axis=-1, keepdims=True), eps)
  safe_q = jnp.where(q > 0, q, 1.0)
  loss = jnp.sum(jnp.where(q > 0, q * (jnp.log(safe_q) - log_p), 0.0)) / n
  return jnp.where(jnp.all(target >= 0), loss, jnp.nan)
