r"""Normalized cuts (Shi & Malik 2000) on pixel grids and on superpixel graphs.

The affinity of two pixels within ``radius`` of each other is

.. math:: w_{ij} = \exp(-\|F_i - F_j\|^2 / \sigma_I^2)\,\exp(-\|X_i - X_j\|^2 / \sigma_X^2),

with ``F`` the pixel's intensity (or colour vector) and ``X`` its (row, column) position; the
relaxed Ncut problem is the generalised eigenproblem :math:`(D - W) y = \lambda D y`, solved as
the symmetric :math:`D^{-1/2} W D^{-1/2} z = (1 - \lambda) z`, :math:`y = D^{-1/2} z`.

Two solvers share one partitioning code path:

* pixels (``superpixels=None``): Lanczos with full reorthogonalisation on the matrix-free
  stencil product (``W v`` is one multiply-add per offset of the disc, ``O(N r^2)``), a fixed
  Krylov dimension so that it jits;
* superpixels: the pixel graph contracted onto the superpixels (``W_ab`` = the sum of the pixel
  affinities between superpixels ``a`` and ``b``, self-loops keep the internal association), a
  dense ``eigh``. A partition that is constant on superpixels has exactly the same Ncut in both
  graphs, so this is the Rayleigh-Ritz restriction of the pixel problem to such partitions.

Self-pairs are left out of ``W`` (a pixel's affinity with itself is never cut; it would only
inflate every association by one).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['ncut_spectrum', 'ncut_value', 'normalized_cut', 'partition_graph', 'pixel_affinity']

_METHODS = ('recursive', 'kway')
# Added to the active part of D^-1/2 W D^-1/2 (spectrum [-1, 1]) so that every eigenvalue of an
# active node lies in [1, 3], above the zeros that masked-out nodes contribute.
_SHIFT = 2.0
_DISCRETISATION_STEPS = 30


# --------------------------------------------------------------------------- validation


def _check_positive(value: Any, name: str, *, minimum: float = 0.0, strict: bool = True) -> float:
  if not isinstance(value, numbers.Real) or isinstance(value, bool):
    raise TypeError(f'{name} must be a real number, got {value!r}.')
  value = float(value)
  if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
    relation = '>' if strict else '>='
    raise ValueError(f'{name} must be finite and {relation} {minimum}, got {value!r}.')
  return value


def _check_count(value: Any, name: str, *, minimum: int = 1) -> int:
  if not isinstance(value, numbers.Integral) or isinstance(value, bool):
    raise TypeError(f'{name} must be an int, got {value!r}.')
  if value < minimum:
    raise ValueError(f'{name} must be at least {minimum}, got {value!r}.')
  return int(value)


def _features(image: Any) -> jax.Array:
  """``(H, W, C)`` float32 features; integer images are scaled by 1/255 (as img_as_float)."""
  if not hasattr(image, 'shape') or not hasattr(image, 'dtype'):
    image = np.asarray(image)
  if image.ndim not in (2, 3):
    raise ValueError(f'image must be (H, W) or (H, W, C), got shape {tuple(image.shape)}.')
  if image.shape[0] < 1 or image.shape[1] < 1 or (image.ndim == 3 and image.shape[2] < 1):
    raise ValueError(f'image must not be empty, got shape {tuple(image.shape)}.')
  dtype = np.dtype(image.dtype)
  if dtype == np.bool_ or not (
    np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
  ):
    raise TypeError(f'image must be an integer or float array, got dtype {dtype}.')
  features = jnp.asarray(image)
  if np.issubdtype(dtype, np.integer):
    features = features.astype(jnp.float32) / jnp.float32(255)
  features = features.astype(jnp.float32)
  if not isinstance(features, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(features))):
    raise ValueError('image must be finite (it has NaN or inf values).')
  return features if features.ndim == 3 else features[..., None]


def _check_method(method: Any) -> str:
  if method not in _METHODS:
    raise ValueError(f'method must be one of {_METHODS}, got {method!r}.')
  return method


# --------------------------------------------------------------------------- the pixel graph


def _half_offsets(radius: float) -> tuple[tuple[int, int], ...]:
  """Offsets ``(dy, dx)`` with ``0 < |(dy, dx)| < radius``, one of each +- pair."""
  reach = math.ceil(radius)
  return tuple(
    (dy, dx)
    for dy in range(reach + 1)
    for dx in range(-reach, reach + 1)
    if (dy > 0 or dx > 0) and dy * dy + dx * dx < radius * radius
  )


def _offset_index(height: int, width: int, offsets):
  """Static ``(K, H, 1)`` rows, ``(K, 1, W)`` columns of ``p + offsets[k]`` (clipped) and the
  ``(K, H, W)`` mask of those inside the image."""
  steps = np.asarray(offsets, np.int64).reshape(-1, 2)
  rows = np.arange(height)[None, :] + steps[:, :1]
  cols = np.arange(width)[None, :] + steps[:, 1:]
  inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
  rows = np.clip(rows, 0, height - 1)[:, :, None]
  cols = np.clip(cols, 0, width - 1)[:, None, :]
  return rows, cols, inside


def _stencil_weights(features: jax.Array, offsets, sigma_i: float, sigma_x: float) -> jax.Array:
  """``(K, H, W)`` affinity of pixel ``p`` and ``p + offsets[k]`` (zero off the image).

  One gather for all offsets (a Python loop over them compiles several times slower).
  """
  height, width = features.shape[:2]
  rows, cols, inside = _offset_index(height, width, offsets)
  other = features[rows, cols]  # (K, H, W, C)
  colour = jnp.sum((features[None] - other) ** 2, axis=-1)
  spatial = np.array([(dy * dy + dx * dx) / sigma_x**2 for dy, dx in offsets], np.float32)
  weights = jnp.exp(-colour / jnp.float32(sigma_i**2) - spatial[:, None, None])
  return jnp.where(inside, weights, 0.0)


def _symmetric_stencil(weights: jax.Array, offsets):
  """Both directions of every edge: ``(2K, H, W)`` weights and ``(2K, 2)`` int32 offsets."""
  height, width = weights.shape[1:]
  negated = [(-dy, -dx) for dy, dx in offsets]
  rows, cols, inside = _offset_index(height, width, negated)
  # The weight from p to p - o is the weight stored at p - o for the offset o.
  back = jnp.where(inside, weights[np.arange(len(offsets))[:, None, None], rows, cols], 0.0)
  full = jnp.concatenate([weights, back], axis=0)
  return full, jnp.asarray(np.array(list(offsets) + negated, np.int32))


def _stencil_matvec(
  full_weights: jax.Array, steps: jax.Array, reach: int, v: jax.Array
) -> jax.Array:
  """``(W v)_p = sum_o w_{p, p+o} v_{p+o}`` for ``v`` of shape ``(H, W)``.

  A loop over the offsets with dynamic slices of the padded ``v``: unrolling the offsets instead
  makes XLA compile the Lanczos loop around it several times slower.
  """
  height, width = v.shape
  padded = jnp.pad(v, reach)

  def body(k, out):
    window = jax.lax.dynamic_slice(
      padded, (reach + steps[k, 0], reach + steps[k, 1]), (height, width)
    )
    return out + full_weights[k] * window

  return jax.lax.fori_loop(0, steps.shape[0], body, jnp.zeros_like(v))


def _stencil_edges(weights: jax.Array, offsets):
  """Flat ``(src, dst, w)`` arrays of the stencil's undirected edges (each once).

  Neighbours off the image have weight zero and a clipped (in-bounds) index.
  """
  height, width = weights.shape[1:]
  rows, cols, _ = _offset_index(height, width, offsets)
  index = jnp.arange(height * width, dtype=jnp.int32).reshape(height, width)
  src = jnp.broadcast_to(index, weights.shape).reshape(-1)
  dst = index[rows, cols].reshape(-1)
  return src, dst, weights.reshape(-1)


def pixel_affinity(
  image: Any, *, radius: float = 5.0, sigma_i: float = 0.1, sigma_x: float = 4.0
) -> jax.Array:
  r"""The dense Shi-Malik pixel affinity matrix of a small image.

  .. math:: w_{ij} = \exp(-\|F_i - F_j\|^2 / \sigma_I^2)\,\exp(-\|X_i - X_j\|^2 / \sigma_X^2)
            \quad \text{if } 0 < \|X_i - X_j\|_2 < r, \text{ else } 0

  (Shi & Malik 2000, eq. 11), pixels in row-major order. It holds ``(H W)^2`` numbers: for
  checks and :func:`ncut_value` on small images; :func:`normalized_cut` never builds it.

  Args:
    image: ``(H, W)`` grey or ``(H, W, C)`` colour image; integers are scaled by 1/255.
    radius: the neighbourhood radius ``r`` in pixels (> 1).
    sigma_i: the feature scale :math:`\sigma_I`.
    sigma_x: the spatial scale :math:`\sigma_X` in pixels.

  Returns:
    ``(H W, H W)`` float32 symmetric affinities with a zero diagonal.

  Example:
    >>> w = pixel_affinity(jnp.zeros((2, 2)), radius=1.5, sigma_x=1.0)
    >>> np.round(np.asarray(w, np.float64), 4).tolist()[0]
    [0.0, 0.3679, 0.3679, 0.1353]
  """
  features = _features(image)
  radius = _check_positive(radius, 'radius', minimum=1.0)
  sigma_i = _check_positive(sigma_i, 'sigma_i')
  sigma_x = _check_positive(sigma_x, 'sigma_x')
  offsets = _half_offsets(radius)
  n = features.shape[0] * features.shape[1]
  weights = _stencil_weights(features, offsets, sigma_i, sigma_x)
  src, dst, wts = _stencil_edges(weights, offsets)
  dense = jnp.zeros((n, n), jnp.float32).at[src, dst].add(wts)
  return dense + dense.T


# --------------------------------------------------------------------------- eigen-solvers


def _lanczos_top(matvec, start: jax.Array, active: jax.Array, num: int, steps: int, key: jax.Array):
  """The ``num`` largest Ritz pairs of a symmetric operator on the ``active`` subspace.

  Lanczos with full (twice-repeated Gram-Schmidt) reorthogonalisation, ``steps`` fixed. A
  breakdown (an invariant subspace) restarts from a fresh random vector orthogonal to the basis,
  which keeps the tridiagonal matrix exact (block diagonal) instead of producing ghosts.
  """
  n = start.shape[0]
  basis = jnp.zeros((steps + 1, n), jnp.float32)
  start = start * active
  basis = basis.at[0].set(start / jnp.linalg.norm(start))
  alphas = jnp.zeros((steps,), jnp.float32)
  betas = jnp.zeros((steps,), jnp.float32)
  index = jnp.arange(n, dtype=jnp.float32)
  phase = jax.random.uniform(key, (), jnp.float32, 0.0, 1000.0)

  def orthogonalise(w, basis):
    for _ in range(2):
      w = w - basis.T @ (basis @ w)
    return w

  def restart(j, basis):
    # A cheap deterministic pseudo-random vector (a hashed sine), not threefry: drawing random
    # numbers inside the loop body makes XLA's CPU compile many times slower.
    noise = jnp.sin((index + phase) * 12.9898 + j.astype(jnp.float32) * 78.233) * 43758.547
    fresh = orthogonalise((noise - jnp.floor(noise) - 0.5) * active, basis)
    norm = jnp.linalg.norm(fresh)
    return jnp.where(norm > 1e-6, fresh / jnp.maximum(norm, 1e-30), 0.0)

  def body(j, state):
    basis, alphas, betas = state
    v = basis[j]
    w = matvec(v) * active
    alpha = jnp.dot(w, v)
    w = orthogonalise(w, basis)
    beta = jnp.linalg.norm(w)
    broke = beta <= 1e-5 * jnp.maximum(jnp.abs(alpha), 1.0)
    nxt = jax.lax.cond(broke, lambda: restart(j, basis), lambda: w / jnp.maximum(beta, 1e-30))
    beta = jnp.where(broke, 0.0, beta)
    return basis.at[j + 1].set(nxt), alphas.at[j].set(alpha), betas.at[j].set(beta)

  basis, alphas, betas = jax.lax.fori_loop(0, steps, body, (basis, alphas, betas))
  tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
  values, vectors = jnp.linalg.eigh(tridiagonal)
  values, vectors = values[::-1][:num], vectors[:, ::-1][:, :num]
  return values, (basis[:steps].T @ vectors)


def _krylov_steps(n: int, num: int) -> int:
  return int(min(n, max(160, 40 * num)))


class _Graph:
  """One interface over the stencil (pixels) and dense (superpixels, any W) graphs."""

  def __init__(self, *, weights=None, offsets=None, dense=None):
    self.weights, self.offsets, self.dense = weights, offsets, dense
    if dense is not None:
      self.n = dense.shape[0]
      upper = np.triu_indices(self.n, 1)
      self.src = jnp.asarray(upper[0], jnp.int32)
      self.dst = jnp.asarray(upper[1], jnp.int32)
      self._edge_w = dense[upper]
    else:
      self.shape = weights.shape[1:]
      self.n = self.shape[0] * self.shape[1]
      self.src, self.dst, self._edge_w = _stencil_edges(weights, offsets)
      self.full_weights, self.steps = _symmetric_stencil(weights, offsets)
      self.reach = int(max(max(abs(dy), abs(dx)) for dy, dx in offsets))

  def matvec(self, v: jax.Array, member: jax.Array) -> jax.Array:
    """``W_S v`` for the subgraph of the nodes where ``member`` is 1 (v, member flat)."""
    if self.dense is not None:
      return member * (self.dense @ (member * v))
    v2 = (member * v).reshape(self.shape)
    out = _stencil_matvec(self.full_weights, self.steps, self.reach, v2)
    return member * out.reshape(-1)

  def edge_weights(self, member: jax.Array) -> jax.Array:
    return self._edge_w * member[self.src] * member[self.dst]

  def top_vectors(self, member: jax.Array, num: int, key: jax.Array):
    """Largest eigenpairs of ``D^-1/2 W_S D^-1/2 + 2 I`` on the active nodes of ``member``."""
    degree = self.matvec(jnp.ones((self.n,), jnp.float32), member)
    active = (degree > 0).astype(jnp.float32)
    inv_sqrt = jnp.where(degree > 0, jax.lax.rsqrt(jnp.where(degree > 0, degree, 1.0)), 0.0)
    if self.dense is not None:
      matrix = inv_sqrt[:, None] * self.dense * inv_sqrt[None, :]
      matrix = matrix * (member[:, None] * member[None, :]) + jnp.diag(_SHIFT * active)
      values, vectors = jnp.linalg.eigh(matrix)
      return values[::-1][:num], vectors[:, ::-1][:, :num], degree, inv_sqrt

    def op(z):
      return inv_sqrt * self.matvec(inv_sqrt * z, member) + _SHIFT * z

    start = jnp.sqrt(degree) + 0.1 * jax.random.normal(key, (self.n,), jnp.float32)
    steps = _krylov_steps(self.n, num)
    values, vectors = _lanczos_top(op, start, active, num, steps, jax.random.fold_in(key, 1))
    return values, vectors, degree, inv_sqrt


# --------------------------------------------------------------------------- partitioning


def _best_split(graph: _Graph, full_degree: jax.Array, member: jax.Array, key: jax.Array):
  """Splits the segment ``member`` along its second generalised eigenvector.

  Every split point of the sorted eigenvector is scored exactly (an edge is cut by the threshold
  ``t`` iff its endpoints' ranks straddle ``t``: one difference array), by the increase of the
  k-way Ncut of the whole partition. Returns ``(child, delta)``: the nodes that move to the new
  segment and the increase (``inf`` when the segment cannot be split).
  """
  values, vectors, degree, inv_sqrt = graph.top_vectors(member, 2, key)
  del values
  trivial = jnp.sqrt(degree)
  z = vectors[:, 1]
  # The Fiedler vector is orthogonal to sqrt(d); remove any leak of the trivial one (its Ritz
  # value ties with it when the segment is disconnected).
  z = z - trivial * jnp.dot(trivial, z) / jnp.maximum(jnp.dot(trivial, trivial), 1e-30)
  y = inv_sqrt * z
  n = graph.n
  inside = member > 0
  count = jnp.sum(inside.astype(jnp.int32))
  order = jnp.argsort(jnp.where(inside, y, jnp.inf))
  rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  w = graph.edge_weights(member)
  low = jnp.minimum(rank[graph.src], rank[graph.dst])
  high = jnp.maximum(rank[graph.src], rank[graph.dst])
  diff = jnp.zeros((n + 1,), jnp.float32).at[low + 1].add(w).at[high + 1].add(-w)
  cut = jnp.cumsum(diff)[1:n]  # cut[t - 1]: A = ranks < t, t = 1..n-1
  vol_full = jnp.cumsum((full_degree * member)[order])[: n - 1]
  vol_seg = jnp.cumsum((degree * member)[order])[: n - 1]
  total_full = jnp.sum(full_degree * member)
  total_seg = jnp.sum(degree * member)
  vol_b = total_full - vol_full
  outside_a = vol_full - vol_seg + cut  # cut(A, V \ A)
  outside_b = (total_full - total_seg) - (vol_full - vol_seg) + cut
  before = jnp.where(total_full > 0, (total_full - total_seg) / jnp.maximum(total_full, 1e-30), 0.0)
  after = outside_a / jnp.maximum(vol_full, 1e-30) + outside_b / jnp.maximum(vol_b, 1e-30)
  t = jnp.arange(1, n, dtype=jnp.int32)
  valid = (t < count) & (vol_full > 0) & (vol_b > 0)
  delta = jnp.where(valid, after - before, jnp.inf)
  best = jnp.argmin(delta)
  child = inside & (rank <= best)
  # Keep the larger side under the old label (so segment 0 stays the biggest piece).
  child = jnp.where(2 * (best + 1) > count, inside & ~child, child)
  return child, delta[best]


def _recursive(graph: _Graph, num_segments: int, key: jax.Array) -> jax.Array:
  n = graph.n
  ones = jnp.ones((n,), jnp.float32)
  full_degree = graph.matvec(ones, ones)
  labels = jnp.zeros((n,), jnp.int32)
  children = jnp.zeros((num_segments, n), bool)
  deltas = jnp.full((num_segments,), jnp.inf, jnp.float32)

  def step(s, state):
    # Score the (at most two) segments the last split changed, then make the best split.
    # One traced copy of the split (vmapped over the pair) keeps the compile short.
    labels, children, deltas, pair = state
    members = (labels[None, :] == pair[:, None]).astype(jnp.float32)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(2 * s + jnp.arange(2))
    new_children, new_deltas = jax.vmap(lambda m, k: _best_split(graph, full_degree, m, k))(
      members, keys
    )
    children = children.at[pair].set(new_children)
    deltas = deltas.at[pair].set(new_deltas)
    j = jnp.argmin(deltas).astype(jnp.int32)
    can = jnp.isfinite(deltas[j])
    labels = jnp.where(can & children[j], s + 1, labels)
    return labels, children, deltas, jnp.stack([j, jnp.where(can, s + 1, j)]).astype(jnp.int32)

  state = (labels, children, deltas, jnp.zeros((2,), jnp.int32))
  labels, _, _, _ = jax.lax.fori_loop(0, num_segments - 1, step, state)
  return labels


def _kway(graph: _Graph, num_segments: int, key: jax.Array) -> jax.Array:
  """Simultaneous k-way: the k smallest generalised eigenvectors, Yu & Shi's discretisation."""
  ones = jnp.ones((graph.n,), jnp.float32)
  _, vectors, degree, inv_sqrt = graph.top_vectors(ones, num_segments, key)
  embedding = inv_sqrt[:, None] * vectors
  norms = jnp.linalg.norm(embedding, axis=1, keepdims=True)
  x = jnp.where(norms > 0, embedding / jnp.maximum(norms, 1e-30), 0.0)
  # Initial rotation: rows of x as mutually orthogonal as possible (Yu & Shi 2003, step 4).
  first = jnp.argmax(degree)
  rotation = jnp.zeros((num_segments, num_segments), jnp.float32).at[:, 0].set(x[first])
  similarity = jnp.zeros((graph.n,), jnp.float32)
  for c in range(1, num_segments):
    similarity = similarity + jnp.abs(x @ rotation[:, c - 1])
    rotation = rotation.at[:, c].set(x[jnp.argmin(similarity)])

  def body(_, rotation):
    labels = jnp.argmax(x @ rotation, axis=1)
    onehot = jax.nn.one_hot(labels, num_segments, dtype=jnp.float32)
    u, _, vt = jnp.linalg.svd(onehot.T @ x)
    return (u @ vt).T

  rotation = jax.lax.fori_loop(0, _DISCRETISATION_STEPS, body, rotation)
  return jnp.argmax(x @ rotation, axis=1).astype(jnp.int32)


def _partition(graph: _Graph, num_segments: int, method: str, key: jax.Array) -> jax.Array:
  if method == 'kway':
    labels = _kway(graph, num_segments, key)
  else:
    labels = _recursive(graph, num_segments, key)
  # Relabel by first appearance, so that ids follow reading order whatever the solver did.
  first_seen = (
    jnp.full((num_segments,), graph.n, jnp.int32)
    .at[labels]
    .min(jnp.arange(graph.n, dtype=jnp.int32))
  )
  rank = jnp.argsort(jnp.argsort(first_seen)).astype(jnp.int32)
  return rank[labels]


# --------------------------------------------------------------------------- public API


def ncut_value(labels: Any, W: Any) -> jax.Array:
  r"""The k-way normalized cut of a partition of a weighted graph.

  .. math:: \mathrm{Ncut}(A_1, \dots, A_k) = \sum_{c=1}^{k}
            \frac{\mathrm{cut}(A_c, V \setminus A_c)}{\mathrm{assoc}(A_c, V)}

  (Shi & Malik 2000 for ``k = 2``, Yu & Shi 2003 for ``k > 2``), with ``cut`` the total weight
  of the edges leaving ``A_c`` and ``assoc`` its total degree; empty segments count 0. The
  value lies in ``[0, k]``; lower is better.

  Args:
    labels: integer segment ids, any shape with ``N`` elements (e.g. an ``(H, W)`` map in
      row-major order), values in ``[0, N)``.
    W: ``(N, N)`` symmetric non-negative affinities (e.g. :func:`pixel_affinity`).

  Returns:
    A float32 scalar.

  Example:
    >>> W = jnp.array([[0., 1., 0.1], [1., 0., 0.1], [0.1, 0.1, 0.]])
    >>> round(float(ncut_value(jnp.array([0, 0, 1]), W)), 4)   # 0.2 / 2.2 + 0.2 / 0.2
    1.0909
  """
  W = jnp.asarray(W, jnp.float32)
  if W.ndim != 2 or W.shape[0] != W.shape[1]:
    raise ValueError(f'W must be a square (N, N) matrix, got shape {tuple(W.shape)}.')
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f'labels must be an integer array, got dtype {labels.dtype}.')
  if labels.size != W.shape[0]:
    raise ValueError(f'labels has {labels.size} elements but W is {tuple(W.shape)}.')
  labels = labels.reshape(-1).astype(jnp.int32)
  if (
    not isinstance(labels, jax.core.Tracer)
    and labels.size
    and (int(labels.min()) < 0 or int(labels.max()) >= labels.size)
  ):
    raise ValueError(
      f'labels must lie in [0, {labels.size}), got [{int(labels.min())}, {int(labels.max())}].'
    )
  return _ncut_value(labels, W)


