"""Classification recipes: ImageNet's random-resized-crop and centre crop, CIFAR's pad-and-crop,
and the SalNet normalisation."""

import numpy as np
import pytest
from PIL import Image

from jaxseg import data
from jaxseg.data import registry
from jaxseg.data import transforms as T


def _coordinate_image(h, w):
  """uint8 RGB whose red channel is the row and green channel the column of each pixel."""
  rows, cols = np.mgrid[0:h, 0:w]
  return np.stack([rows, cols, np.full_like(rows, 7)], -1).astype(np.uint8)


@pytest.mark.parametrize('hw', [(200, 120), (90, 240), (64, 64)])
def test_random_resized_crop_box_is_inside_with_area_and_ratio_in_range(hw):
  rng = np.random.default_rng(hw[0])
  fractions, ratios = [], []
  for _ in range(400):
    top, left, h, w = T.random_resized_crop_box(
      hw, rng=rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
    )
    assert h >= 1 and w >= 1 and 0 <= top <= hw[0] - h and 0 <= left <= hw[1] - w
    fractions.append(h * w / (hw[0] * hw[1]))
    ratios.append(w / h)
  fractions, ratios = np.array(fractions), np.array(ratios)
  # Sides are rounded to whole pixels: allow half a pixel on each side. The shortest side a
  # draw can have is sqrt(0.08 H W * 3 / 4).
  tol = 0.5 / np.sqrt(0.08 * hw[0] * hw[1] * 3 / 4)
  assert fractions.min() >= 0.08 * (1 - tol) ** 2 and fractions.max() <= 1.0
  assert 3 / 4 * (1 - tol) / (1 + tol) <= ratios.min() and ratios.max() <= 4 / 3 * (1 + tol) / (
    1 - tol
  )
  # Draws that fit are kept as drawn, so they spread over the range: the largest fraction the
  # image's shape allows at these ratios (0.5 for 90x240) is approached, and the smallest.
  r = np.linspace(3 / 4, 4 / 3, 1001)
  reachable = (np.minimum(hw[0], hw[1] / r) * np.minimum(hw[1], hw[0] * r)).max() / np.prod(hw)
  assert fractions.min() < 0.12 and fractions.max() > 0.8 * reachable
  assert ratios.min() < 0.8 and ratios.max() > 1.25


def test_random_resized_crop_box_falls_back_to_the_clamped_centre_window():
  # At scale 1 no window of ratio 1 to 2 fits a 100x400 or 400x100 image, so the fallback (the
  # whole image clamped to the ratio range, centred) is used.
  rng = np.random.default_rng(0)
  assert T.random_resized_crop_box((100, 400), rng=rng, scale=(1.0, 1.0), ratio=(1.0, 2.0)) == (
    0,
    100,
    100,
    200,
  )
  assert T.random_resized_crop_box((400, 100), rng=rng, scale=(1.0, 1.0), ratio=(1.0, 2.0)) == (
    150,
    0,
    100,
    100,
  )
  assert T.random_resized_crop_box((50, 60), rng=rng, scale=(1.0, 1.0), ratio=(0.5, 2.0)) == (
    0,
    0,
    50,
    60,
  )


def test_random_resized_crop_maps_its_box_onto_the_output():
  image = _coordinate_image(180, 240)
  mask = (np.arange(180)[:, None] * 240 + np.arange(240)[None]) % 7
  for seed in range(20):
    box = T.random_resized_crop_box((180, 240), rng=np.random.default_rng(seed))
    out = T.random_resized_crop(
      {'image': image, 'mask': mask}, (40, 48), rng=np.random.default_rng(seed)
    )
    top, left, h, w = box
    assert out['image'].shape == (40, 48, 3) and out['mask'].shape == (40, 48)
    # Output pixel (i, j) samples source (top + (i + .5) h / 40 - .5, left + (j + .5) w / 48 - .5);
    # bilinear (and antialiased) filters reproduce a linear ramp away from the window's border.
    i, j = np.mgrid[0:40, 0:48]
    src_r = top + (i + 0.5) * h / 40 - 0.5
    src_c = left + (j + 0.5) * w / 48 - 0.5
    inner = (i >= 3) & (i < 37) & (j >= 3) & (j < 45)
    np.testing.assert_allclose(out['image'][..., 0][inner], src_r[inner], atol=1.0)
    np.testing.assert_allclose(out['image'][..., 1][inner], src_c[inner], atol=1.0)
    # The mask is sampled by nearest neighbour inside the same window.
    rows = top + np.minimum(((np.arange(40) + 0.5) * h / 40).astype(int), h - 1)
    cols = left + np.minimum(((np.arange(48) + 0.5) * w / 48).astype(int), w - 1)
    np.testing.assert_array_equal(out['mask'], mask[rows][:, cols])


