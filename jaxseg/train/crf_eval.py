"""The dense CRF in the training loop's evaluation: metrics with and without it, side by side.

DeepLab v1/v2 report mean IoU before and after their fully connected CRF. With
``config.eval.crf = True`` (the DeepLab configs carry ``eval.crf`` and a ``crf`` block of
:func:`jaxseg.crf.dense_crf` options, the paper's values), every evaluation also runs the CRF on
the network's softmax and logs the task's metrics of the CRF marginals under a ``crf/`` prefix
(``crf/mean_iou`` beside ``mean_iou`` in ``metrics.jsonl``).

The CRF sees the original pixels: the batch's normalised images are mapped back with
:func:`jaxseg.data.transforms.denormalize` and the bound task's ``normalization``. It runs on
the host's copy of the logits, with the lattice built from concrete images (the fast path of
``dense_crf``), one batch at a time; single-process only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import crf
from jaxseg.data import transforms

# The task metrics repeated with the CRF (the per-class IoUs stay CRF-free, to keep logs short).
CRF_METRICS = ('mean_iou', 'pixel_accuracy', 'mean_accuracy', 'fw_iou', 'loss')


def crf_options(config: Any) -> dict[str, Any] | None:
  """The ``dense_crf`` options when ``config.eval.crf`` is on (the ``crf`` block), else None.

  Raises:
    ValueError: ``eval.crf`` on for a task other than segmentation, or with several processes.
  """
  eval_block = config.get('eval') if hasattr(config, 'get') else None
  if not eval_block or not eval_block.get('crf', False):
    return None
  if config.task != 'segmentation':
    raise ValueError(f'config.eval.crf applies to segmentation, got config.task={config.task!r}')
  if jax.process_count() > 1:
    raise ValueError(
      'config.eval.crf runs on one process (the CRF reads the logits on the '
      f'host), got {jax.process_count()} processes'
    )
  block = config.get('crf')
  options = dict(block.to_dict() if hasattr(block, 'to_dict') else (block or {}))
  options.pop('enabled', None)
  return options


def make_crf_sums(*, task: Any, options: Mapping[str, Any]) -> Callable:
  """Returns ``(outputs, local_batch) -> sums`` of the task on the CRF marginals.

  Args:
    task: the bound segmentation task (``eval_sums``, ``normalization``).
    options: keyword options of :func:`jaxseg.crf.dense_crf`.

  ``outputs`` are the eval step's logits ``(N, H, W, C)`` at the label size (the loop's eval
  step returns them beside its sums, so the CRF costs no second forward pass).
  """
  task_sums = jax.jit(lambda log_q, batch: task.eval_sums(log_q, {}, batch))

  def crf_sums(outputs, local):
    logits = np.asarray(jax.device_get(outputs), np.float32)
    pixels = transforms.denormalize(np.asarray(local['image']), task.normalization)
    probs = jax.nn.softmax(jnp.asarray(logits), axis=-1)
    q = crf.dense_crf(crf.unary_from_softmax(probs), pixels, **options)
    return task_sums(jnp.log(jnp.maximum(q, 1e-12)), dict(local))

  return crf_sums


def merge_crf_metrics(
  metrics: Mapping[str, float], crf_metrics: Mapping[str, float]
) -> dict[str, float]:
  """``metrics`` plus ``crf/<name>`` for the :data:`CRF_METRICS` of ``crf_metrics``."""
  merged = dict(metrics)
  merged.update({f'crf/{name}': crf_metrics[name] for name in CRF_METRICS if name in crf_metrics})
  return merged
