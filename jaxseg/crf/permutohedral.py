r"""The permutohedral lattice: high-dimensional Gaussian filtering in linear time.

Adams, Baek & Davis, "Fast High-Dimensional Filtering Using the Permutohedral Lattice"
(Eurographics 2010), as Krähenbühl's densecrf (``permutohedral.cpp``, the code pydensecrf wraps)
implements it. Each of ``n`` points with a ``d``-dimensional feature ``f`` (already divided by
the kernel's standard deviations) is

1. *elevated* onto the hyperplane :math:`\sum_i x_i = 0` of :math:`\mathbb{R}^{d+1}`, scaled so
   that the lattice spacing matches a unit Gaussian (``inv_std_dev = sqrt(2/3) (d+1)``);
2. located in its simplex of the permutohedral lattice :math:`A_d^\ast` (the nearest
   remainder-0 point by rounding, then a sort of the residuals gives the simplex), whose
   ``d+1`` vertices receive the point's value with its barycentric weights (*splat*);
3. the lattice values are *blurred* along each of the ``d+1`` lattice directions in turn with
   the kernel ``[1/2, 1, 1/2]`` (neighbours absent from the sparse lattice count as zero);
4. each point reads back the barycentric mix of its vertices (*slice*), times Krähenbühl's
   ``alpha = 1 / (1 + 2^-d)``.

The result approximates :math:`\sum_j \exp(-\|f_i - f_j\|^2 / 2)\, v_j` up to a constant
factor, with a kernel slightly wider than the nominal Gaussian and not exactly stationary (it
depends on where points fall in their simplices). The dense CRF normalises it (the constant
cancels), see ``mean_field``.

Building the lattice (which vertices exist, their neighbours) is a hash of integer keys: it is
done once per image on the host in vectorised NumPy (``build_lattice``), because XLA:CPU's sort
and ``unique`` are several times slower than NumPy's. Splat, blur and slice are fixed-shape
gathers and scatter-adds in JAX (``lattice_filter``), so they jit, batch and differentiate with
respect to the filtered values. Inside a ``jit`` whose image is traced, ``build_lattice_traced``
runs the same NumPy build through ``jax.pure_callback`` at the worst-case capacity.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['Lattice', 'build_lattice', 'build_lattice_traced', 'lattice_filter']


class Lattice(NamedTuple):
  """Splat, blur and slice indices of a (batched) permutohedral lattice.

  ``P`` points (the batch's pixels, flattened), ``S`` lattice slots (the images' vertices in
  disjoint ranges, then idle slots) and one more, the always-zero dummy slot ``S``.

  Attributes:
    offsets: ``(P, d+1)`` int32, the slot of each vertex of each point's simplex (the dummy
      for invalid points).
    weights: ``(P, d+1)`` float32 barycentric weights (zero for invalid points).
    splat_src: ``(R, C)`` int32 points, the splat contributions grouped by slot in rows of
      ``C`` (a slot with more than ``C`` contributions spans several rows).
    splat_weights: ``(R, C)`` float32 their barycentric weights (zero in padding).
    splat_slot: ``(R,)`` int32 the slot of each row, non-decreasing.
    neighbors: ``(d+1, 2, S+1)`` int32, the two neighbours of each slot along each direction.
  """

  offsets: jax.Array
  weights: jax.Array
  splat_src: jax.Array
  splat_weights: jax.Array
  splat_slot: jax.Array
  neighbors: jax.Array


class _Built(NamedTuple):
  offsets: np.ndarray  # (n, d+1) slot of each vertex
  weights: np.ndarray  # (n, d+1) barycentric weights
  sorted_slot: np.ndarray  # (n (d+1),) slots of the contributions, sorted
  sorted_point: np.ndarray  # (n (d+1),) their points
  sorted_weight: np.ndarray  # (n (d+1),) their weights
  counts: np.ndarray  # (M,) contributions per slot
  neighbors: np.ndarray  # (d+1, 2, M), -1 where absent


def _build_one(features: np.ndarray) -> _Built:
  """The lattice of one image's valid points (features ``(n, d)``), as densecrf builds it.

  Vectorised over the points (arrays ``(d+1, n)``); every step mirrors
  ``Permutohedral::init`` of densecrf, in float32 as there, so the same vertices result.
  """
  n, d = features.shape
  d1 = d + 1
  f = np.ascontiguousarray(features.T, dtype=np.float32)
  # Elevation y = E f (Adams et al. p. 5) with the scale of a unit Gaussian (p. 6).
  inv_std_dev = math.sqrt(2.0 / 3.0) * d1
  elevated = np.empty((d1, n), np.float32)
  running = np.zeros(n, np.float32)
  for j in range(d, 0, -1):
    cf = f[j - 1] * np.float32(inv_std_dev / math.sqrt((j + 1) * j))
    elevated[j] = running - np.float32(j) * cf
    running += cf
  elevated[0] = running
  # The closest remainder-0 point, by rounding each coordinate to a multiple of d+1.
  down_factor = np.float32(1.0 / d1)
  v = elevated * down_factor
  up = np.ceil(v) * np.float32(d1)
  down = np.floor(v) * np.float32(d1)
  rem0 = np.where(up - elevated < elevated - down, up, down)
  total = np.rint(rem0.sum(0, dtype=np.float64) / d1).astype(np.int32)
  # The rank of each residual (0 = largest), by densecrf's pairwise comparisons.
  diff = elevated - rem0
  rank = np.zeros((d1, n), np.int32)
  for i in range(d1):
    for j in range(i + 1, d1):
      less = diff[i] < diff[j]
      rank[i] += less
      rank[j] += ~less
  rank += total
  # Points off the plane (sum != 0) are brought back by wrapping the ranks.
  low, high = rank < 0, rank > d
  rank += d1 * (low.astype(np.int32) - high.astype(np.int32))
  rem0 += np.float32(d1) * (low.astype(np.float32) - high.astype(np.float32))
  # Barycentric coordinates (p. 10): value i goes to d - rank_i, minus to the next.
  values = (elevated - rem0) * down_factor
  by_rank = np.empty((d1, n), np.float32)
  by_rank[d - rank, np.arange(n)[None, :]] = values
  bary = np.zeros((d + 2, n), np.float32)
  bary[:d1] = by_rank
  bary[1:] -= by_rank
  bary[0] += np.float32(1.0) + bary[d1]
  bary = bary[:d1]
  # Vertex r of a simplex has key rem0 + canonical[r, rank] on its first d coordinates, with
  # canonical[r, k] = r - (d+1) [k > d - r]. Keys become one int64 (mixed radix, with room for
  # the +-d moves to the neighbours).
  rem0_int = rem0[:d].astype(np.int64)
  low_key = rem0_int.min(1) - 2 * d1
  span = rem0_int.max(1) + 2 * d1 - low_key + 1
  code_bits = float(np.sum(np.log2(span.astype(np.float64))))
  if code_bits > 62:
    raise ValueError(
      'the lattice keys do not fit in 62 bits: the features span too many '
      'standard deviations (is a std far too small?).'
    )
  stride = np.ones(d, np.int64)
  for i in range(d - 2, -1, -1):
    stride[i] = stride[i + 1] * span[i + 1]
  base = ((rem0_int - low_key[:, None]) * stride[:, None]).sum(0)
  codes = np.empty((d1, n), np.int64)
  for r in range(d1):
    wrapped = ((rank[:d] > d - r) * stride[:, None]).sum(0)
    codes[r] = base + r * int(stride.sum()) - d1 * wrapped
  codes = codes.reshape(-1)
  # Sort the contributions by key: pack (key, index) into one int64 when it fits (NumPy's sort
  # of int64 is several times faster than argsort), else argsort.
  index_bits = max(int(codes.size - 1).bit_length(), 1)
  if math.ceil(code_bits) + index_bits <= 63:
    packed = np.sort((codes << index_bits) | np.arange(codes.size, dtype=np.int64))
    order = packed & ((1 << index_bits) - 1)
    sorted_codes = packed >> index_bits
  else:
    order = np.argsort(codes)
    sorted_codes = codes[order]
  new = np.empty(codes.size, bool)
  new[0] = True
  np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=new[1:])
  sorted_slot = (np.cumsum(new) - 1).astype(np.int32)
  unique = sorted_codes[new]
  m = unique.shape[0]
  inverse = np.empty(codes.size, np.int32)
  inverse[order] = sorted_slot
  counts = np.diff(np.append(np.flatnonzero(new), codes.size))
  neighbors = np.empty((d1, 2, m), np.int32)
  all_down = -int(stride.sum())
  for axis in range(d1):
    delta = all_down + (d1 * int(stride[axis]) if axis < d else 0)
    for side, sign in enumerate((1, -1)):
      target = unique + sign * delta
      found = np.minimum(np.searchsorted(unique, target), m - 1)
      neighbors[axis, side] = np.where(unique[found] == target, found, -1)
  return _Built(
    offsets=inverse.reshape(d1, n).T,
    weights=bary.T,
    sorted_slot=sorted_slot,
    sorted_point=(order % n).astype(np.int32),
    sorted_weight=bary.reshape(-1)[order],
    counts=counts,
    neighbors=neighbors,
  )


def _features(image: np.ndarray, xy_std: float, rgb_std: float | None) -> np.ndarray:
  """(H*W, d) features: (x, y) / xy_std and, for the bilateral kernel, (r, g, b) / rgb_std."""
  h, w = image.shape[:2]
  y, x = np.mgrid[:h, :w].astype(np.float32)
  parts = [x.reshape(-1) / np.float32(xy_std), y.reshape(-1) / np.float32(xy_std)]
  if rgb_std is not None:
    rgb = image.reshape(-1, 3).astype(np.float32) / np.float32(rgb_std)
    parts += [rgb[:, 0], rgb[:, 1], rgb[:, 2]]
  return np.stack(parts, axis=1)


def _bucket(m: int) -> int:
  # Round up to 1/8 of the leading power of two: at most 12.5% idle, few distinct shapes.
  if m <= 64:
    return 64
  step = 2 ** (m.bit_length() - 4)
  return -(-m // step) * step


# A scatter-add row costs XLA:CPU several gathered rows; rows of C contributions trade one for
# the other (cost ~ R C + _ROW_COST R, R the number of rows).
_ROW_COST = 8
_ROW_SIZES = (1, 2, 4, 8, 16, 32, 64)


def _rows(counts, row_size):
  return int(np.sum(-(-counts // row_size)))


def _assemble(images, valid, xy_std, rgb_std, capacity=None, row_size=None, num_rows=None):
  """Builds each image's lattice and lays them out in one batch of fixed shapes."""
  images = np.asarray(images)
  valid = np.asarray(valid, bool)
  b, h, w = images.shape[:3]
  n = h * w
  d1 = (2 if rgb_std is None else 5) + 1

  def one(i):
    points = np.flatnonzero(valid[i].reshape(-1))
    lattice = _build_one(_features(images[i], xy_std, rgb_std)[points]) if points.size else None
    return points, lattice

  if b > 1:
    # NumPy releases the GIL in its array loops: the images' builds overlap on several cores.
    with concurrent.futures.ThreadPoolExecutor(min(b, os.cpu_count() or 1)) as pool:
      built = list(pool.map(one, range(b)))
  else:
    built = [one(0)]
  lattices = [lat for _, lat in built if lat is not None]
  if capacity is None:
    capacity = _bucket(max([lat.counts.size for lat in lattices], default=1))
  if row_size is None:
    counts = np.concatenate([lat.counts for lat in lattices] or [np.zeros(0, np.int64)])
    row_size = min(_ROW_SIZES, key=lambda c: _rows(counts, c) * (c + _ROW_COST))
  if num_rows is None:
    num_rows = _bucket(sum(_rows(lat.counts, row_size) for lat in lattices) + 1)
  dummy = b * capacity
  offsets = np.full((b, n, d1), dummy, np.int32)
  weights = np.zeros((b, n, d1), np.float32)
  neighbors = np.full((d1, 2, dummy + 1), dummy, np.int32)
  splat_src = np.zeros((num_rows, row_size), np.int32)
  splat_weights = np.zeros((num_rows, row_size), np.float32)
  splat_slot = np.full((num_rows,), dummy, np.int32)
  row = 0
  for i, (points, lat) in enumerate(built):
    if lat is None:
      continue
    slot0 = i * capacity
    everything = points.size == n  # the common case: plain slices instead of fancy indexing
    offsets[i, slice(None) if everything else points] = lat.offsets + slot0
    weights[i, slice(None) if everything else points] = lat.weights
    m = lat.counts.size
    neighbors[:, :, slot0 : slot0 + m] = np.where(lat.neighbors < 0, dummy, lat.neighbors + slot0)
    # Contribution k of slot s (in sorted order) goes to flat position
    # C * row_start[s] + k - first[s] of the (R, C) arrays: one gather per contribution.
    rows_per_slot = -(-lat.counts // row_size)
    row_start = np.cumsum(rows_per_slot) - rows_per_slot + row
    shift = row_size * row_start - (np.cumsum(lat.counts) - lat.counts)
    flat = np.arange(lat.sorted_slot.size) + shift[lat.sorted_slot]
    sources = lat.sorted_point if everything else points[lat.sorted_point]
    splat_src.reshape(-1)[flat] = sources + i * n
    splat_weights.reshape(-1)[flat] = lat.sorted_weight
    splat_slot[row : row + rows_per_slot.sum()] = np.repeat(
      np.arange(m, dtype=np.int32) + slot0, rows_per_slot
    )
    row += int(rows_per_slot.sum())
  return (
    offsets.reshape(b * n, d1),
    weights.reshape(b * n, d1),
    splat_src,
    splat_weights,
    splat_slot,
    neighbors,
  )


def build_lattice(images, valid, *, xy_std: float, rgb_std: float | None = None) -> Lattice:
  """Builds the lattice of a batch of concrete images on the host (NumPy).

  Args:
    images: ``(B, H, W, 3)`` array (uint8 or float in [0, 255]).
    valid: ``(B, H, W)`` bool; invalid pixels create no lattice vertex and get zero weights.
    xy_std: the positional standard deviation (pixels).
    rgb_std: the colour standard deviation, or None for a positions-only lattice.

  Returns:
    A ``Lattice`` whose ``B`` images occupy disjoint slot ranges of one common capacity (the
    largest image's vertex count rounded up to few distinct sizes, so jit recompiles rarely).
  """
  return Lattice(*(jnp.asarray(a) for a in _assemble(images, valid, xy_std, rgb_std)))


def build_lattice_traced(images, valid, *, xy_std: float, rgb_std: float | None = None) -> Lattice:
  """``build_lattice`` for traced images: a ``jax.pure_callback`` at the worst-case sizes.

  Every point may create ``d+1`` vertices, so the capacity is ``H * W * (d+1)`` per image and
  the splat has one contribution per row: correct for any image, but slower than
  ``build_lattice`` with concrete images (the blur runs over idle slots).
  """
  b, h, w = images.shape[:3]
  d1 = (2 if rgb_std is None else 5) + 1
  capacity = h * w * d1
  num_rows = b * capacity
  shapes = (
    jax.ShapeDtypeStruct((b * h * w, d1), jnp.int32),
    jax.ShapeDtypeStruct((b * h * w, d1), jnp.float32),
    jax.ShapeDtypeStruct((num_rows, 1), jnp.int32),
    jax.ShapeDtypeStruct((num_rows, 1), jnp.float32),
    jax.ShapeDtypeStruct((num_rows,), jnp.int32),
    jax.ShapeDtypeStruct((d1, 2, b * capacity + 1), jnp.int32),
  )

  def host(images, valid):
    return _assemble(images, valid, xy_std, rgb_std, capacity, 1, num_rows)

  return Lattice(*jax.pure_callback(host, shapes, images, valid, vmap_method='sequential'))


def lattice_filter(values, lattice: Lattice, *, reverse: bool = False):
  r"""Splat, blur and slice ``values`` through ``lattice`` (linear in ``values``).

  .. math:: \tilde v_i \approx c \sum_j \exp(-\|f_i - f_j\|^2 / 2)\, v_j

  Args:
    values: ``(P, C)`` float32, one row per point of the lattice (batch flattened).
    lattice: from ``build_lattice``.
    reverse: blur the directions in reverse order (the transpose of the forward filter).

  Returns:
    ``(P, C)`` float32 filtered values.

  Example:
    >>> import numpy as np
    >>> from jaxseg.crf.permutohedral import build_lattice, lattice_filter
    >>> img = np.zeros((1, 4, 4, 3), np.uint8)
    >>> lat = build_lattice(img, np.ones((1, 4, 4), bool), xy_std=2.0, rgb_std=5.0)
    >>> out = lattice_filter(jnp.ones((16, 1)), lat)
    >>> bool(jnp.all(out > 0))
    True

  Agrees with ``Permutohedral::compute`` of Krähenbühl's densecrf (pydensecrf).
  """
  num_slots = lattice.neighbors.shape[-1]
  d1 = lattice.offsets.shape[1]
  offsets, weights = lattice.offsets, lattice.weights
  # Splat: gather each slot's contributions in rows of C, then one scatter-add per row (a
  # scatter row costs XLA:CPU far more than a gathered one, so there are ~C times fewer).
  src, src_weights = lattice.splat_src, lattice.splat_weights
  rows = src_weights[:, 0, None] * values[src[:, 0]]
  for c in range(1, src.shape[1]):
    rows = rows + src_weights[:, c, None] * values[src[:, c]]
  grid = jax.ops.segment_sum(
    rows, lattice.splat_slot, num_segments=num_slots, indices_are_sorted=True
  )
  for axis in range(d1 - 1, -1, -1) if reverse else range(d1):
    grid = grid + 0.5 * (grid[lattice.neighbors[axis, 0]] + grid[lattice.neighbors[axis, 1]])
  alpha = np.float32(1.0 / (1.0 + 2.0 ** -(d1 - 1)))
  out = weights[:, 0, None] * grid[offsets[:, 0]]
  for k in range(1, d1):
    out = out + weights[:, k, None] * grid[offsets[:, k]]
  return alpha * out
