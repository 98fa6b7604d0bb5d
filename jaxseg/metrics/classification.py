"""Classification metrics as sums over a split: top-k correct counts, finalised to errors.

Per-batch counts are merged with ``+`` across batches and devices and finalised once, so the
error of a split does not depend on how it was batched or padded.
"""

import math

import jax
import jax.numpy as jnp

from jaxseg.ops import _validation as v


def top_k_correct(
  logits: jax.Array, labels: jax.Array, *, k: int = 1, weights: jax.Array | None = None
) -> jax.Array:
  r"""Counts the examples whose label is among the `k` highest logits.

  .. math::
    c = \sum_n w_n\,[\#\{j : z_{n,j} > z_{n,y_n}\} < k]

  Ties are resolved in the example's favour (a label tied with the k-th score counts as
  correct), so the count does not depend on the order of classes.

  Args:
    logits: ``(N, K)`` scores.
    labels: ``(N,)`` integer classes in ``[0, K)`` (checked when concrete).
    k: ``1 <= k <= K``.
    weights: optional ``(N,)`` weights, e.g. the ``valid`` mask of a padded eval batch.

  A row holding NaN is never correct: concrete logits with NaN raise ``ValueError``; under
  ``jit`` the row counts as wrong (NaN compares false, so it would otherwise rank first).

  Returns:
    A float32 scalar: the (weighted) number of correct examples.

  Example:
    >>> float(top_k_correct(jnp.array([[0., 2., 1.]]), jnp.array([2]), k=2))
    1.0
  """
  v.check_logits_and_labels(logits, labels, 'top_k_correct')
  if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= logits.shape[1]:
    raise ValueError(f'top_k_correct: k must be an int in [1, {logits.shape[1]}], got {k!r}')
  if weights is not None and getattr(weights, 'shape', None) != labels.shape:
    raise ValueError(
      f'top_k_correct: weights must have shape {labels.shape}, got '
      f'{getattr(weights, "shape", None)}'
    )
  v.check_finite(logits, 'top_k_correct: logits', allow_inf=True)  # -inf masks a class
  in_range = (labels >= 0) & (labels < logits.shape[1])
  label_score = jnp.take_along_axis(logits, jnp.where(in_range, labels, 0)[:, None], axis=-1)
  rank = jnp.sum(logits > label_score, axis=-1)
  # A wrong label under jit makes the count NaN, never a silently clamped class.
  correct = jnp.where(in_range, (rank < k).astype(jnp.float32), jnp.nan)
  correct = jnp.where(jnp.any(jnp.isnan(logits), axis=-1), 0.0, correct)
  if weights is not None:
    # Zero-weight (padding) examples count nothing, whatever their label holds.
    weights = jnp.asarray(weights).astype(jnp.float32)  # bool or int masks too, cast explicitly
    correct = jnp.where(weights != 0, correct * weights, 0.0)
  return jnp.sum(correct)


def top_k_error(correct, count) -> float:
  """Finalises a split-wide count: ``1 - correct / count``.

  Args:
    correct: the summed :func:`top_k_correct` of the split.
    count: the number of (valid) examples of the split, > 0.

  Returns:
    The top-k error as a Python float.

  Example:
    >>> round(top_k_error(correct=912.0, count=1000), 3)
    0.088
  """
  count = float(count)
  if not count > 0:
    raise ValueError(f'top_k_error: count must be positive, got {count!r}')
  correct = float(correct)
  if not 0.0 <= correct <= count and not math.isnan(correct):
    raise ValueError(f'top_k_error: correct must lie in [0, count={count:g}], got {correct!r}')
  # A NaN count of correct examples (a label out of range under jit) stays NaN.
  return 1.0 - correct / count
