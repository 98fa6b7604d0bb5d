"""Saliency heatmaps: a jet colour map, overlays on the image, and image | truth | prediction grids.

NumPy and Pillow only (host side).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from jaxseg.viz import grids, overlays

__all__ = ['jet', 'heatmap', 'heatmap_overlay', 'saliency_grid']


def jet(values: Any) -> np.ndarray:
  """The jet colour map (dark blue, blue, cyan, yellow, red, dark red) of values in ``[0, 1]``.

  ``r = clip(1.5 - |4v - 3|)``, ``g = clip(1.5 - |4v - 2|)``, ``b = clip(1.5 - |4v - 1|)``,
  clipped to ``[0, 1]``: MATLAB's ``jet`` as a closed form. Values outside ``[0, 1]`` are clipped.

  Args:
    values: any-shaped array.

  Returns:
    uint8 array of shape ``values.shape + (3,)``.

  Example:
    >>> jet(np.array([0.0, 0.5, 1.0])).tolist()
    [[0, 0, 128], [128, 255, 128], [128, 0, 0]]
  """
  v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)[..., None]
  centres = np.array([3.0, 2.0, 1.0])
  rgb = np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)
  return np.round(rgb * 255.0).astype(np.uint8)


def _resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  if values.shape == tuple(shape):
    return values
  image = Image.fromarray(values.astype(np.float32))
  return np.asarray(image.resize((shape[1], shape[0]), Image.BILINEAR), np.float64)


def heatmap(saliency: Any, *, shape: tuple[int, int] | None = None) -> np.ndarray:
  """A saliency map as a jet-coloured image, min-max stretched.

  Args:
    saliency: ``(h, w)`` or ``(h, w, 1)`` map, any real values.
    shape: ``(H, W)`` to resize to (bilinear); ``None`` keeps the map's size.

  Returns:
    ``(H, W, 3)`` uint8. A constant map is drawn at the bottom of the scale.

  Example:
    >>> heatmap(np.array([[0.0, 2.0]])).tolist()
    [[[0, 0, 128], [128, 0, 0]]]
  """
  values = np.asarray(saliency)
  if values.dtype.kind not in 'biuf':
    raise TypeError(f'saliency must be a numeric array, got dtype {values.dtype}.')
  values = values.astype(np.float64)
  if values.ndim == 3 and values.shape[-1] == 1:
    values = values[..., 0]
  if values.ndim != 2 or values.size == 0:
    raise ValueError(
      f'saliency must have a non-empty shape (h, w) or (h, w, 1), got {values.shape}.'
    )
  if not np.isfinite(values).all():
    # One NaN would make the min-max stretch NaN everywhere: a blank heatmap, silently.
    raise ValueError(
      f'saliency holds {int((~np.isfinite(values)).sum())} NaN or infinite '
      'value(s); replace them (e.g. np.nan_to_num) before drawing.'
    )
  if shape is not None:
    values = _resize(values, tuple(shape))
  low, high = float(values.min()), float(values.max())
  scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
  return jet(scaled)


def heatmap_overlay(
  image: Any, saliency: Any, *, alpha: float = 0.5, mean: Any = None, std: Any = None
) -> np.ndarray:
  """Blends a jet heatmap of ``saliency`` over ``image``: ``(1 - alpha) image + alpha heat``.

  Args:
    image: ``(H, W, 3)`` image (uint8, or float with optional ``mean``/``std`` to undo).
    saliency: ``(h, w)`` or ``(h, w, 1)`` map, resized to ``(H, W)``.
    alpha: weight of the heatmap, in ``[0, 1]``.
    mean: per-channel mean the image was normalised with, if any.
    std: per-channel standard deviation, if any.

  Returns:
    ``(H, W, 3)`` uint8.

  Example:
    >>> heatmap_overlay(np.zeros((2, 2, 3), np.uint8), np.eye(2), alpha=1.0)[0, 0].tolist()
    [128, 0, 0]
  """
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f'alpha must lie in [0, 1], got {alpha!r}.')
  rgb = overlays.image_to_uint8(image, mean=mean, std=std)
  if rgb.ndim != 3 or rgb.shape[-1] != 3:
    raise ValueError(f'image must have shape (H, W, 3), got {rgb.shape}.')
  heat = heatmap(saliency, shape=rgb.shape[:2])
  blended = (1.0 - alpha) * rgb.astype(np.float64) + alpha * heat.astype(np.float64)
  return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def saliency_grid(
  images: Any,
  truths: Any,
  predictions: Any,
  *,
  alpha: float = 0.5,
  mean: Any = None,
  std: Any = None,
) -> np.ndarray:
  """One row per example: image | ground-truth heatmap overlay | predicted heatmap overlay.

  Args:
    images: ``(N, H, W, 3)`` images.
    truths: ``(N, h, w)`` ground-truth densities.
    predictions: ``(N, h', w')`` or ``(N, h', w', 1)`` predicted maps.
    alpha: heatmap weight of the overlays.
    mean: per-channel mean of the image normalisation, if any.
    std: per-channel standard deviation, if any.

  Returns:
    One uint8 RGB image (see :func:`jaxseg.viz.make_grid`).

  Example:
    >>> saliency_grid(np.zeros((2, 4, 4, 3), np.uint8), np.ones((2, 4, 4)),
    ...               np.ones((2, 2, 2, 1))).shape
    (14, 20, 3)
  """
  images = np.asarray(images)
  truths = np.asarray(truths)
  predictions = np.asarray(predictions)
  if not len(images) == len(truths) == len(predictions):
    raise ValueError(
      f'images, truths and predictions must have the same batch size, got '
      f'{len(images)}, {len(truths)} and {len(predictions)}.'
    )
  rows = []
  for image, truth, prediction in zip(images, truths, predictions):
    rgb = overlays.image_to_uint8(image, mean=mean, std=std)
    rows.append(
      [rgb, heatmap_overlay(rgb, truth, alpha=alpha), heatmap_overlay(rgb, prediction, alpha=alpha)]
    )
  return grids.make_grid(rows)
