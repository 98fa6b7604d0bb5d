r"""Markov random fields on image grids: the energy and MAP inference.

The energy of a labelling :math:`x` of an `(H, W)` grid with `L` labels is

.. math::
  E(x) = \sum_s \theta_s(x_s) + \sum_{(s, t)} w_{st} V(x_s, x_t),

with unary costs :math:`\theta` `(H, W, L)`, one weight per undirected neighbour edge and the
Potts distance :math:`V(a, b) = [a \ne b]` or the truncated linear one
:math:`V(a, b) = \min(|a - b|, \tau)`. Edges are stored as in ``grid_min_cut``: `pairwise` is a
scalar or `(H, W, K)`, entry `k` the edge from pixel `(r, c)` to its neighbour right (k = 0),
down (1), and with 8-connectivity down-right (2) and down-left (3); edges that leave the image
are ignored.

MAP inference: iterated conditional modes, mean field, sequential tree-reweighted message
passing (TRW-S, with its lower bound) and alpha-expansion (``jaxseg.classic.alpha_expansion``).
Everything keeps fixed shapes and runs under ``jit``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

METHODS = ('icm', 'mean_field', 'alpha_expansion', 'trws')
MODELS = ('potts', 'truncated_linear')
# Neighbour offsets (dr, dc) in the order of `pairwise`'s last axis.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


# ----------------------------------------------------------------------------------------------
# Arguments


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _check_unary(unary: Any, *, batch: bool = False) -> jax.Array:
  if isinstance(unary, (list, tuple)):
    unary = np.asarray(unary)
  if not hasattr(unary, 'shape') or not hasattr(unary, 'dtype'):
    raise TypeError(f'unary must be an array of costs (H, W, L), got {type(unary).__name__}.')
  if unary.ndim not in ((3, 4) if batch else (3,)) or min(unary.shape) < 1:
    expected = '(H, W, L) or (N, H, W, L)' if batch else '(H, W, L)'
    raise ValueError(
      f'unary must have shape {expected} with every size >= 1, got shape {tuple(unary.shape)}.'
    )
  if not np.issubdtype(np.dtype(unary.dtype), np.floating):
    raise TypeError(f'unary must be floating point, got dtype {unary.dtype}.')
  unary = jnp.asarray(unary)
  if _is_concrete(unary) and not bool(jnp.isfinite(unary).all()):
    raise ValueError('unary contains NaN or infinite values.')
  return unary


def _check_structure(connectivity: Any, model: Any, truncation: Any) -> tuple[int, str, float]:
  if connectivity not in (4, 8) or isinstance(connectivity, bool):
    raise ValueError(f'connectivity must be 4 or 8, got {connectivity!r}.')
  if model not in MODELS:
    raise ValueError(f'model must be one of {MODELS}, got {model!r}.')
  if model == 'potts':
    if truncation is not None:
      raise ValueError(
        f"truncation applies to model='truncated_linear' only, got "
        f'truncation={truncation!r} with model={model!r}.'
      )
    return connectivity, model, 1.0
  if truncation is None:
    raise ValueError("model='truncated_linear' needs a number truncation > 0, got truncation=None.")
  if isinstance(truncation, bool) or not isinstance(
    truncation, (int, float, np.integer, np.floating)
  ):
    raise TypeError(f'truncation must be a number > 0, got {truncation!r}.')
  if not (math.isfinite(truncation) and truncation > 0):
    raise ValueError(f'truncation must be finite and > 0, got {truncation!r}.')
  return connectivity, model, float(truncation)


def _edge_mask(h: int, w: int, connectivity: int) -> np.ndarray:
  """(H, W, K) 1 where the edge from (r, c) in direction k stays inside the image."""
  rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
  masks = []
  for dr, dc in _OFFSETS[: connectivity // 2]:
    masks.append((rows + dr < h) & (cols + dc >= 0) & (cols + dc < w))
  return np.stack(masks, axis=-1)


def _check_pairwise(
  pairwise: Any, shape: tuple[int, int], connectivity: int, dtype: Any
) -> jax.Array:
  """The (H, W, K) edge weights, zero on edges that leave the image."""
  h, w = shape
  k = connectivity // 2
  if isinstance(pairwise, bool):
    raise TypeError(f'pairwise must be a number or an (H, W, K) array, got {pairwise!r}.')
  if isinstance(pairwise, (int, float, np.integer, np.floating)) or (
    hasattr(pairwise, 'shape') and pairwise.shape == ()
  ):
    if _is_concrete(pairwise):
      value = float(pairwise)
      if not (math.isfinite(value) and value >= 0):
        raise ValueError(f'pairwise must be finite and >= 0, got {pairwise!r}.')
    weights = jnp.broadcast_to(jnp.asarray(pairwise, dtype), (h, w, k))
  else:
    if isinstance(pairwise, (list, tuple)):
      pairwise = np.asarray(pairwise)
    if not hasattr(pairwise, 'shape'):
      raise TypeError(
        f'pairwise must be a number or an (H, W, K) array, got {type(pairwise).__name__}.'
      )
    if tuple(pairwise.shape) != (h, w, k):
      raise ValueError(
        f'pairwise must be a scalar or of shape (H, W, K) = {(h, w, k)} for '
        f'connectivity={connectivity} (K=2: right, down; K=4: right, down, '
        f'down-right, down-left), got shape {tuple(pairwise.shape)}.'
      )
    weights = jnp.asarray(pairwise).astype(dtype)
    if _is_concrete(weights) and not bool((jnp.isfinite(weights) & (weights >= 0)).all()):
      raise ValueError('pairwise must be finite and >= 0 everywhere (edge weights).')
  return jnp.where(_edge_mask(h, w, connectivity), weights, jnp.zeros((), dtype))


def _check_labels(labels: Any, shape: tuple[int, int], num_labels: int) -> jax.Array:
  if isinstance(labels, (list, tuple)):
    labels = np.asarray(labels)
  if not hasattr(labels, 'shape') or not np.issubdtype(np.dtype(labels.dtype), np.integer):
    raise TypeError(
      f'labels must be an integer array (H, W), got '
      f'{getattr(labels, "dtype", type(labels).__name__)}.'
    )
  if tuple(labels.shape) != tuple(shape):
    raise ValueError(
      f'labels must have the shape of unary[..., 0], {tuple(shape)}, got {tuple(labels.shape)}.'
    )
  labels = jnp.asarray(labels).astype(jnp.int32)
  if (
    _is_concrete(labels) and labels.size and not bool(((labels >= 0) & (labels < num_labels)).all())
  ):
    raise ValueError(
      f'labels must lie in [0, {num_labels}), got values in '
      f'[{int(labels.min())}, {int(labels.max())}].'
    )
  return labels


def _check_iterations(iterations: Any) -> int:
  if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
    raise TypeError(f'iterations must be an int, got {iterations!r}.')
  if iterations < 0:
    raise ValueError(f'iterations must be >= 0, got {iterations!r}.')
  return int(iterations)


# ----------------------------------------------------------------------------------------------
# Energy and neighbourhood costs


def _distance_matrix(num_labels: int, model: str, truncation: float, dtype) -> jax.Array:
  a = jnp.arange(num_labels)
  if model == 'potts':
    return (a[:, None] != a[None, :]).astype(dtype)
  return jnp.minimum(jnp.abs(a[:, None] - a[None, :]).astype(dtype), truncation)


def _shift(x, dr, dc):
  """out[r, c] = x[r + dr, c + dc], zero outside the image (leading two axes)."""
  pad = [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2)
  return lax.dynamic_slice(jnp.pad(x, pad), (1 + dr, 1 + dc) + (0,) * (x.ndim - 2), x.shape)


def _neighbour_sum(table, weights):
  """sum over neighbours t of s of w_st table[t], both edge orientations: (H, W, L)."""
  total = jnp.zeros_like(table)
  for k in range(weights.shape[-1]):
    dr, dc = _OFFSETS[k]
    w_fwd = weights[..., k][..., None]
    w_bwd = _shift(weights[..., k], -dr, -dc)[..., None]
    total = total + w_fwd * _shift(table, dr, dc) + w_bwd * _shift(table, -dr, -dc)
  return total


def _label_table(labels, num_labels, model, truncation, dtype):
  """V(l, labels[t]) for every label l: (H, W, L)."""
  a = jnp.arange(num_labels)
  if model == 'potts':
    return (a != labels[..., None]).astype(dtype)
  return jnp.minimum(jnp.abs(a - labels[..., None]).astype(dtype), truncation)


def _energy(labels, unary, weights, model, truncation):
  data = jnp.take_along_axis(unary, labels[..., None], axis=-1).sum()
  smooth = jnp.zeros((), unary.dtype)
  for k in range(weights.shape[-1]):
    dr, dc = _OFFSETS[k]
    other = _shift(labels, dr, dc)
    if model == 'potts':
      dist = (labels != other).astype(unary.dtype)
    else:
      dist = jnp.minimum(jnp.abs(labels - other).astype(unary.dtype), truncation)
    smooth = smooth + jnp.sum(weights[..., k] * dist)  # zero weight where the edge leaves
  return data + smooth


def mrf_energy(
  labels: Any,
  unary: Any,
  pairwise: Any,
  *,
  connectivity: int = 4,
  model: str = 'potts',
  truncation: float | None = None,
) -> jax.Array:
  r"""The energy of a labelling under a grid MRF with Potts or truncated-linear pairwise terms.

  .. math::
    E(x) = \sum_s \theta_s(x_s) + \sum_{(s, t)} w_{st} V(x_s, x_t), \qquad
    V(a, b) = [a \ne b] \text{ (Potts) or } \min(|a - b|, \tau) \text{ (truncated linear)},

  summed over the 4- or 8-connected undirected edges inside the image.

  Args:
    labels: int labelling, shape `(H, W)`, values in `[0, L)`.
    unary: floating costs :math:`\theta`, shape `(H, W, L)`.
    pairwise: edge weights :math:`w \ge 0`: a scalar, or shape `(H, W, K)` with K = 2 (edge to
      the right, edge down) for 4-connectivity and K = 4 (right, down, down-right, down-left)
      for 8; entries for edges leaving the image are ignored.
    connectivity: 4 or 8.
    model: `'potts'` or `'truncated_linear'`.
    truncation: :math:`\tau > 0`, for `'truncated_linear'` only.

  Returns:
    The energy, a scalar of `unary`'s dtype.

  Example (two labels, one disagreeing edge of weight 2):
    >>> unary = jnp.zeros((1, 2, 2)).at[0, 1, 1].set(-1.0)
    >>> float(mrf_energy(jnp.array([[0, 1]]), unary, 2.0))
    1.0

  Checked against a NumPy loop over the edges; the same energy as gco-wrapper's
  ``cut_grid_graph`` with the matrix :math:`V` and per-edge weights (the benchmark compares the
  two solvers' labels with it).
  """
  unary = _check_unary(unary)
  connectivity, model, truncation = _check_structure(connectivity, model, truncation)
  labels = _check_labels(labels, unary.shape[:2], unary.shape[2])
  weights = _check_pairwise(pairwise, unary.shape[:2], connectivity, unary.dtype)
  return _energy_jit(labels, unary, weights, model=model, truncation=truncation)


_energy_jit = jax.jit(_energy, static_argnames=('model', 'truncation'))


def _colour_classes(shape, connectivity):
  """Independent sets of the grid: 2 colours for 4-connectivity, 4 for 8."""
  rows, cols = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
  if connectivity == 4:
    colour = (rows + cols) % 2
  else:
    colour = 2 * (rows % 2) + cols % 2
  return [jnp.asarray(colour == c) for c in range(2 if connectivity == 4 else 4)]


# ----------------------------------------------------------------------------------------------
# Iterated conditional modes


@functools.partial(jax.jit, static_argnames=('connectivity', 'model', 'truncation'))
def _icm(unary, weights, *, iterations, connectivity, model, truncation):
  num_labels = unary.shape[-1]
  classes = _colour_classes(unary.shape[:2], connectivity)

  def sweep(_, labels):
    for mask in classes:  # each class is an independent set: a parallel update is exact ICM
      table = _label_table(labels, num_labels, model, truncation, unary.dtype)
      cost = unary + _neighbour_sum(table, weights)
      best = jnp.argmin(cost, axis=-1).astype(jnp.int32)
      # Keep the current label on ties, so the energy never increases.
      current = jnp.take_along_axis(cost, labels[..., None], axis=-1)[..., 0]
      better = jnp.min(cost, axis=-1) < current
      labels = jnp.where(mask & better, best, labels)
    return labels

  labels = lax.fori_loop(0, iterations, sweep, jnp.argmin(unary, axis=-1).astype(jnp.int32))
  return labels, _energy(labels, unary, weights, model, truncation)


# ----------------------------------------------------------------------------------------------
# Mean field


@functools.partial(jax.jit, static_argnames=('connectivity', 'model', 'truncation'))
def _mean_field(unary, weights, *, iterations, connectivity, model, truncation):
  num_labels = unary.shape[-1]
  distance = _distance_matrix(num_labels, model, truncation, unary.dtype)
  classes = _colour_classes(unary.shape[:2], connectivity)

  def sweep(_, q):
    for mask in classes:  # block coordinate descent on the KL divergence, one class at a time
      expected = _neighbour_sum(q @ distance, weights)
      q = jnp.where(mask[..., None], jax.nn.softmax(-(unary + expected), axis=-1), q)
    return q

  q = lax.fori_loop(0, iterations, sweep, jax.nn.softmax(-unary, axis=-1))
  labels = jnp.argmax(q, axis=-1).astype(jnp.int32)
  return labels, _energy(labels, unary, weights, model, truncation)


# ----------------------------------------------------------------------------------------------
# TRW-S

# Messages live in a sheared layout: pixel (r, c) sits at wavefront k = a r + c (a = 1 for
# 4-connectivity, 2 for 8), row r. Every edge joins two different wavefronts and points to a
# later one, so the pixels of one wavefront are mutually independent: updating a wavefront at
# once is the same computation as visiting its pixels one by one in raster order, i.e. exactly
# Kolmogorov's sequential schedule, with H + W - 1 (or 2H + W - 2) dependent steps per pass.


def _shear(x, a, width, fill=0.0):
  """(H, W, ...) -> (width, H, ...) with out[a r + c, r] = x[r, c] and `fill` elsewhere."""
  h, w = x.shape[:2]
  k = jnp.arange(width)[:, None]
  r = jnp.arange(h)[None, :]
  c = k - a * r
  valid = (c >= 0) & (c < w)
  out = x[r, jnp.clip(c, 0, w - 1)]
  valid = valid.reshape(valid.shape + (1,) * (x.ndim - 2))
  return jnp.where(valid, out, jnp.asarray(fill, x.dtype))


def _unshear(y, a, w):
  """(width, H, ...) -> (H, W, ...), the inverse of _shear on the valid cells."""
  h = y.shape[1]
  r = jnp.arange(h)[:, None]
  c = jnp.arange(w)[None, :]
  return y[a * r + c, r]


def _min_convolve(h, w, model, truncation):
  """m(b) = min_a h(a) + w V(a, b) over the last axis; h (..., L), w (...)."""
  if model == 'potts':
    return jnp.minimum(h, jnp.min(h, axis=-1, keepdims=True) + w[..., None])
  distance = _distance_matrix(h.shape[-1], model, truncation, h.dtype)
  return jnp.min(h[..., :, None] + w[..., None, None] * distance, axis=-2)


def _shift_rows(x, dr):
  """out[r] = x[r - dr] along axis 0 with zeros shifted in (dr in {-1, 0, 1})."""
  if dr == 0:
    return x
  zeros = jnp.zeros_like(x[:1])
  return jnp.concatenate([zeros, x[:-1]]) if dr > 0 else jnp.concatenate([x[1:], zeros])


def _chains(shape, connectivity):
  """(K, H, W) bool: whether the chain of direction k through the pixel has an edge, and the
  number of such chains per pixel (at least 1: a lone pixel keeps its row chain)."""
  h, w = shape
  rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
  inside = lambda r, c: (r >= 0) & (r < h) & (c >= 0) & (c < w)
  member = []
  for dr, dc in _OFFSETS[: connectivity // 2]:
    member.append(inside(rows + dr, cols + dc) | inside(rows - dr, cols - dc))
  member = np.stack(member)
  member[0] |= ~member.any(axis=0)
  return member, member.sum(axis=0)


def _chain_minimum(pot, weights, to_next, to_prev, dc, model, truncation):
  """Sum over the chains running down the rows (column step dc) of min_x of the chain energy

    sum_s pot_s(x_s) + sum_(s, t) [w_s V(x_s, x_t) - to_next_t(x_t) - to_prev_s(x_s)],

  where t = s + (1, dc), `to_next` is the message s -> t stored at t and `to_prev` the message
  t -> s stored at s. All arrays (H, W, L) but `weights` (H, W). Chains are cut at the image's
  sides (a chain leaving through a side adds its minimum)."""

  def step(carry, row):
    state, total = carry
    pot_t, w_s, next_t, prev_s = row
    m = _min_convolve(state - prev_s, w_s, model, truncation)
    # Chains that leave through a side end here: add their minimum.
    if dc == 1:
      total = total + jnp.min(m[-1])
      m = jnp.concatenate([jnp.zeros_like(m[:1]), m[:-1]])
    elif dc == -1:
      total = total + jnp.min(m[0])
      m = jnp.concatenate([m[1:], jnp.zeros_like(m[:1])])
    return (pot_t + m - next_t, total), None

  rows = (pot[1:], weights[:-1], to_next[1:], to_prev[:-1])
  (state, total), _ = lax.scan(step, (pot[0], jnp.zeros((), pot.dtype)), rows)
  return total + jnp.sum(jnp.min(state, axis=-1))


@functools.partial(jax.jit, static_argnames=('connectivity', 'model', 'truncation'))
def _trws(unary, weights, *, iterations, connectivity, model, truncation):
  h, w, num_labels = unary.shape
  dtype = unary.dtype
  a = 1 if connectivity == 4 else 2
  offsets = _OFFSETS[: connectivity // 2]
  steps = [a * dr + dc for dr, dc in offsets]  # wavefront distance of each forward edge
  pad = max(steps)
  width = a * (h - 1) + w
  member, count = _chains((h, w), connectivity)
  gamma = jnp.asarray(1.0 / count, dtype)

  def padded(x, fill=0.0):
    x = _shear(x, a, width, fill)
    return jnp.pad(x, [(pad, pad)] + [(0, 0)] * (x.ndim - 1))

  theta = padded(unary)  # (width + 2 pad, H, L)
  gam = padded(gamma)[..., None]  # (.., H, 1)
  wts = jnp.stack([padded(weights[..., k]) for k in range(len(offsets))])  # (K, .., H)
  zeros = jnp.zeros((len(offsets),) + theta.shape, dtype)
  # from_next[k][s]: message into s from s + offset_k; from_prev[k][s]: from s - offset_k.

  def belief(msgs, i):
    from_next, from_prev = msgs
    return theta[i] + from_next[:, i].sum(0) + from_prev[:, i].sum(0)

  def decode_at(i, labels, from_next):
    # Raster order, each pixel given its labelled predecessors and its successors' messages
    # (Kolmogorov 2006, Sec. 3.4).
    cost = theta[i] + from_next[:, i].sum(0)
    for k, ((dr, _), step) in enumerate(zip(offsets, steps)):
      prev = _shift_rows(labels[i - step], dr)
      w_edge = _shift_rows(wts[k, i - step], dr)
      cost = cost + w_edge[:, None] * _label_table(prev, num_labels, model, truncation, dtype)
    return labels.at[i].set(jnp.argmin(cost, axis=-1).astype(jnp.int32))

  def forward(j, state):
    from_next, from_prev, labels = state
    i = j + pad
    labels = decode_at(i, labels, from_next)  # uses the messages of the last backward pass
    bel = gam[i] * belief((from_next, from_prev), i)
    for k, ((dr, _), step) in enumerate(zip(offsets, steps)):
      m = _min_convolve(bel - from_next[k, i], wts[k, i], model, truncation)
      m = _shift_rows(m - jnp.min(m, axis=-1, keepdims=True), dr)
      from_prev = from_prev.at[k, i + step].set(m)
    return from_next, from_prev, labels

  def backward(j, msgs):
    from_next, from_prev = msgs
    i = width - 1 - j + pad
    bel = gam[i] * belief(msgs, i)
    for k, ((dr, _), step) in enumerate(zip(offsets, steps)):
      w_edge = _shift_rows(wts[k, i - step], dr)  # the edge's weight is stored at its source
      m = _min_convolve(bel - from_prev[k, i], w_edge, model, truncation)
      m = _shift_rows(m - jnp.min(m, axis=-1, keepdims=True), -dr)
      from_next = from_next.at[k, i - step].set(m)
    return from_next, from_prev

  def keep_best(labels, best):
    labels = _unshear(labels[pad : pad + width], a, w)
    energy = _energy(labels, unary, weights, model, truncation)
    better = energy < best[1]
    return jnp.where(better, labels, best[0]), jnp.where(better, energy, best[1])

  empty = jnp.zeros(theta.shape[:2], jnp.int32)

  def iteration(_, state):
    from_next, from_prev, best = state
    from_next, from_prev, labels = lax.fori_loop(0, width, forward, (from_next, from_prev, empty))
    best = keep_best(labels, best)
    from_next, from_prev = lax.fori_loop(0, width, backward, (from_next, from_prev))
    return from_next, from_prev, best

  best = (jnp.zeros((h, w), jnp.int32), jnp.asarray(jnp.inf, dtype))
  from_next, from_prev, best = lax.fori_loop(0, iterations, iteration, (zeros, zeros, best))
  # A last decoding with the final messages; the labels of lowest energy seen are returned.
  labels = lax.fori_loop(0, width, lambda j, lab: decode_at(j + pad, lab, from_next), empty)
  labels, energy = keep_best(labels, best)

  # Lower bound: the reparametrised energy split into monotonic chains (rows, columns and
  # diagonals), each pixel's unary shared equally among its chains; the sum of the chains'
  # minima is <= min_x E(x) for any messages (Kolmogorov 2006, eq. 6).
  from_next = jnp.stack([_unshear(m[pad : pad + width], a, w) for m in from_next])
  from_prev = jnp.stack([_unshear(m[pad : pad + width], a, w) for m in from_prev])
  reparam = (unary + from_next.sum(0) + from_prev.sum(0)) / jnp.asarray(count, dtype)[..., None]
  bound = jnp.zeros((), dtype)
  for k, (dr, dc) in enumerate(offsets):
    pot = jnp.where(jnp.asarray(member[k])[..., None], reparam, 0)
    args = (pot, weights[..., k], from_prev[k], from_next[k])
    if (dr, dc) == (0, 1):  # rows: transpose so that the chain runs down axis 0
      args = tuple(jnp.swapaxes(x, 0, 1) for x in args)
      dc = 0
    bound = bound + _chain_minimum(*args, dc, model, truncation)
  return labels, energy, bound


def trws(
  unary: Any,
  pairwise: Any,
  *,
  iterations: int,
  connectivity: int = 4,
  model: str = 'potts',
  truncation: float | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""Sequential tree-reweighted message passing (TRW-S): MAP labels and a lower bound.

  Kolmogorov (2006): the grid is covered by monotonic chains (rows, columns, and with
  8-connectivity both diagonals; each edge in one chain, pixel :math:`s` in :math:`n_s` chains)
  and min-sum messages are passed in raster order forward, then backward,

  .. math::
    M_{st}(x_t) \leftarrow \min_{x_s} \Big[\tfrac{1}{n_s}\big(\theta_s(x_s)
      + \textstyle\sum_{u} M_{us}(x_s)\big) - M_{ts}(x_s) + w_{st} V(x_s, x_t)\Big],

  normalised to min 0. Pixels on one wavefront :math:`r + c` (:math:`2r + c` with
  8-connectivity) share no edge, so each wavefront is updated at once: the result is exactly the
  sequential schedule, in :math:`H + W` dependent steps of :math:`O(H L)` work per pass (Potts;
  :math:`O(H L^2)` truncated linear). The lower bound is the sum over chains of the chain's
  minimum reparametrised energy (dynamic programming along each chain), valid for any messages
  and non-decreasing under TRW-S; it certifies every method's energy: :math:`E(x) - \text{bound}`
  bounds the distance to the optimum. Labels are decoded in raster order, each pixel given its
  decoded predecessors and its successors' messages, in every forward pass and once at the end;
  the labels of lowest energy are returned. Exact (bound = energy) on chains and trees.

  Args:
    unary: floating costs, shape `(H, W, L)`.
    pairwise: edge weights >= 0: a scalar or `(H, W, K)` (K = 2: right, down; K = 4: right,
      down, down-right, down-left), as ``mrf_energy``.
    iterations: forward-backward passes, >= 0.
    connectivity: 4 or 8.
    model: `'potts'` or `'truncated_linear'`.
    truncation: :math:`\tau > 0` for `'truncated_linear'`.

  Returns:
    `(labels, energy, lower_bound)`: int32 `(H, W)`, its energy, and a lower bound on the
    minimum energy (scalars of `unary`'s dtype).

  Example (a 1x3 chain: TRW-S is exact there):
    >>> unary = jnp.array([[[0., 2.], [1., 0.], [0., 3.]]])
    >>> labels, energy, bound = trws(unary, 1.5, iterations=2)
    >>> labels.tolist(), float(energy), float(bound)
    ([[0, 0, 0]], 1.0, 1.0)

  Reference implementation: Kolmogorov's TRW-S (as in the Middlebury MRF library), not
  installable here; checked by exhaustive search on 3x3 problems, exactness on chains, and its
  bound against ICM, mean field and gco's alpha-expansion.
  """
  unary = _check_unary(unary)
  connectivity, model, truncation = _check_structure(connectivity, model, truncation)
  iterations = _check_iterations(iterations)
  weights = _check_pairwise(pairwise, unary.shape[:2], connectivity, unary.dtype)
  return _trws(
    unary,
    weights,
    iterations=iterations,
    connectivity=connectivity,
    model=model,
    truncation=truncation,
  )


def mrf_map(
  unary: Any,
  pairwise: Any,
  *,
  method: str = 'icm',
  iterations: int,
  connectivity: int = 4,
  model: str = 'potts',
  truncation: float | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""MAP labelling of a grid MRF by ICM, mean field, TRW-S or alpha-expansion.

  Minimises the grid energy of ``mrf_energy`` approximately,

  .. math::
    \hat x \approx \arg\min_x \sum_s \theta_s(x_s) + \sum_{(s,t)} w_{st} V(x_s, x_t),

  by one of:

  * `'icm'`: iterated conditional modes (Besag 1986) from :math:`\arg\min \theta`; each sweep
    sets every pixel to its best label given its neighbours, one colour class of the
    checkerboard (4 classes with 8-connectivity) at a time, so the updates are those of
    sequential ICM and the energy never increases.
  * `'mean_field'`: the factorised distribution :math:`q_s \propto \exp(-\theta_s - \sum_t
    w_{st} \sum_{x_t} q_t(x_t) V(\cdot, x_t))` at temperature 1, updated by colour classes
    (coordinate descent on :math:`KL(q \| p)`); the labels are :math:`\arg\max q`, and the
    energy returned is theirs.
  * `'trws'`: sequential tree-reweighted message passing (Kolmogorov 2006); see ``trws``, which
    also returns the lower bound.
  * `'alpha_expansion'`: Boykov, Veksler & Zabih (2001) expansion moves, each an exact binary
    graph cut (``jaxseg.classic.alpha_expansion``); needs a metric :math:`V` (both models are).

  Args:
    unary: floating costs, shape `(H, W, L)`, or a batch `(N, H, W, L)`.
    pairwise: edge weights >= 0: a scalar or `(H, W, K)` (K = 2: right, down; K = 4: right,
      down, down-right, down-left), shared by a batch, or `(N, H, W, K)` per image.
    method: `'icm'`, `'mean_field'`, `'trws'` or `'alpha_expansion'`.
    iterations: sweeps (ICM, mean field), forward-backward passes (TRW-S) or cycles over the
      labels (alpha-expansion), >= 0.
    connectivity: 4 or 8.
    model: `'potts'` or `'truncated_linear'`.
    truncation: :math:`\tau > 0` for `'truncated_linear'`.

  Returns:
    `(labels, energy)`: int32 `(H, W)` and its energy ``mrf_energy(labels, ...)``; with a batch,
    `(N, H, W)` and `(N,)` (vectorised by ``vmap``; alpha-expansion image by image).

  Example (Ising denoising of a 1x4 strip with one flipped pixel):
    >>> noisy = jnp.array([[0, 0, 1, 0]])
    >>> unary = jnp.stack([noisy == 1, noisy == 0], axis=-1).astype(jnp.float32)
    >>> labels, energy = mrf_map(unary, 0.8, method='icm', iterations=3)
    >>> labels.tolist(), float(energy)
    ([[0, 0, 0, 0]], 1.0)

  The energies are checked against exhaustive search on 3x3 problems, TRW-S's lower bound and
  gco-wrapper's alpha-expansion.
  """
  if method not in METHODS:
    raise ValueError(f'method must be one of {METHODS}, got {method!r}.')
  unary = _check_unary(unary, batch=True)
  connectivity, model, truncation = _check_structure(connectivity, model, truncation)
  iterations = _check_iterations(iterations)
  if method == 'alpha_expansion':
    from jaxseg.classic.alpha_expansion import alpha_expansion

    run = functools.partial(
      alpha_expansion,
      iterations=iterations,
      connectivity=connectivity,
      model=model,
      truncation=None if model == 'potts' else truncation,
    )
    if unary.ndim == 3:
      return run(unary, pairwise)
    pairs = _batch_pairwise(pairwise, unary.shape)
    results = [run(unary[n], pairs[n]) for n in range(unary.shape[0])]
    return jnp.stack([r[0] for r in results]), jnp.stack([r[1] for r in results])
  static = {
    'iterations': iterations,
    'connectivity': connectivity,
    'model': model,
    'truncation': truncation,
  }
  inner = {'icm': _icm, 'mean_field': _mean_field, 'trws': _trws}[method]
  run = lambda u, w: inner(u, w, **static)[:2]  # noqa: E731
  if unary.ndim == 3:
    return run(unary, _check_pairwise(pairwise, unary.shape[:2], connectivity, unary.dtype))
  return jax.vmap(run)(unary, _batch_weights(pairwise, unary, connectivity))


def _batch_pairwise(pairwise: Any, shape: tuple[int, ...]) -> list[Any]:
  """Per-image pairwise arguments of a batch: (N, H, W, K) is split, anything else shared."""
  if hasattr(pairwise, 'ndim') and pairwise.ndim == 4:
    if pairwise.shape[0] != shape[0]:
      raise ValueError(
        f'pairwise of shape {tuple(pairwise.shape)} must have the batch size '
        f'{shape[0]} of unary {tuple(shape)}.'
      )
    return [pairwise[n] for n in range(shape[0])]
  return [pairwise] * shape[0]


def _batch_weights(pairwise: Any, unary: jax.Array, connectivity: int) -> jax.Array:
  """(N, H, W, K) checked edge weights for a batch of unaries (N, H, W, L)."""
  if hasattr(pairwise, 'ndim') and pairwise.ndim == 4:
    return jnp.stack(
      [
        _check_pairwise(p, unary.shape[1:3], connectivity, unary.dtype)
        for p in _batch_pairwise(pairwise, unary.shape)
      ]
    )
  weights = _check_pairwise(pairwise, unary.shape[1:3], connectivity, unary.dtype)
  return jnp.broadcast_to(weights, unary.shape[:1] + weights.shape)
