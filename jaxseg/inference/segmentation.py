"""Dense prediction at test time: whole images, sliding windows, multi-scale and flip TTA.

The network runs under ``jax.jit`` on a small set of input shapes only, so a dataset of images
of many sizes compiles a handful of times, not once per image:

* whole-image mode pads each image (bottom/right, with ``pad_value``) up to the next multiple of
  ``bucket`` pixels, runs the network and crops the logits back;
* sliding-window mode cuts every image into windows of exactly ``crop_size`` (padding images
  smaller than a window) and runs them in batches of exactly ``window_batch``: one compilation
  for every image size.

Everything around the network (padding, window bookkeeping, resizing for multi-scale, flipping,
averaging) is cheap NumPy on the host. Images are NHWC float arrays, already normalised as the
network expects (so ``pad_value=0`` pads with the mean colour).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxseg.ops._validation import pair
from jaxseg.ops.resize import source_points

Forward = Callable[[Any], Any]  # (N, h, w, 3) images -> (N, h, w, C) logits


def _check_images(images: Any, name: str = 'images') -> np.ndarray:
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'{name} must have shape (N, H, W, C) (NHWC), got {images.shape}.')
  if images.dtype.kind not in 'biuf':
    raise TypeError(f'{name} must be a numeric array, got dtype {images.dtype}.')
  if min(images.shape) == 0:
    raise ValueError(
      f'{name} must be non-empty (at least one image of at least one pixel), '
      f'got shape {images.shape}.'
    )
  if images.dtype.kind == 'f' and not np.isfinite(images).all():
    # A NaN image would come out as class 0 everywhere: a confident-looking wrong answer.
    raise ValueError(
      f'{name} holds {int((~np.isfinite(images)).sum())} NaN or infinite '
      'value(s); there is nothing to predict from them.'
    )
  return images


def resize_bilinear(x: Any, shape: tuple[int, int]) -> np.ndarray:
  r"""Host-side bilinear resize of ``(N, H, W, C)`` arrays with half-pixel centres.

  Output pixel :math:`i` samples the input at :math:`\max((i + 1/2) H / H' - 1/2, 0)`,
  interpolating linearly between the two nearest pixels (clamped at the border), without
  anti-aliasing: PyTorch's ``F.interpolate(mode='bilinear', align_corners=False)`` and
  ``jaxseg.ops.resize``. NumPy, so multi-scale inference compiles nothing per image size.

  Args:
    x: ``(N, H, W, C)`` array.
    shape: output ``(H', W')``.

  Returns:
    ``(N, H', W', C)`` float32 array.

  Example:
    >>> resize_bilinear(np.array([0.0, 1.0]).reshape(1, 1, 2, 1), (1, 4))[0, 0, :, 0].tolist()
    [0.0, 0.25, 0.75, 1.0]
  """
  x = _check_images(x, 'x').astype(np.float32)
  out_h, out_w = pair(shape, 'shape')
  for axis, out_size in ((1, out_h), (2, out_w)):
    in_size = x.shape[axis]
    if in_size == out_size:
      continue
    low, high, frac = source_points(in_size, out_size)  # the sampling rule of ops.resize
    frac = frac.astype(np.float32).reshape([-1 if a == axis else 1 for a in range(4)])
    x = np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac
  return x


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
  r"""Numerically stable softmax over ``axis`` (host side, NumPy).

  .. math:: p_k = \frac{e^{z_k - \max_j z_j}}{\sum_i e^{z_i - \max_j z_j}}

  Args:
    logits: any-shaped float array, e.g. ``(N, H, W, C)`` logits.
    axis: the class axis.

  Returns:
    Probabilities of ``logits``' shape, summing to 1 along ``axis``.

  Example:
    >>> softmax(np.array([0.0, np.log(3.0)])).round(4).tolist()
    [0.25, 0.75]
  """
  shifted = logits - logits.max(axis=axis, keepdims=True)
  e = np.exp(shifted)
  return e / e.sum(axis=axis, keepdims=True)


def _pad_bottom_right(images: np.ndarray, shape: tuple[int, int], value: float) -> np.ndarray:
  pad_h, pad_w = shape[0] - images.shape[1], shape[1] - images.shape[2]
  if pad_h == 0 and pad_w == 0:
    return images
  return np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=value)


def bucketed_size(size: int, bucket: int) -> int:
  """The smallest multiple of ``bucket`` that is at least ``size``: ``ceil(size / bucket) bucket``.

  Args:
    size: a length in pixels.
    bucket: the bucket width, positive.

  Returns:
    The padded length.

  Example:
    >>> bucketed_size(97, 32), bucketed_size(96, 32)
    (128, 96)
  """
  return int(math.ceil(size / bucket) * bucket)


def predict_whole(
  forward: Forward, images: Any, *, bucket: int = 32, pad_value: float = 0.0
) -> np.ndarray:
  """Logits of whole images, padded up to a multiple of ``bucket`` then cropped back.

  Padding (bottom and right) keeps the number of distinct input shapes small; pixels within
  the network's receptive field of the padding see it, so use ``pad_value`` = the normalised
  mean colour (0 after mean subtraction), as DeepLab pads to 513x513 with the mean.
  ``bucket=1`` runs the exact image size.

  Args:
    forward: ``(N, h, w, 3) -> (N, h, w, C)`` logits, usually jitted.
    images: ``(N, H, W, 3)`` normalised images.
    bucket: pad height and width up to a multiple of this.
    pad_value: value of the padded pixels.

  Returns:
    ``(N, H, W, C)`` float32 logits.

  Example:
    >>> predict_whole(lambda x: x[..., :2] * 2, np.ones((1, 5, 7, 3)), bucket=4).shape
    (1, 5, 7, 2)
  """
  images = _check_images(images)
  if not isinstance(bucket, int) or bucket < 1:
    raise ValueError(f'bucket must be a positive int, got {bucket!r}.')
  height, width = images.shape[1:3]
  padded = _pad_bottom_right(
    images, (bucketed_size(height, bucket), bucketed_size(width, bucket)), pad_value
  )
  logits = np.asarray(forward(padded), np.float32)
  if logits.shape[:3] != padded.shape[:3]:
    raise ValueError(
      f'forward must return logits at its input size {padded.shape[:3]}, got {logits.shape}.'
    )
  return logits[:, :height, :width]


def window_starts(size: int, crop: int, stride: int) -> list[int]:
  """Top (or left) coordinates of the windows along one axis of length ``size``.

  Windows start every ``stride`` pixels; the last one is moved back to end exactly at the
  border (MMSegmentation's rule), so every pixel is covered and no window leaves the image.
  An axis no longer than the crop has a single window at 0 (the image is padded to the crop).

  Args:
    size: the axis length (after padding to the crop, if shorter).
    crop: window length along the axis.
    stride: step between window starts.

  Returns:
    The sorted start coordinates.

  Example:
    >>> window_starts(10, 4, 3), window_starts(4, 4, 3), window_starts(3, 4, 2)
    ([0, 3, 6], [0], [0])
  """
  if size <= crop:
    return [0]
  count = int(math.ceil((size - crop) / stride)) + 1
  return [min(i * stride, size - crop) for i in range(count)]


def predict_sliding(
  forward: Forward,
  images: Any,
  *,
  crop_size: Any,
  stride: Any,
  window_batch: int = 4,
  pad_value: float = 0.0,
) -> np.ndarray:
  r"""Logits from overlapping windows, averaged where windows overlap.

  .. math:: z_p = \frac{1}{|W_p|} \sum_{w \in W_p} f(x_w)_{p - o_w}

  where :math:`W_p` are the windows covering pixel :math:`p` and :math:`o_w` their offsets
  (:func:`window_starts` along each axis). Images smaller than a window are padded (bottom and
  right, with ``pad_value``) to the crop size first. Windows of every image go through
  ``forward`` in batches of exactly ``window_batch`` (the last batch padded), so ``forward``
  sees one shape whatever the image sizes.

  Args:
    forward: ``(window_batch, ch, cw, 3) -> (window_batch, ch, cw, C)`` logits.
    images: ``(N, H, W, 3)`` normalised images.
    crop_size: window ``(ch, cw)`` or an int.
    stride: step between windows ``(sh, sw)`` or an int, at most the crop size.
    window_batch: windows per call of ``forward``.
    pad_value: value of padded pixels.

  Returns:
    ``(N, H, W, C)`` float32 logits.

  Example:
    >>> predict_sliding(lambda x: x[..., :2], np.ones((1, 9, 5, 3)), crop_size=4,
    ...                 stride=3).shape
    (1, 9, 5, 2)
  """
  images = _check_images(images)
  crop_h, crop_w = pair(crop_size, 'crop_size')
  stride_h, stride_w = pair(stride, 'stride')
  if stride_h > crop_h or stride_w > crop_w:
    raise ValueError(
      f'stride {stride!r} must not exceed crop_size {crop_size!r}: pixels '
      'between windows would get no prediction.'
    )
  if not isinstance(window_batch, int) or window_batch < 1:
    raise ValueError(f'window_batch must be a positive int, got {window_batch!r}.')
  num, height, width = images.shape[:3]
  padded = _pad_bottom_right(images, (max(height, crop_h), max(width, crop_w)), pad_value)
  tops = window_starts(padded.shape[1], crop_h, stride_h)
  lefts = window_starts(padded.shape[2], crop_w, stride_w)
  boxes = [(n, top, left) for n in range(num) for top in tops for left in lefts]
  sums, counts = None, np.zeros(padded.shape[:3] + (1,), np.float32)
  for first in range(0, len(boxes), window_batch):
    chunk = boxes[first : first + window_batch]
    windows = np.stack([padded[n, t : t + crop_h, l : l + crop_w] for n, t, l in chunk])
    if len(chunk) < window_batch:  # keep one input shape: pad the last batch with blanks
      blanks = np.full((window_batch - len(chunk),) + windows.shape[1:], pad_value, windows.dtype)
      windows = np.concatenate([windows, blanks])
    logits = np.asarray(forward(windows), np.float32)
    if logits.shape[:3] != windows.shape[:3]:
      raise ValueError(
        f'forward must return logits at its input size {windows.shape[:3]}, got {logits.shape}.'
      )
    if sums is None:
      sums = np.zeros(padded.shape[:3] + logits.shape[-1:], np.float32)
    for (n, t, l), window_logits in zip(chunk, logits):
      sums[n, t : t + crop_h, l : l + crop_w] += window_logits
      counts[n, t : t + crop_h, l : l + crop_w] += 1.0
  return (sums / counts)[:, :height, :width]


def predict_augmented(
  predict: Callable[[np.ndarray], np.ndarray],
  images: Any,
  *,
  scales: Sequence[float] = (1.0,),
  flip: bool = False,
  combine: str = 'probs',
) -> np.ndarray:
  r"""Multi-scale and horizontal-flip test-time augmentation.

  .. math:: P = \frac{1}{|S|\,|F|} \sum_{s \in S} \sum_{f \in F}
     f^{-1}\big(\operatorname{up}_{H,W}\, g(\operatorname{resize}_s(f(x)))\big)

  with :math:`F = \{\text{id}, \text{mirror}\}` when ``flip`` and :math:`g` = softmax of the
  logits (``combine='probs'``, as MMSegmentation and DeepLab v3 average) or the identity
  (``combine='logits'``). Each scaled image has size ``round(s H) x round(s W)``; its logits
  are resized back to ``H x W`` bilinearly (:func:`resize_bilinear`) and mirrored back.

  Args:
    predict: ``(N, h, w, 3) -> (N, h, w, C)`` logits at any size, e.g. a partial of
      :func:`predict_whole` or :func:`predict_sliding`.
    images: ``(N, H, W, 3)`` normalised images.
    scales: positive scale factors.
    flip: also predict the mirrored images.
    combine: ``'probs'`` or ``'logits'``: what is averaged.

  Returns:
    ``(N, H, W, C)`` float32 averaged probabilities (or logits).

  Example:
    >>> out = predict_augmented(lambda x: x[..., :2], np.zeros((1, 4, 6, 3)),
    ...                         scales=(0.5, 1.0), flip=True)
    >>> out.shape, float(out.sum(-1).mean())
    ((1, 4, 6, 2), 1.0)
  """
  images = _check_images(images)
  if combine not in ('probs', 'logits'):
    raise ValueError(f"combine must be 'probs' or 'logits', got {combine!r}.")
  if (
    not isinstance(scales, Sequence)
    or not scales
    or any(
      not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 < s < math.inf for s in scales
    )
  ):
    raise ValueError(f'scales must be a non-empty sequence of positive numbers, got {scales!r}.')
  height, width = images.shape[1:3]
  total, terms = None, 0
  for scale in scales:
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    scaled = resize_bilinear(images, size) if size != (height, width) else images
    for mirrored in (False, True) if flip else (False,):
      inputs = scaled[:, :, ::-1] if mirrored else scaled
      logits = np.asarray(predict(np.ascontiguousarray(inputs)), np.float32)
      if not np.isfinite(logits).all():
        # Averaged and arg-maxed, NaN logits would come out as class 0 everywhere.
        raise ValueError(
          f'predict returned NaN or infinite logits at scale {scale}'
          f'{" (mirrored)" if mirrored else ""}; refusing to average them.'
        )
      if mirrored:
        logits = logits[:, :, ::-1]
      logits = resize_bilinear(logits, (height, width))
      term = softmax(logits) if combine == 'probs' else logits
      total = term if total is None else total + term
      terms += 1
  return total / terms


@dataclasses.dataclass
class SegmentationPredictor:
  """A jitted network plus an inference recipe; call it on batches of any image size.

  Attributes:
    apply_fn: ``(N, h, w, 3) -> (N, h, w, C)`` logits, e.g.
      ``lambda x: model.apply(variables, x, train=False)[0]``. It is jitted here.
    mode: ``'whole'`` (bucketed whole images) or ``'slide'`` (sliding windows).
    bucket: whole mode: pad sizes up to a multiple of this.
    crop_size: slide mode: window size.
    stride: slide mode: step between windows (defaults to 2/3 of the crop, as MMSegmentation).
    window_batch: slide mode: windows per network call.
    scales: test-time scales (``(1.0,)``: none).
    flip: add horizontally mirrored predictions.
    pad_value: value of padded pixels (the normalised mean colour).
    crf: refine the averaged probabilities with DeepLab's dense CRF
      (:func:`jaxseg.crf.dense_crf`): ``None``/``False`` off, ``True`` with its defaults
      (DeepLab's VOC values), or a mapping of its keyword options (e.g. a config's ``crf``
      block). The CRF needs the original pixels: pass ``pixels=`` to the call.
    num_traces: how many times the network was traced (= compiled) so far.

  Example:
    >>> predictor = SegmentationPredictor(lambda x: x[..., :2], mode='slide', crop_size=8)
    >>> for size in [(5, 7), (9, 20), (16, 8)]:
    ...   _ = predictor.predict_labels(np.zeros((1, *size, 3)))
    >>> predictor.num_traces
    1
  """

  apply_fn: Forward
  mode: str = 'whole'
  bucket: int = 32
  crop_size: Any = None
  stride: Any = None
  window_batch: int = 4
  scales: Sequence[float] = (1.0,)
  flip: bool = False
  pad_value: float = 0.0
  crf: Any = None
  num_traces: int = dataclasses.field(default=0, init=False)

  def __post_init__(self):
    if self.mode not in ('whole', 'slide'):
      raise ValueError(f"mode must be 'whole' or 'slide', got {self.mode!r}.")
    if self.crf is not None and not isinstance(self.crf, (bool, Mapping)):
      raise TypeError(
        f'crf must be None, a bool or a mapping of dense_crf options, got {self.crf!r}.'
      )
    if self.mode == 'slide':
      if self.crop_size is None:
        raise ValueError("mode='slide' needs crop_size.")
      crop = pair(self.crop_size, 'crop_size')
      if self.stride is None:
        self.stride = tuple(max(1, (2 * c) // 3) for c in crop)

    def traced(images):
      self.num_traces += 1  # runs only while tracing, i.e. once per compilation
      return self.apply_fn(images)

    self._forward = jax.jit(traced)

  def logits(self, images: Any) -> np.ndarray:
    """``(N, H, W, C)`` logits of one pass (no augmentation)."""
    if self.mode == 'whole':
      return predict_whole(self._forward, images, bucket=self.bucket, pad_value=self.pad_value)
    return predict_sliding(
      self._forward,
      images,
      crop_size=self.crop_size,
      stride=self.stride,
      window_batch=self.window_batch,
      pad_value=self.pad_value,
    )

  def __call__(self, images: Any, pixels: Any = None) -> np.ndarray:
    """``(N, H, W, C)`` class probabilities averaged over the scales and flips.

    With ``crf``, the dense CRF's marginals of those probabilities on ``pixels``, the original
    ``(N, H, W, 3)`` images (uint8 or float in [0, 255]; ``images`` are normalised).
    """
    probs = predict_augmented(self.logits, images, scales=self.scales, flip=self.flip)
    if not self.crf:
      return probs
    from jaxseg import crf as dense_crf_lib  # pylint: disable=g-import-not-at-top

    if pixels is None:
      raise ValueError(
        'this predictor has crf set: pass pixels=, the original (N, H, W, 3) '
        'images in [0, 255] (the CRF must not see the normalised input).'
      )
    pixels = np.asarray(pixels)
    if pixels.shape != probs.shape[:-1] + (3,):
      raise ValueError(
        f'pixels must have shape {probs.shape[:-1] + (3,)} (the images with 3 '
        f'channels), got {pixels.shape}.'
      )
    options = dict(self.crf) if isinstance(self.crf, Mapping) else {}
    options.pop('enabled', None)
    unary = dense_crf_lib.unary_from_softmax(probs.astype(np.float32))
    return np.asarray(dense_crf_lib.dense_crf(unary, pixels, **options))

  def predict_labels(self, images: Any, pixels: Any = None) -> np.ndarray:
    """``(N, H, W)`` int32 arg-max labels (of the CRF's marginals with ``crf``)."""
    probs = self(images, pixels)
    if not np.isfinite(probs).all():
      raise ValueError(
        'apply_fn returned NaN or infinite logits; refusing to turn them into '
        'labels (arg-max of NaN is class 0).'
      )
    return np.argmax(probs, axis=-1).astype(np.int32)
