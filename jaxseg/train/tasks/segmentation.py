"""Semantic segmentation: ignore-aware per-pixel cross-entropy and a split-wide confusion matrix.

Loss options read (``config.loss``): ``normalize`` (average over valid pixels, or FCN's per-image
sum), ``class_weights`` (``()`` or one weight per class), ``aux_weight`` (weight of auxiliary
heads: the endpoints named ``aux*`` holding ``(N, h, w, num_classes)`` logits, upsampled to the
label size; training only). The ignore label, the class names, the palette and the input
normalisation come from the dataset (:class:`jaxseg.data.DatasetInfo`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import viz
from jaxseg.data import transforms
from jaxseg.losses import segmentation as seg_losses
from jaxseg.metrics import segmentation as seg_metrics
from jaxseg.train.tasks import check_info, loss_options, register_task

DEFAULT_IGNORE_LABEL = 255


def _aux_logits(endpoints: Mapping[str, Any], num_classes: int) -> list[jax.Array]:
  return [
    value
    for name, value in sorted(endpoints.items())
    if name.startswith('aux') and getattr(value, 'ndim', 0) == 4 and value.shape[-1] == num_classes
  ]


@register_task
@dataclasses.dataclass(frozen=True)
class SegmentationTask:
  """The :class:`jaxseg.train.tasks.Task` for ``{'image', 'mask'}`` batches.

  Outputs are logits ``(N, H, W, C)`` at the label size. Metrics (from the summed confusion
  matrix, FCN's score.py definitions): ``mean_iou``, ``pixel_accuracy``, ``mean_accuracy``,
  ``fw_iou``, ``loss`` (cross-entropy averaged over the split's valid pixels), ``iou/<class name>``
  per class (NaN where a class is absent from both ground truth and prediction).

  Attributes:
    num_classes: the dataset's classes.
    ignore_label: the mask value never scored (the dataset's; 255 if it names none).
    class_names: one name per class (the per-class metric names).
    palette: ``'voc'``, ``'cityscapes'`` (or a ``(K, 3)`` array) for the PNGs.
    normalization: the dataset's input normalisation, undone for the PNGs.
    normalize: average the loss over valid pixels (False: per-image sum, as FCN).
    class_weights: ``()`` or ``num_classes`` per-class loss weights.
    aux_weight: weight of each auxiliary head's loss.

  Example:
    >>> from jaxseg.data import DatasetInfo
    >>> info = DatasetInfo(task='segmentation', num_classes=2, ignore_label=255,
    ...                    image_shape=(8, 8, 3), splits={}, class_names=('bg', 'cat'))
    >>> task = SegmentationTask.bind({}, info)
    >>> task.ignore_label, task.class_names
    (255, ('bg', 'cat'))
  """

  name: ClassVar[str] = 'segmentation'
  num_classes: int
  ignore_label: int = DEFAULT_IGNORE_LABEL
  class_names: tuple[str, ...] = ()
  palette: Any = 'voc'
  normalization: str = 'none'
  normalize: bool = True
  class_weights: tuple[float, ...] = ()
  aux_weight: float = 0.3

  @classmethod
  def bind(cls, loss_config: Any, info: Any) -> SegmentationTask:
    """The task for ``info``'s dataset with ``loss_config``'s options, validated.

    Raises:
      ValueError: naming the bad option or a dataset of another task.
    """
    check_info(cls.name, info)
    options = loss_options(cls.name, ('normalize', 'class_weights', 'aux_weight'), loss_config)
    num_classes = int(info.num_classes)
    weights = tuple(float(w) for w in (options['class_weights'] or ()))
    if weights and (len(weights) != num_classes or min(weights) < 0):
      raise ValueError(
        f'config.loss.class_weights must be () or {num_classes} non-negative '
        f'weights (one per class), got {options["class_weights"]!r}'
      )
    if not isinstance(options['normalize'], bool):
      raise ValueError(f'config.loss.normalize must be a bool, got {options["normalize"]!r}')
    aux_weight = float(options['aux_weight'])
    if aux_weight < 0:
      raise ValueError(f'config.loss.aux_weight must be >= 0, got {aux_weight!r}')
    names = tuple(info.class_names) or tuple(f'class_{k}' for k in range(num_classes))
    if len(names) != num_classes:
      raise ValueError(f'the dataset names {len(names)} classes but has {num_classes}: {names}')
    return cls(
      num_classes=num_classes,
      ignore_label=(DEFAULT_IGNORE_LABEL if info.ignore_label is None else int(info.ignore_label)),
      class_names=names,
      palette=info.palette or 'voc',
      normalization=info.normalization,
      normalize=options['normalize'],
      class_weights=weights,
      aux_weight=aux_weight,
    )

  @staticmethod
  def model_kwargs(info: Any) -> dict[str, Any]:
    """The model arguments the dataset implies: ``{'num_classes': info.num_classes}``."""
    return {'num_classes': int(info.num_classes)}

  def _cross_entropy(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    return seg_losses.segmentation_cross_entropy(
      logits,
      labels,
      ignore_label=self.ignore_label,
      normalize=self.normalize,
      class_weights=self.class_weights or None,
    )

  def loss(
    self, outputs: jax.Array, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ):
    """Cross-entropy over non-ignored pixels plus ``aux_weight`` times each auxiliary head's."""
    labels = batch['mask']
    main = self._cross_entropy(outputs, labels)
    total = main
    for aux in _aux_logits(endpoints, outputs.shape[-1]):
      aux = seg_losses.resize_logits(aux, labels.shape[1:3])
      total = total + self.aux_weight * self._cross_entropy(aux, labels)
    valid = labels != self.ignore_label
    correct = (jnp.argmax(outputs, -1) == labels) & valid
    pixel_accuracy = jnp.sum(correct) / jnp.maximum(jnp.sum(valid), 1)
    return total, {'cross_entropy': main, 'pixel_accuracy': pixel_accuracy}

  def eval_sums(
    self, outputs: jax.Array, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ):
    """The confusion matrix and cross-entropy sum over the valid examples' valid pixels."""
    del endpoints
    labels = batch['mask']
    example_valid = batch['valid'][:, None, None] if 'valid' in batch else True
    per_pixel, pixel_valid = seg_losses.pixelwise_cross_entropy(
      outputs, labels, ignore_label=self.ignore_label
    )
    counted = pixel_valid & example_valid
    cm = seg_metrics.confusion_matrix(
      labels,
      jnp.argmax(outputs, -1).astype(jnp.int32),
      outputs.shape[-1],
      ignore_label=self.ignore_label,
      mask=counted,
    )
    return {
      'confusion_matrix': cm,
      'loss_sum': jnp.sum(jnp.where(counted, per_pixel, 0.0)),
      'pixel_count': jnp.sum(counted).astype(jnp.float32),
    }

  def finalize(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """FCN's scores of the split-wide confusion matrix, the mean loss and ``iou/<class name>``."""
    results = seg_metrics.scores(np.asarray(sums['confusion_matrix']))
    metrics = {
      name: results[name] for name in ('pixel_accuracy', 'mean_accuracy', 'mean_iou', 'fw_iou')
    }
    pixels = float(np.asarray(sums['pixel_count']))
    metrics['loss'] = float(np.asarray(sums['loss_sum'])) / pixels if pixels else float('nan')
    for name, iou in zip(self.class_names, results['per_class_iou']):
      metrics[f'iou/{name}'] = float(iou)
    return metrics

  def write_images(
    self, workdir: str, step: int, batch: Mapping[str, Any], outputs: Any, *, num_images: int = 4
  ) -> None:
    """Writes ``workdir/images/step_<step>.png``: image | ground truth | prediction per row.

    The image is the network's input with the dataset's normalisation undone
    (:func:`jaxseg.data.transforms.denormalize`): RGB, at its own brightness. Small tiles are
    enlarged, a title row names the columns and a legend names the colours of the classes shown
    (:func:`jaxseg.viz.labelled_segmentation_grid`).
    """
    images = np.asarray(batch['image'])
    predictions = np.argmax(np.asarray(outputs), -1)
    keep = np.ones(len(images), bool)
    if 'valid' in batch:
      keep &= np.asarray(batch['valid'], bool)
    keep &= np.arange(len(images)) < num_images
    if not keep.any():
      return
    names = self.class_names or tuple(f'class_{k}' for k in range(self.num_classes))
    grid = viz.labelled_segmentation_grid(
      transforms.denormalize(images[keep], self.normalization),
      np.asarray(batch['mask'])[keep],
      predictions[keep],
      class_names=names,
      palette=self.palette,
      ignore_label=self.ignore_label,
    )
    viz.save_png(grid, os.path.join(workdir, 'images', f'step_{int(step):06d}.png'))


TASK = SegmentationTask
