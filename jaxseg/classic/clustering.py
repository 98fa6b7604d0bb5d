"""k-means with k-means++ seeding, and colour (and position) clustering of images.

Lloyd's algorithm as scikit-learn's `KMeans(algorithm='lloyd')`: the data are centred on their
mean first (float32 distances by matrix products lose less that way), each iteration assigns
every point to its nearest centre (distances :math:`\\|x\\|^2 - 2 x \\cdot c + \\|c\\|^2`, one
matrix product) and moves each centre to the mean of its points (a one-hot matrix product);
a centre left without points is moved onto the point farthest from its own centre, as
scikit-learn does. It stops when the assignment repeats, when the centres move less than `tol`
times the mean per-feature variance (summed squared shift), or after `iterations`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.classic import _inputs
from jaxseg.classic.color import rgb_to_lab

_HIGHEST = lax.Precision.HIGHEST


def _check_points(points, k):
  points = _inputs.as_array(points, 'points')
  if points.ndim != 2:
    raise ValueError(f'points must have shape (P, D), got shape {tuple(points.shape)}.')
  if points.size == 0:
    raise ValueError(f'points must not be empty, got shape {tuple(points.shape)}.')
  _inputs.check_finite(points, 'points')
  k = _inputs.check_int(k, 'k', minimum=1)
  if k > points.shape[0]:
    raise ValueError(f'k={k} must be at most the number of points ({points.shape[0]}).')
  return points, k


def _seed(x, k, key):
  """Indices of k-means++ seeds (Arthur & Vassilvitskii 2007): D^2 sampling, one trial each."""
  count = x.shape[0]
  first_key, key = jax.random.split(key)
  first = jax.random.randint(first_key, (), 0, count)
  closest = jnp.sum((x - x[first]) ** 2, axis=1)
  indices = jnp.zeros((k,), jnp.int32).at[0].set(first)

  def body(i, carry):
    indices, closest = carry
    # P(point p) = D(p)^2 / sum D^2, D the distance to the nearest chosen seed. log(0) = -inf:
    # chosen points (and their duplicates) are never drawn again while others remain.
    logits = jnp.where(closest > 0, jnp.log(jnp.where(closest > 0, closest, 1.0)), -jnp.inf)
    index = jax.random.categorical(jax.random.fold_in(key, i), logits).astype(jnp.int32)
    closest = jnp.minimum(closest, jnp.sum((x - x[index]) ** 2, axis=1))
    return indices.at[i].set(index), closest

  indices, _ = lax.fori_loop(1, k, body, (indices, closest))
  return indices


def kmeans_plusplus(points: jax.Array, k: int, *, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  r"""k-means++ seeds (Arthur & Vassilvitskii 2007), as `sklearn.cluster.kmeans_plusplus`.

  The first seed is uniform over the points; each next one is point :math:`p` with probability

  .. math::
    P(p) = \frac{D(p)^2}{\sum_q D(q)^2},

  :math:`D` the distance to the nearest seed chosen so far (one draw per seed, the paper's rule;
  scikit-learn keeps the best of :math:`2 + \ln k` draws, a greedy variant).

  Args:
    points: `(P, D)` float points.
    k: number of seeds, `1 <= k <= P`.
    key: a `jax.random` key.

  Returns:
    `(centres, indices)`: the seeds `(k, D)` and their row indices `(k,)` int32.

  Example:
    >>> points = jnp.array([[0.0, 0.0], [0.0, 0.1], [10.0, 10.0]])
    >>> centres, indices = kmeans_plusplus(points, 2, key=jax.random.key(0))
    >>> sorted(int(i) for i in indices) in ([0, 2], [1, 2])  # far apart, almost surely
    True
  """
  points, k = _check_points(points, k)
  x = jnp.asarray(points, jnp.float32)
  indices = _seed(x, k, key)
  return x[indices], indices


def _assign(x, x_sq, centres):
  """Nearest centre per point by one matrix product (first centre on ties)."""
  cross = jnp.dot(x, centres.T, precision=_HIGHEST)
  d2 = (x_sq[:, None] - 2.0 * cross) + jnp.sum(centres * centres, axis=1)[None, :]
  return jnp.argmin(d2, axis=1).astype(jnp.int32)


def _update(x, labels, centres):
  """Means of the clusters (one-hot matrix product), empty clusters relocated as sklearn."""
  k = centres.shape[0]
  onehot = jax.nn.one_hot(labels, k, dtype=x.dtype)
  # Sums of the offsets from the old centres: small numbers, so float32 accumulation over many
  # points loses several times less than summing the coordinates themselves.
  offsets = x - centres[labels]
  counts = jnp.sum(onehot, axis=0)
  sums = jnp.dot(onehot.T, offsets, precision=_HIGHEST) + counts[:, None] * centres
  empty = counts == 0

  def relocate(sums, counts):
    # sklearn's _relocate_empty_clusters_dense: the j-th empty cluster takes the j-th point
    # farthest from its own (old) centre, which leaves its old cluster.
    distance = jnp.sum(offsets**2, axis=1)
    _, far = lax.top_k(distance, k)
    rank = jnp.cumsum(empty) - 1
    point = far[jnp.clip(rank, 0, k - 1)]
    move = empty & (jnp.max(distance) > 0)  # all points on their centres: nothing to move
    old = labels[point]
    moved = jnp.where(move[:, None], x[point], 0.0)
    sums = sums.at[old].add(-moved)
    counts = counts.at[old].add(-move.astype(counts.dtype))
    sums = jnp.where(move[:, None], x[point], sums)
    counts = jnp.where(move, 1.0, counts)
    return sums, counts

  sums, counts = lax.cond(jnp.any(empty), relocate, lambda s, c: (s, c), sums, counts)
  # A cluster still empty (fewer distinct points than k) keeps its centre.
  return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)


@functools.partial(jax.jit, static_argnames=('k', 'iterations', 'seeded'))
def _kmeans(points, init, key, tol, *, k, iterations, seeded):
  points = points.astype(jnp.float32)
  mean = jnp.mean(points, axis=0)
  x = points - mean  # as sklearn: distances of centred data lose less precision
  x_sq = jnp.sum(x * x, axis=1)
  # sklearn's _tolerance: tol times the mean of the per-feature variances.
  tol_abs = jnp.mean(jnp.var(x, axis=0)) * tol
  centres = x[_seed(x, k, key)] if seeded else init.astype(jnp.float32) - mean

  def cond(state):
    i, _, _, done, _ = state
    return (i < iterations) & ~done

  def body(state):
    i, centres, labels_old, _, _ = state
    labels = _assign(x, x_sq, centres)
    new = _update(x, labels, centres)
    strict = jnp.all(labels == labels_old)
    shift = jnp.sum((new - centres) ** 2)
    return i + 1, new, labels, strict | (shift <= tol_abs), strict

  init_state = (
    jnp.int32(0),
    centres,
    jnp.full((x.shape[0],), -1, jnp.int32),
    jnp.bool_(False),
    jnp.bool_(False),
  )
  _, centres, labels, _, strict = lax.while_loop(cond, body, init_state)
  # Without strict convergence the last labels predate the last move: assign again (sklearn).
  labels = jnp.where(strict, labels, _assign(x, x_sq, centres))
  inertia = jnp.sum((x - centres[labels]) ** 2)
  return centres + mean, labels, inertia


def kmeans(
  points: jax.Array,
  k: int,
  *,
  key: jax.Array | None = None,
  iterations: int = 100,
  tol: float = 1e-4,
  init: Any = 'k-means++',
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""k-means by Lloyd's algorithm, as `sklearn.cluster.KMeans(algorithm='lloyd', n_init=1)`.

  Minimises the inertia :math:`\sum_p \|x_p - c_{\ell(p)}\|^2` by alternating

  .. math::
    \ell(p) = \arg\min_j \|x_p - c_j\|^2, \qquad
    c_j = \frac{1}{|\{p : \ell(p) = j\}|} \sum_{\ell(p) = j} x_p,

  both steps matrix products (see the module docstring), from k-means++ seeds
  (`kmeans_plusplus`) or given centres. Empty clusters take the farthest points; stops on a
  repeated assignment, a summed squared centre shift at most `tol` times the mean per-feature
  variance, or `iterations`. With the same initial centres it equals scikit-learn's `KMeans(
  init=centres, n_init=1, algorithm='lloyd')` (labels exactly, centres to float32 rounding).
  Use `jax.vmap` for a batch of point sets of one size.

  Args:
    points: `(P, D)` points (float32 or convertible).
    k: number of clusters, `1 <= k <= P`.
    key: a `jax.random` key for the k-means++ seeds (unused with array `init`).
    iterations: maximum Lloyd iterations (sklearn's `max_iter`).
    tol: relative tolerance on the centre shift (sklearn's `tol`).
    init: `'k-means++'` or a `(k, D)` array of initial centres.

  Returns:
    `(centres, labels, inertia)`: `(k, D)` float32 centres, `(P,)` int32 labels in `0..k-1`,
    and the float32 scalar inertia of those labels and centres.

  Example:
    >>> points = jnp.array([[0.0], [0.2], [0.1], [5.0], [5.2]])
    >>> centres, labels, inertia = kmeans(points, 2, init=jnp.array([[0.0], [1.0]]))
    >>> labels
    Array([0, 0, 0, 1, 1], dtype=int32)
    >>> [round(float(c), 3) for c in centres[:, 0]]
    [0.1, 5.1]
  """
  points, k = _check_points(points, k)
  iterations = _inputs.check_int(iterations, 'iterations', minimum=1)
  tol = _inputs.check_number(tol, 'tol', minimum=0.0)
  if isinstance(init, str):
    _inputs.check_choice(init, 'init', ('k-means++',))
    if key is None:
      raise ValueError("key is required with init='k-means++' (a jax.random key).")
    seeded, init_array = True, jnp.zeros((k, points.shape[1]), jnp.float32)
  else:
    init_array = _inputs.as_array(init, 'init')
    if tuple(init_array.shape) != (k, points.shape[1]):
      raise ValueError(
        f'init must be a (k, D) = {(k, points.shape[1])} array of centres, got '
        f'shape {tuple(init_array.shape)}.'
      )
    _inputs.check_finite(init_array, 'init')
    seeded = False
    key = jax.random.key(0) if key is None else key
  return _kmeans(
    jnp.asarray(points),
    jnp.asarray(init_array),
    key,
    jnp.float32(tol),
    k=k,
    iterations=iterations,
    seeded=seeded,
  )