@jax.jit
def _ncut_value(labels, W):
  n = W.shape[0]
  onehot = jax.nn.one_hot(labels, n, dtype=jnp.float32)  # (N, N segments)
  assoc = onehot.T @ jnp.sum(W, axis=1)
  within = jnp.einsum('ic,ij,jc->c', onehot, W, onehot)
  return jnp.sum(jnp.where(assoc > 0, (assoc - within) / jnp.where(assoc > 0, assoc, 1.0), 0.0))


def partition_graph(
  W: Any, num_segments: int = 2, *, method: str = 'recursive', key: jax.Array | None = None
) -> jax.Array:
  r"""Normalized-cut partition of a small dense graph (e.g. a region adjacency graph).

  The relaxation :math:`(D - W) y = \lambda D y` (Shi & Malik 2000) solved by a dense ``eigh``
  of :math:`D^{-1/2} W D^{-1/2}`, then either

  * ``'recursive'``: split along the second eigenvector at the threshold that minimises the
    k-way :func:`ncut_value` (every threshold is scored exactly), then repeatedly split the
    segment whose best split raises the Ncut least, until ``num_segments``; or
  * ``'kway'``: the ``num_segments`` smallest eigenvectors, discretised by Yu & Shi's (2003)
    alternating rotation.

  Args:
    W: ``(N, N)`` symmetric non-negative affinities.
    num_segments: the number of segments ``k`` (fewer come back when a segment cannot split).
    method: ``'recursive'`` or ``'kway'``.
    key: PRNG key (only for the random restarts of degenerate splits); default ``PRNGKey(0)``.

  Returns:
    ``(N,)`` int32 segment ids in ``[0, k)``.

  Example:
    >>> W = jnp.array([[0., 1., .01, 0.], [1., 0., 0., .01], [.01, 0., 0., 1.], [0., .01, 1., 0.]])
    >>> partition_graph(W).tolist()
    [0, 0, 1, 1]

  Agrees with (and its Ncut is never worse than) ``skimage.graph.cut_normalized`` on the same
  graph; see tests/test_classic_normalized_cut.py.
  """
  W = jnp.asarray(W, jnp.float32)
  if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] < 1:
    raise ValueError(f'W must be a non-empty square (N, N) matrix, got shape {tuple(W.shape)}.')
  if not isinstance(W, jax.core.Tracer):
    if not bool(jnp.all(jnp.isfinite(W))):
      raise ValueError('W must be finite (it has NaN or inf values).')
    if bool(jnp.any(W < 0)):
      raise ValueError('W must be non-negative.')
    if not bool(jnp.allclose(W, W.T, rtol=1e-5, atol=1e-6)):
      raise ValueError('W must be symmetric.')
  num_segments = _check_count(num_segments, 'num_segments')
  if num_segments > W.shape[0]:
    raise ValueError(
      f'num_segments ({num_segments}) must not exceed the number of nodes ({W.shape[0]}).'
    )
  method = _check_method(method)
  key = jax.random.PRNGKey(0) if key is None else key
  return _partition_dense(W, num_segments, method, key)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _partition_dense(W, num_segments, method, key):
  return _partition(_Graph(dense=W), num_segments, method, key)


