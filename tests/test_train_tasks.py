"""The task registry and the classification task against NumPy references."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import base
from jaxseg.data import DatasetInfo
from jaxseg.train import tasks


def _info(task='classification', num_classes=7, **kw):
  return DatasetInfo(
    task=task,
    num_classes=num_classes,
    ignore_label=kw.pop('ignore_label', None),
    image_shape=(8, 8, 3),
    splits={},
    **kw,
  )


def test_get_task_imports_by_name_and_rejects_unknown():
  assert tasks.get_task('classification').name == 'classification'
  with pytest.raises(ValueError, match="unknown task 'detection'.*'saliency'"):
    tasks.get_task('detection')
  with pytest.raises(ValueError, match='unknown task'):
    tasks.get_task('../evil')
  assert tasks.list_tasks() == ['classification', 'saliency', 'segmentation']
  with pytest.raises(ValueError, match='already registered'):
    tasks.register_task(tasks.get_task('saliency'))


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_classification_loss_adds_weighted_aux_heads():
  rng = np.random.default_rng(0)
  logits, aux1, aux2 = (rng.normal(size=(4, 6)).astype(np.float32) for _ in range(3))
  labels = np.array([0, 5, 2, 2], np.int32)
  config = base.get_base_config()
  config.loss.aux_weight = 0.3
  task = tasks.get_task('classification').bind(config.loss, _info(num_classes=6))
  loss, scalars = task.loss(
    jnp.asarray(logits),
    {'aux1': jnp.asarray(aux1), 'aux2': jnp.asarray(aux2), 'features': jnp.zeros((4, 2, 2, 3))},
    {'label': jnp.asarray(labels)},
  )
  ce = lambda z: -np.mean(_log_softmax(z)[np.arange(4), labels])  # noqa: E731
  np.testing.assert_allclose(loss, ce(logits) + 0.3 * (ce(aux1) + ce(aux2)), rtol=1e-5)
  np.testing.assert_allclose(scalars['cross_entropy'], ce(logits), rtol=1e-5)
  np.testing.assert_allclose(scalars['accuracy'], np.mean(logits.argmax(-1) == labels))


def test_classification_eval_sums_skip_padding_and_finalize_per_example():
  rng = np.random.default_rng(1)
  task = tasks.get_task('classification').bind(base.get_base_config().loss, _info())
  batches = []
  for n_valid in (5, 2):  # second batch padded: 3 of 5 rows are padding
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5).astype(np.int32)
    valid = np.arange(5) < n_valid
    batches.append((logits, labels, valid))
  sums = None
  for logits, labels, valid in batches:
    s = task.eval_sums(
      jnp.asarray(logits), {}, {'label': jnp.asarray(labels), 'valid': jnp.asarray(valid)}
    )
    sums = s if sums is None else {k: sums[k] + s[k] for k in s}
  metrics = task.finalize({k: np.asarray(v) for k, v in sums.items()})
  logits = np.concatenate([b[0][b[2]] for b in batches])
  labels = np.concatenate([b[1][b[2]] for b in batches])
  ranks = (logits > logits[np.arange(7), labels][:, None]).sum(-1)
  assert metrics['count'] == 7
  np.testing.assert_allclose(metrics['accuracy'], np.mean(ranks < 1))
  np.testing.assert_allclose(metrics['top5_error'], 1 - np.mean(ranks < 5))
  np.testing.assert_allclose(
    metrics['loss'], -np.mean(_log_softmax(logits)[np.arange(7), labels]), rtol=1e-5
  )


def test_classification_eval_sums_ignore_nan_in_padded_rows():
  # A padded row may hold anything (here NaN logits); it must not reach the split's sums.
  task = tasks.get_task('classification').bind(base.get_base_config().loss, _info(num_classes=3))
  logits = np.array([[2.0, 0.0, -1.0], [np.nan, np.nan, np.nan]], np.float32)
  labels = np.array([0, 1], np.int32)
  s = task.eval_sums(
    jnp.asarray(logits), {}, {'label': jnp.asarray(labels), 'valid': jnp.asarray([True, False])}
  )
  expected = -_log_softmax(logits[:1])[0, 0]
  np.testing.assert_allclose(s['loss_sum'], expected, rtol=1e-6)
  assert float(s['count']) == 1.0


def test_base_config_declares_every_loss_option_with_the_tasks_defaults():
  # Every option overridable under the locked config, and one default per option.
  assert base.get_base_config().loss.to_dict() == tasks.LOSS_DEFAULTS


def test_bind_takes_the_dataset_facts_and_freezes():
  info = _info(
    'segmentation',
    3,
    ignore_label=7,
    class_names=('sky', 'road', 'car'),
    palette='cityscapes',
    normalization='caffe_bgr',
  )
  task = tasks.get_task('segmentation').bind(base.get_base_config().loss, info)
  assert (
    task.num_classes,
    task.ignore_label,
    task.class_names,
    task.palette,
    task.normalization,
  ) == (3, 7, ('sky', 'road', 'car'), 'cityscapes', 'caffe_bgr')
  with pytest.raises(dataclasses.FrozenInstanceError):
    task.ignore_label = 255
  assert tasks.get_task('segmentation').model_kwargs(info) == {'num_classes': 3}
  assert tasks.get_task('saliency').model_kwargs(_info('saliency', 0)) == {}


@pytest.mark.parametrize(
  'task, loss, match',
  [
    ('classification', {'label_smoothing': 1.5}, 'label_smoothing must be in'),
    ('classification', {'top_k': (0,)}, 'top_k must be'),
    ('classification', {'name': 'kl'}, "no meaning for task 'classification'"),
    ('segmentation', {'class_weights': (1.0, 2.0)}, 'class_weights must be'),
    ('segmentation', {'ignore_label': 255}, "the dataset's"),
    ('segmentation', {'aux_weigth': 0.3}, 'unknown config.loss option'),
    ('saliency', {'name': 'l1'}, 'config.loss.name must be one of'),
    ('saliency', {'target': 'mean'}, 'config.loss.target must be one of'),
  ],
)
def test_bind_rejects_bad_loss_options_before_tracing(task, loss, match):
  with pytest.raises(ValueError, match=match):
    tasks.get_task(task).bind(loss, _info(task, 0 if task == 'saliency' else 3))


def test_bind_rejects_a_dataset_of_another_task():
  with pytest.raises(ValueError, match="cannot be bound to a dataset of task 'saliency'"):
    tasks.get_task('segmentation').bind({}, _info('saliency', 0))
