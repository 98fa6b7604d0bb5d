"""Argument checks shared by the ops.

Every check runs on static Python values and array shapes, so a bad argument raises before
anything is traced, with a message naming the argument, its value and what was expected.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
from jax import export
import numpy as np

Padding = Any  # int | (int, int) | ((int, int), (int, int)) | 'SAME' | 'VALID'
Pads = tuple[tuple[int, int], tuple[int, int]]


def _is_int(value: Any) -> bool:
  # bool is an Integral but never a meaningful size; numpy integers are fine. A plain int is
  # answered first: the ABC check costs ~1 us, and the data pipeline's transforms ask per image
  # (issue 16: the digits pipeline 3.61 -> 3.50 ms a batch).
  if type(value) is int:  # exactly int (bool, a subclass, is refused below)
    return True
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_rank(x: Any, rank: int, name: str, layout: str) -> None:
  """Raises ValueError unless `x` has `rank` dimensions."""
  shape = getattr(x, 'shape', None)
  if shape is None:
    raise TypeError(f'{name} must be an array with layout {layout}, got {type(x).__name__}.')
  if len(shape) != rank:
    raise ValueError(
      f'{name} must have rank {rank} (layout {layout}), got shape {tuple(shape)} '
      f'of rank {len(shape)}.'
    )


def pair(value: Any, name: str, *, minimum: int = 1) -> tuple[int, int]:
  """Returns `value` as an (h, w) pair of ints, each at least `minimum`."""
  if _is_int(value):
    values = (int(value), int(value))
  elif (
    isinstance(value, Sequence)
    and not isinstance(value, str)
    and len(value) == 2
    and all(_is_int(v) for v in value)
  ):
    values = (int(value[0]), int(value[1]))
  else:
    raise TypeError(f'{name} must be an int or a pair of ints, got {value!r}.')
  if min(values) < minimum:
    kind = 'positive' if minimum == 1 else f'at least {minimum}'
    raise ValueError(f'{name} must be {kind}, got {value!r}.')
  return values


def size_pair(value: Any, name: str) -> tuple[Any, Any]:
  """Like `pair` for output sizes, also accepting jax.export's symbolic sizes (left unchecked)."""
  if (
    isinstance(value, Sequence)
    and not isinstance(value, str)
    and len(value) == 2
    and any(export.is_symbolic_dim(size) for size in value)
  ):
    return tuple(value)
  return pair(value, name)


