"""End to end: a narrow FCN-8s overfits four synthetic images through the segmentation task."""

import importlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jaxseg.data import DatasetInfo, synthetic, transforms
from jaxseg.losses import segmentation as seg_losses
from jaxseg.models import fcn  # noqa: F401  (registers the FCNs)
from jaxseg.models.registry import get_model
from jaxseg.train import promotion
from jaxseg.train.tasks import get_task
from jaxseg.viz import overlays


def _task(num_classes=4, normalization='none', **loss):
  info = DatasetInfo(
    task='segmentation',
    num_classes=num_classes,
    ignore_label=255,
    image_shape=(32, 32, 3),
    splits={},
    palette='voc',
    class_names=tuple(f'c{k}' for k in range(num_classes)),
    normalization=normalization,
  )
  return get_task('segmentation').bind(loss, info)


def _four_images(size=32):
  images, masks = [], []
  for index in range(4):
    image, mask = synthetic.shapes_example(
      synthetic.example_rng(0, 'train', index), image_size=size
    )
    images.append(image)
    masks.append(mask)
  masks = np.stack(masks).astype(np.int32)
  masks[:, :2, :2] = 255  # a few ignored pixels: they must not count anywhere
  return np.stack(images).astype(np.float32) / 255.0, masks


def test_fcn8s_overfits_four_synthetic_images(tmp_path):
  task = _task()
  images, masks = _four_images()
  batch = {'image': jnp.asarray(images), 'mask': jnp.asarray(masks), 'valid': jnp.ones(4, bool)}
  model = get_model(
    'fcn8s', num_classes=4, width_divisor=8, learn_upsampling=True, dropout_rate=0.0
  )
  # An 'rbg' key: threefry for every kernel costs more to compile than the training itself.
  params = jax.jit(model.init)(jax.random.key(0, impl='rbg'), batch['image'])['params']
  optimizer = promotion.standard_promotion(optax.adam(2e-3))  # optax's int32 count (promotion.py)
  opt_state = optimizer.init(params)

  @jax.jit
  def train_step(params, opt_state):
    def loss_fn(p):
      outputs, endpoints = model.apply(
        {'params': p}, batch['image'], train=True, rngs={'dropout': jax.random.key(0)}
      )
      return task.loss(outputs, endpoints, batch)

    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def eval_step(params):
    outputs, endpoints = model.apply({'params': params}, batch['image'])
    return task.eval_sums(outputs, endpoints, batch), outputs

  first_loss = None
  for _ in range(200):
    params, opt_state, loss = train_step(params, opt_state)
    first_loss = float(loss) if first_loss is None else first_loss
  sums, outputs = eval_step(params)
  metrics = task.finalize(jax.device_get(sums))
  assert float(loss) < 0.2 * first_loss
  assert metrics['mean_iou'] > 0.95, metrics
  assert int(np.asarray(sums['confusion_matrix']).sum()) == int(np.sum(masks != 255))

  task.write_images(str(tmp_path), 200, jax.device_get(batch), np.asarray(outputs))
  grid = np.array(Image.open(os.path.join(tmp_path, 'images', 'step_000200.png')))
  # Four rows of image | truth | prediction, 32x32 tiles enlarged 5x (to at least 160 pixels),
  # under a title row and above a legend (jaxseg.viz.labelled_segmentation_grid).
  assert grid.shape[1] == 3 * 32 * 5 + 2 * 2
  assert grid.shape[0] > 4 * 32 * 5 + 2 * 2 + 18


def test_task_eval_sums_skip_padded_examples_and_ignored_pixels():
  task = _task()
  rng = np.random.default_rng(0)
  outputs = jnp.asarray(rng.normal(size=(3, 5, 6, 4)).astype(np.float32))
  masks = rng.integers(0, 4, size=(3, 5, 6)).astype(np.int32)
  masks[0, 0] = 255
  batch = {'mask': jnp.asarray(masks), 'valid': jnp.array([True, True, False])}
  sums = task.eval_sums(outputs, {}, batch)
  preds = np.argmax(np.asarray(outputs), -1)
  cm = np.zeros((4, 4), np.int64)
  losses = []
  for n in range(2):
    for i in range(5):
      for j in range(6):
        if masks[n, i, j] != 255:
          cm[masks[n, i, j], preds[n, i, j]] += 1
          z = np.asarray(outputs)[n, i, j].astype(np.float64)
          losses.append(np.log(np.exp(z).sum()) - z[masks[n, i, j]])
  np.testing.assert_array_equal(np.asarray(sums['confusion_matrix']), cm)
  metrics = task.finalize(jax.device_get(sums))
  np.testing.assert_allclose(metrics['loss'], np.mean(losses), rtol=1e-5)
  diag = np.diag(cm)
  iou = diag / (cm.sum(0) + cm.sum(1) - diag)
  np.testing.assert_allclose(metrics['mean_iou'], np.nanmean(iou))
  np.testing.assert_allclose([metrics[f'iou/c{k}'] for k in range(4)], iou)


