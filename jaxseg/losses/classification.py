"""Losses for image classification: softmax cross-entropy and GoogLeNet's auxiliary weighting.

Layout: logits ``(N, K)``, labels ``(N,)`` integer class indices in ``[0, K)``.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxseg.ops import _validation as v


def softmax_cross_entropy(
  logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0
) -> jax.Array:
  r"""Per-example softmax cross-entropy with optional label smoothing.

  .. math::
    \ell_n = -\sum_k q_{n,k} \log \mathrm{softmax}(z_n)_k,\qquad
    q_{n,k} = (1 - \varepsilon)\,[k = y_n] + \varepsilon / K

  (Szegedy et al., 2016, Sec. 7), the definition of ``torch.nn.functional.cross_entropy(...,
  label_smoothing=eps, reduction='none')``. Computed in float32 whatever the logits' dtype.

  Args:
    logits: ``(N, K)`` unnormalised scores.
    labels: ``(N,)`` integer classes in ``[0, K)``; another value raises ``ValueError`` when
      the labels are concrete and makes that example's loss NaN under ``jit``.
    label_smoothing: ``eps`` in ``[0, 1]``.

  Returns:
    ``(N,)`` float32 losses.

  Example:
    >>> [round(float(l), 4) for l in softmax_cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))]
    [1.3863, 1.3863]
  """
  v.check_logits_and_labels(logits, labels, 'softmax_cross_entropy')
  label_smoothing = v.check_number(
    label_smoothing, 'softmax_cross_entropy: label_smoothing', low=0.0, high=1.0
  )
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  in_range = (labels >= 0) & (labels < logits.shape[1])
  true_class = -jnp.take_along_axis(log_probs, jnp.where(in_range, labels, 0)[:, None], axis=-1)[
    :, 0
  ]
  # A wrong label under jit is loud (NaN), never clamped to a valid class.
  true_class = jnp.where(in_range, true_class, jnp.nan)
  if not label_smoothing:
    return true_class
  uniform = -jnp.mean(log_probs, axis=-1)
  return (1.0 - label_smoothing) * true_class + label_smoothing * uniform


def classification_loss_with_aux(
  logits: jax.Array,
  aux_logits: Sequence[jax.Array],
  labels: jax.Array,
  *,
  aux_weight: float = 0.3,
  label_smoothing: float = 0.0,
) -> jax.Array:
  r"""Mean cross-entropy of the main head plus weighted auxiliary heads (GoogLeNet).

  .. math::
    L = \overline{\ell}(z) + w \sum_a \overline{\ell}(z^{(a)})

  where :math:`\overline{\ell}` is the batch mean of :func:`softmax_cross_entropy`. Szegedy
  et al. (2015, Sec. 5) train with the two auxiliary classifiers' losses weighted by
  ``w = 0.3`` and discard them at inference.

  Args:
    logits: ``(N, K)`` main logits.
    aux_logits: a sequence of ``(N, K)`` auxiliary logits (may be empty).
    labels: ``(N,)`` integer classes.
    aux_weight: ``w``, non-negative.
    label_smoothing: passed to every head's cross-entropy.

  Returns:
    A scalar loss.

  Example:
    >>> logits, aux = jnp.zeros((2, 4)), jnp.zeros((2, 4))   # every head: log 4 per example
    >>> round(float(classification_loss_with_aux(logits, [aux, aux], jnp.array([0, 3]))), 4)
    2.2181
  """
  v.check_number(aux_weight, 'classification_loss_with_aux: aux_weight', low=0.0)
  if getattr(logits, 'shape', (1,))[0] == 0:
    # The mean of no examples is NaN, which would stop training for no fault of the model.
    raise ValueError('classification_loss_with_aux: logits is an empty batch (N = 0).')
  for i, aux in enumerate(aux_logits):
    if getattr(aux, 'shape', None) != logits.shape:
      raise ValueError(
        f'classification_loss_with_aux: aux_logits[{i}] has shape '
        f'{getattr(aux, "shape", None)}, expected {logits.shape}'
      )
  total = jnp.mean(softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing))
  for aux in aux_logits:
    total = total + aux_weight * jnp.mean(
      softmax_cross_entropy(aux, labels, label_smoothing=label_smoothing)
    )
  return total
