"""Label maps blended over images, for looking at predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxseg.viz import palettes


def image_to_uint8(image: Any, *, mean: Any = None, std: Any = None) -> np.ndarray:
  """Turns an image of any common range into displayable ``uint8`` RGB.

  uint8 passes through. Floats are first un-normalised as ``image * std + mean`` when
  ``mean``/``std`` are given (per-channel, in the image's units); then values within
  ``[0, 1]`` are scaled by 255, values within ``[0, 255]`` are kept, and anything else
  (e.g. standardised inputs without their statistics) is min-max stretched to ``[0, 255]``.

  Args:
    image: ``(..., H, W, 3)`` image (NHWC for a batch).
    mean: optional per-channel mean that was subtracted.
    std: optional per-channel standard deviation that was divided by.

  Returns:
    uint8 array of the same shape.

  Example:
    >>> image_to_uint8(np.array([[[0.0, 0.5, 1.0]]])).tolist()
    [[[0, 128, 255]]]
  """
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  if image.dtype.kind not in 'biuf':
    raise TypeError(f'image must be a numeric array, got dtype {image.dtype}.')
  image = image.astype(np.float64)
  if not np.isfinite(image).all():
    # One NaN would make the min-max stretch NaN everywhere: a blank picture, silently.
    raise ValueError(
      f'image holds {int((~np.isfinite(image)).sum())} NaN or infinite '
      'value(s); replace them (e.g. np.nan_to_num) before drawing.'
    )
  if std is not None:
    image = image * np.asarray(std, np.float64)
  if mean is not None:
    image = image + np.asarray(mean, np.float64)
  low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 1.0)
  if low >= 0.0 and high <= 1.0:
    image = image * 255.0
  elif not (low >= 0.0 and high <= 255.0):
    image = (image - low) / max(high - low, 1e-12) * 255.0
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def overlay(
  image: Any,
  labels: Any,
  *,
  alpha: float = 0.5,
  palette: Any = 'voc',
  ignore_label: int = 255,
  ignore_color: tuple[int, int, int] = (255, 255, 255),
  show_ignored: bool = True,
) -> np.ndarray:
  r"""Blends a colourised label map over an image.

  .. math:: \text{out} = (1 - \alpha)\, \text{image} + \alpha\, \text{colour}(\text{labels})

  Ignored pixels are blended with ``ignore_color`` when ``show_ignored``, else left as the
  image.

  Args:
    image: ``(H, W, 3)`` image in any range :func:`image_to_uint8` accepts.
    labels: ``(H, W)`` integer labels.
    alpha: opacity of the colours in ``[0, 1]``.
    palette: ``'voc'``, ``'cityscapes'`` or a ``(K, 3)`` array.
    ignore_label: label of ignored pixels.
    ignore_color: their colour.
    show_ignored: paint ignored pixels, or leave the image there.

  Returns:
    ``(H, W, 3)`` uint8 image.

  Example:
    >>> overlay(np.zeros((1, 1, 3), np.uint8), np.array([[1]]), alpha=0.5).tolist()
    [[[64, 0, 0]]]
  """
  if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
    raise ValueError(f'alpha must be a number in [0, 1], got {alpha!r}.')
  pixels = image_to_uint8(image)
  labels = np.asarray(labels)
  if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.shape[:2] != labels.shape:
    raise ValueError(
      f'image (H, W, 3) and labels (H, W) must agree, got {pixels.shape} and {labels.shape}.'
    )
  colors = palettes.colorize(
    labels, palette=palette, ignore_label=ignore_label, ignore_color=ignore_color
  ).astype(np.float64)
  blended = (1.0 - alpha) * pixels.astype(np.float64) + alpha * colors
  if not show_ignored:
    blended[labels == ignore_label] = pixels[labels == ignore_label]
  return np.clip(np.round(blended), 0, 255).astype(np.uint8)
