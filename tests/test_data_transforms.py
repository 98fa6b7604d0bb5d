"""Joint transforms: images, masks and saliency maps move together, checked against definitions."""

import numpy as np
import pytest

from jaxseg.data import transforms as T

_PAD = (124, 116, 104)


def _coordinate_sample(h=96, w=120, block=16):
  """An image whose pixels encode their own (row, col) and a mask of blocks of those coordinates.

  Channel 0 = 2 * row, channel 1 = 2 * col, channel 2 = 255 marks real (unpadded) pixels.
  """
  rows, cols = np.mgrid[0:h, 0:w]
  image = np.stack([2 * rows, 2 * cols, np.full_like(rows, 255)], -1).astype(np.uint8)
  mask = _block_class(rows, cols, block)
  return {'image': image, 'mask': mask.astype(np.int32)}


def _block_class(rows, cols, block):
  return (rows // block) * 10 + (cols // block)


def _decode_expected_mask(image, block):
  rows = np.floor(image[..., 0].astype(np.float64) / 2)
  cols = np.floor(image[..., 1].astype(np.float64) / 2)
  return _block_class(rows.astype(int), cols.astype(int), block)


@pytest.mark.parametrize('seed', range(6))
def test_mask_follows_image_through_scale_crop_flip(seed):
  block = 16
  sample = _coordinate_sample(block=block)
  rng = np.random.default_rng(seed)
  out = T.random_scale(sample, rng=rng, scale_range=(0.5, 2.0))
  out = T.random_crop(out, 80, rng=rng, image_pad=_PAD, ignore_label=255)
  out = T.random_horizontal_flip(out, rng=rng, prob=0.5)
  image, mask = out['image'], out['mask']
  assert image.shape == (80, 80, 3) and mask.shape == (80, 80)
  real = image[..., 2] > 200
  # Padding: exactly where the image holds the mean pixel, the mask holds the ignore label.
  np.testing.assert_array_equal(mask == 255, ~real)
  np.testing.assert_array_equal(image[~real], np.broadcast_to(_PAD, image[~real].shape))
  # Real pixels: the class decoded from the image's coordinates is the mask's class, except on
  # the one-pixel seams between blocks where bilinear and nearest sampling legitimately differ.
  expected = _decode_expected_mask(image, block)
  agreement = np.mean(expected[real] == mask[real])
  assert agreement > 0.93, agreement


def test_flip_mirrors_every_dense_key():
  sample = _coordinate_sample(h=8, w=10)
  sample['density'] = np.arange(80, dtype=np.float32).reshape(8, 10)
  sample['fixations'] = np.zeros((8, 10), np.uint8)
  sample['fixations'][3, 1] = 1
  out = T.horizontal_flip(sample)
  for key in ('image', 'mask', 'density', 'fixations'):
    np.testing.assert_array_equal(out[key], sample[key][:, ::-1])
  assert out['fixations'][3, 8] == 1


def test_nearest_mask_resize_matches_definition():
  rng = np.random.default_rng(0)
  mask = rng.integers(0, 21, size=(7, 11)).astype(np.int32)
  image = np.zeros((7, 11, 3), np.uint8)
  out = T.resize({'image': image, 'mask': mask}, (13, 5))['mask']
  expected = np.empty((13, 5), np.int32)
  for i in range(13):
    for j in range(5):
      expected[i, j] = mask[min(int((i + 0.5) * 7 / 13), 6), min(int((j + 0.5) * 11 / 5), 10)]
  np.testing.assert_array_equal(out, expected)
  assert set(np.unique(out)) <= set(np.unique(mask))  # a class id is never averaged


def test_bilinear_image_upsampling_matches_half_pixel_definition():
  # Upsampling (no antialiasing) follows the half-pixel bilinear definition of PIL and torch's
  # F.interpolate(align_corners=False) away from the border.
  rng = np.random.default_rng(1)
  image = rng.uniform(0, 255, size=(5, 6, 3)).astype(np.float32)
  out = T.resize({'image': image}, (10, 12))['image']

  def sample(y, x):
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y0, x0 = min(max(y0, 0), 4), min(max(x0, 0), 5)
    y1, x1 = min(y0 + 1, 4), min(x0 + 1, 5)
    dy, dx = np.clip(y - y0, 0, 1), np.clip(x - x0, 0, 1)
    return (
      (1 - dy) * (1 - dx) * image[y0, x0]
      + (1 - dy) * dx * image[y0, x1]
      + dy * (1 - dx) * image[y1, x0]
      + dy * dx * image[y1, x1]
    )

  for i in range(1, 9):
    for j in range(1, 11):
      np.testing.assert_allclose(
        out[i, j], sample((i + 0.5) / 2 - 0.5, (j + 0.5) / 2 - 0.5), rtol=1e-4, atol=1e-3
      )


def test_fixations_move_as_points_and_are_never_blurred():
  fixations = np.zeros((40, 60), np.uint8)
  points = [(0, 0), (10, 20), (39, 59), (25, 7)]
  for r, c in points:
    fixations[r, c] = 1
  image = np.zeros((40, 60, 3), np.uint8)
  out = T.resize({'image': image, 'fixations': fixations}, (20, 30))['fixations']
  assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
  expected = {(int((r + 0.5) / 2), int((c + 0.5) / 2)) for r, c in points}
  assert set(zip(*np.nonzero(out))) == expected


def test_random_crop_pads_image_with_mean_and_mask_with_ignore():
  sample = {
    'image': np.full((5, 6, 3), 7, np.uint8),
    'mask': np.ones((5, 6), np.int32),
    'density': np.ones((5, 6), np.float32),
  }
  out = T.random_crop(
    sample, (9, 8), rng=np.random.default_rng(0), image_pad=_PAD, ignore_label=255
  )
  # The window covers the whole padded canvas: the original sits at the top left.
  assert out['image'].shape == (9, 8, 3)
  np.testing.assert_array_equal(out['mask'][:5, :6], 1)
  assert np.all(out['mask'][5:] == 255) and np.all(out['mask'][:, 6:] == 255)
  np.testing.assert_array_equal(out['image'][5:, 0], np.broadcast_to(_PAD, (4, 3)))
  assert out['density'][5:].sum() == 0 and out['density'][:5, :6].sum() == 30


def test_random_crop_window_is_uniform_and_inside():
  sample = _coordinate_sample(h=20, w=20, block=4)
  corners = set()
  for seed in range(200):
    out = T.random_crop(sample, 18, rng=np.random.default_rng(seed))
    corners.add((int(out['image'][0, 0, 0]) // 2, int(out['image'][0, 0, 1]) // 2))
  assert corners == {(r, c) for r in range(3) for c in range(3)}


def test_fit_and_pad_keeps_small_images_and_shrinks_large_ones():
  small = {'image': np.zeros((300, 500, 3), np.uint8), 'mask': np.zeros((300, 500), np.int32)}
  out = T.fit_and_pad(small, 513)
  assert out['image'].shape == (513, 513, 3)
  np.testing.assert_array_equal(out['mask'][:300, :500], 0)
  assert np.all(out['mask'][300:] == 255) and np.all(out['mask'][:, 500:] == 255)
  large = {'image': np.zeros((1026, 600, 3), np.uint8), 'mask': np.zeros((1026, 600), np.int32)}
  out = T.fit_and_pad(large, 513)
  assert out['image'].shape == (513, 513, 3)
  assert np.sum(out['mask'][:, 0] == 0) == 513 and np.sum(out['mask'][0] == 0) == 300


def test_resize_to_multiple_and_scale():
  sample = {'image': np.zeros((100, 130, 3), np.uint8), 'mask': np.zeros((100, 130), np.int32)}
  assert T.resize_to_multiple(sample, 32)['mask'].shape == (96, 128)
  assert T.resize_to_multiple({'image': np.zeros((10, 10, 3), np.uint8)})['image'].shape == (
    32,
    32,
    3,
  )
  assert T.scale(sample, 0.5)['mask'].shape == (50, 65)


def test_pad_sides_centres_the_image():
  sample = _coordinate_sample(h=4, w=4, block=2)
  out = T.pad_sides(sample, 2, image_pad=_PAD)
  assert out['image'].shape == (8, 8, 3)
  np.testing.assert_array_equal(out['image'][2:6, 2:6], sample['image'])
  np.testing.assert_array_equal(out['mask'][2:6, 2:6], sample['mask'])
  assert np.all(out['mask'][:2] == 255)


def test_normalize_closed_forms():
  pixel = np.array([[[10, 20, 30]]], np.uint8)
  np.testing.assert_allclose(
    T.normalize(pixel, 'caffe_bgr')[0, 0],
    [30 - 104.00699, 20 - 116.66877, 10 - 122.67892],
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    T.normalize(pixel, 'imagenet')[0, 0],
    [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225],
    rtol=1e-5,
  )
  np.testing.assert_allclose(T.normalize(pixel, 'none')[0, 0], [10 / 255, 20 / 255, 30 / 255])
  # Padding with the mean pixel is zero after normalisation, up to uint8 rounding (half a
  # gray level: 0.5 for Caffe's 0..255 range, 0.5 / 255 / std for ImageNet's).
  assert np.abs(T.normalize(T.mean_pixel('caffe_bgr')[None, None], 'caffe_bgr')).max() <= 0.5
  assert np.abs(T.normalize(T.mean_pixel('imagenet')[None, None], 'imagenet')).max() < 0.0095
  np.testing.assert_array_equal(T.mean_pixel('caffe_bgr'), [123, 117, 104])  # RGB order
  np.testing.assert_array_equal(T.mean_pixel('none'), [124, 116, 104])
  with pytest.raises(ValueError, match='normalization'):
    T.normalize(pixel, 'bgr')


def test_photometric_jitter_invariants():
  rng = np.random.default_rng(0)
  image = rng.uniform(40, 200, size=(16, 16, 3)).astype(np.float32)
  weights = np.array([0.299, 0.587, 0.114])
  for seed in range(5):
    out = T.photometric_jitter(
      image, rng=np.random.default_rng(seed), brightness=0.2, contrast=0.0, saturation=0.0
    )
    ratio = out / image
    np.testing.assert_allclose(ratio, ratio[0, 0, 0], rtol=1e-5)  # one global factor
    assert 0.8 <= ratio[0, 0, 0] <= 1.2
    out = T.photometric_jitter(
      image, rng=np.random.default_rng(seed), brightness=0.0, contrast=0.0, saturation=0.5
    )
    np.testing.assert_allclose(out @ weights, image @ weights, rtol=1e-4)  # gray preserved
    out = T.photometric_jitter(
      image, rng=np.random.default_rng(seed), brightness=0.0, contrast=0.5, saturation=0.0
    )
    np.testing.assert_allclose((out @ weights).mean(), (image @ weights).mean(), rtol=1e-4)
  with pytest.raises(ValueError, match='brightness'):
    T.photometric_jitter(image, rng=rng, brightness=1.5)


def test_transforms_are_deterministic_given_the_rng():
  sample = _coordinate_sample()
  a = T.random_crop(
    T.random_scale(sample, rng=np.random.default_rng(3)), 64, rng=np.random.default_rng(4)
  )
  b = T.random_crop(
    T.random_scale(sample, rng=np.random.default_rng(3)), 64, rng=np.random.default_rng(4)
  )
  np.testing.assert_array_equal(a['image'], b['image'])
  np.testing.assert_array_equal(a['mask'], b['mask'])


def test_errors_name_the_argument():
  sample = _coordinate_sample(h=8, w=8)
  with pytest.raises(TypeError, match='size'):
    T.resize(sample, 'big')
  with pytest.raises(ValueError, match='size'):
    T.random_crop(sample, 0, rng=np.random.default_rng(0))
  with pytest.raises(ValueError, match='scale_range'):
    T.random_scale(sample, rng=np.random.default_rng(0), scale_range=(2.0, 1.0))
  with pytest.raises(ValueError, match='mask'):
    T.horizontal_flip({'image': sample['image'], 'mask': np.zeros((4, 8), np.int32)})


@pytest.mark.parametrize('seed', range(8))
def test_fused_scale_crop_equals_scale_then_crop(seed):
  rng = np.random.default_rng(100 + seed)
  h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
  sample = {
    'image': rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8),
    'mask': rng.integers(0, 21, size=(h, w)).astype(np.int32),
    'density': rng.uniform(size=(h, w)).astype(np.float32),
    'fixations': (rng.uniform(size=(h, w)) < 0.05).astype(np.uint8),
  }
  size = (int(rng.integers(10, 70)), int(rng.integers(10, 70)))
  fused = T.random_scale_crop(sample, size, rng=np.random.default_rng(seed), image_pad=_PAD)
  draws = np.random.default_rng(seed)
  reference = T.random_crop(T.random_scale(sample, rng=draws), size, rng=draws, image_pad=_PAD)
  np.testing.assert_array_equal(fused['mask'], reference['mask'])
  np.testing.assert_array_equal(fused['fixations'], reference['fixations'])
  # PIL computes the same taps for a box; its fixed-point rounding may differ by one level.
  assert np.abs(fused['image'].astype(int) - reference['image'].astype(int)).max() <= 1
  np.testing.assert_allclose(fused['density'], reference['density'], atol=1e-5)