def test_imagenet_eval_transform_against_a_hand_computation():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
  options = registry.resolve_options(
    {'name': 'imagenet2012', 'augment': 'imagenet', 'normalization': 'none'}
  )[1]
  out = data.process_sample(
    {'image': image, 'label': np.int32(5)},
    task='classification',
    options=options,
    ignore_label=None,
    rng=None,
  )
  # Shorter side 300 -> 256, longer 400 -> int(400 * 256 / 300) = 341; centre 224 crop at
  # (round(32 / 2), round(117 / 2)) = (16, 58) (Python rounds 58.5 to even, as torchvision).
  resized = np.asarray(Image.fromarray(image).resize((341, 256), Image.BILINEAR))
  expected = resized[16:240, 58:282].astype(np.float32) / 255
  np.testing.assert_array_equal(out['image'], expected)
  assert out['label'] == 5
  # Portrait images crop the same way, transposed.
  portrait = np.ascontiguousarray(image.transpose(1, 0, 2))
  out = data.process_sample(
    {'image': portrait, 'label': np.int32(5)},
    task='classification',
    options=options,
    ignore_label=None,
    rng=None,
  )
  resized = np.asarray(Image.fromarray(portrait).resize((256, 341), Image.BILINEAR))
  np.testing.assert_array_equal(out['image'], resized[58:282, 16:240].astype(np.float32) / 255)


def test_imagenet_train_recipe_is_a_resized_crop_then_a_flip():
  image = _coordinate_image(150, 200)
  options = registry.resolve_options(
    {
      'name': 'imagenet2012',
      'augment': 'imagenet',
      'image_size': 32,
      'eval_resize': 37,
      'normalization': 'none',
    }
  )[1]
  assert options['flip'] is True
  flipped = 0
  for seed in range(30):
    out = data.process_sample(
      {'image': image, 'label': np.int32(1)},
      task='classification',
      options=options,
      ignore_label=None,
      rng=np.random.default_rng(seed),
    )
    pixels = np.round(out['image'] * 255)
    cols = pixels[16, :, 1]
    flipped += cols[0] > cols[-1]
    expected = T.random_resized_crop({'image': image}, 32, rng=np.random.default_rng(seed))
    if cols[0] > cols[-1]:
      expected = T.horizontal_flip(expected)
    np.testing.assert_array_equal(pixels, expected['image'])
  assert 5 < flipped < 25


@pytest.mark.parametrize('pad_mode', ['zeros', 'reflect', 'mean'])
def test_cifar_recipe_pads_then_crops_and_flips(pad_mode):
  image = _coordinate_image(16, 16) * 10 + 5  # distinct rows/cols, no zero pixels
  options = registry.resolve_options(
    {'name': 'cifar10', 'augment': 'cifar', 'image_size': 16, 'pad_mode': pad_mode}
  )[1]
  assert options['crop_padding'] == 4 and options['flip'] is True
  for seed in range(40):
    rng = np.random.default_rng(seed)
    out = data.process_sample(
      {'image': image, 'label': np.int32(0)},
      task='classification',
      options=options,
      ignore_label=None,
      rng=rng,
    )
    # Rebuild from the same draws: padded frame, window corner, flip.
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, 9), rng.integers(0, 9)
    if pad_mode == 'reflect':
      frame = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode='reflect')
    else:
      fill = [0, 0, 0] if pad_mode == 'zeros' else [124, 116, 104]
      frame = np.empty((24, 24, 3), np.uint8)
      frame[...] = fill
      frame[4:20, 4:20] = image
    expected = frame[top : top + 16, left : left + 16]
    if rng.uniform() < 0.5:
      expected = expected[:, ::-1]
    np.testing.assert_array_equal(np.round(out['image'] * 255), expected)