def ncut_spectrum(
  image: Any,
  *,
  num_vectors: int = 4,
  radius: float = 5.0,
  sigma_i: float = 0.1,
  sigma_x: float = 4.0,
  key: jax.Array | None = None,
):
  r"""The smallest generalised eigenpairs of an image's Ncut problem, matrix-free.

  Solves :math:`(D - W) y = \lambda D y` for the Shi-Malik pixel affinity (:func:`pixel_affinity`)
  by Lanczos with full reorthogonalisation on :math:`D^{-1/2} W D^{-1/2}`, whose product with a
  vector is the stencil sum :math:`(W v)_p = \sum_{\|o\| < r} w_{p, p+o} v_{p+o}`:
  ``O(N r^2)`` per step and ``O(N m)`` for the reorthogonalisation, ``m`` Krylov steps
  (``max(160, 40 k)``, at most ``N``).

  Args:
    image: ``(H, W)`` grey or ``(H, W, C)`` colour; integers are scaled by 1/255.
    num_vectors: the number ``k`` of eigenpairs.
    radius: neighbourhood radius ``r`` in pixels (> 1).
    sigma_i: feature scale :math:`\sigma_I`.
    sigma_x: spatial scale :math:`\sigma_X` in pixels.
    key: PRNG key of the Lanczos start vector; default ``PRNGKey(0)``.

  Returns:
    ``(eigenvalues (k,), eigenvectors (H, W, k))``, eigenvalues ascending (the first is 0),
    eigenvectors normalised to :math:`y^\top D y = 1` (sign arbitrary).

  Example:
    >>> image = jnp.zeros((12, 12)).at[:, 6:].set(1.0)
    >>> values, vectors = ncut_spectrum(image, num_vectors=2)
    >>> bool(abs(values[0]) < 1e-4 and values[1] < 1e-3)   # two almost disconnected halves
    True

  Agrees with ``scipy.sparse.linalg.eigsh(D - W, M=D)`` to 1e-4
  (tests/test_classic_normalized_cut.py).
  """
  features = _features(image)
  num_vectors = _check_count(num_vectors, 'num_vectors')
  n = features.shape[0] * features.shape[1]
  if num_vectors > n:
    raise ValueError(f'num_vectors ({num_vectors}) must not exceed the number of pixels ({n}).')
  radius = _check_positive(radius, 'radius', minimum=1.0)
  sigma_i = _check_positive(sigma_i, 'sigma_i')
  sigma_x = _check_positive(sigma_x, 'sigma_x')
  key = jax.random.PRNGKey(0) if key is None else key
  return _spectrum(features, num_vectors, radius, sigma_i, sigma_x, key)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _spectrum(features, num_vectors, radius, sigma_i, sigma_x, key):
  offsets = _half_offsets(radius)
  graph = _Graph(weights=_stencil_weights(features, offsets, sigma_i, sigma_x), offsets=offsets)
  ones = jnp.ones((graph.n,), jnp.float32)
  values, vectors, _, inv_sqrt = graph.top_vectors(ones, num_vectors, key)
  eigenvalues = 1.0 + _SHIFT - values
  eigenvectors = (inv_sqrt[:, None] * vectors).reshape(*features.shape[:2], num_vectors)
  return eigenvalues, eigenvectors


