"""Image classification: softmax cross-entropy (with GoogLeNet's auxiliary heads) and top-k error.

Loss options read (``config.loss``): ``label_smoothing``, ``aux_weight`` (the weight of each
auxiliary classifier's loss, 0.3 in Szegedy et al. 2015), ``top_k`` (the top-k errors reported).
Auxiliary logits are the model's endpoints whose names start with ``aux`` and have shape
``(N, num_classes)``; they contribute only in training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import losses
from jaxseg.metrics import classification as classification_metrics
from jaxseg.train.tasks import check_info, loss_options, register_task


@register_task
@dataclasses.dataclass(frozen=True)
class ClassificationTask:
  """The :class:`jaxseg.train.tasks.Task` for ``{'image', 'label'}`` batches and logits ``(N, K)``.

  Metrics: ``loss`` (mean cross-entropy over the split), ``accuracy`` (top-1), ``top<k>_error``
  for each ``k`` in ``top_k``, ``count``.

  Attributes:
    num_classes: the dataset's classes.
    class_names: their names.
    normalization: the dataset's input normalisation.
    label_smoothing: in ``[0, 1)``.
    aux_weight: weight of each auxiliary head's loss (>= 0).
    top_k: the ``k`` of the reported top-k errors (positive ints).

  Example:
    >>> from jaxseg.data import DatasetInfo
    >>> info = DatasetInfo(task='classification', num_classes=10, ignore_label=None,
    ...                    image_shape=(32, 32, 3), splits={})
    >>> ClassificationTask.bind({'label_smoothing': 0.1}, info).label_smoothing
    0.1
  """

  name: ClassVar[str] = 'classification'
  num_classes: int
  class_names: tuple[str, ...] = ()
  normalization: str = 'none'
  label_smoothing: float = 0.0
  aux_weight: float = 0.3
  top_k: tuple[int, ...] = (1, 5)

  @classmethod
  def bind(cls, loss_config: Any, info: Any) -> ClassificationTask:
    """The task for ``info``'s dataset with ``loss_config``'s options, validated.

    Raises:
      ValueError: naming the bad option or a dataset of another task.
    """
    check_info(cls.name, info)
    options = loss_options(cls.name, ('label_smoothing', 'aux_weight', 'top_k'), loss_config)
    smoothing = float(options['label_smoothing'])
    if not 0.0 <= smoothing < 1.0:
      raise ValueError(f'config.loss.label_smoothing must be in [0, 1), got {smoothing!r}')
    aux_weight = float(options['aux_weight'])
    if aux_weight < 0:
      raise ValueError(f'config.loss.aux_weight must be >= 0, got {aux_weight!r}')
    top_k = tuple(options['top_k'])
    if not top_k or not all(
      isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in top_k
    ):
      raise ValueError(
        f'config.loss.top_k must be a non-empty tuple of positive ints, got {options["top_k"]!r}'
      )
    return cls(
      num_classes=int(info.num_classes),
      class_names=tuple(info.class_names),
      normalization=info.normalization,
      label_smoothing=smoothing,
      aux_weight=aux_weight,
      top_k=top_k,
    )

  @staticmethod
  def model_kwargs(info: Any) -> dict[str, Any]:
    """The model arguments the dataset implies: ``{'num_classes': info.num_classes}``."""
    return {'num_classes': int(info.num_classes)}

  def loss(
    self, outputs: jax.Array, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ):
    """Mean softmax cross-entropy plus ``aux_weight`` times each auxiliary head's."""
    labels = batch['label']
    aux_logits = [
      logits
      for name, logits in sorted(endpoints.items())
      if name.startswith('aux') and logits.shape == outputs.shape
    ]
    total = losses.classification_loss_with_aux(
      outputs, aux_logits, labels, aux_weight=self.aux_weight, label_smoothing=self.label_smoothing
    )
    main = jnp.mean(
      losses.softmax_cross_entropy(outputs, labels, label_smoothing=self.label_smoothing)
    )
    accuracy = jnp.mean((jnp.argmax(outputs, -1) == labels).astype(jnp.float32))
    return total, {'cross_entropy': main, 'accuracy': accuracy}

  def eval_sums(
    self, outputs: jax.Array, endpoints: Mapping[str, jax.Array], batch: Mapping[str, jax.Array]
  ):
    """Sums over valid examples: cross-entropy, top-k correct counts, example count."""
    del endpoints
    valid = batch['valid'].astype(jnp.float32)
    labels = batch['label']
    per_example = losses.softmax_cross_entropy(outputs, labels)
    # where, not a product: a padded example's NaN must not leak into the sum (NaN * 0 is NaN).
    sums = {'loss_sum': jnp.sum(jnp.where(valid > 0, per_example, 0.0)), 'count': jnp.sum(valid)}
    # A padded row may hold anything; zero its logits so it reaches top_k_correct (which rejects
    # NaN) as a harmless row of weight 0.
    counted_logits = jnp.where(valid[:, None] > 0, outputs, 0.0)
    for k in self.top_k:
      k = min(k, outputs.shape[-1])
      sums[f'top{k}_correct'] = classification_metrics.top_k_correct(
        counted_logits, labels, k=k, weights=valid
      )
    return sums

  def finalize(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """``loss``, ``accuracy`` and ``top<k>_error`` from the split-wide sums."""
    count = float(np.asarray(sums['count']))
    metrics = {'loss': float(np.asarray(sums['loss_sum'])) / count, 'count': count}
    for name, value in sums.items():
      if name.endswith('_correct'):
        k = name[len('top') : -len('_correct')]
        metrics[f'top{k}_error'] = 1.0 - float(np.asarray(value)) / count
    if 'top1_correct' in sums:
      metrics['accuracy'] = float(np.asarray(sums['top1_correct'])) / count
    return metrics

  def write_images(self, workdir, step, batch, outputs, *, num_images: int = 4) -> None:
    """Classification writes no images."""
    del workdir, step, batch, outputs, num_images


TASK = ClassificationTask
