"""Joint host-side transforms of an image with its dense targets.

A *sample* is a dict of NumPy arrays sharing the same height and width:

* ``'image'``: ``(H, W, 3)`` uint8 RGB (geometric transforms) or float32 (photometric ones);
* ``'mask'``: ``(H, W)`` int32 class ids, ``ignore_label`` (255) for void pixels;
* ``'density'``: ``(H, W)`` float32 saliency density;
* ``'fixations'``: ``(H, W)`` uint8 binary fixation map.

Other keys (``'label'``, ``'valid'``) pass through unchanged. Every geometric transform moves all
dense keys identically, each with the resampling its meaning requires: images and densities are
interpolated bilinearly, masks by nearest neighbour (a class id is never averaged), and fixation
maps by moving each fixated pixel to its new position (a fixation is never blurred or lost to
interpolation). Randomness comes only from the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from PIL import Image

from jaxseg.ops._validation import pair

__all__ = [
  'CAFFE_BGR_MEAN',
  'IMAGENET_MEAN',
  'IMAGENET_STD',
  'NORMALIZATIONS',
  'PAD_MODES',
  'SALNET_BGR_MEAN',
  'center_crop',
  'center_pad_or_crop',
  'denormalize',
  'fit_and_pad',
  'horizontal_flip',
  'mean_pixel',
  'normalize',
  'pad_sides',
  'pad_to_size',
  'photometric_jitter',
  'random_crop',
  'random_horizontal_flip',
  'random_resized_crop',
  'random_resized_crop_box',
  'random_scale',
  'random_scale_crop',
  'resize',
  'resize_shorter_side',
  'resize_to_multiple',
  'resized_crop',
  'scale',
  'scale_and_crop',
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, of [0, 1] pixels
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# The mean pixel of the ILSVRC training set in BGR order, 0..255, as Caffe's VGG and FCN models
# subtract it (fcn.berkeleyvision.org's voc_layers.py).
CAFFE_BGR_MEAN = np.array([104.00699, 116.66877, 122.67892], np.float32)
# The BGR mean Pan et al.'s deep saliency network (SalNet, CVPR 2016) subtracts before dividing
# by 127.5, so its inputs lie in about [-1, 1].
SALNET_BGR_MEAN = np.array([100.0, 110.0, 118.0], np.float32)
NORMALIZATIONS = ('imagenet', 'caffe_bgr', 'salnet', 'none')
PAD_MODES = ('mean', 'zeros', 'reflect')

_DENSE_KEYS = ('image', 'mask', 'density', 'fixations')


def _hw(sample: dict) -> tuple[int, int]:
  present = [key for key in _DENSE_KEYS if key in sample]
  if not present:
    raise ValueError(f'sample must have one of the keys {_DENSE_KEYS}, got keys {sorted(sample)}.')
  if 'image' in sample:
    image = sample['image']
    if image.ndim != 3 or image.shape[-1] != 3:
      raise ValueError(f"sample['image'] must have shape (H, W, 3), got {image.shape}.")
  hw = sample[present[0]].shape[:2]
  for key in present[1:]:
    if sample[key].shape[:2] != hw:
      raise ValueError(
        f'sample[{key!r}] has spatial shape {sample[key].shape[:2]}, expected {hw} (the '
        f"{present[0]}'s): dense targets must be aligned with the image."
      )
  return hw


def mean_pixel(normalization: str) -> np.ndarray:
  """The uint8 RGB pixel that :func:`normalize` maps to (about) zero, used for padding.

  Args:
    normalization: ``'imagenet'``, ``'caffe_bgr'``, ``'salnet'`` or ``'none'`` (ImageNet's mean
      is used).

  Returns:
    ``(3,)`` uint8 RGB.
  """
  if normalization == 'caffe_bgr':
    return np.round(CAFFE_BGR_MEAN[::-1]).astype(np.uint8)
  if normalization == 'salnet':
    return np.round(SALNET_BGR_MEAN[::-1]).astype(np.uint8)
  if normalization in ('imagenet', 'none'):
    return np.round(IMAGENET_MEAN * 255).astype(np.uint8)
  raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}.')


def normalize(image: np.ndarray, normalization: str) -> np.ndarray:
  """Converts RGB pixels in ``[0, 255]`` to the network's input convention.

  * ``'imagenet'``: ``(x / 255 - mean) / std`` with torchvision's ImageNet mean and std, RGB.
  * ``'caffe_bgr'``: ``x[..., ::-1] - [104.00699, 116.66877, 122.67892]``: BGR channel order,
    0..255 range, as Caffe's VGG, FCN and saliency models expect.
  * ``'salnet'``: ``(x[..., ::-1] - [100, 110, 118]) / 127.5``: BGR, about ``[-1, 1]``, the input
    of Pan et al.'s deep saliency network (SalNet).
  * ``'none'``: ``x / 255`` in ``[0, 1]``, RGB.

  Args:
    image: ``(..., 3)`` RGB, uint8 or float in ``[0, 255]``.
    normalization: one of ``'imagenet'``, ``'caffe_bgr'``, ``'salnet'``, ``'none'``.

  Returns:
    float32 array of the same shape.

  Example:
    >>> normalize(np.full((1, 1, 3), 255, np.uint8), 'none')[0, 0].tolist()
    [1.0, 1.0, 1.0]
  """
  # jax arrays (and tracers, under jit or jax.export) stay jax arrays: the same formulas serve
  # the host pipeline and an exported model's built-in preprocessing.
  x = image.astype(np.float32) if isinstance(image, jax.Array) else np.asarray(image, np.float32)
  if normalization == 'imagenet':
    return (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
  if normalization == 'caffe_bgr':
    return x[..., ::-1] - CAFFE_BGR_MEAN
  if normalization == 'salnet':
    return (x[..., ::-1] - SALNET_BGR_MEAN) / np.float32(127.5)
  if normalization == 'none':
    return x / 255.0
  raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}.')


def denormalize(image: np.ndarray, normalization: str) -> np.ndarray:
  """Inverts :func:`normalize`: network inputs back to displayable uint8 RGB pixels.

  * ``'imagenet'``: ``255 (x std + mean)``;
  * ``'caffe_bgr'``: ``(x + [104.00699, 116.66877, 122.67892])[..., ::-1]`` (BGR back to RGB);
  * ``'salnet'``: ``(127.5 x + [100, 110, 118])[..., ::-1]``;
  * ``'none'``: ``255 x``;

  then rounded and clipped to ``[0, 255]``. No min-max stretch: a dark image stays dark, so an
  overlay shows what the network saw. ``denormalize(normalize(x, n), n) == x`` for uint8 ``x``.

  Args:
    image: ``(..., 3)`` float, the output of :func:`normalize` (or a network input).
    normalization: one of ``'imagenet'``, ``'caffe_bgr'``, ``'salnet'``, ``'none'``.

  Returns:
    uint8 RGB array of the same shape.

  Example:
    >>> pixel = np.array([[[10, 20, 30]]], np.uint8)
    >>> denormalize(normalize(pixel, 'caffe_bgr'), 'caffe_bgr')[0, 0].tolist()
    [10, 20, 30]
  """
  x = np.asarray(image, np.float32)
  if normalization == 'imagenet':
    x = (x * IMAGENET_STD + IMAGENET_MEAN) * np.float32(255.0)
  elif normalization == 'caffe_bgr':
    x = (x + CAFFE_BGR_MEAN)[..., ::-1]
  elif normalization == 'salnet':
    x = (x * np.float32(127.5) + SALNET_BGR_MEAN)[..., ::-1]
  elif normalization == 'none':
    x = x * np.float32(255.0)
  else:
    raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}.')
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _nearest_indices(in_size: int, out_size: int) -> np.ndarray:
  # Output pixel i samples the input pixel whose area contains its centre (half-pixel centres),
  # as PIL's NEAREST and torch's 'nearest-exact'.
  return np.minimum(
    ((np.arange(out_size) + 0.5) * in_size / out_size).astype(np.int64), in_size - 1
  )


def _resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  if image.dtype == np.uint8:
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.BILINEAR))
  channels = [
    np.asarray(
      Image.fromarray(np.ascontiguousarray(image[..., c], np.float32)).resize(
        (hw[1], hw[0]), Image.BILINEAR
      )
    )
    for c in range(image.shape[-1])
  ]
  return np.stack(channels, -1).astype(image.dtype)


def _resize_density(density: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  return np.asarray(
    Image.fromarray(np.ascontiguousarray(density, np.float32)).resize(
      (hw[1], hw[0]), Image.BILINEAR
    ),
    np.float32,
  )


def _resize_fixations(fixations: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  in_h, in_w = fixations.shape
  rows, cols = np.nonzero(fixations)
  out = np.zeros(hw, np.uint8)
  new_rows = np.minimum(((rows + 0.5) * hw[0] / in_h).astype(np.int64), hw[0] - 1)
  new_cols = np.minimum(((cols + 0.5) * hw[1] / in_w).astype(np.int64), hw[1] - 1)
  out[new_rows, new_cols] = 1
  return out


def resize(sample: dict, size) -> dict:
  """Resizes every dense key of ``sample`` to ``size``.

  Images and densities: bilinear (PIL, antialiased when shrinking). Masks: nearest neighbour with
  half-pixel centres, ``mask_out[i, j] = mask[floor((i + .5) H / h), floor((j + .5) W / w)]``.
  Fixations: each fixated pixel ``(r, c)`` moves to ``(floor((r + .5) h / H), ...)``.

  Args:
    sample: dict with ``'image'`` ``(H, W, 3)`` and optional ``'mask'``, ``'density'``,
      ``'fixations'`` ``(H, W)``.
    size: int or ``(h, w)``.

  Returns:
    A new dict with the dense keys resized; other keys are passed through.
  """
  hw = pair(size, 'size')
  in_hw = _hw(sample)
  out = dict(sample)
  if hw == tuple(in_hw):
    return out
  if 'image' in sample:
    out['image'] = _resize_image(sample['image'], hw)
  if 'mask' in sample:
    m = sample['mask']
    out['mask'] = m[_nearest_indices(in_hw[0], hw[0])][:, _nearest_indices(in_hw[1], hw[1])]
  if 'density' in sample:
    out['density'] = _resize_density(sample['density'], hw)
  if 'fixations' in sample:
    out['fixations'] = _resize_fixations(sample['fixations'], hw)
  return out


def scale(sample: dict, factor: float) -> dict:
  """Resizes ``sample`` by ``factor``: ``(H, W) -> (round(H * factor), round(W * factor))``."""
  if not factor > 0:
    raise ValueError(f'factor must be positive, got {factor!r}.')
  h, w = _hw(sample)
  return resize(sample, (max(1, int(round(h * factor))), max(1, int(round(w * factor)))))


def random_scale(sample: dict, *, rng: np.random.Generator, scale_range=(0.5, 2.0)) -> dict:
  """Rescales ``sample`` by a factor drawn uniformly from ``scale_range`` (DeepLab's 0.5-2.0).

  Args:
    sample: see the module docstring.
    rng: the generator drawing the factor.
    scale_range: ``(low, high)``, ``0 < low <= high``.

  Returns:
    The rescaled sample.
  """
  low, high = _check_range(scale_range, 'scale_range')
  if low <= 0:
    raise ValueError(f'scale_range must be positive, got {scale_range!r}.')
  if low == high == 1.0:
    return dict(sample)
  return scale(sample, float(rng.uniform(low, high)))


def _check_range(value, name: str) -> tuple[float, float]:
  if (
    not isinstance(value, Sequence)
    or len(value) != 2
    or not all(isinstance(v, (int, float, np.floating, np.integer)) for v in value)
  ):
    raise TypeError(f'{name} must be a pair of numbers (low, high), got {value!r}.')
  low, high = float(value[0]), float(value[1])
  if low > high:
    raise ValueError(f'{name} must have low <= high, got {value!r}.')
  return low, high


def _pad_values(sample: dict, image_pad, ignore_label: int) -> dict:
  dtype = sample['image'].dtype if 'image' in sample else np.uint8
  return {
    'image': np.asarray(image_pad, dtype),
    'mask': ignore_label,
    'density': 0.0,
    'fixations': 0,
  }


def pad_to_size(sample: dict, size, *, image_pad=(124, 116, 104), ignore_label: int = 255) -> dict:
  """Pads ``sample`` at the bottom and right up to at least ``size`` (never crops).

  The image is padded with ``image_pad`` (the mean pixel, so padding is zero after
  normalisation), the mask with ``ignore_label`` (padding is never scored), densities and fixation
  maps with zeros.

  Args:
    sample: see the module docstring.
    size: int or ``(h, w)``: the minimum output size.
    image_pad: ``(3,)`` RGB value for image padding, in the image's dtype range.
    ignore_label: mask value for padding.

  Returns:
    The padded sample, of size ``(max(H, h), max(W, w))``.
  """
  h, w = pair(size, 'size')
  in_h, in_w = _hw(sample)
  pad_h, pad_w = max(0, h - in_h), max(0, w - in_w)
  out = dict(sample)
  if pad_h == 0 and pad_w == 0:
    return out
  values = _pad_values(sample, image_pad, ignore_label)
  for key in _DENSE_KEYS:
    if key not in sample:
      continue
    x = sample[key]
    padded = np.empty((in_h + pad_h, in_w + pad_w) + x.shape[2:], x.dtype)
    padded[...] = values[key]
    padded[:in_h, :in_w] = x
    out[key] = padded
  return out


def pad_sides(
  sample: dict,
  padding: int,
  *,
  image_pad=(124, 116, 104),
  ignore_label: int = 255,
  mode: str = 'constant',
) -> dict:
  """Pads ``padding`` pixels on every side: with :func:`random_crop` back to the original size,
  the translation augmentation of CIFAR training.

  ``mode='constant'`` fills the image with ``image_pad``, the mask with ``ignore_label`` and maps
  with 0; ``mode='reflect'`` mirrors every dense key about its border pixel, excluding it
  (``numpy.pad``'s and torch's ``'reflect'``: ``[a, b, c]`` padded by 2 is ``[c, b, a, b, c, b,
  a]``), so ``padding`` must be smaller than the height and width.

  Args:
    sample: see the module docstring.
    padding: pixels added on each side, a non-negative int.
    image_pad: ``(3,)`` RGB fill of ``'constant'`` mode.
    ignore_label: mask fill of ``'constant'`` mode.
    mode: ``'constant'`` or ``'reflect'``.

  Returns:
    The sample of size ``(H + 2 padding, W + 2 padding)``.
  """
  if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
    raise ValueError(f'padding must be a non-negative int, got {padding!r}.')
  if mode not in ('constant', 'reflect'):
    raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}.")
  h, w = _hw(sample)
  if mode == 'reflect' and padding >= min(h, w):
    raise ValueError(
      f"padding ({padding}) must be smaller than the sample's sides {(h, w)} for mode='reflect'."
    )
  values = _pad_values(sample, image_pad, ignore_label)
  out = dict(sample)
  for key in _DENSE_KEYS:
    if key in sample:
      x = sample[key]
      if mode == 'reflect':
        widths = ((padding, padding), (padding, padding)) + ((0, 0),) * (x.ndim - 2)
        out[key] = np.pad(x, widths, mode='reflect')
        continue
      padded = np.empty((h + 2 * padding, w + 2 * padding) + x.shape[2:], x.dtype)
      padded[...] = values[key]
      padded[padding : padding + h, padding : padding + w] = x
      out[key] = padded
  return out


def _crop(sample: dict, top: int, left: int, hw: tuple[int, int]) -> dict:
  out = dict(sample)
  for key in _DENSE_KEYS:
    if key in sample:
      out[key] = sample[key][top : top + hw[0], left : left + hw[1]]
  return out


def random_crop(
  sample: dict,
  size,
  *,
  rng: np.random.Generator,
  image_pad=(124, 116, 104),
  ignore_label: int = 255,
) -> dict:
  """Crops a window of ``size`` at a uniformly random position, padding first if needed.

  A sample smaller than ``size`` is padded at the bottom and right (:func:`pad_to_size`: the
  image with the mean pixel, the mask with ``ignore_label``), as DeepLab's input pipeline does.

  Args:
    sample: see the module docstring.
    size: int or ``(h, w)``.
    rng: the generator drawing the window's top-left corner.
    image_pad: ``(3,)`` RGB padding value.
    ignore_label: mask padding value.

  Returns:
    The cropped sample, of exactly ``size``.
  """
  hw = pair(size, 'size')
  sample = pad_to_size(sample, hw, image_pad=image_pad, ignore_label=ignore_label)
  h, w = _hw(sample)
  top = int(rng.integers(0, h - hw[0] + 1))
  left = int(rng.integers(0, w - hw[1] + 1))
  return _crop(sample, top, left, hw)


def center_pad_or_crop(
  sample: dict, size, *, image_pad=(124, 116, 104), ignore_label: int = 255
) -> dict:
  """Pads (bottom and right) then centre-crops ``sample`` to exactly ``size``: the eval twin of
  :func:`random_crop`."""
  hw = pair(size, 'size')
  sample = pad_to_size(sample, hw, image_pad=image_pad, ignore_label=ignore_label)
  h, w = _hw(sample)
  return _crop(sample, (h - hw[0]) // 2, (w - hw[1]) // 2, hw)


def fit_and_pad(sample: dict, size, *, image_pad=(124, 116, 104), ignore_label: int = 255) -> dict:
  """Shrinks ``sample`` (keeping its aspect ratio) until it fits in ``size``, then pads to it.

  Samples that already fit are only padded, so evaluation scores the original pixels; the
  padding is ``ignore_label`` in the mask and is never scored.

  Args:
    sample: see the module docstring.
    size: int or ``(h, w)``.
    image_pad: ``(3,)`` RGB padding value.
    ignore_label: mask padding value.

  Returns:
    The sample at exactly ``size``.
  """
  hw = pair(size, 'size')
  h, w = _hw(sample)
  factor = min(hw[0] / h, hw[1] / w)
  if factor < 1:
    sample = resize(
      sample,
      (min(hw[0], max(1, int(round(h * factor)))), min(hw[1], max(1, int(round(w * factor))))),
    )
  return pad_to_size(sample, hw, image_pad=image_pad, ignore_label=ignore_label)


def resize_to_multiple(sample: dict, multiple: int = 32) -> dict:
  """Resizes ``sample`` to the nearest size whose sides are multiples of ``multiple`` (at least
  one ``multiple``), so stride-32 networks align their feature maps with the input."""
  if not isinstance(multiple, int) or multiple < 1:
    raise ValueError(f'multiple must be a positive int, got {multiple!r}.')
  h, w = _hw(sample)
  return resize(
    sample,
    (
      max(multiple, int(round(h / multiple)) * multiple),
      max(multiple, int(round(w / multiple)) * multiple),
    ),
  )


def _resize_window(x: np.ndarray, in_hw, scaled_hw, rows, cols, kind: str) -> np.ndarray:
  """Rows ``rows`` and columns ``cols`` of ``x`` resized to ``scaled_hw``, computing only those."""
  (r0, r1), (c0, c1) = rows, cols
  if kind == 'mask':
    return x[_nearest_indices(in_hw[0], scaled_hw[0])[r0:r1]][
      :, _nearest_indices(in_hw[1], scaled_hw[1])[c0:c1]
    ]
  if kind == 'fixations':
    return _resize_fixations(x, scaled_hw)[r0:r1, c0:c1]
  # PIL resamples only the source box the window covers, with the same sample positions (and
  # filter footprints) as resizing the whole image and cropping.
  sy, sx = in_hw[0] / scaled_hw[0], in_hw[1] / scaled_hw[1]
  box = (c0 * sx, r0 * sy, c1 * sx, r1 * sy)
  if kind == 'image' and x.dtype == np.uint8:
    return np.asarray(Image.fromarray(x).resize((c1 - c0, r1 - r0), Image.BILINEAR, box=box))
  channels = x[..., None] if x.ndim == 2 else x
  out = [
    np.asarray(
      Image.fromarray(np.ascontiguousarray(channels[..., c], np.float32)).resize(
        (c1 - c0, r1 - r0), Image.BILINEAR, box=box
      )
    )
    for c in range(channels.shape[-1])
  ]
  out = np.stack(out, -1).astype(x.dtype)
  return out[..., 0] if x.ndim == 2 else out


def scale_and_crop(
  sample: dict,
  factor: float,
  top: int,
  left: int,
  size,
  *,
  image_pad=(124, 116, 104),
  ignore_label: int = 255,
) -> dict:
  """``scale(sample, factor)``, padded to ``size``, cropped at ``(top, left)``; computed directly.

  Equal to the composition of :func:`scale`, :func:`pad_to_size` and a crop, but resizes only
  the pixels the window keeps: at scale 2 and a 321 crop of a 500x375 image that is 7 times
  fewer pixels.

  Args:
    sample: see the module docstring.
    factor: the scale factor, positive.
    top, left: the window's corner in the scaled, padded frame.
    size: int or ``(h, w)`` of the window.
    image_pad: ``(3,)`` RGB padding value.
    ignore_label: mask padding value.

  Returns:
    The sample at exactly ``size``.
  """
  hw = pair(size, 'size')
  in_hw = _hw(sample)
  scaled = (max(1, int(round(in_hw[0] * factor))), max(1, int(round(in_hw[1] * factor))))
  padded = (max(scaled[0], hw[0]), max(scaled[1], hw[1]))
  if not (0 <= top <= padded[0] - hw[0] and 0 <= left <= padded[1] - hw[1]):
    raise ValueError(
      f'(top, left)=({top}, {left}) puts the {hw} window outside the scaled and '
      f'padded sample of size {padded}.'
    )
  rows = (min(top, scaled[0]), min(top + hw[0], scaled[0]))
  cols = (min(left, scaled[1]), min(left + hw[1], scaled[1]))
  values = _pad_values(sample, image_pad, ignore_label)
  out = dict(sample)
  for key in _DENSE_KEYS:
    if key not in sample:
      continue
    x = sample[key]
    window = np.empty(hw + x.shape[2:], x.dtype)
    window[...] = values[key]
    if rows[1] > rows[0] and cols[1] > cols[0]:
      window[: rows[1] - rows[0], : cols[1] - cols[0]] = (
        _resize_window(x, in_hw, scaled, rows, cols, key)
        if scaled != tuple(in_hw)
        else x[rows[0] : rows[1], cols[0] : cols[1]]
      )
    out[key] = window
  return out


def random_scale_crop(
  sample: dict,
  size,
  *,
  rng: np.random.Generator,
  scale_range=(0.5, 2.0),
  image_pad=(124, 116, 104),
  ignore_label: int = 255,
) -> dict:
  """:func:`random_scale` then :func:`random_crop`, drawing the same numbers from ``rng``, but
  resizing only the pixels the crop keeps (:func:`scale_and_crop`)."""
  hw = pair(size, 'size')
  low, high = _check_range(scale_range, 'scale_range')
  if low <= 0:
    raise ValueError(f'scale_range must be positive, got {scale_range!r}.')
  in_hw = _hw(sample)
  factor = 1.0 if low == high == 1.0 else float(rng.uniform(low, high))
  scaled = (max(1, int(round(in_hw[0] * factor))), max(1, int(round(in_hw[1] * factor))))
  top = int(rng.integers(0, max(scaled[0], hw[0]) - hw[0] + 1))
  left = int(rng.integers(0, max(scaled[1], hw[1]) - hw[1] + 1))
  return scale_and_crop(
    sample, factor, top, left, hw, image_pad=image_pad, ignore_label=ignore_label
  )


def random_resized_crop_box(
  hw, *, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), attempts: int = 10
) -> tuple[int, int, int, int]:
  """The window of torchvision's ``RandomResizedCrop`` (Inception's "distorted bounding box").

  Up to ``attempts`` times: draw an area fraction ``s ~ U[scale]`` and an aspect ratio
  ``r = exp(U[log ratio])`` (width / height); the window is ``w = round(sqrt(s H W r))``,
  ``h = round(sqrt(s H W / r))``; if it fits, its corner is uniform over the positions that keep
  it inside. If no draw fits, the centred window of the whole image clamped to ``ratio``.

  Args:
    hw: ``(H, W)`` of the image.
    rng: the generator.
    scale: ``(low, high)`` area fraction, ``0 < low <= high <= 1``.
    ratio: ``(low, high)`` width / height, ``0 < low <= high``.
    attempts: draws before the fallback.

  Returns:
    ``(top, left, height, width)`` inside the image.

  Example:
    >>> top, left, h, w = random_resized_crop_box((100, 200), rng=np.random.default_rng(0))
    >>> 0 <= top <= 100 - h and 0 <= left <= 200 - w
    True
  """
  in_h, in_w = pair(hw, 'hw')
  low, high = _check_range(scale, 'scale')
  if not 0 < low <= high <= 1:
    raise ValueError(f'scale must satisfy 0 < low <= high <= 1, got {scale!r}.')
  r_low, r_high = _check_range(ratio, 'ratio')
  if r_low <= 0:
    raise ValueError(f'ratio must be positive, got {ratio!r}.')
  area = in_h * in_w
  for _ in range(attempts):
    target = area * rng.uniform(low, high)
    aspect = np.exp(rng.uniform(np.log(r_low), np.log(r_high)))
    w = int(round(np.sqrt(target * aspect)))
    h = int(round(np.sqrt(target / aspect)))
    if 0 < w <= in_w and 0 < h <= in_h:
      return int(rng.integers(0, in_h - h + 1)), int(rng.integers(0, in_w - w + 1)), h, w
  aspect = in_w / in_h
  if aspect < r_low:
    w, h = in_w, int(round(in_w / r_low))
  elif aspect > r_high:
    h, w = in_h, int(round(in_h * r_high))
  else:
    h, w = in_h, in_w
  return (in_h - h) // 2, (in_w - w) // 2, h, w


def resized_crop(sample: dict, box, size) -> dict:
  """Crops ``box = (top, left, height, width)`` of every dense key, then resizes it to ``size``
  (:func:`resize`: bilinear images, nearest masks), as torchvision's ``resized_crop``."""
  top, left, h, w = (int(v) for v in box)
  in_h, in_w = _hw(sample)
  if not (h >= 1 and w >= 1 and 0 <= top <= in_h - h and 0 <= left <= in_w - w):
    raise ValueError(
      f'box (top, left, height, width)={tuple(box)} must lie inside the sample '
      f'of size {(in_h, in_w)}.'
    )
  return resize(_crop(sample, top, left, (h, w)), size)


