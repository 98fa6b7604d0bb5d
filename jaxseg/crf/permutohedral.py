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

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['Lattice', 'build_lattice', 'build_lattice_traced', 'lattice_filter']


class Lattice(NamedTuple):
  """Splat/slice and blur indices of a (batched) permutohedral lattice.

  Attributes:
    offsets: ``(P, d+1)`` int32, the lattice slot of each vertex of each point's simplex; the
      last slot (``S``) is an always-zero dummy used by invalid points and absent neighbours.
    weights: ``(P, d+1)`` float32 barycentric weights (zero for invalid points).
    neighbors: ``(d+1, 2, S+1)`` int32, the two neighbours of each slot along each direction.
  """
  offsets: jax.Array
  weights: jax.Array
  neighbors: jax.Array


def _build_one(features: np.ndarray):
  """Lattice of one image's valid points: (offsets (n, d+1), weights, neighbours, M)."""
  n, d = features.shape
  d1 = d + 1
  f = features.astype(np.float32)
  # Elevation y = E f (Adams et al. p. 5) with the scale of a unit Gaussian (p. 6).
  inv_std_dev = np.float32(math.sqrt(2.0 / 3.0) * d1)
  scale = (inv_std_dev / np.sqrt((np.arange(d) + 1.0) * (np.arange(d) + 2.0))).astype(np.float32)
  cf = f * scale
  tail = np.zeros((n, d1), np.float32)
  tail[:, :d] = np.cumsum(cf[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = sum_{k >= j} cf[:, k]
  elevated = tail.copy()
  elevated[:, 1:] -= np.arange(1, d1, dtype=np.float32) * cf
  # The closest remainder-0 point, by rounding each coordinate to a multiple of d+1.
  v = elevated / np.float32(d1)
  up = np.ceil(v) * d1
  down = np.floor(v) * d1
  rem0 = np.where(up - elevated < elevated - down, up, down).astype(np.int64)
  total = rem0.sum(1) // d1
  # The rank of each residual (0 = largest; ties: the earlier coordinate ranks first).
  diff = elevated - rem0
  greater = diff[:, None, :] > diff[:, :, None]
  tie_before = (diff[:, None, :] == diff[:, :, None]) & np.tri(d1, d1, -1, dtype=bool)[None]
  rank = (greater | tie_before).sum(2) + total[:, None]
  # Points off the plane (sum != 0) are brought back by wrapping the ranks.
  low, high = rank < 0, rank > d
  rank = np.where(low, rank + d1, np.where(high, rank - d1, rank))
  rem0 = np.where(low, rem0 + d1, np.where(high, rem0 - d1, rem0))
  # Barycentric coordinates (p. 10).
  values = (elevated - rem0).astype(np.float32) / np.float32(d1)
  bary = np.zeros((n, d + 2), np.float32)
  np.put_along_axis(bary, d - rank, values, axis=1)
  minus = np.zeros((n, d + 2), np.float32)
  np.put_along_axis(minus, d - rank + 1, values, axis=1)
  bary -= minus
  bary[:, 0] += 1.0 + bary[:, d1]
  bary = bary[:, :d1]
  # The keys (first d coordinates) of the d+1 vertices of each simplex.
  r, j = np.meshgrid(np.arange(d1), np.arange(d1), indexing='ij')
  canonical = np.where(j <= d - r, r, r - d1)  # canonical[remainder, rank]
  keys = rem0[:, None, :d] + canonical[:, rank[:, :d]].transpose(1, 0, 2)  # (n, d+1, d)
  keys = keys.reshape(-1, d)
  # One int64 per key (mixed radix with room for the +-d neighbour moves).
  low_key = keys.min(0) - d1
  span = keys.max(0) - low_key + d1 + 1
  if np.sum(np.log2(span.astype(np.float64))) > 62:
    raise ValueError('the lattice keys do not fit in 62 bits: the features span too many '
                     'standard deviations (is a std far too small?).')
  stride = np.ones(d, np.int64)
  for i in range(d - 2, -1, -1):
    stride[i] = stride[i + 1] * span[i + 1]
  codes = (keys - low_key) @ stride
  unique, inverse = np.unique(codes, return_inverse=True)
  m = unique.shape[0]
  offsets = inverse.reshape(n, d1).astype(np.int32)
  neighbors = np.empty((d1, 2, m), np.int32)
  for axis in range(d1):
    step = -np.ones(d, np.int64)
    if axis < d:
      step[axis] = d
    for side, sign in enumerate((1, -1)):
      target = unique + sign * int(step @ stride)
      found = np.minimum(np.searchsorted(unique, target), m - 1)
      neighbors[axis, side] = np.where(unique[found] == target, found, -1)
  return offsets, bary, neighbors, m


def _features(image: np.ndarray, xy_std: float, rgb_std: float | None) -> np.ndarray:
  """(H*W, d) features: (x, y) / xy_std and, for the bilateral kernel, (r, g, b) / rgb_std."""
  h, w = image.shape[:2]
  y, x = np.mgrid[:h, :w].astype(np.float32)
  parts = [x.reshape(-1) / np.float32(xy_std), y.reshape(-1) / np.float32(xy_std)]
  if rgb_std is not None:
    rgb = image.reshape(-1, 3).astype(np.float32) / np.float32(rgb_std)
    parts += [rgb[:, 0], rgb[:, 1], rgb[:, 2]]
  return np.stack(parts, axis=1)


def _capacity_bucket(m: int) -> int:
  # Round up to 1/8 of the leading power of two: at most 12.5% of idle slots, few shapes.
  if m <= 64:
    return 64
  step = 2 ** (max(m.bit_length() - 1, 0) - 3)
  return -(-m // step) * step


def _assemble(images, valid, xy_std, rgb_std, capacity):
  images = np.asarray(images)
  valid = np.asarray(valid, bool)
  b, h, w = images.shape[:3]
  n = h * w
  built = []
  for i in range(b):
    mask = valid[i].reshape(-1)
    built.append((mask, _build_one(_features(images[i], xy_std, rgb_std)[mask])))
  d1 = built[0][1][0].shape[1]
  largest = max(m for _, (_, _, _, m) in built)
  if capacity is None:
    capacity = _capacity_bucket(largest)
  dummy = b * capacity
  offsets = np.full((b, n, d1), dummy, np.int32)
  weights = np.zeros((b, n, d1), np.float32)
  neighbors = np.full((d1, 2, dummy + 1), dummy, np.int32)
  for i, (mask, (off, bary, nbr, m)) in enumerate(built):
    offsets[i, mask] = off + i * capacity
    weights[i, mask] = bary
    neighbors[:, :, i * capacity:i * capacity + m] = np.where(nbr < 0, dummy, nbr + i * capacity)
  return offsets.reshape(b * n, d1), weights.reshape(b * n, d1), neighbors


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
  return Lattice(*(jnp.asarray(a) for a in _assemble(images, valid, xy_std, rgb_std, None)))


def build_lattice_traced(images, valid, *, xy_std: float, rgb_std: float | None = None
                         ) -> Lattice:
  """``build_lattice`` for traced images: a ``jax.pure_callback`` at the worst-case capacity.

  Every point may create ``d+1`` vertices, so the capacity is ``H * W * (d+1)`` per image:
  correct for any image, but the blur then runs over many idle slots (slower than
  ``build_lattice`` with concrete images).
  """
  b, h, w = images.shape[:3]
  d1 = (2 if rgb_std is None else 5) + 1
  capacity = h * w * d1
  shapes = (jax.ShapeDtypeStruct((b * h * w, d1), jnp.int32),
            jax.ShapeDtypeStruct((b * h * w, d1), jnp.float32),
            jax.ShapeDtypeStruct((d1, 2, b * capacity + 1), jnp.int32))

  def host(images, valid):
    return _assemble(images, valid, xy_std, rgb_std, capacity)

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
  # Splat one simplex vertex at a time: d+1 scatter-adds of (P, C), never a (P, d+1, C) tensor.
  grid = jnp.zeros((num_slots, values.shape[1]), values.dtype)
  for k in range(d1):
    grid = grid.at[offsets[:, k]].add(weights[:, k, None] * values)
  for axis in (range(d1 - 1, -1, -1) if reverse else range(d1)):
    grid = grid + 0.5 * (grid[lattice.neighbors[axis, 0]] + grid[lattice.neighbors[axis, 1]])
  alpha = np.float32(1.0 / (1.0 + 2.0 ** -(d1 - 1)))
  out = weights[:, 0, None] * grid[offsets[:, 0]]
  for k in range(1, d1):
    out = out + weights[:, k, None] * grid[offsets[:, k]]
  return alpha * out
