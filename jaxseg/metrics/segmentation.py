"""Semantic segmentation metrics: a confusion matrix that sums, and the scores derived from it.

A split is evaluated by summing :func:`confusion_matrix` over batches, devices and hosts (it is a
count, so ``+`` merges it) and calling :func:`scores` once at the end. This is how FCN's
``score.py`` (shelhamer/fcn.berkeleyvision.org) accumulates its histogram, and it makes the mean
IoU of a split exact, unlike an average of per-batch IoUs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.ops import _validation as v


def confusion_matrix(
  labels: jax.Array,
  preds: jax.Array,
  num_classes: int,
  *,
  ignore_label: int = 255,
  mask: Any = None,
) -> jax.Array:
  r"""Counts pixels by (ground-truth class, predicted class).

  .. math:: M_{ij} = \#\{p : y_p = i,\ \hat y_p = j,\ p \text{ counted}\}

  A pixel is counted when its label lies in ``[0, num_classes)``, is not ``ignore_label`` and
  ``mask`` (if given) is true there; this is score.py's ``fast_hist``, which drops labels
  outside ``[0, n)``. When ``labels`` are concrete, a label outside ``[0, num_classes)`` other
  than ``ignore_label`` raises ``ValueError`` rather than being dropped silently; under ``jit``
  such pixels are not counted. Predictions must lie in ``[0, num_classes)`` (an ``argmax``).

  Jit-able (a ``bincount`` of length ``num_classes**2``); the result of several batches,
  devices or hosts is their sum.

  Args:
    labels: integer ground truth of any shape, e.g. ``(N, H, W)``.
    preds: integer predictions of the same shape.
    num_classes: number of classes ``C``.
    ignore_label: label of pixels that are not counted (255 by default).
    mask: optional boolean array broadcastable to ``labels``; false pixels are not counted
      (e.g. ``valid[:, None, None]`` for padded examples of the last eval batch).

  Returns:
    ``(C, C)`` int32 counts, rows = ground truth, columns = prediction.

  Example:
    >>> confusion_matrix(jnp.array([0, 0, 1, 255]), jnp.array([0, 1, 1, 0]), 2).tolist()
    [[1, 1], [0, 1]]
  """
  if (
    not isinstance(num_classes, (int, np.integer))
    or isinstance(num_classes, bool)
    or num_classes < 1
  ):
    raise ValueError(f'num_classes must be a positive int, got {num_classes!r}.')
  num_classes = int(num_classes)
  labels = jnp.asarray(labels) if not isinstance(labels, jax.Array) else labels
  preds = jnp.asarray(preds) if not isinstance(preds, jax.Array) else preds
  if labels.shape != preds.shape:
    raise ValueError(f'labels shape {labels.shape} and preds shape {preds.shape} must match.')
  for name, value in (('labels', labels), ('preds', preds)):
    if not jnp.issubdtype(value.dtype, jnp.integer):
      raise TypeError(f'{name} must be an integer array, got dtype {value.dtype}.')
  ignore_label = v.check_ignore_label(ignore_label)
  if mask is not None:
    mask_shape = np.shape(mask)
    try:
      np.broadcast_shapes(mask_shape, labels.shape)
    except ValueError:
      raise ValueError(
        f'mask of shape {mask_shape} does not broadcast to labels shape {labels.shape} '
        '(e.g. valid[:, None, None] for (N, H, W) labels).'
      ) from None
    if np.broadcast_shapes(mask_shape, labels.shape) != labels.shape:
      raise ValueError(
        f'mask of shape {mask_shape} must broadcast to labels shape {labels.shape}, not enlarge it.'
      )
    mask = jnp.broadcast_to(jnp.asarray(mask, bool), labels.shape)
  # One compiled computation, also outside jit: op-by-op dispatch over 26 M pixels cost ~1 s.
  # Dispatched first (asynchronously), so that the host's range checks of concrete inputs run
  # while it counts; a bad label still raises before anything is returned.
  counts = _confusion_counts(
    labels, preds, mask, num_classes=num_classes, ignore_label=ignore_label
  )
  v.check_label_range(labels, num_classes, ignore_label=ignore_label)
  v.check_label_range(preds, num_classes, name='preds')
  return counts


@functools.partial(jax.jit, static_argnames=('num_classes', 'ignore_label'))
def _confusion_counts(labels, preds, mask, *, num_classes: int, ignore_label: int) -> jax.Array:
  # int32 before arithmetic: uint8 masks would overflow in labels * num_classes.
  labels, preds = labels.astype(jnp.int32), preds.astype(jnp.int32)
  counted = (labels >= 0) & (labels < num_classes) & (labels != ignore_label)
  counted &= (preds >= 0) & (preds < num_classes)
  if mask is not None:
    counted &= mask
  index = jnp.where(counted, labels * num_classes + preds, 0).astype(jnp.int32).reshape(-1)
  counts = jnp.bincount(
    index, weights=counted.reshape(-1).astype(jnp.int32), length=num_classes * num_classes
  )
  return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def scores(cm: Any) -> dict[str, Any]:
  r"""Pixel accuracy, mean accuracy, mean IoU and frequency-weighted IoU of a confusion matrix.

  Exactly the definitions of FCN's ``score.py`` (Long, Shelhamer and Darrell), with
  :math:`n_{ij}` = pixels of class :math:`i` predicted :math:`j` and :math:`t_i = \sum_j n_{ij}`:

  .. math::
    \text{pixel acc} = \frac{\sum_i n_{ii}}{\sum_i t_i},\quad
    \text{mean acc} = \operatorname{nanmean}_i \frac{n_{ii}}{t_i},\quad
    \text{IoU}_i = \frac{n_{ii}}{t_i + \sum_j n_{ji} - n_{ii}},

  mean IoU = :math:`\operatorname{nanmean}_i \text{IoU}_i` and fw IoU =
  :math:`\sum_{i: t_i > 0} \frac{t_i}{\sum_k t_k} \text{IoU}_i`.
  A class absent from both ground truth and prediction has IoU 0/0 = NaN and is left out of the
  means (not counted as 0); a class predicted but absent from the ground truth has IoU 0 and
  counts in the mean IoU, and is left out of the mean accuracy (0/0).

  Args:
    cm: ``(C, C)`` confusion matrix, rows = ground truth (as from :func:`confusion_matrix`).

  Returns:
    A dict of Python floats ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou`` and
    float64 ``(C,)`` arrays ``per_class_iou`` and ``per_class_accuracy`` (NaN where undefined).
    An empty matrix gives NaN everywhere.

  Example:
    >>> s = scores(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    >>> round(s['mean_iou'], 4)    # class 2 absent: mean of 3/4 and 2/3
    0.7083
  """
  hist = np.asarray(jax.device_get(cm), dtype=np.float64)
  if hist.ndim != 2 or hist.shape[0] != hist.shape[1]:
    raise ValueError(f'cm must be a square (C, C) matrix, got shape {hist.shape}.')
  if np.any(hist < 0):
    raise ValueError('cm must hold non-negative counts.')
  diag = np.diag(hist)
  gt_totals = hist.sum(axis=1)
  pred_totals = hist.sum(axis=0)
  total = hist.sum()
  with np.errstate(divide='ignore', invalid='ignore'):
    pixel_accuracy = diag.sum() / total if total > 0 else np.nan
    per_class_accuracy = diag / gt_totals
    per_class_iou = diag / (gt_totals + pred_totals - diag)
    frequency = gt_totals / total if total > 0 else np.zeros_like(gt_totals)
  present = frequency > 0
  return {
    'pixel_accuracy': float(pixel_accuracy),
    'mean_accuracy': _nanmean(per_class_accuracy),
    'mean_iou': _nanmean(per_class_iou),
    'fw_iou': float((frequency[present] * per_class_iou[present]).sum())
    if total > 0
    else float('nan'),
    'per_class_iou': per_class_iou,
    'per_class_accuracy': per_class_accuracy,
  }


def _nanmean(values: np.ndarray) -> float:
  finite = values[~np.isnan(values)]
  return float(finite.mean()) if finite.size else float('nan')
