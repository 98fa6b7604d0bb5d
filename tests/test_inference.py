"""Tests for jaxseg.inference: whole image, sliding windows, multi-scale and flip TTA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax

from jaxseg import inference

_KERNEL = np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32)


def conv_net(x):
  """A small position-dependent, mirror-asymmetric 'network': one 3x3 conv, zero padding."""
  return jax.lax.conv_general_dilated(
    jnp.asarray(x, jnp.float32),
    jnp.asarray(_KERNEL),
    (1, 1),
    'SAME',
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )


def pointwise_net(x):
  """A 1x1 'network': each pixel's logits depend on that pixel only."""
  return jnp.asarray(x, jnp.float32) @ jnp.asarray(_KERNEL[1, 1])


def _images(shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _sliding_reference(forward, image, crop, stride):
  """Naive loop: pad to the crop, every window by the documented grid, average the overlaps."""
  height, width, _ = image.shape
  ph, pw = max(height, crop[0]), max(width, crop[1])
  padded = np.zeros((ph, pw, 3), np.float32)
  padded[:height, :width] = image

  def starts(size, c, s):
    if size <= c:
      return [0]
    out = list(range(0, size - c + 1, s))
    if out[-1] != size - c:
      out.append(size - c)
    return out

  total = np.zeros((ph, pw, _KERNEL.shape[-1]))
  count = np.zeros((ph, pw, 1))
  for top in starts(ph, crop[0], stride[0]):
    for left in starts(pw, crop[1], stride[1]):
      window = padded[None, top : top + crop[0], left : left + crop[1]]
      total[top : top + crop[0], left : left + crop[1]] += np.asarray(forward(window))[0]
      count[top : top + crop[0], left : left + crop[1]] += 1
  return (total / count)[:height, :width]


@pytest.mark.parametrize(
  'size',
  [(5, 6), (8, 8), (13, 21), (8, 19), (17, 6)],
  ids=['smaller', 'equal', 'larger', 'wide', 'tall'],
)
def test_sliding_window_matches_naive_loop(size):
  images = _images((2,) + size + (3,))
  got = inference.predict_sliding(conv_net, images, crop_size=8, stride=5, window_batch=3)
  assert got.shape == (2,) + size + (4,)
  for n in range(2):
    want = _sliding_reference(conv_net, images[n], (8, 8), (5, 5))
    np.testing.assert_allclose(got[n], want, rtol=1e-5, atol=1e-5)


def test_sliding_window_of_pointwise_net_equals_whole_image():
  images = _images((1, 19, 23, 3))
  whole = np.asarray(pointwise_net(images))
  slide = inference.predict_sliding(pointwise_net, images, crop_size=(7, 9), stride=(4, 5))
  np.testing.assert_allclose(slide, whole, rtol=1e-5, atol=1e-5)


def test_window_starts_cover_every_pixel():
  assert inference.window_starts(10, 4, 3) == [0, 3, 6]
  assert inference.window_starts(11, 4, 3) == [0, 3, 6, 7]
  assert inference.window_starts(4, 4, 3) == [0]
  assert inference.window_starts(2, 4, 3) == [0]


def test_whole_image_bucketing_is_exact_for_pointwise_net_and_crops_back():
  images = _images((2, 13, 30, 3))
  got = inference.predict_whole(pointwise_net, images, bucket=16)
  np.testing.assert_allclose(got, np.asarray(pointwise_net(images)), rtol=1e-5, atol=1e-5)
  # A 3x3 conv sees the zero padding only through its last row/column: the rest is exact.
  got = inference.predict_whole(conv_net, images, bucket=16)
  np.testing.assert_allclose(
    got[:, :-1, :-1], np.asarray(conv_net(images))[:, :-1, :-1], rtol=1e-5, atol=1e-5
  )


def test_flip_tta_on_mirror_symmetric_input():
  half = _images((1, 6, 5, 3))
  image = np.concatenate([half, half[:, :, ::-1]], axis=2)  # symmetric about the centre line
  np.testing.assert_array_equal(image, image[:, :, ::-1])
  plain = softmax(np.asarray(conv_net(image)), axis=-1)
  assert not np.allclose(plain, plain[:, :, ::-1], atol=1e-3)  # the net itself is asymmetric
  got = inference.predict_augmented(lambda x: np.asarray(conv_net(x)), image, flip=True)
  # f(mirror x) = f(x) here, mirrored back: the average of the prediction and its mirror image.
  np.testing.assert_allclose(got, 0.5 * (plain + plain[:, :, ::-1]), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got, got[:, :, ::-1], rtol=1e-5, atol=1e-6)


def test_multiscale_averages_resized_probabilities():
  images = _images((1, 8, 12, 3))
  predict = lambda x: np.asarray(conv_net(x))
  got = inference.predict_augmented(predict, images, scales=(0.5, 1.0, 1.5))
  want = 0
  for scale, size in ((0.5, (4, 6)), (1.0, (8, 12)), (1.5, (12, 18))):
    small = inference.resize_bilinear(images, size)
    want = want + softmax(inference.resize_bilinear(predict(small), (8, 12)), axis=-1)
  np.testing.assert_allclose(got, want / 3, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)


def test_resize_bilinear_matches_torch():
  torch = pytest.importorskip('torch')
  x = _images((2, 5, 7, 3))
  for size in [(9, 16), (3, 4), (5, 7), (10, 3)]:
    want = torch.nn.functional.interpolate(
      torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode='bilinear', align_corners=False
    )
    np.testing.assert_allclose(
      inference.resize_bilinear(x, size), want.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6
    )


def test_predictor_compiles_once_for_many_image_sizes():
  sizes = [(5, 7), (9, 20), (16, 8), (31, 17), (12, 12)]
  slide = inference.SegmentationPredictor(
    conv_net, mode='slide', crop_size=8, stride=6, window_batch=2, flip=True, scales=(0.75, 1.0)
  )
  for i, size in enumerate(sizes):
    labels = slide.predict_labels(_images((1,) + size + (3,), seed=i))
    assert labels.shape == (1,) + size
  assert slide.num_traces == 1
  whole = inference.SegmentationPredictor(conv_net, mode='whole', bucket=32)
  for i, size in enumerate(sizes):
    whole.predict_labels(_images((1,) + size + (3,), seed=i))
  assert whole.num_traces == 1  # every size pads to 32x32
  whole.predict_labels(_images((1, 33, 5, 3)))
  assert whole.num_traces == 2  # a new bucket (64x32) compiles once more


def test_predictor_labels_are_argmax_of_the_network():
  images = _images((2, 10, 14, 3))
  predictor = inference.SegmentationPredictor(pointwise_net, mode='whole', bucket=8)
  np.testing.assert_array_equal(
    predictor.predict_labels(images), np.argmax(np.asarray(pointwise_net(images)), -1)
  )


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='stride'):
    inference.predict_sliding(conv_net, _images((1, 8, 8, 3)), crop_size=4, stride=5)
  with pytest.raises(ValueError, match='images'):
    inference.predict_whole(conv_net, _images((8, 8, 3)))
  with pytest.raises(ValueError, match='mode'):
    inference.SegmentationPredictor(conv_net, mode='tiles')
  with pytest.raises(ValueError, match='crop_size'):
    inference.SegmentationPredictor(conv_net, mode='slide')
  with pytest.raises(ValueError, match='scales'):
    inference.predict_augmented(conv_net, _images((1, 4, 4, 3)), scales=(0.0,))