def _superpixel_graph(features, superpixels, num_superpixels, offsets, sigma_i, sigma_x):
  """The pixel graph contracted onto superpixels: ``W_ab = sum_{i in a, j in b} w_ij``."""
  weights = _stencil_weights(features, offsets, sigma_i, sigma_x)
  src, dst, wts = _stencil_edges(weights, offsets)
  flat = superpixels.reshape(-1)
  a, b = flat[src], flat[dst]
  dense = jnp.zeros((num_superpixels * num_superpixels,), jnp.float32)
  dense = dense.at[a * num_superpixels + b].add(wts).reshape(num_superpixels, num_superpixels)
  return dense + dense.T


def normalized_cut(
  image: Any,
  *,
  num_segments: int = 2,
  radius: float = 5.0,
  sigma_i: float = 0.1,
  sigma_x: float = 4.0,
  superpixels: Any = None,
  method: str = 'recursive',
  key: jax.Array | None = None,
) -> jax.Array:
  r"""Segments an image by normalized cuts (Shi & Malik 2000).

  Minimises the relaxed normalized cut

  .. math:: \mathrm{Ncut}(A, B) = \frac{\mathrm{cut}(A, B)}{\mathrm{assoc}(A, V)}
            + \frac{\mathrm{cut}(A, B)}{\mathrm{assoc}(B, V)}

  over the pixel affinity :math:`w_{ij} = e^{-\|F_i - F_j\|^2/\sigma_I^2}
  e^{-\|X_i - X_j\|^2/\sigma_X^2}` (pixels closer than ``radius``): the eigenvector of the
  second smallest eigenvalue of :math:`(D - W) y = \lambda D y` is thresholded at the split point
  that minimises the Ncut, and segments are split recursively (``method='recursive'``, each time
  the split that raises the k-way Ncut of the image least), or the ``num_segments`` smallest
  eigenvectors are discretised at once (``method='kway'``, Yu & Shi 2003).

  Solver: matrix-free Lanczos on the pixel stencil (``O(N r^2 + N m)`` per Krylov step, ``m``
  steps, see :func:`ncut_spectrum`), or with ``superpixels`` a dense ``eigh`` on the pixel graph
  contracted onto the superpixels (the same Ncut for every superpixel-constant partition,
  ``O(S^3)``). Jit-able; both run at fixed shapes.

  Args:
    image: ``(H, W)`` grey or ``(H, W, C)`` colour image; integers are scaled by 1/255.
    num_segments: the number of segments ``k`` (fewer when a segment cannot be split).
    radius: neighbourhood radius ``r`` in pixels (> 1).
    sigma_i: feature scale :math:`\sigma_I` (intensities in [0, 1]).
    sigma_x: spatial scale :math:`\sigma_X` in pixels.
    superpixels: optional ``(H, W)`` integer over-segmentation with ids in ``[0, S)`` (e.g.
      SLIC or Felzenszwalb); every id must occur.
    method: ``'recursive'`` (Shi & Malik's recursive 2-way cuts) or ``'kway'``.
    key: PRNG key of the Lanczos start vectors; default ``PRNGKey(0)``.

  Returns:
    ``(H, W)`` int32 segment ids in ``[0, k)``.

  Example:
    >>> image = jnp.zeros((16, 16)).at[4:12, 4:12].set(1.0)    # a square on a background
    >>> labels = normalized_cut(image, num_segments=2)
    >>> int(labels[8, 8]) != int(labels[0, 0]), int(jnp.sum(labels == labels[8, 8]))
    (True, 64)

  Its partition's Ncut is no worse than ``skimage.graph.cut_normalized``'s on the same graph and
  its eigenvalues match ``scipy.sparse.linalg.eigsh`` (tests/test_classic_normalized_cut.py).
  """
  features = _features(image)
  num_segments = _check_count(num_segments, 'num_segments')
  radius = _check_positive(radius, 'radius', minimum=1.0)
  sigma_i = _check_positive(sigma_i, 'sigma_i')
  sigma_x = _check_positive(sigma_x, 'sigma_x')
  method = _check_method(method)
  key = jax.random.PRNGKey(0) if key is None else key
  height, width = features.shape[:2]
  if superpixels is None:
    if num_segments > height * width:
      raise ValueError(
        f'num_segments ({num_segments}) must not exceed the number of pixels ({height * width}).'
      )
    return _normalized_cut_pixels(features, num_segments, radius, sigma_i, sigma_x, method, key)
  superpixels = jnp.asarray(superpixels)
  if superpixels.shape != (height, width):
    raise ValueError(
      f'superpixels must have the image shape {(height, width)}, got {tuple(superpixels.shape)}.'
    )
  if not jnp.issubdtype(superpixels.dtype, jnp.integer):
    raise TypeError(f'superpixels must be an integer array, got dtype {superpixels.dtype}.')
  if isinstance(superpixels, jax.core.Tracer):
    raise TypeError('superpixels must be concrete (their count fixes the graph size).')
  ids = np.unique(np.asarray(superpixels))
  if ids[0] < 0 or not np.array_equal(ids, np.arange(ids.size)):
    raise ValueError(
      f'superpixels must use every id in [0, S) (S = {ids.size}), got ids from '
      f'{ids[0]} to {ids[-1]}.'
    )
  if num_segments > ids.size:
    raise ValueError(
      f'num_segments ({num_segments}) must not exceed the number of superpixels ({ids.size}).'
    )
  return _normalized_cut_superpixels(
    features,
    superpixels.astype(jnp.int32),
    int(ids.size),
    num_segments,
    radius,
    sigma_i,
    sigma_x,
    method,
    key,
  )


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _normalized_cut_pixels(features, num_segments, radius, sigma_i, sigma_x, method, key):
  offsets = _half_offsets(radius)
  graph = _Graph(weights=_stencil_weights(features, offsets, sigma_i, sigma_x), offsets=offsets)
  return _partition(graph, num_segments, method, key).reshape(features.shape[:2])


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6, 7))
def _normalized_cut_superpixels(
  features, superpixels, num_superpixels, num_segments, radius, sigma_i, sigma_x, method, key
):
  offsets = _half_offsets(radius)
  dense = _superpixel_graph(features, superpixels, num_superpixels, offsets, sigma_i, sigma_x)
  labels = _partition(_Graph(dense=dense), num_segments, method, key)
  return labels[superpixels]
