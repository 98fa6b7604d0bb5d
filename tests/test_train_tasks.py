"""The task registry and the classification task against NumPy references."""

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import base
from jaxseg.train import tasks


def test_get_task_imports_by_name_and_rejects_unknown():
  assert tasks.get_task('classification').name == 'classification'
  with pytest.raises(ValueError, match="unknown task 'detection'"):
    tasks.get_task('detection')
  with pytest.raises(ValueError, match='identifier'):
    tasks.get_task('../evil')


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_classification_loss_adds_weighted_aux_heads():
  rng = np.random.default_rng(0)
  logits, aux1, aux2 = (rng.normal(size=(4, 6)).astype(np.float32) for _ in range(3))
  labels = np.array([0, 5, 2, 2], np.int32)
  config = base.get_base_config()
  config.loss.aux_weight = 0.3
  task = tasks.get_task('classification')
  loss, scalars = task.loss(jnp.asarray(logits), {'aux1': jnp.asarray(aux1),
                                                  'aux2': jnp.asarray(aux2),
                                                  'features': jnp.zeros((4, 2, 2, 3))},
                            {'label': jnp.asarray(labels)}, config)
  ce = lambda z: -np.mean(_log_softmax(z)[np.arange(4), labels])  # noqa: E731
  np.testing.assert_allclose(loss, ce(logits) + 0.3 * (ce(aux1) + ce(aux2)), rtol=1e-5)
  np.testing.assert_allclose(scalars['cross_entropy'], ce(logits), rtol=1e-5)
  np.testing.assert_allclose(scalars['accuracy'], np.mean(logits.argmax(-1) == labels))


def test_classification_eval_sums_skip_padding_and_finalize_per_example():
  rng = np.random.default_rng(1)
  config = base.get_base_config()
  task = tasks.get_task('classification')
  batches = []
  for n_valid in (5, 2):  # second batch padded: 3 of 5 rows are padding
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5).astype(np.int32)
    valid = np.arange(5) < n_valid
    batches.append((logits, labels, valid))
  sums = None
  for logits, labels, valid in batches:
    s = task.eval_sums(jnp.asarray(logits), {}, {'label': jnp.asarray(labels),
                                                  'valid': jnp.asarray(valid)}, config)
    sums = s if sums is None else {k: sums[k] + s[k] for k in s}
  metrics = task.finalize({k: np.asarray(v) for k, v in sums.items()}, config)
  logits = np.concatenate([b[0][b[2]] for b in batches])
  labels = np.concatenate([b[1][b[2]] for b in batches])
  ranks = (logits > logits[np.arange(7), labels][:, None]).sum(-1)
  assert metrics['count'] == 7
  np.testing.assert_allclose(metrics['accuracy'], np.mean(ranks < 1))
  np.testing.assert_allclose(metrics['top5_error'], 1 - np.mean(ranks < 5))
  np.testing.assert_allclose(metrics['loss'],
                             -np.mean(_log_softmax(logits)[np.arange(7), labels]), rtol=1e-5)


def test_classification_eval_sums_ignore_nan_in_padded_rows():
  # A padded row may hold anything (here NaN logits); it must not reach the split's sums.
  config = base.get_base_config()
  task = tasks.get_task('classification')
  logits = np.array([[2.0, 0.0, -1.0], [np.nan, np.nan, np.nan]], np.float32)
  labels = np.array([0, 1], np.int32)
  s = task.eval_sums(jnp.asarray(logits), {}, {'label': jnp.asarray(labels),
                                                'valid': jnp.asarray([True, False])}, config)
  expected = -_log_softmax(logits[:1])[0, 0]
  np.testing.assert_allclose(s['loss_sum'], expected, rtol=1e-6)
  assert float(s['count']) == 1.0
