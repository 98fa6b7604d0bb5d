"""Image classification: softmax cross-entropy (with GoogLeNet's auxiliary heads) and top-k error.

Config fields read: ``loss.label_smoothing`` (default 0), ``loss.aux_weight`` (default 0.3, the
weight of each auxiliary classifier's loss, Szegedy et al. 2015), ``loss.top_k`` (default (1, 5)).
Auxiliary logits are the model's endpoints whose names start with ``aux`` and have shape
``(N, num_classes)``; they contribute only in training.
"""

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxseg import losses
from jaxseg.metrics import classification as classification_metrics


def _loss_config(config: ml_collections.ConfigDict, name: str, default: Any) -> Any:
  return config.loss.get(name, default) if 'loss' in config else default


class ClassificationTask:
  """The :class:`jaxseg.train.tasks.Task` for ``{'image', 'label'}`` batches and logits ``(N, K)``.

  Metrics: ``loss`` (mean cross-entropy over the split), ``accuracy`` (top-1), ``top<k>_error``
  for each ``k`` in ``loss.top_k``, ``count``.
  """

  name = 'classification'

  def loss(self, outputs: jax.Array, endpoints: Mapping[str, jax.Array],
           batch: Mapping[str, jax.Array], config: ml_collections.ConfigDict):
    """Mean softmax cross-entropy plus ``aux_weight`` times each auxiliary head's."""
    smoothing = float(_loss_config(config, 'label_smoothing', 0.0))
    labels = batch['label']
    aux_logits = [logits for name, logits in sorted(endpoints.items())
                  if name.startswith('aux') and logits.shape == outputs.shape]
    total = losses.classification_loss_with_aux(
        outputs, aux_logits, labels, aux_weight=float(_loss_config(config, 'aux_weight', 0.3)),
        label_smoothing=smoothing)
    main = jnp.mean(losses.softmax_cross_entropy(outputs, labels, label_smoothing=smoothing))
    accuracy = jnp.mean((jnp.argmax(outputs, -1) == labels).astype(jnp.float32))
    return total, {'cross_entropy': main, 'accuracy': accuracy}

  def eval_sums(self, outputs: jax.Array, endpoints: Mapping[str, jax.Array],
                batch: Mapping[str, jax.Array], config: ml_collections.ConfigDict):
    """Sums over valid examples: cross-entropy, top-k correct counts, example count."""
    del endpoints
    valid = batch['valid'].astype(jnp.float32)
    labels = batch['label']
    per_example = losses.softmax_cross_entropy(outputs, labels)
    # where, not a product: a padded example's NaN must not leak into the sum (NaN * 0 is NaN).
    sums = {'loss_sum': jnp.sum(jnp.where(valid > 0, per_example, 0.0)), 'count': jnp.sum(valid)}
    for k in tuple(_loss_config(config, 'top_k', (1, 5))):
      k = min(int(k), outputs.shape[-1])
      sums[f'top{k}_correct'] = classification_metrics.top_k_correct(
          outputs, labels, k=k, weights=valid)
    return sums

  def finalize(self, sums: Mapping[str, Any], config: ml_collections.ConfigDict):
    """``loss``, ``accuracy`` and ``top<k>_error`` from the split-wide sums."""
    del config
    count = float(np.asarray(sums['count']))
    metrics = {'loss': float(np.asarray(sums['loss_sum'])) / count, 'count': count}
    for name, value in sums.items():
      if name.endswith('_correct'):
        k = name[len('top'):-len('_correct')]
        metrics[f'top{k}_error'] = 1.0 - float(np.asarray(value)) / count
    if 'top1_correct' in sums:
      metrics['accuracy'] = float(np.asarray(sums['top1_correct'])) / count
    return metrics

  def write_images(self, workdir, step, batch, outputs, config) -> None:
    """Classification writes no images."""
    del workdir, step, batch, outputs, config


TASK = ClassificationTask()
