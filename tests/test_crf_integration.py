"""The dense CRF in DeepLab's evaluation (config.eval.crf) and in the segmentation predictor."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxseg import crf
from jaxseg.data import DatasetInfo, transforms
from jaxseg.inference import segmentation as seg_inference
from jaxseg.train import crf_eval, loop, sharding
from jaxseg.train.tasks.segmentation import SegmentationTask

_OPTIONS = {
  'iterations': 3,
  'pos_w': 3.0,
  'pos_xy_std': 1.0,
  'bi_w': 10.0,
  'bi_xy_std': 8.0,
  'bi_rgb_std': 20.0,
}
_NUM_CLASSES = 3


def _problem(n=8, size=16, seed=0):
  """Images with three flat colour regions, masks of those regions, noisy per-pixel scores."""
  rng = np.random.default_rng(seed)
  masks = np.zeros((n, size, size), np.int32)
  masks[:, :, size // 3 :] = 1
  masks[:, size // 2 :, 2 * size // 3 :] = 2
  colours = np.array([[30, 30, 30], [200, 60, 60], [60, 60, 220]], np.uint8)
  pixels = np.clip(colours[masks] + rng.integers(-10, 10, masks.shape + (3,)), 0, 255)
  return pixels.astype(np.uint8), masks


def _scores(images):
  """A fixed 'network': noisy logits of the true colour regions, from the normalised images."""
  pixels = jnp.round(images * 255.0)  # 'none' normalisation: x / 255
  centres = jnp.array([[30, 30, 30], [200, 60, 60], [60, 60, 220]], jnp.float32)
  distance = jnp.sum((pixels[..., None, :] - centres) ** 2, -1) / 5000.0
  noise = jnp.sin(jnp.arange(images.shape[2], dtype=jnp.float32) * 2.7)[None, None, :, None]
  return -distance + 4.0 * noise * jnp.array([1.0, -1.0, 0.5])


def _task():
  info = DatasetInfo(
    task='segmentation',
    num_classes=_NUM_CLASSES,
    ignore_label=255,
    image_shape=(16, 16, 3),
    splits={},
    class_names=('a', 'b', 'c'),
    normalization='none',
  )
  return SegmentationTask.bind({}, info)


def _mean_iou(labels, masks):
  cm = np.bincount(
    masks.reshape(-1) * _NUM_CLASSES + labels.reshape(-1), minlength=_NUM_CLASSES**2
  ).reshape(_NUM_CLASSES, _NUM_CLASSES)
  iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
  return float(np.nanmean(iou))


def test_evaluate_logs_mean_iou_with_and_without_crf():
  pixels, masks = _problem()
  images = transforms.normalize(pixels, 'none')
  task = _task()
  mesh = sharding.make_mesh(ml_collections.ConfigDict({'data': -1, 'model': 1}))
  # An eval step made with outputs: (sums, logits), as the loop's when the CRF is on.
  eval_step = jax.jit(
    lambda state, batch: (
      task.eval_sums(_scores(batch['image']), {}, batch),
      _scores(batch['image']),
    )
  )
  crf_sums = crf_eval.make_crf_sums(task=task, options=_OPTIONS)
  batches = [{'image': images[:8], 'mask': masks[:8]}]
  metrics, _ = loop.evaluate(
    eval_step=eval_step, state=None, batches=batches, mesh=mesh, task=task, crf_sums=crf_sums
  )
  # Oracle: the CRF on the original pixels, labels scored by a bincount confusion matrix.
  logits = np.asarray(_scores(jnp.asarray(images)))
  q = crf.dense_crf(crf.unary_from_softmax(jax.nn.softmax(logits, -1)), pixels, **_OPTIONS)
  expected_crf = _mean_iou(np.asarray(crf.map_labels(q)), masks)
  expected_plain = _mean_iou(logits.argmax(-1), masks)
  assert metrics['mean_iou'] == pytest.approx(expected_plain, abs=1e-6)
  assert metrics['crf/mean_iou'] == pytest.approx(expected_crf, abs=1e-6)
  assert metrics['crf/mean_iou'] > metrics['mean_iou'] + 0.05  # the CRF cleans the noise up


def test_crf_options_from_the_deeplab_configs():
  from experiments.configs import deeplab_v1_voc, deeplab_v2_voc

  for module in (deeplab_v1_voc, deeplab_v2_voc):
    config = module.get_config()
    assert crf_eval.crf_options(config) is None  # off unless eval.crf
    config.eval.crf = True
    options = crf_eval.crf_options(config)
    assert options['iterations'] == 10 and options['bi_w'] == 4.0
  config = deeplab_v1_voc.get_config()
  config.eval.crf = True
  config.task = 'classification'
  with pytest.raises(ValueError, match='eval.crf'):
    crf_eval.crf_options(config)


def test_predictor_crf_sees_the_original_pixels():
  pixels, masks = _problem(n=2)
  images = transforms.normalize(pixels, 'none')
  predictor = seg_inference.SegmentationPredictor(_scores, mode='whole', bucket=16, crf=_OPTIONS)
  probs = seg_inference.SegmentationPredictor(_scores, mode='whole', bucket=16)(images)
  expected = crf.dense_crf(crf.unary_from_softmax(probs), pixels, **_OPTIONS)
  np.testing.assert_allclose(predictor(images, pixels), expected, atol=1e-6)
  labels = predictor.predict_labels(images, pixels)
  assert _mean_iou(labels, masks) > _mean_iou(probs.argmax(-1), masks)
  with pytest.raises(ValueError, match='pixels'):
    predictor(images)
  with pytest.raises(TypeError, match='crf'):
    seg_inference.SegmentationPredictor(_scores, crf='yes')


@pytest.mark.slow
def test_training_run_writes_crf_mean_iou(tmp_path):
  """A tiny segmentation run with eval.crf: metrics.jsonl has mean_iou and crf/mean_iou."""
  import flax.linen as nn

  from jaxseg import train
  from tests import _train_fixtures

  class PixelNet(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool = False):
      return nn.Conv(_NUM_CLASSES, (1, 1))(x), {}

  pixels, masks = _problem(n=16)
  images = transforms.normalize(pixels, 'none')
  config = _train_fixtures.tiny_config(
    task='segmentation', total_steps=2, eval_every=2, best_metric='mean_iou'
  )
  config.crf = ml_collections.ConfigDict(_OPTIONS)
  config.eval = ml_collections.ConfigDict({'crf': True})

  class Batches:
    """The same training batch forever, with the iterator state the loop checkpoints."""

    def __iter__(self):
      return self

    def __next__(self):
      return {'image': images[:8], 'mask': masks[:8]}

    def get_state(self):
      return {}

    def set_state(self, state):
      del state

  def eval_batches(**_):
    return iter([{'image': images[8:], 'mask': masks[8:]}])

  train.run(
    config,
    str(tmp_path),
    model=PixelNet(),
    task=_task(),
    input_shape=(16, 16, 3),
    make_train_iterator=lambda **_: Batches(),
    make_eval_iterator=eval_batches,
  )
  with open(os.path.join(tmp_path, 'metrics.jsonl')) as f:
    events = [json.loads(line) for line in f]
  evals = [e for e in events if 'crf/mean_iou' in json.dumps(e)]
  assert evals, events
