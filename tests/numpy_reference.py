"""Naive NumPy references for jaxseg.ops, written from the definitions with explicit loops.

Deliberately slow and independent of jaxseg: every output pixel is computed from its window in
float64, output sizes come from the textbook formulas re-derived here, and nothing calls
jax or jaxseg. Layouts match jaxseg: activations NHWC, kernels HWIO.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def explicit_pads(padding, in_hw, window_hw, stride_hw):
  """((top, bottom), (left, right)) for any padding form ('SAME' as TensorFlow)."""
  if isinstance(padding, str):
    if padding == 'VALID':
      return ((0, 0), (0, 0))
    pads = []
    for size, k, s in zip(in_hw, window_hw, stride_hw):
      total = max((math.ceil(size / s) - 1) * s + k - size, 0)
      pads.append((total // 2, total - total // 2))
    return tuple(pads)
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  if isinstance(padding[0], int):
    return ((padding[0], padding[0]), (padding[1], padding[1]))
  return tuple(tuple(p) for p in padding)


def as_pair(value):
  return (value, value) if isinstance(value, int) else tuple(value)


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
  """y[n,i,j,o] = b[o] + sum_{u,v,c} xpad[n, s*i + d*u, s*j + d*v, g*Cg + c] * w[u,v,c,o]."""
  x = np.asarray(x, np.float64)
  w = np.asarray(w, np.float64)
  n, height, width, channels = x.shape
  kh, kw, cg, out_ch = w.shape
  (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
  ext_h, ext_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
  (pt, pb), (pl, pr) = explicit_pads(padding, (height, width), (ext_h, ext_w), (sh, sw))
  xp = np.zeros((n, height + pt + pb, width + pl + pr, channels))
  xp[:, pt : pt + height, pl : pl + width] = x
  out_h = (height + pt + pb - ext_h) // sh + 1
  out_w = (width + pl + pr - ext_w) // sw + 1
  og = out_ch // groups
  y = np.zeros((n, out_h, out_w, out_ch))
  for i in range(out_h):
    for j in range(out_w):
      for o in range(out_ch):
        g = o // og
        acc = np.zeros(n)
        for u in range(kh):
          for v in range(kw):
            pixel = xp[:, i * sh + u * dh, j * sw + v * dw, g * cg : (g + 1) * cg]
            acc += pixel @ w[u, v, :, o]
        y[:, i, j, o] = acc
  return y if b is None else y + np.asarray(b, np.float64)


def conv_transpose2d(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1):
  """Scatter definition: every x[n,i,j,:] adds x[n,i,j,:] @ w[u,v] at (s*i + d*u, s*j + d*v).

  The full scattered map is then cropped by `padding` at the top/left (and bottom/right, minus
  `output_padding` rows of zeros appended there), as Caffe's Deconvolution and PyTorch do.
  """
  x = np.asarray(x, np.float64)
  w = np.asarray(w, np.float64)
  n, height, width, _ = x.shape
  kh, kw, _, out_ch = w.shape
  (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
  (oph, opw) = as_pair(output_padding)
  (pt, pb), (pl, pr) = explicit_pads(padding, None, None, None)  # int, pair, pairs or 'VALID'
  full_h = (height - 1) * sh + dh * (kh - 1) + 1 + oph
  full_w = (width - 1) * sw + dw * (kw - 1) + 1 + opw
  full = np.zeros((n, full_h, full_w, out_ch))
  for i in range(height):
    for j in range(width):
      for u in range(kh):
        for v in range(kw):
          full[:, i * sh + u * dh, j * sw + v * dw, :] += x[:, i, j, :] @ w[u, v]
  y = full[:, pt : full_h - pb, pl : full_w - pr, :]
  return y if b is None else y + np.asarray(b, np.float64)


def pool_output_size(size, lo, hi, window, stride, ceil_mode):
  """Caffe/PyTorch rounding, with PyTorch's 'last window starts inside' correction."""
  if ceil_mode:
    out = math.ceil((size + lo + hi - window) / stride) + 1
    if (out - 1) * stride >= size + lo:
      out -= 1
  else:
    out = (size + lo + hi - window) // stride + 1
  return out


def _pool(x, window, stride, padding, ceil_mode, reduce_window):
  x = np.asarray(x, np.float64)
  n, height, width, channels = x.shape
  kh, kw = as_pair(window)
  sh, sw = as_pair(stride if stride is not None else window)
  (pt, pb), (pl, pr) = explicit_pads(padding, (height, width), (kh, kw), (sh, sw))
  out_h = pool_output_size(height, pt, pb, kh, sh, ceil_mode)
  out_w = pool_output_size(width, pl, pr, kw, sw, ceil_mode)
  y = np.zeros((n, out_h, out_w, channels))
  for i in range(out_h):
    for j in range(out_w):
      # Window in input coordinates, before clipping.
      h0, w0 = i * sh - pt, j * sw - pl
      y[:, i, j, :] = reduce_window(x, h0, w0, kh, kw, (height, width), (pt, pb, pl, pr))
  return y


