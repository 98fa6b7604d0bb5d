"""Image grids (image | ground truth | prediction) and PNG output."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from jaxseg.viz import overlays


def make_grid(rows: Sequence[Sequence[Any]], *, pad: int = 2, pad_value: int = 255) -> np.ndarray:
  """Tiles uint8 RGB images into one image, row by row, separated by ``pad`` pixels.

  Cells may differ in size; each is placed at the top-left of a cell as large as the largest
  image of its row (height) and column (width).

  Args:
    rows: a list of rows, each a list of ``(H, W, 3)`` uint8 images.
    pad: pixels between cells and around the grid.
    pad_value: grey level of the padding.

  Returns:
    ``(H_total, W_total, 3)`` uint8 image.

  Example:
    >>> make_grid([[np.zeros((2, 3, 3), np.uint8)] * 2], pad=1).shape
    (4, 9, 3)
  """
  if not rows or not all(len(row) for row in rows):
    raise ValueError('rows must be a non-empty list of non-empty lists of images.')
  if pad < 0:
    raise ValueError(f'pad must be non-negative, got {pad}.')
  cells = [[np.asarray(cell) for cell in row] for row in rows]
  for row in cells:
    for cell in row:
      if cell.ndim != 3 or cell.shape[-1] != 3 or cell.dtype != np.uint8:
        raise ValueError(
          f'every cell must be an (H, W, 3) uint8 image, got {cell.shape} {cell.dtype}.'
        )
  num_columns = max(len(row) for row in cells)
  heights = [max(cell.shape[0] for cell in row) for row in cells]
  widths = [
    max((row[c].shape[1] for row in cells if c < len(row)), default=0) for c in range(num_columns)
  ]
  grid = np.full(
    (sum(heights) + pad * (len(cells) + 1), sum(widths) + pad * (num_columns + 1), 3),
    pad_value,
    np.uint8,
  )
  top = pad
  for row, height in zip(cells, heights):
    left = pad
    for c, cell in enumerate(row):
      grid[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
      left += widths[c] + pad
    top += height + pad
  return grid


def segmentation_grid(
  images: Any,
  labels: Any,
  predictions: Any,
  *,
  palette: Any = 'voc',
  ignore_label: int = 255,
  alpha: float = 0.6,
  mean: Any = None,
  std: Any = None,
  pad: int = 2,
) -> np.ndarray:
  """One row per example: the image, the ground truth overlaid, the prediction overlaid.

  Args:
    images: ``(N, H, W, 3)`` images (any range :func:`overlays.image_to_uint8` accepts;
      ``mean``/``std`` undo a normalisation).
    labels: ``(N, H, W)`` ground-truth labels (``ignore_label`` shown white).
    predictions: ``(N, H, W)`` predicted labels.
    palette: ``'voc'``, ``'cityscapes'`` or a ``(K, 3)`` array.
    ignore_label: label of ignored pixels.
    alpha: opacity of the label colours.
    mean: per-channel mean of the normalisation, if any.
    std: per-channel standard deviation of the normalisation, if any.
    pad: pixels between cells.

  Returns:
    uint8 ``(N * (H + pad) + pad, 3 * (W + pad) + pad, 3)`` image.

  Example:
    >>> segmentation_grid(np.zeros((2, 4, 5, 3)), np.zeros((2, 4, 5), int),
    ...                   np.ones((2, 4, 5), int), pad=1).shape
    (11, 19, 3)
  """
  images = np.asarray(images)
  labels = np.asarray(labels)
  predictions = np.asarray(predictions)
  if images.ndim != 4 or labels.shape != images.shape[:3] or predictions.shape != labels.shape:
    raise ValueError(
      f'images (N, H, W, 3), labels (N, H, W) and predictions (N, H, W) must '
      f'agree, got {images.shape}, {labels.shape} and {predictions.shape}.'
    )
  pixels = overlays.image_to_uint8(images, mean=mean, std=std)
  options = dict(alpha=alpha, palette=palette, ignore_label=ignore_label)
  rows = [
    [image, overlays.overlay(image, label, **options), overlays.overlay(image, pred, **options)]
    for image, label, pred in zip(pixels, labels, predictions)
  ]
  return make_grid(rows, pad=pad)


def save_png(image: Any, path: str) -> str:
  """Writes an ``(H, W, 3)`` uint8 image (or ``(H, W)`` grey) as PNG, creating the folder.

  Args:
    image: ``(H, W, 3)`` or ``(H, W)`` uint8 array.
    path: file to write; missing folders are created.

  Returns:
    ``path``.

  Example:
    >>> import os, tempfile
    >>> path = save_png(np.zeros((2, 3, 3), np.uint8), os.path.join(tempfile.mkdtemp(), 'a.png'))
    >>> np.asarray(Image.open(path)).shape
    (2, 3, 3)
  """
  if isinstance(image, (str, os.PathLike)):
    raise TypeError(
      f'image must be a uint8 array, got the path-like {image!r}; the order is '
      'save_png(image, path).'
    )
  if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
    raise TypeError(
      f'path must be a non-empty str or os.PathLike, got {type(path).__name__} {path!r}.'
    )
  path = os.fspath(path)
  array = np.asarray(image)
  if (
    array.dtype != np.uint8
    or array.ndim not in (2, 3)
    or (array.ndim == 3 and array.shape[-1] not in (3, 4))
  ):
    raise ValueError(f'image must be uint8 (H, W) or (H, W, 3), got {array.shape} {array.dtype}.')
  if os.path.isdir(path):
    raise ValueError(
      f'path {path!r} is a folder; give a file name such as {os.path.join(path, "image.png")!r}.'
    )
  folder = os.path.dirname(path)
  parent = folder
  while parent and not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if parent and not os.path.isdir(parent):
    raise ValueError(f'path {path!r} lies under {parent!r}, which is a file, not a folder.')
  if folder:
    os.makedirs(folder, exist_ok=True)
  Image.fromarray(array).save(path, format='PNG')
  return path
