"""Tests for the saliency task (jaxseg.train.tasks.saliency) and heatmaps (jaxseg.viz.heatmaps)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxseg.data import DatasetInfo, transforms
from jaxseg.metrics import saliency as sal_metrics
from jaxseg.train.tasks import get_task
from jaxseg.train.tasks import saliency as sal_task
from jaxseg.viz import heatmaps


def _task(normalization='none', **loss):
  info = DatasetInfo(
    task='saliency',
    num_classes=0,
    ignore_label=None,
    image_shape=(16, 16, 3),
    splits={},
    normalization=normalization,
  )
  return get_task('saliency').bind(loss, info)


def _batch(seed=0, n=3, size=16):
  rng = np.random.default_rng(seed)
  fixations = (rng.random((n, size, size)) < 0.05).astype(np.uint8)
  fixations[-1] = 0  # an image without fixations: no NSS or AUC
  density = rng.random((n, size, size)).astype(np.float32)
  return {
    'image': rng.random((n, size, size, 3)).astype(np.float32),
    'density': density,
    'fixations': fixations,
    'valid': np.array([True] * (n - 1) + [True]),
  }


def test_registered_as_saliency():
  assert get_task('saliency') is sal_task.TASK is sal_task.SaliencyTask


def test_loss_is_euclidean_against_max_scaled_resized_target():
  batch = _batch()
  outputs = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
  loss, scalars = _task(name='euclidean').loss(outputs, {}, batch)
  # The target: the density shrunk to 8 x 8 (antialiased bilinear), divided by its maximum.
  small = jax.image.resize(jnp.asarray(batch['density']), (3, 8, 8), 'linear', antialias=True)
  target = np.asarray(small) / np.asarray(small).max(axis=(1, 2), keepdims=True)
  expected = np.sum((target - np.asarray(outputs)[..., 0]) ** 2) / 3
  assert float(loss) == pytest.approx(expected, rel=1e-5)
  expected_cc = np.mean(
    [np.corrcoef(np.asarray(outputs)[i, ..., 0].ravel(), target[i].ravel())[0, 1] for i in range(3)]
  )
  assert float(scalars['cc']) == pytest.approx(expected_cc, abs=1e-5)


def test_loss_options_and_errors():
  batch = _batch(n=2, size=8)
  outputs = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
  d = jnp.asarray(batch['density'])
  kl, _ = _task(name='kl', target='sum').loss(outputs, {}, batch)
  from jaxseg.losses import saliency as sal_losses

  assert float(kl) == pytest.approx(float(sal_losses.saliency_kl(outputs, d)), rel=1e-5)
  bce, _ = _task(name='bce').loss(outputs, {}, batch)
  target = d / d.max(axis=(1, 2), keepdims=True)
  assert float(bce) == pytest.approx(float(sal_losses.saliency_bce(outputs, target)), rel=1e-5)
  centered, _ = _task(target='centered').loss(outputs, {}, batch)
  expected = sal_losses.euclidean_loss(outputs, (255 * target - 127) / 128)
  assert float(centered) == pytest.approx(float(expected), rel=1e-5)
  with pytest.raises(ValueError, match='config.loss.name must be one of'):
    _task(name='l1')
  with pytest.raises(ValueError, match='config.loss.target must be one of'):
    _task(target='mean')


def test_eval_sums_and_finalize_are_per_image_means():
  batch = _batch(seed=2, n=4)
  batch['valid'] = np.array([True, True, False, True])  # the third is padding
  outputs = jax.random.uniform(jax.random.key(2), (4, 8, 8, 1))
  task = _task(name='euclidean')
  # By hand: each metric of each valid image, skipping NaN (the last image has no fixations).
  # The maps are scored min-max scaled to [0, 1], so maps shifted negative score the same.
  outputs = outputs - 0.5
  sums = jax.jit(lambda o, b: task.eval_sums(o, {}, b))(outputs, batch)
  metrics = task.finalize(jax.device_get(sums))
  outputs = (outputs - outputs.min(axis=(1, 2, 3), keepdims=True)) / (
    outputs.max(axis=(1, 2, 3), keepdims=True) - outputs.min(axis=(1, 2, 3), keepdims=True)
  )
  # per_image_scores: image i's AUC-Judd jitter key is the first of split(split(key, B)[i], 3).
  keys = [jax.random.split(k, 3)[0] for k in jax.random.split(jax.random.key(0), 4)]
  for name, fn in [
    ('cc', lambda i: sal_metrics.cc(outputs[i, ..., 0], batch['density'][i])),
    ('nss', lambda i: sal_metrics.nss(outputs[i, ..., 0], batch['fixations'][i])),
    (
      'auc_judd',
      lambda i: sal_metrics.auc_judd(outputs[i, ..., 0], batch['fixations'][i], key=keys[i]),
    ),
    ('similarity', lambda i: sal_metrics.similarity(outputs[i, ..., 0], batch['density'][i])),
    ('kld', lambda i: sal_metrics.kld(outputs[i, ..., 0], batch['density'][i])),
  ]:
    values = [float(fn(i)) for i in (0, 1, 3)]
    values = [v for v in values if not np.isnan(v)]
    assert metrics[name] == pytest.approx(np.mean(values), abs=1e-5), name
    assert float(sums[f'{name}_count']) == len(values)
  assert float(sums['nss_count']) == 2.0  # image 3 has no fixations, image 2 is padding
  # KLD by hand (KLdiv.m) of the min-max scaled map, resized as imresize (clamped to [0, 1]):
  # the signed map itself would give P < 0. tests/test_metrics_saliency.py holds the evaluator
  # to the same oracle.
  by_hand = []
  for i in (0, 1, 3):
    p = np.clip(
      np.asarray(jax.image.resize(outputs[i, ..., 0], (16, 16), 'cubic'), np.float64), 0, 1
    )
    p, q = p / p.sum(), batch['density'][i] / batch['density'][i].sum()
    by_hand.append(np.sum(q * np.log(sal_metrics.MATLAB_EPS + q / (p + sal_metrics.MATLAB_EPS))))
  assert metrics['kld'] == pytest.approx(np.mean(by_hand), rel=1e-4)


def test_eval_sums_hold_no_host_callback():
  # The eval step runs sharded over the mesh; on XLA:CPU a host callback there deadlocked the
  # collectives (issue 16: the 8-device one-step config runs aborted). AUC-Judd ranks on the
  # device instead.
  batch = _batch(seed=2, n=2)
  outputs = jax.random.uniform(jax.random.key(2), (2, 8, 8, 1))
  jaxpr = str(jax.make_jaxpr(lambda o, b: _task().eval_sums(o, {}, b))(outputs, batch))
  assert 'callback' not in jaxpr
  assert 'sort' in jaxpr  # AUC-Judd's device ranks


@pytest.mark.slow
def test_training_task_and_evaluator_report_the_same_numbers_for_signed_maps():
  # One evaluation path: the evaluator (two merged batches) reports the task's numbers, KL
  # divergence included, for maps of both signs (the deep SalNet's output is about [-1, 1]).
  # Before they shared per_image_scores, the evaluator fed the raw signed map to KLD.
  from jaxseg.inference.saliency import SaliencyEvaluator

  batch = _batch(seed=2, n=4)
  batch['valid'] = np.array([True, True, False, True])
  signed = jax.random.uniform(jax.random.key(2), (4, 8, 8, 1)) - 0.5
  task = _task()
  metrics = task.finalize(jax.device_get(task.eval_sums(signed, {}, batch)))
  evaluator = SaliencyEvaluator(key=jax.random.key(0), n_splits=2, n_other=1)
  for rows in (slice(0, 2), slice(2, 4)):
    evaluator.update(
      signed[rows], batch['fixations'][rows], batch['density'][rows], valid=batch['valid'][rows]
    )
  result = evaluator.result()
  for name in ('cc', 'nss', 'similarity', 'kld'):
    assert result[name] == pytest.approx(metrics[name], rel=1e-5, abs=1e-6), name
  # AUC-Judd's jitter (1e-7) only breaks ties, which these continuous maps do not have.
  assert result['auc_judd'] == pytest.approx(metrics['auc_judd'], abs=1e-6)


def test_denormalize_inverts_normalize():
  pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
  for normalization in transforms.NORMALIZATIONS:
    back = transforms.denormalize(transforms.normalize(pixels, normalization), normalization)
    np.testing.assert_array_equal(back, pixels)


@pytest.mark.parametrize('normalization', ['none', 'salnet'])
def test_write_images_layout(tmp_path, normalization):
  batch = _batch(n=3, size=12)
  pixels = np.random.default_rng(4).integers(0, 256, (3, 12, 12, 3)).astype(np.uint8)
  batch['image'] = transforms.normalize(pixels, normalization)
  outputs = np.random.default_rng(1).random((3, 6, 6, 1)).astype(np.float32)
  _task(normalization).write_images(str(tmp_path), 7, batch, outputs, num_images=2)
  png = np.asarray(Image.open(os.path.join(str(tmp_path), 'images', 'step_000007.png')))
  # num_images=2 rows of three 12 x 12 cells, padded by 2 pixels.
  assert png.shape == (2 * 12 + 3 * 2, 3 * 12 + 4 * 2, 3)
  # The first cell is the image itself; the third is its overlay with the prediction's heatmap.
  image0 = pixels[0]  # the input as it was before normalisation: RGB, unstretched
  np.testing.assert_array_equal(png[2:14, 2:14], image0)
  np.testing.assert_array_equal(png[2:14, 30:42], heatmaps.heatmap_overlay(image0, outputs[0]))


def test_jet_and_heatmap_closed_form():
  # MATLAB jet at 0, 1/8, 3/8, 5/8, 7/8, 1: dark blue, blue, cyan, yellow, red, dark red.
  got = heatmaps.jet(np.array([0.0, 0.125, 0.375, 0.625, 0.875, 1.0]))
  assert got.tolist() == [
    [0, 0, 128],
    [0, 0, 255],
    [0, 255, 255],
    [255, 255, 0],
    [255, 0, 0],
    [128, 0, 0],
  ]
  heat = heatmaps.heatmap(np.array([[1.0, 3.0], [2.0, 3.0]]))
  assert heat[0, 0].tolist() == [0, 0, 128] and heat[0, 1].tolist() == [128, 0, 0]
  assert heat[1, 0].tolist() == heatmaps.jet(0.5).tolist()
  blended = heatmaps.heatmap_overlay(np.full((2, 2, 3), 100, np.uint8), np.eye(2), alpha=0.25)
  assert blended[0, 0].tolist() == [round(0.75 * 100 + 0.25 * 128), 75, 75]
  with pytest.raises(ValueError, match='alpha must lie in'):
    heatmaps.heatmap_overlay(np.zeros((2, 2, 3), np.uint8), np.eye(2), alpha=2.0)


@pytest.mark.slow
def test_end_to_end_synthetic(tmp_path):
  # A few steps of the real engine on tiny synthetic data: the task plugs into the loop, metrics
  # come out finite and the PNG is written.
  from experiments.configs import salnet_shallow_synthetic
  from jaxseg.train import train_and_evaluate

  config = salnet_shallow_synthetic.get_config()
  config.total_steps = 4
  config.eval_every = 4
  config.checkpoint_every = 4
  config.log_every = 2
  config.batch_size = 8
  config.data.synthetic_size = 32
  config.data.num_train = 16
  config.data.num_test = 8
  config.data.data_dir = str(tmp_path / 'data')
  config.model.output_shape = (16, 16)
  results = train_and_evaluate(config, str(tmp_path / 'run'))
  for name in sal_task.EVAL_METRICS:
    assert np.isfinite(results[name]), name
  assert os.path.exists(tmp_path / 'run' / 'images' / 'step_000004.png')