def _features(image, colorspace, spatial_weight):
  """(H*W, F) features of one (H, W, C) image: colour, then weighted (row, col) / max(H, W)."""
  height, width = image.shape[:2]
  colour = rgb_to_lab(image) if colorspace == 'lab' else _inputs.to_float(image)
  feats = colour.reshape(height * width, -1)
  if spatial_weight > 0:
    rows, cols = jnp.meshgrid(
      jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing='ij'
    )
    position = jnp.stack([rows, cols], axis=-1).reshape(height * width, 2)
    feats = jnp.concatenate([feats, position * (spatial_weight / max(height, width))], axis=1)
  return feats


def kmeans_segment(
  image: jax.Array,
  k: int,
  *,
  key: jax.Array,
  spatial_weight: float = 0.0,
  colorspace: str = 'rgb',
  iterations: int = 100,
  tol: float = 1e-4,
) -> jax.Array:
  r"""Segments an image by k-means on pixel colours (and optionally positions).

  Each pixel becomes the feature

  .. math::
    f = (c_1, \ldots, c_C,\; w\, r / s,\; w\, q / s):

  its colour
  (`'rgb'`: values in [0, 1], integer images divided by their dtype's maximum; `'lab'`: CIE
  L*a*b* by `rgb_to_lab`, L* in [0, 100]), then, when :math:`w` = `spatial_weight` > 0, its row
  :math:`r` and column :math:`q` over :math:`s = \max(H, W)`. `kmeans` (k-means++ seeds, Lloyd)
  clusters the features; the label map is the assignment. A larger `spatial_weight` gives
  compacter, more superpixel-like regions. The reference is scikit-learn's `KMeans` on the same
  features (and OpenCV's `cv2.kmeans` for speed).

  Args:
    image: `(H, W, C)` (HWC; `C = 3` for `'lab'`) or a batch `(N, H, W, C)` (NHWC), each image
      clustered on its own with its own key.
    k: number of clusters, at most `H * W`.
    key: a `jax.random` key (split over a batch).
    spatial_weight: weight of the normalised position, >= 0.
    colorspace: `'rgb'` or `'lab'`.
    iterations: maximum Lloyd iterations.
    tol: relative tolerance on the centre shift.

  Returns:
    int32 labels in `0..k-1`, shape `(H, W)` or `(N, H, W)`.

  Example:
    >>> image = jnp.zeros((4, 6, 3)).at[:, 3:].set(1.0)  # black left, white right
    >>> kmeans_segment(image, 2, key=jax.random.key(0)).tolist()[0] in (
    ...     [0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
    True
  """
  image = _inputs.check_image(image, ranks=(3, 4), layout='(H, W, C) or (N, H, W, C)')
  colorspace = _inputs.check_choice(colorspace, 'colorspace', ('rgb', 'lab'))
  if colorspace == 'lab' and image.shape[-1] != 3:
    raise ValueError(f"colorspace='lab' needs 3 channels (RGB), got shape {tuple(image.shape)}.")
  spatial_weight = _inputs.check_number(spatial_weight, 'spatial_weight', minimum=0.0)
  k = _inputs.check_int(k, 'k', minimum=1)
  height, width = image.shape[-3:-1]
  if k > height * width:
    raise ValueError(f'k={k} must be at most the number of pixels ({height * width}).')
  iterations = _inputs.check_int(iterations, 'iterations', minimum=1)
  tol = _inputs.check_number(tol, 'tol', minimum=0.0)
  zeros = jnp.zeros((k, 2 + image.shape[-1]), jnp.float32)  # unused with seeded=True

  def one(img, img_key):
    feats = _features(img, colorspace, spatial_weight)
    init = zeros[:, : feats.shape[1]]
    _, labels, _ = _kmeans(
      feats, init, img_key, jnp.float32(tol), k=k, iterations=iterations, seeded=True
    )
    return labels.reshape(height, width)

  image = jnp.asarray(image)
  if image.ndim == 4:
    return jax.vmap(one)(image, jax.random.split(key, image.shape[0]))
  return one(image, key)
