"""Tests for jaxseg.viz: palettes, colour masks, overlays and grids."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxseg import viz
import reference_data

REFERENCE = reference_data.ROOT


def test_voc_palette_known_colours():
  palette = viz.voc_palette()
  assert palette.shape == (256, 3) and palette.dtype == np.uint8
  # The colours of the VOC devkit's documentation: background, aeroplane, bicycle, person, void.
  assert palette[0].tolist() == [0, 0, 0]
  assert palette[1].tolist() == [128, 0, 0]
  assert palette[2].tolist() == [0, 128, 0]
  assert palette[15].tolist() == [192, 128, 128]
  assert palette[20].tolist() == [0, 64, 128]
  assert palette[255].tolist() == list(viz.VOC_VOID_COLOR)
  assert len(np.unique(palette, axis=0)) == 256


def test_voc_palette_bit_formula_by_loop():
  palette = viz.voc_palette()
  for k in range(256):
    bits = [(k >> b) & 1 for b in range(8)]
    want = [sum(bits[3 * j + c] << (7 - j) for j in range(8) if 3 * j + c < 8) for c in range(3)]
    assert palette[k].tolist() == want


@pytest.mark.skipif(
  not os.path.isdir(os.path.join(REFERENCE, 'voc-fcn-demo')), reason='shared reference data absent'
)
def test_voc_palette_matches_the_palette_of_a_real_voc_png():
  image = Image.open(os.path.join(REFERENCE, 'voc-fcn-demo', 'label.png'))
  assert image.mode == 'P'
  file_palette = np.array(image.getpalette(), np.uint8).reshape(-1, 3)
  np.testing.assert_array_equal(viz.voc_palette(len(file_palette)), file_palette)


@pytest.mark.skipif(
  not os.path.isdir(os.path.join(REFERENCE, 'voc-samples')), reason='shared reference data absent'
)
def test_colorize_reproduces_an_rgb_voc_target():
  target = np.array(Image.open(os.path.join(REFERENCE, 'voc-samples', '1_target.png')))
  labels = viz.colors_to_labels(target, 'voc')
  assert set(np.unique(labels)) == {0, 1, 255}
  np.testing.assert_array_equal(viz.colorize(labels, ignore_color=viz.VOC_VOID_COLOR), target)


def test_cityscapes_palette():
  palette = viz.cityscapes_palette()
  assert palette.shape == (19, 3) == (len(viz.CITYSCAPES_CLASSES), 3)
  assert palette[0].tolist() == [128, 64, 128]  # road
  assert palette[10].tolist() == [70, 130, 180]  # sky
  assert palette[13].tolist() == [0, 0, 142]  # car


def test_colorize_ignore_colours_and_round_trip():
  labels = np.array([[0, 1, 2], [255, 18, 5]])
  white = viz.colorize(labels, palette='cityscapes')
  assert white[1, 0].tolist() == [255, 255, 255]
  black = viz.colorize(labels, palette='cityscapes', ignore_color=(0, 0, 0))
  assert black[1, 0].tolist() == [0, 0, 0]
  assert white[1, 1].tolist() == [119, 11, 32]
  back = viz.colors_to_labels(white, 'cityscapes', unknown=255)
  np.testing.assert_array_equal(back, labels)


def test_colorize_rejects_labels_outside_palette():
  with pytest.raises(ValueError, match='labels must lie in'):
    viz.colorize(np.array([[19]]), palette='cityscapes')
  with pytest.raises(ValueError, match='palette'):
    viz.colorize(np.array([[0]]), palette='ade')
  with pytest.raises(ValueError, match='not in the palette'):
    viz.colors_to_labels(np.full((1, 1, 3), 7, np.uint8), 'cityscapes')


def test_overlay_is_the_alpha_blend():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, size=(4, 5, 3)).astype(np.uint8)
  labels = rng.integers(0, 21, size=(4, 5))
  labels[0, 0] = 255
  got = viz.overlay(image, labels, alpha=0.3)
  colors = viz.voc_palette()[np.where(labels == 255, 0, labels)].astype(float)
  colors[0, 0] = 255
  want = np.round(0.7 * image + 0.3 * colors)
  np.testing.assert_array_equal(got, want.astype(np.uint8))
  kept = viz.overlay(image, labels, alpha=0.3, show_ignored=False)
  np.testing.assert_array_equal(kept[0, 0], image[0, 0])


def test_image_to_uint8_ranges():
  np.testing.assert_array_equal(
    viz.image_to_uint8(np.array([[[0.0, 0.5, 1.0]]])), [[[0, 128, 255]]]
  )
  np.testing.assert_array_equal(
    viz.image_to_uint8(np.array([[[0.0, 100.0, 255.0]]])), [[[0, 100, 255]]]
  )
  standardised = np.array([[[-1.0, 0.0, 1.0]]])
  np.testing.assert_array_equal(viz.image_to_uint8(standardised), [[[0, 128, 255]]])
  np.testing.assert_array_equal(
    viz.image_to_uint8(standardised, mean=[0.5] * 3, std=[0.5] * 3), [[[0, 128, 255]]]
  )


def test_segmentation_grid_layout_and_png(tmp_path):
  images = np.zeros((2, 4, 5, 3), np.float32)
  labels = np.zeros((2, 4, 5), np.int32)
  preds = np.ones((2, 4, 5), np.int32)
  grid = viz.segmentation_grid(images, labels, preds, pad=1, alpha=1.0)
  assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
  # Row 2, third column: the prediction (label 1, aeroplane red) at full opacity.
  assert grid[6, 13].tolist() == [128, 0, 0]
  assert grid[6, 7].tolist() == [0, 0, 0]  # ground truth: background black
  assert grid[0, 0].tolist() == [255, 255, 255]  # padding
  path = viz.save_png(grid, str(tmp_path / 'a' / 'grid.png'))
  np.testing.assert_array_equal(np.array(Image.open(path)), grid)


@pytest.mark.parametrize('num_metrics', [1, 2, 4, 8, 12, 16])
@pytest.mark.parametrize('title', ['', '/tmp/runs/000_learning_rate=0.000125_total_steps=600'])
def test_curve_panels_and_their_labels_fit_the_figure_without_overlapping(num_metrics, title):
  # The fixed margins of viz.curves must leave room for tick labels, titles and 'step' labels:
  # each panel's drawn extent (labels included) inside the figure, no two extents overlapping.
  from matplotlib import pyplot as plt

  from jaxseg.viz import curves

  names = ['loss', 'learning_rate', 'accuracy', 'mean_iou', 'grad_norm', 'top5_error']
  names += [f'iou/class_{k}' for k in range(10)]
  records = [
    {
      'step': s,
      'split': split,
      **{n: 1.25e-4 * s * (i + 1) for i, n in enumerate(names[:num_metrics])},
    }
    for s in range(1, 601, 50)
    for split in ('train', 'eval')
  ]
  figure = curves._draw(records, title)  # pylint: disable=protected-access
  figure.canvas.draw()
  renderer = figure.canvas.get_renderer()
  bounds = figure.bbox
  extents = [axis.get_tightbbox(renderer) for axis in figure.axes if axis.axison]
  assert len(extents) == num_metrics
  if title:  # the figure's title too
    extents.append(figure._suptitle.get_window_extent(renderer))  # pylint: disable=protected-access
  plt.close(figure)
  for extent in extents:
    assert extent.x0 >= bounds.x0 - 1 and extent.y0 >= bounds.y0 - 1
    assert extent.x1 <= bounds.x1 + 1 and extent.y1 <= bounds.y1 + 1
  for i, first in enumerate(extents):
    for second in extents[i + 1 :]:  # more than a pixel apart (touching boxes overlap)
      assert not first.padded(1).overlaps(second), (first, second)
