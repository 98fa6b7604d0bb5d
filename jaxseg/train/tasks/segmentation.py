"""Semantic segmentation: ignore-aware per-pixel cross-entropy and a split-wide confusion matrix.

Config fields read (all optional):

* ``loss.ignore_label`` (255): label of pixels that count nowhere.
* ``loss.normalize`` (True): average over valid pixels, or FCN's per-image sum.
* ``loss.class_weights`` (None): a tuple of ``num_classes`` weights.
* ``loss.aux_weight`` (0.4): weight of auxiliary heads, the endpoints named ``aux*`` holding
  ``(N, h, w, num_classes)`` logits (upsampled to the label size; training only).
* ``palette`` ('voc'): ``'voc'``, ``'cityscapes'`` or ``K x 3`` colours, for the PNGs.
* ``data.mean`` / ``data.std``: the normalisation to undo when writing PNGs, if the data has one.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxseg import viz
from jaxseg.losses import segmentation as seg_losses
from jaxseg.metrics import segmentation as seg_metrics


def _get(section: Any, name: str, default: Any) -> Any:
  if section is None:
    return default
  value = section.get(name, default)
  return default if value is None else value


def loss_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``ignore_label``, ``normalize``, ``class_weights`` and ``aux_weight`` from ``config.loss``."""
  loss = config.get('loss')
  weights = _get(loss, 'class_weights', None)
  return {
      'ignore_label': int(_get(loss, 'ignore_label', 255)),
      'normalize': bool(_get(loss, 'normalize', True)),
      'class_weights': tuple(float(w) for w in weights) if weights else None,
      'aux_weight': float(_get(loss, 'aux_weight', 0.4)),
  }


def _aux_logits(endpoints: Mapping[str, Any], num_classes: int) -> list[jax.Array]:
  return [value for name, value in sorted(endpoints.items())
          if name.startswith('aux') and getattr(value, 'ndim', 0) == 4
          and value.shape[-1] == num_classes]


class SegmentationTask:
  """The :class:`jaxseg.train.tasks.Task` for ``{'image', 'mask'}`` batches.

  Outputs are logits ``(N, H, W, C)`` at the label size. Metrics (from the summed confusion
  matrix, FCN's score.py definitions): ``mean_iou``, ``pixel_accuracy``, ``mean_accuracy``,
  ``fw_iou``, ``loss`` (cross-entropy averaged over the split's valid pixels), ``iou/<class>``
  per class (NaN where a class is absent from both ground truth and prediction).
  """

  name = 'segmentation'

  def loss(self, outputs: jax.Array, endpoints: Mapping[str, jax.Array],
           batch: Mapping[str, jax.Array], config: ml_collections.ConfigDict):
    """Cross-entropy over non-ignored pixels plus ``aux_weight`` times each auxiliary head's."""
    options = loss_options(config)
    aux_weight = options.pop('aux_weight')
    labels = batch['mask']
    main = seg_losses.segmentation_cross_entropy(outputs, labels, **options)
    total = main
    for aux in _aux_logits(endpoints, outputs.shape[-1]):
      aux = seg_losses.resize_logits(aux, labels.shape[1:3])
      total = total + aux_weight * seg_losses.segmentation_cross_entropy(aux, labels, **options)
    valid = labels != options['ignore_label']
    correct = (jnp.argmax(outputs, -1) == labels) & valid
    pixel_accuracy = jnp.sum(correct) / jnp.maximum(jnp.sum(valid), 1)
    return total, {'cross_entropy': main, 'pixel_accuracy': pixel_accuracy}

  def eval_sums(self, outputs: jax.Array, endpoints: Mapping[str, jax.Array],
                batch: Mapping[str, jax.Array], config: ml_collections.ConfigDict):
    """The confusion matrix and cross-entropy sum over the valid examples' valid pixels."""
    del endpoints
    options = loss_options(config)
    labels = batch['mask']
    example_valid = batch['valid'][:, None, None] if 'valid' in batch else True
    per_pixel, pixel_valid = seg_losses.pixelwise_cross_entropy(
        outputs, labels, ignore_label=options['ignore_label'])
    counted = pixel_valid & example_valid
    cm = seg_metrics.confusion_matrix(labels, jnp.argmax(outputs, -1).astype(jnp.int32),
                                      outputs.shape[-1], ignore_label=options['ignore_label'],
                                      mask=counted)
    return {'confusion_matrix': cm,
            'loss_sum': jnp.sum(jnp.where(counted, per_pixel, 0.0)),
            'pixel_count': jnp.sum(counted).astype(jnp.float32)}

  def finalize(self, sums: Mapping[str, Any], config: ml_collections.ConfigDict):
    """FCN's scores of the split-wide confusion matrix, plus the mean loss and per-class IoU."""
    del config
    results = seg_metrics.scores(np.asarray(sums['confusion_matrix']))
    metrics = {name: results[name]
               for name in ('pixel_accuracy', 'mean_accuracy', 'mean_iou', 'fw_iou')}
    pixels = float(np.asarray(sums['pixel_count']))
    metrics['loss'] = float(np.asarray(sums['loss_sum'])) / pixels if pixels else float('nan')
    for k, iou in enumerate(results['per_class_iou']):
      metrics[f'iou/class_{k}'] = float(iou)
    return metrics

  def write_images(self, workdir: str, step: int, batch: Mapping[str, Any], outputs: Any,
                   config: ml_collections.ConfigDict) -> None:
    """Writes ``workdir/images/step_<step>.png``: image | ground truth | prediction per row."""
    options = loss_options(config)
    data = config.get('data')
    images = np.asarray(batch['image'])
    predictions = np.argmax(np.asarray(outputs), -1)
    keep = np.ones(len(images), bool)
    if 'valid' in batch:
      keep &= np.asarray(batch['valid'], bool)
    keep &= np.arange(len(images)) < int(config.get('num_images', 4) or 4)
    if not keep.any():
      return
    grid = viz.segmentation_grid(
        images[keep], np.asarray(batch['mask'])[keep], predictions[keep],
        palette=config.get('palette', 'voc'), ignore_label=options['ignore_label'],
        mean=_get(data, 'mean', None), std=_get(data, 'std', None))
    viz.save_png(grid, os.path.join(workdir, 'images', f'step_{int(step):06d}.png'))


TASK = SegmentationTask()