def random_resized_crop(
  sample: dict, size, *, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
) -> dict:
  """ImageNet training's crop: a :func:`random_resized_crop_box` window resized to ``size``.

  Args:
    sample: see the module docstring.
    size: int or ``(h, w)`` of the output.
    rng: the generator drawing the window.
    scale: ``(low, high)`` area fraction of the window (0.08 to 1, Szegedy et al. 2015).
    ratio: ``(low, high)`` width / height of the window (3/4 to 4/3).

  Returns:
    The sample at exactly ``size``.
  """
  hw = pair(size, 'size')
  box = random_resized_crop_box(_hw(sample), rng=rng, scale=scale, ratio=ratio)
  return resized_crop(sample, box, hw)


def resize_shorter_side(sample: dict, size: int) -> dict:
  """Resizes ``sample`` so its shorter side is ``size``, keeping the aspect ratio.

  The longer side becomes ``int(size * long / short)`` (truncated, as torchvision's ``Resize``
  with an int), e.g. 300x400 -> 256x341.

  Args:
    sample: see the module docstring.
    size: the shorter side after resizing, a positive int.

  Returns:
    The resized sample.
  """
  if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
    raise ValueError(f'size must be a positive int, got {size!r}.')
  h, w = _hw(sample)
  if h <= w:
    return resize(sample, (int(size), int(size * w / h)))
  return resize(sample, (int(size * h / w), int(size)))