def explicit_padding(
  padding: Padding,
  *,
  name: str = 'padding',
  allow_same: bool = True,
  input_hw: tuple[int, int] | None = None,
  window_hw: tuple[int, int] | None = None,
  stride_hw: tuple[int, int] | None = None,
) -> Pads:
  """Turns any accepted padding form into ((top, bottom), (left, right)) of non-negative ints.

  'SAME' follows TensorFlow/`jax.lax` (output = ceil(size / stride), the odd pixel at the
  bottom/right) and needs the input size, the (dilated) window and the stride; 'VALID' is zero.
  """
  if isinstance(padding, str):
    mode = padding.upper()
    if mode == 'VALID':
      return ((0, 0), (0, 0))
    if mode == 'SAME' and allow_same:
      pads = []
      for size, window, stride in zip(input_hw, window_hw, stride_hw):
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        pads.append((total // 2, total - total // 2))
      return (pads[0], pads[1])
    expected = "'SAME' or 'VALID'" if allow_same else "'VALID'"
    raise ValueError(f'{name} as a string must be {expected}, got {padding!r}.')
  if _is_int(padding):
    p = int(padding)
    pads = ((p, p), (p, p))
  elif isinstance(padding, Sequence) and len(padding) == 2 and all(_is_int(v) for v in padding):
    pads = ((int(padding[0]),) * 2, (int(padding[1]),) * 2)
  elif (
    isinstance(padding, Sequence)
    and len(padding) == 2
    and all(isinstance(p, Sequence) and len(p) == 2 and all(_is_int(v) for v in p) for p in padding)
  ):
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  else:
    raise TypeError(
      f"{name} must be an int, a pair (h, w), ((top, bottom), (left, right)), 'SAME' or "
      f"'VALID', got {padding!r}."
    )
  if min(min(p) for p in pads) < 0:
    raise ValueError(f'{name} must be non-negative, got {padding!r}.')
  return pads


def effective_window(window: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
  """The extent d * (k - 1) + 1 of a dilated window."""
  return tuple(d * (k - 1) + 1 for k, d in zip(window, dilation))


def output_size(
  size: int, pads: tuple[int, int], window: int, stride: int, *, ceil_mode: bool = False
) -> int:
  """Output length of a sliding window, PyTorch/Caffe rounding.

  floor mode: floor((size + lo + hi - window) / stride) + 1.
  ceil mode: ceil(...) + 1, minus one if the last window would start in the bottom/right padding
  (Caffe's PoolingLayer and PyTorch's ceil_mode both apply this correction).
  """
  span = size + pads[0] + pads[1] - window
  if span < 0:
    return 0
  if not ceil_mode:
    return span // stride + 1
  out = -(-span // stride) + 1
  if (out - 1) * stride >= size + pads[0]:
    out -= 1
  return out


def check_nonempty(
  x_shape: Sequence[int], out_hw: Sequence[int], *, what: str, details: str
) -> None:
  """Raises ValueError when an op would produce an empty spatial output.

  Symbolic sizes (``jax.export`` with symbolic height and width) are left unchecked: whether they
  are empty is only known when the exported function is called with concrete shapes.
  """
  if any(isinstance(size, int) and size < 1 for size in out_hw):
    raise ValueError(
      f'{what} of input with spatial size {tuple(x_shape[1:3])} gives an empty output '
      f'{tuple(out_hw)} ({details}); use a smaller window or dilation, or more padding.'
    )


def check_label_range(
  labels: Any, num_classes: int, *, name: str = 'labels', ignore_label: int | None = None
) -> None:
  """Raises ValueError if concrete integer `labels` leave [0, num_classes) (bar `ignore_label`).

  Traced labels cannot be inspected before the computation; callers then make such entries
  loud (NaN) or drop them, as their docstrings say. Never clips silently.
  """
  if isinstance(labels, jax.core.Tracer):
    return
  values = np.asarray(labels)
  if values.size == 0:
    return
  if values.dtype.kind in 'iu' and num_classes <= np.iinfo(values.dtype).max:
    # The common case in a few vectorised passes (np.unique sorts: ~1 s per 26 M labels): as
    # unsigned integers of the same width negative labels lie above every valid one, so one
    # comparison finds every label outside [0, num_classes); ignore_label's are discounted.
    unsigned = values.view(values.dtype.str.replace('i', 'u'))
    outside = np.count_nonzero(unsigned >= num_classes)
    if ignore_label is not None and not 0 <= ignore_label < num_classes:
      outside -= np.count_nonzero(values == ignore_label)
    if outside == 0:
      return
  elif values.min() >= 0 and values.max() < num_classes:
    return
  bad = (values < 0) | (values >= num_classes)
  if ignore_label is not None:
    bad &= values != ignore_label
  if np.any(bad):
    values = np.unique(values[bad])
    bad = np.ones(values.shape, bool)
    allowed = f'[0, {num_classes})'
    if ignore_label is not None:
      allowed += f' or equal ignore_label={ignore_label}'
    raise ValueError(f'{name} must lie in {allowed}, found {values[bad].tolist()[:10]}.')


def check_ignore_label(ignore_label: Any) -> int:
  """Returns `ignore_label` as an int; TypeError for anything else (bools included)."""
  if not _is_int(ignore_label):
    raise TypeError(f'ignore_label must be an int, got {ignore_label!r}.')
  return int(ignore_label)


def check_logits_and_labels(logits: Any, labels: Any, caller: str) -> None:
  """Classification inputs: `logits` (N, K), integer `labels` (N,) in [0, K) when concrete."""
  if getattr(logits, 'ndim', None) != 2:
    raise ValueError(
      f'{caller}: logits must have shape (N, K), got {getattr(logits, "shape", None)}'
    )
  if getattr(labels, 'shape', None) != logits.shape[:1]:
    raise ValueError(
      f'{caller}: labels must have shape {logits.shape[:1]} (one per row of '
      f'logits), got {getattr(labels, "shape", None)}'
    )
  if not np.issubdtype(np.dtype(labels.dtype), np.integer):
    raise TypeError(f'{caller}: labels must be integer class indices, got dtype {labels.dtype}')
  check_label_range(labels, logits.shape[1], name=f'{caller}: labels')


def check_number(
  value: Any,
  name: str,
  *,
  low: float | None = None,
  high: float | None = None,
  low_open: bool = False,
  high_open: bool = False,
) -> float:
  """Returns `value` as a float; TypeError for a non-number (bools, strings), ValueError for NaN,
  infinity or a value outside [low, high] (an open end with `low_open`/`high_open`)."""
  if not isinstance(value, numbers.Real) or isinstance(value, bool):
    raise TypeError(f'{name} must be a real number, got {value!r} of type {type(value).__name__}.')
  value = float(value)
  below = low is not None and (value <= low if low_open else value < low)
  above = high is not None and (value >= high if high_open else value > high)
  if not np.isfinite(value) or below or above:
    lo = '(-inf' if low is None else ('(' if low_open else '[') + f'{low:g}'
    hi = 'inf)' if high is None else f'{high:g}' + (')' if high_open else ']')
    raise ValueError(f'{name} must be a finite number in {lo}, {hi}, got {value!r}.')
  return value


def check_positive_int(value: Any, name: str) -> int:
  """Returns `value` as an int; TypeError unless an int (bools excluded), ValueError unless > 0."""
  if not _is_int(value):
    raise TypeError(f'{name} must be a positive int, got {value!r} of type {type(value).__name__}.')
  if value < 1:
    raise ValueError(f'{name} must be a positive int, got {value!r}.')
  return int(value)


def is_concrete(x: Any) -> bool:
  """True for a value whose contents can be read now (not a tracer under jit/vmap/grad)."""
  return not isinstance(x, jax.core.Tracer)


def check_finite(x: Any, name: str, *, allow_inf: bool = False) -> None:
  """Raises ValueError if concrete `x` holds NaN or (unless `allow_inf`) infinity.

  Traced values pass unchecked; callers make them loud (NaN, or counted wrong) instead."""
  if not is_concrete(x):
    return
  values = np.asarray(x)
  if values.dtype.kind not in 'fc':
    return
  bad = np.isnan(values) if allow_inf else ~np.isfinite(values)
  if bad.any():
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
      f'{name} holds {int(bad.sum())} {"NaN" if allow_inf else "non-finite"} '
      f'value(s) (first at index '
      f'{first}: {values[first]!r}); a NaN or infinity is never scored or drawn.'
    )


def check_not_bool(x: Any, name: str) -> None:
  """TypeError for a boolean array, which arithmetic ops would silently keep boolean."""
  dtype = getattr(x, 'dtype', None)
  if dtype is not None and np.dtype(dtype) == np.bool_:
    raise TypeError(
      f'{name} must be a numeric array, got dtype bool; cast it first, e.g. '
      f'{name}.astype(jnp.float32).'
    )


def check_range(x: Any, name: str, *, low: float | None = None, high: float | None = None) -> None:
  """Raises ValueError if concrete `x` has values outside [low, high] (traced: unchecked)."""
  if not is_concrete(x):
    return
  values = np.asarray(x)
  values = values[np.isfinite(values)]  # NaN is the finiteness check's business
  if values.size == 0:
    return
  lo, hi = float(values.min()), float(values.max())
  if (low is not None and lo < low) or (high is not None and hi > high):
    allowed = f'[{"-inf" if low is None else low}, {"inf" if high is None else high}]'
    raise ValueError(f'{name} must lie in {allowed}, found values in [{lo}, {hi}].')
