"""Figures a person reads at a glance: titled, upscaled tiles with a legend of class colours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxseg.viz import grids, palettes

_TEXT = (20, 20, 20)
_BACKGROUND = 255


def _font():
  return ImageFont.load_default()


def text_strip(
  texts: Sequence[str], widths: Sequence[int], *, height: int = 18, pad: int = 2
) -> np.ndarray:
  """A white strip with ``texts[i]`` left-aligned above a column of width ``widths[i]``.

  Args:
    texts: one label per column.
    widths: column widths in pixels (as in the grid below the strip).
    height: strip height in pixels.
    pad: the grid's padding between columns.

  Returns:
    ``(height, sum(widths) + pad * (len(widths) + 1), 3)`` uint8.
  """
  if len(texts) != len(widths):
    raise ValueError(
      f'texts and widths must have the same length, got {len(texts)} and {len(widths)}.'
    )
  strip = Image.new('RGB', (sum(widths) + pad * (len(widths) + 1), height), (_BACKGROUND,) * 3)
  draw = ImageDraw.Draw(strip)
  left = pad
  for text, width in zip(texts, widths):
    draw.text((left + 2, 3), text, fill=_TEXT, font=_font())
    left += width + pad
  return np.asarray(strip)


def legend(
  class_names: Sequence[str],
  palette: Any,
  *,
  width: int,
  swatch: int = 12,
  present: Sequence[int] | None = None,
) -> np.ndarray:
  """Colour swatches with class names, wrapped into rows of at most ``width`` pixels.

  Args:
    class_names: names of classes ``0..K-1``.
    palette: ``'voc'``, ``'cityscapes'`` or a ``(K, 3)`` array (``palettes.get_palette``).
    width: the legend's width (the figure's).
    swatch: side of each colour square.
    present: only these class indices (e.g. those in the shown labels); None: all.

  Returns:
    ``(H, width, 3)`` uint8.

  Example:
    >>> legend(['background', 'cat'], 'voc', width=200).shape[1]
    200
  """
  colors = palettes.get_palette(palette)
  indices = list(range(len(class_names))) if present is None else sorted(set(present))
  entries = [(colors[i % len(colors)], class_names[i]) for i in indices if i < len(class_names)]
  font = _font()
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  rows, row, used = [], [], 4
  for color, name in entries:
    item = swatch + 4 + int(measure.textlength(name, font=font)) + 12
    if row and used + item > width:
      rows.append(row)
      row, used = [], 4
    row.append((color, name, item))
    used += item
  if row:
    rows.append(row)
  line = swatch + 6
  image = Image.new('RGB', (width, max(1, len(rows)) * line + 4), (_BACKGROUND,) * 3)
  draw = ImageDraw.Draw(image)
  for r, items in enumerate(rows):
    left, top = 4, 3 + r * line
    for color, name, item in items:
      draw.rectangle(
        [left, top, left + swatch, top + swatch],
        fill=tuple(int(c) for c in color),
        outline=(80, 80, 80),
      )
      draw.text((left + swatch + 4, top), name, fill=_TEXT, font=font)
      left += item
  return np.asarray(image)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour enlargement by an int ``factor`` (labels stay crisp)."""
  if factor <= 1:
    return image
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def labelled_segmentation_grid(
  images: Any,
  labels: Any,
  predictions: Any,
  *,
  class_names: Sequence[str],
  palette: Any = 'voc',
  ignore_label: int = 255,
  min_side: int = 160,
  titles: Sequence[str] = ('image', 'ground truth', 'prediction'),
  pad: int = 2,
) -> np.ndarray:
  """``segmentation_grid`` made readable: tiles upscaled, a title row, a legend of the classes.

  Tiles smaller than ``min_side`` are enlarged by an int factor (nearest neighbour), a strip
  names the columns, and a legend lists the colours of the classes present in the labels and
  predictions, by name.

  Args:
    images: ``(N, H, W, 3)`` uint8 pixels (denormalise first).
    labels: ``(N, H, W)`` ground truth (``ignore_label`` shown white).
    predictions: ``(N, H, W)`` predicted classes.
    class_names: names of the classes ``0..K-1``.
    palette: as ``segmentation_grid``.
    ignore_label: the label of ignored pixels.
    min_side: the smaller side tiles are enlarged to reach (at least).
    titles: the column titles.
    pad: pixels between tiles.

  Returns:
    uint8 ``(H_total, W_total, 3)``.

  Example:
    >>> grid = labelled_segmentation_grid(np.zeros((1, 8, 8, 3), np.uint8),
    ...     np.zeros((1, 8, 8), int), np.ones((1, 8, 8), int), class_names=['bg', 'cat'])
    >>> grid.shape[1] > 3 * 8
    True
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f'images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}.')
  factor = max(1, -(-min_side // max(1, min(images.shape[1:3]))))
  grid = grids.segmentation_grid(
    images, labels, predictions, palette=palette, ignore_label=ignore_label, pad=0
  )
  tile_w = images.shape[2] * factor
  body = grids.make_grid([[upscale(grid, factor)]], pad=pad)
  header = text_strip(list(titles), [tile_w] * len(titles), pad=pad)
  shown = np.unique(np.concatenate([np.asarray(labels).ravel(), np.asarray(predictions).ravel()]))
  key = legend(
    class_names, palette, width=body.shape[1], present=[int(c) for c in shown if c != ignore_label]
  )
  return np.concatenate([header[:, : body.shape[1]], body, key], axis=0)