def center_crop(sample: dict, size) -> dict:
  """Crops the centred ``size`` window, corner ``(int(round((H - h) / 2)), int(round((W - w) /
  2)))`` as torchvision's ``center_crop``; the sample must be at least ``size``."""
  hw = pair(size, 'size')
  h, w = _hw(sample)
  if h < hw[0] or w < hw[1]:
    raise ValueError(
      f'size {hw} is larger than the sample {(h, w)}; center_crop never pads '
      '(center_pad_or_crop does).'
    )
  return _crop(sample, int(round((h - hw[0]) / 2)), int(round((w - hw[1]) / 2)), hw)


def horizontal_flip(sample: dict) -> dict:
  """Mirrors every dense key of ``sample`` left to right."""
  _hw(sample)
  out = dict(sample)
  for key in _DENSE_KEYS:
    if key in sample:
      out[key] = np.ascontiguousarray(sample[key][:, ::-1])
  return out


def random_horizontal_flip(sample: dict, *, rng: np.random.Generator, prob: float = 0.5) -> dict:
  """Applies :func:`horizontal_flip` with probability ``prob``."""
  if not 0.0 <= prob <= 1.0:
    raise ValueError(f'prob must be in [0, 1], got {prob!r}.')
  return horizontal_flip(sample) if rng.uniform() < prob else dict(sample)