def max_pool(x, window, *, stride=None, padding=0, ceil_mode=False):
  """y[n,i,j,c] = max of x over the window clipped to the input (padding is -inf)."""

  def reduce_window(x, h0, w0, kh, kw, hw, pads):
    best = np.full((x.shape[0], x.shape[3]), -np.inf)
    for h in range(h0, h0 + kh):
      for w in range(w0, w0 + kw):
        if 0 <= h < hw[0] and 0 <= w < hw[1]:
          best = np.maximum(best, x[:, h, w, :])
    return best

  return _pool(x, window, stride, padding, ceil_mode, reduce_window)


def avg_pool(x, window, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
  """Mean over the window; the divisor counts padded cells (not the ceil overhang) if asked."""

  def reduce_window(x, h0, w0, kh, kw, hw, pads):
    pt, pb, pl, pr = pads
    total = np.zeros((x.shape[0], x.shape[3]))
    inside = padded = 0
    for h in range(h0, h0 + kh):
      for w in range(w0, w0 + kw):
        if 0 <= h < hw[0] and 0 <= w < hw[1]:
          total += x[:, h, w, :]
          inside += 1
        if -pt <= h < hw[0] + pb and -pl <= w < hw[1] + pr:
          padded += 1
    return total / (padded if count_include_pad else inside)

  return _pool(x, window, stride, padding, ceil_mode, reduce_window)


def local_response_norm(x, *, size=5, alpha=1e-4, beta=0.75, k=1.0):
  """y_c = x_c / (k + alpha / size * sum_{c' in [c - size//2, c + (size-1)//2]} x_c'^2)^beta."""
  x = np.asarray(x, np.float64)
  channels = x.shape[-1]
  y = np.zeros_like(x)
  for c in range(channels):
    total = np.zeros(x.shape[:-1])
    for c2 in range(c - size // 2, c + (size - 1) // 2 + 1):
      if 0 <= c2 < channels:
        total += x[..., c2] ** 2
    y[..., c] = x[..., c] / (k + alpha / size * total) ** beta
  return y


def resize(x, shape, *, method='bilinear', align_corners=False):
  """Per output pixel: source coordinate from the definition, then interpolate its neighbours."""
  x = np.asarray(x, np.float64)
  n, height, width, channels = x.shape
  out_h, out_w = shape

  def source(i, in_size, out_size):
    if method == 'nearest':
      return min(int(math.floor(i * in_size / out_size)), in_size - 1)
    if align_corners:
      return i * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return max((i + 0.5) * in_size / out_size - 0.5, 0.0)

  y = np.zeros((n, out_h, out_w, channels))
  for i in range(out_h):
    for j in range(out_w):
      sy, sx = source(i, height, out_h), source(j, width, out_w)
      if method == 'nearest':
        y[:, i, j] = x[:, sy, sx]
        continue
      y0, x0 = min(int(sy), height - 1), min(int(sx), width - 1)
      y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
      ly, lx = sy - y0, sx - x0
      y[:, i, j] = (
        (1 - ly) * (1 - lx) * x[:, y0, x0]
        + (1 - ly) * lx * x[:, y0, x1]
        + ly * (1 - lx) * x[:, y1, x0]
        + ly * lx * x[:, y1, x1]
      )
  return y


def relative_error(actual, expected) -> float:
  """max |actual - expected| / max |expected| (the max-norm relative error)."""
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  scale = max(np.abs(expected).max(initial=0.0), 1e-30)
  return float(np.abs(actual - expected).max(initial=0.0) / scale)


def pairwise_cases(axes: dict, *, valid=lambda case: True, seed: int = 0) -> list[dict]:
  """A small deterministic set of cases covering every valid pair of values of any two axes.

  Greedy all-pairs: repeatedly keep the valid case of the Cartesian product that covers the most
  (axis, value, axis, value) pairs not yet covered (ties broken by a seeded shuffle), until every
  pair that some valid case contains is covered. Far smaller than the product, yet every value
  of every axis meets every value of every other axis.
  """
  names = list(axes)
  product = [dict(zip(names, values)) for values in itertools.product(*axes.values())]
  product = [case for case in product if valid(case)]
  order = np.random.default_rng(seed).permutation(len(product))
  product = [product[i] for i in order]
  pair_sets = [
    {(a, repr(case[a]), b, repr(case[b])) for a, b in itertools.combinations(names, 2)}
    for case in product
  ]
  uncovered = set().union(*pair_sets)
  chosen = []
  while uncovered:
    best = max(range(len(product)), key=lambda i: len(pair_sets[i] & uncovered))
    chosen.append(product[best])
    uncovered -= pair_sets[best]
  return chosen