def test_reflect_padding_mirrors_without_repeating_the_border():
  sample = {'image': _coordinate_image(5, 6), 'mask': np.arange(30).reshape(5, 6)}
  out = T.pad_sides(sample, 2, mode='reflect')
  assert out['image'].shape == (9, 10, 3)
  np.testing.assert_array_equal(out['image'][:, 2:8, 0][:, 0], [2, 1, 0, 1, 2, 3, 4, 3, 2])
  np.testing.assert_array_equal(out['mask'][2, :], [2, 1, 0, 1, 2, 3, 4, 5, 4, 3])
  with pytest.raises(ValueError, match='padding'):
    T.pad_sides(sample, 5, mode='reflect')
  with pytest.raises(ValueError, match='mode'):
    T.pad_sides(sample, 1, mode='edge')


def test_resize_shorter_side_and_center_crop_follow_torchvision_sizes():
  sample = {'image': np.zeros((300, 400, 3), np.uint8)}
  assert T.resize_shorter_side(sample, 256)['image'].shape == (256, 341, 3)
  assert T.resize_shorter_side({'image': np.zeros((500, 375, 3), np.uint8)}, 224)[
    'image'
  ].shape == (298, 224, 3)
  image = _coordinate_image(11, 20)
  out = T.center_crop({'image': image}, (4, 7))['image']
  # (11 - 4) / 2 = 3.5 rounds to 4 (even); (20 - 7) / 2 = 6.5 rounds to 6.
  assert out[0, 0, 0] == 4 and out[0, 0, 1] == 6
  with pytest.raises(ValueError, match='larger'):
    T.center_crop({'image': image}, 12)


def test_salnet_normalisation_closed_form():
  pixel = np.array([[[10, 20, 30]]], np.uint8)
  np.testing.assert_allclose(
    T.normalize(pixel, 'salnet')[0, 0],
    [(30 - 100) / 127.5, (20 - 110) / 127.5, (10 - 118) / 127.5],
    rtol=1e-6,
  )
  np.testing.assert_array_equal(T.mean_pixel('salnet'), [118, 110, 100])
  np.testing.assert_array_equal(T.normalize(T.mean_pixel('salnet')[None, None], 'salnet'), 0)
  white = T.normalize(np.full((1, 1, 3), 255, np.uint8), 'salnet')[0, 0]
  np.testing.assert_allclose(white, [155 / 127.5, 145 / 127.5, 137 / 127.5], rtol=1e-6)
  options = registry.resolve_options({'name': 'salicon', 'normalization': 'salnet'})[1]
  assert options['normalization'] == 'salnet'


def test_recipe_options_are_checked_and_named():
  with pytest.raises(ValueError, match='augment'):
    registry.resolve_options({'name': 'cifar10', 'augment': 'autoaugment'})
  with pytest.raises(ValueError, match='crop_padding'):
    registry.resolve_options({'name': 'digits', 'augment': 'cifar'})
  with pytest.raises(ValueError, match='crop_padding'):
    registry.resolve_options({'name': 'cifar10', 'augment': 'imagenet'})
  with pytest.raises(ValueError, match='eval_resize'):
    registry.resolve_options({'name': 'imagenet2012', 'augment': 'imagenet', 'eval_resize': 200})
  with pytest.raises(ValueError, match='pad_mode'):
    registry.resolve_options({'name': 'cifar10', 'pad_mode': 'edge'})
  with pytest.raises(ValueError, match='normalization'):
    registry.resolve_options({'name': 'cifar10', 'normalization': 'bgr'})
  with pytest.raises(ValueError, match='scale'):
    T.random_resized_crop_box((10, 10), rng=np.random.default_rng(0), scale=(0.5, 1.5))
  with pytest.raises(ValueError, match='box'):
    T.resized_crop({'image': np.zeros((10, 10, 3), np.uint8)}, (5, 5, 6, 2), 4)
  # flip=None follows the recipe; an explicit value wins.
  assert registry.resolve_options({'name': 'digits'})[1]['flip'] is False
  assert (
    registry.resolve_options({'name': 'digits', 'augment': 'cifar', 'crop_padding': 2})[1]['flip']
    is True
  )
  assert (
    registry.resolve_options({'name': 'imagenet2012', 'augment': 'imagenet', 'flip': False})[1][
      'flip'
    ]
    is False
  )