def photometric_jitter(
  image: np.ndarray,
  *,
  rng: np.random.Generator,
  brightness: float = 0.2,
  contrast: float = 0.2,
  saturation: float = 0.2,
) -> np.ndarray:
  """Random brightness, contrast and saturation, in a random order (torchvision's ColorJitter).

  Each factor ``f`` is drawn from ``U[1 - s, 1 + s]``: brightness ``x * f``; contrast
  ``mean(gray) + f (x - mean(gray))``; saturation ``gray + f (x - gray)`` with
  ``gray = 0.299 R + 0.587 G + 0.114 B``. The result is clipped to ``[0, 255]``.

  Args:
    image: ``(H, W, 3)`` RGB in ``[0, 255]``, uint8 or float.
    rng: the generator drawing the factors and their order.
    brightness, contrast, saturation: strengths ``s`` in ``[0, 1)``; 0 disables one.

  Returns:
    float32 ``(H, W, 3)`` in ``[0, 255]``.
  """
  for name, value in (
    ('brightness', brightness),
    ('contrast', contrast),
    ('saturation', saturation),
  ):
    if not 0.0 <= value < 1.0:
      raise ValueError(f'{name} must be in [0, 1), got {value!r}.')
  x = np.asarray(image, np.float32)
  weights = np.array([0.299, 0.587, 0.114], np.float32)
  for op in rng.permutation(3):
    if op == 0 and brightness:
      x = x * rng.uniform(1 - brightness, 1 + brightness)
    elif op == 1 and contrast:
      mean = float((x @ weights).mean())
      x = mean + rng.uniform(1 - contrast, 1 + contrast) * (x - mean)
    elif op == 2 and saturation:
      gray = (x @ weights)[..., None]
      x = gray + rng.uniform(1 - saturation, 1 + saturation) * (x - gray)
  return np.clip(x, 0.0, 255.0).astype(np.float32)
