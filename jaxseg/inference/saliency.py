"""Evaluating saliency models over a dataset: a stateful evaluator and the lecture's table.

The scores come from :func:`jaxseg.metrics.saliency.per_image_scores`, the same function the
training task's evaluation uses, so a model scored here and in training gets the same numbers
(each map min-max scaled as the benchmark receives it, per-image means over the images with a
defined score).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.metrics import saliency as sal_metrics

__all__ = ['SaliencyEvaluator', 'TABLE_COLUMNS', 'format_table']

TABLE_COLUMNS = (
  ('similarity', 'Similarity'),
  ('cc', 'CC'),
  ('auc_shuffled', 'AUC shuffled'),
  ('auc_borji', 'AUC Borji'),
  ('auc_judd', 'AUC Judd'),
)
_WITHOUT_BASELINE = tuple(m for m in sal_metrics.ALL_METRICS if m != 'info_gain')

# Shared by every evaluator, so a new evaluator reuses the compilations of the previous one.
_scores_jit = jax.jit(
  sal_metrics.per_image_scores,
  static_argnames=('metrics', 'n_splits', 'max_other_fixations', 'host_callbacks'),
)


@dataclasses.dataclass
class SaliencyEvaluator:
  """Accumulates every saliency metric over a dataset, batch by batch.

  Per-image scores are averaged over images whose score is not NaN (the benchmark averages
  per-image scores; an image without fixations has none). Shuffled AUC takes as negatives the
  union of the fixation maps of ``n_other`` other images of the same batch, chosen at random
  (Borji et al. use 10); a batch of one image has no others and gives NaN. Its candidate cap
  (see :func:`jaxseg.metrics.saliency.auc_shuffled`) is ``max_other_fixations``, or by default
  the smallest power of two that holds every other-fixation map of the batch, so the draw is
  always exact.

  Example::

    evaluator = SaliencyEvaluator(key=jax.random.key(0))
    for batch in batches:  # {'fixations' (B,H,W), 'density' (B,H,W)} plus the predictions
      evaluator.update(predictions, batch['fixations'], batch['density'])
    print(format_table({'SalNet': evaluator.result()}))
  """

  key: jax.Array
  n_splits: int = 100
  n_other: int = 10
  max_other_fixations: int | None = None

  def __post_init__(self):
    sal_metrics._check_key(self.key)  # pylint: disable=protected-access
    sal_metrics._check_splits(self.n_splits, 0.1)  # pylint: disable=protected-access
    if not isinstance(self.n_other, int) or isinstance(self.n_other, bool) or self.n_other < 1:
      raise ValueError(f'n_other must be a positive int, got {self.n_other!r}.')
    cap = self.max_other_fixations
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
      raise ValueError(f'max_other_fixations must be a positive int or None, got {cap!r}.')
    self._sums = None

  def _other_maps(self, fixations, key) -> jax.Array:
    b = fixations.shape[0]
    if b < 2:
      return jnp.zeros_like(fixations)
    n_other = min(self.n_other, b - 1)
    # For image i, n_other distinct images j != i: a random permutation of the others.
    scores = jax.random.uniform(key, (b, b)) + jnp.eye(b) * 2.0  # self sorts last
    picks = jnp.argsort(scores, axis=1)[:, :n_other]
    return jnp.max(jnp.asarray(fixations)[picks] > 0, axis=1).astype(jnp.uint8)

  def update(self, saliency, fixations, density, valid=None, baseline=None) -> None:
    """Adds a batch.

    Args:
      saliency: ``(B, h, w)`` or ``(B, h, w, 1)`` predicted maps (any range or sign: each is
        min-max scaled as the benchmark receives it).
      fixations: ``(B, H, W)`` binary fixation maps.
      density: ``(B, H, W)`` ground-truth densities.
      valid: optional ``(B,)`` bools; padding examples (False) are skipped.
      baseline: optional ``(h', w')`` or ``(B, h', w')`` baseline map (e.g. a centre bias) for
        ``info_gain``; without it ``info_gain`` is not computed (NaN in :meth:`result`).
    """
    saliency = jnp.asarray(saliency)
    if saliency.ndim == 4 and saliency.shape[-1] == 1:
      saliency = saliency[..., 0]
    if saliency.ndim != 3 or np.ndim(fixations) != 3 or np.ndim(density) != 3:
      raise ValueError(
        'saliency, fixations and density must be batches (B, H, W); got shapes '
        f'{saliency.shape}, {np.shape(fixations)}, {np.shape(density)}.'
      )
    batch = saliency.shape[0]
    # valid always an array, info gain apart: one compilation serves every batch of a shape.
    valid = jnp.ones((batch,), bool) if valid is None else jnp.asarray(valid, bool)
    finite = np.isfinite(np.asarray(saliency)).reshape(batch, -1).all(axis=1)
    if not finite[np.asarray(valid)].all():
      bad = np.flatnonzero(np.asarray(valid) & ~finite).tolist()
      # Averaging only the finite maps would report a model that emits NaN as a good one.
      raise ValueError(
        f'saliency holds NaN or infinity in image(s) {bad[:10]} of this batch '
        '(batch indices); a non-finite prediction cannot be scored.'
      )
    self.key, k_other, k_scores = jax.random.split(self.key, 3)
    fixations = jnp.asarray(fixations)
    other = self._other_maps(fixations, k_other)
    cap = self.max_other_fixations
    if cap is None:
      # The smallest power of two holding every other-fixation map of the batch: an exact draw
      # at a fraction of the cost of the default H * W candidates, with few recompilations.
      most = max(int(jnp.max(jnp.sum(other > 0, axis=(1, 2)))), 1)
      cap = 1 << (most - 1).bit_length()
    sums = _scores_jit(
      saliency,
      fixations,
      density,
      key=k_scores,
      valid=valid,
      metrics=_WITHOUT_BASELINE,
      other_fixations=other,
      n_splits=self.n_splits,
      max_other_fixations=cap,
    )
    if baseline is not None:
      baseline = jnp.asarray(baseline)
      if baseline.ndim == 2:
        baseline = jnp.broadcast_to(baseline, (batch,) + baseline.shape)
      sums = {
        **sums,
        **_scores_jit(
          saliency,
          fixations,
          density,
          key=k_scores,
          valid=valid,
          metrics=('info_gain',),
          baseline=baseline,
        ),
      }
    sums = {name: float(value) for name, value in jax.device_get(sums).items()}
    if self._sums is None:
      self._sums = sums
    else:
      self._sums = {
        name: self._sums.get(name, 0.0) + sums.get(name, 0.0)
        for name in set(self._sums) | set(sums)
      }

  def result(self) -> dict[str, float]:
    """The mean of each metric over the images seen (NaN if none had a score)."""
    if self._sums is None:
      return {name: math.nan for name in sal_metrics.ALL_METRICS}
    sums = {f'{m}_sum': 0.0 for m in sal_metrics.ALL_METRICS} | self._sums
    return sal_metrics.mean_scores(sums, sal_metrics.ALL_METRICS)


def format_table(
  results: Mapping[str, Mapping[str, float]], columns: Sequence[tuple[str, str]] = TABLE_COLUMNS
) -> str:
  """The lecture's table: one row per model, columns Similarity, CC, AUC shuffled/Borji/Judd.

  Args:
    results: model name -> {metric name -> value}, e.g. ``{'SalNet deep': evaluator.result()}``.
    columns: ``(metric key, header)`` pairs, in order.

  Returns:
    A plain-text table with values to three decimals (``-`` for a missing metric).

  Example:
    >>> print(format_table({'Centre': {'cc': 0.5}}, columns=(('cc', 'CC'),)))
    Model       CC
    --------------
    Centre   0.500
  """
  names = list(results)
  width = max([len('Model')] + [len(n) for n in names])
  header = '  '.join(
    ['Model'.ljust(width)] + [title.rjust(max(len(title), 6)) for _, title in columns]
  )
  lines = [header, '-' * len(header)]
  for name in names:
    cells = [name.ljust(width)]
    for key, title in columns:
      value = results[name].get(key)
      text = '-' if value is None else f'{value:.3f}'
      cells.append(text.rjust(max(len(title), 6)))
    lines.append('  '.join(cells))
  return '\n'.join(lines)