def test_task_loss_reads_config_and_adds_auxiliary_heads():
  rng = np.random.default_rng(1)
  outputs = jnp.asarray(rng.normal(size=(2, 4, 4, 3)).astype(np.float32))
  aux = jnp.asarray(rng.normal(size=(2, 2, 2, 3)).astype(np.float32))
  masks = jnp.asarray(rng.integers(0, 3, size=(2, 4, 4)).astype(np.int32))
  batch = {'mask': masks}
  plain, _ = _task(3, normalize=False).loss(outputs, {}, batch)
  np.testing.assert_allclose(
    float(plain),
    float(seg_losses.segmentation_cross_entropy(outputs, masks, normalize=False)),
    rtol=1e-6,
  )
  weights = (1.0, 2.0, 0.5)
  task = _task(3, aux_weight=0.3, class_weights=weights)
  with_aux, parts = task.loss(outputs, {'aux_head': aux, 'stride8': jnp.zeros((2, 1, 1, 7))}, batch)
  main = seg_losses.segmentation_cross_entropy(outputs, masks, class_weights=weights)
  aux_loss = seg_losses.segmentation_cross_entropy(
    seg_losses.resize_logits(aux, (4, 4)), masks, class_weights=weights
  )
  np.testing.assert_allclose(float(with_aux), float(main + 0.3 * aux_loss), rtol=1e-6)
  np.testing.assert_allclose(float(parts['cross_entropy']), float(main), rtol=1e-6)


@pytest.mark.parametrize(
  'name',
  [
    'fcn32s_voc',
    'fcn16s_voc',
    'fcn8s_voc',
    'deeplab_v1_voc',
    'deeplab_v2_voc',
    'deeplab_v3_voc',
    'deeplab_v3plus_voc',
    'deeplab_v3plus_cityscapes',
    'fcn8s_shapes',
  ],
)
def test_experiment_configs_build_their_model_at_the_crop_size(name):
  module = importlib.import_module(f'experiments.configs.{name}')
  config = module.get_config()
  assert config.task == 'segmentation' and config.best_metric == 'mean_iou'
  for field in ('Command', 'Hardware', 'Expected time', 'Expected metric'):
    assert field in module.__doc__, field
  kwargs = {k: v for k, v in config.model.items() if k != 'name'}
  model = get_model(config.model.name, **kwargs)
  crop = config.data.get('crop_size', None) or config.data.get('synthetic_size')
  images = jax.ShapeDtypeStruct((1, crop, crop, 3), jnp.float32)
  (logits, _), _ = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x), images)
  assert logits.shape == (1, crop, crop, kwargs['num_classes'])
  assert 'ignore_label' not in config.loss and 'palette' not in config


@pytest.mark.parametrize('normalization', ['caffe_bgr', 'imagenet'])
def test_write_images_shows_the_rgb_input_at_its_own_brightness(tmp_path, normalization):
  # The PNG's first cell is the network input with the dataset's normalisation undone: RGB (not
  # Caffe's BGR) and not min-max stretched (a dim image stays dim).
  rng = np.random.default_rng(3)
  pixels = rng.integers(20, 120, (2, 6, 7, 3)).astype(np.uint8)
  pixels[..., 0] = 110  # a red cast: swapped channels would show it blue
  masks = rng.integers(0, 3, (2, 6, 7)).astype(np.int32)
  batch = {
    'image': transforms.normalize(pixels, normalization),
    'mask': masks,
    'valid': np.array([True, False]),
  }
  logits = np.eye(3, dtype=np.float32)[masks]
  _task(3, normalization).write_images(str(tmp_path), 5, batch, logits, num_images=4)
  png = np.array(Image.open(os.path.join(tmp_path, 'images', 'step_000005.png')))
  # One valid row (the padded example is dropped): 6x7 tiles enlarged 27x (to >= 160 pixels)
  # below an 18-pixel title row, inside a 2-pixel border (viz.labelled_segmentation_grid).
  k, top, left = 27, 18 + 2, 2
  assert png.shape[1] == 3 * 7 * k + 2 * left
  tile = lambda column: png[top : top + 6 * k, left + column * 7 * k : left + (column + 1) * 7 * k]
  enlarge = lambda image: np.repeat(np.repeat(image, k, axis=0), k, axis=1)
  np.testing.assert_array_equal(tile(0), enlarge(pixels[0]))
  np.testing.assert_array_equal(tile(1), enlarge(overlays.overlay(pixels[0], masks[0], alpha=0.6)))
