r"""The exact s-t minimum cut of an image grid, and Boykov-Jolly binary segmentation.

The cut is computed by a synchronous (Jacobi) push-relabel max-flow (Goldberg & Tarjan 1988, in
the data-parallel form of Goldberg's "parallel push-relabel" and of the GPU grid cuts of Vineet &
Narayanan 2008) with periodic global relabelling, written with fixed shapes inside
`lax.while_loop`: every sweep pushes, at every pixel at once, as much excess as the residual
capacities allow to the sink and along the admissible grid edges, then relabels the pixels that
are left with excess. No queue or tree is grown (Boykov-Kolmogorov's augmenting-path search, which
PyMaxflow runs, needs both), so the whole solver is a few elementwise array operations per sweep
and runs the same way on CPU, GPU and under `vmap`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.classic import _batching

# Undirected neighbour offsets (drow, dcol), in the order of `pairwise`'s last axis.
OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}
# Relaxations per convergence check of the breadth-first search (one check is a reduction).
_BFS_UNROLL = 8


def _neighbour(x, offset, fill):
  """`y[..., i, j] = x[..., i + dr, j + dc]`, `fill` where that lies outside the grid."""
  dr, dc = offset
  h, w = x.shape[-2:]
  pad = [(0, 0)] * (x.ndim - 2) + [(max(-dr, 0), max(dr, 0)), (max(-dc, 0), max(dc, 0))]
  padded = jnp.pad(x, pad, constant_values=fill)
  return padded[..., max(dr, 0) : max(dr, 0) + h, max(dc, 0) : max(dc, 0) + w]


def _inside(shape, offset):
  """Boolean `(H, W)`: the edge from each pixel along `offset` stays inside the grid."""
  h, w = shape
  rows = np.arange(h)[:, None] + offset[0]
  cols = np.arange(w)[None, :] + offset[1]
  return (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)


def _directed(connectivity):
  """The directed offsets: the K undirected ones, then their reverses (reverse of i is i +- K)."""
  forward = OFFSETS[connectivity]
  return forward + tuple((-dr, -dc) for dr, dc in forward)


def _bfs_from_sink(sink_res, residual, directed, n):
  """Distances to the sink in the residual graph, `n` where the sink cannot be reached.

  Parallel breadth-first search as iterated min-relaxation, `d(u) = min(1 if u -> t residual,
  min over residual u -> v of d(v) + 1)`, until a fixed point; `_BFS_UNROLL` relaxations per check.
  """
  big = jnp.int32(n)
  start = jnp.where(sink_res > 0, jnp.int32(1), big)
  masks = [r > 0 for r in residual]

  def relax(d):
    for mask, offset in zip(masks, directed):
      d = jnp.minimum(d, jnp.where(mask, _neighbour(d, offset, big) + 1, big))
    return jnp.minimum(d, big)

  def body(carry):
    d, _ = carry
    new = lax.fori_loop(0, _BFS_UNROLL, lambda _, x: relax(x), d)
    return new, jnp.any(new != d)

  def counted(carry):
    d, changed, checks = carry
    d, changed = body((d, changed))
    return d, changed, checks + 1

  d, _, checks = lax.while_loop(lambda c: c[1], counted, (start, jnp.bool_(True), jnp.int32(0)))
  return d, checks


def _cut_value(source_side, source_cap, sink_cap, cap_fwd, cap_bwd, connectivity):
  """The capacity of the cut: `sum_{p in T} c_sp + sum_{p in S} c_pt + sum_{p in S, q in T} c_pq`.

  `cap_fwd[..., k]` is the capacity from each pixel to its neighbour along offset `k`, `cap_bwd`
  the one back; both already zero on edges that leave the grid.
  """
  zero = jnp.zeros((), source_cap.dtype)
  value = jnp.sum(jnp.where(source_side, sink_cap, source_cap), axis=(-2, -1))
  for k, offset in enumerate(OFFSETS[connectivity]):
    other = _neighbour(source_side, offset, False)
    forward = jnp.where(source_side & ~other, cap_fwd[..., k], zero)
    backward = jnp.where(~source_side & other, cap_bwd[..., k], zero)
    value = value + jnp.sum(forward + backward, axis=(-2, -1))
  return value


def _max_preflow(
  source_cap, sink_cap, cap_fwd, cap_bwd, connectivity, max_iterations, tol, relabel_every
):
  """Directed grid min cut by push-relabel: (source_side, cut_value, gap, (sweeps, relaxations))."""
  k = len(OFFSETS[connectivity])
  zero = jnp.zeros((), source_cap.dtype)
  # Route min(c_sp, c_pt) straight from s to t through p: what is left is either an excess
  # (a saturated source edge) or a residual sink capacity, never both.
  through = jnp.minimum(source_cap, sink_cap)
  excess0 = source_cap - through
  sink_res0 = sink_cap - through
  # The residual from each pixel along each directed offset; the reverse of edge (p, p + o) sits
  # at p + o, so cap_bwd moves one step along o.
  forward = OFFSETS[connectivity]
  residual0 = tuple(cap_fwd[..., i] for i in range(k)) + tuple(
    _neighbour(cap_bwd[..., i], (-dr, -dc), zero) for i, (dr, dc) in enumerate(forward)
  )
  source_side, sink_res, _, stats = _push_relabel(
    excess0, sink_res0, residual0, connectivity, max_iterations, tol, relabel_every
  )
  cut = _cut_value(source_side, source_cap, sink_cap, cap_fwd, cap_bwd, connectivity)
  flow = jnp.sum(sink_cap - sink_res, axis=(-2, -1))
  return source_side, cut, jnp.abs(cut - flow), stats


def _push_relabel(excess0, sink_res0, residual0, connectivity, max_iterations, tol, relabel_every):
  """The maximum preflow from a valid initial preflow (excesses >= 0, residuals >= 0).

  Returns ``(source_side, sink_res, residual, (sweeps, relaxations))``: the pixels that cannot
  reach the sink (a minimum cut's source side once no pixel that can reach it holds excess),
  the residual sink capacities and the directed residuals (the flow, given the capacities).
  """
  h, w = excess0.shape[-2:]
  # A residual path to the sink visits each pixel at most once: distances are at most H W, so
  # H W + 1 marks "cannot reach the sink".
  n = h * w + 1
  big = jnp.int32(n)
  directed = _directed(connectivity)
  k = len(OFFSETS[connectivity])
  zero = jnp.zeros((), excess0.dtype)

  def push_relabel(state):
    excess, sink_res, residual, height = state
    active = (excess > 0) & (height < big)
    to_sink = jnp.where(active, jnp.minimum(excess, sink_res), zero)
    excess = excess - to_sink
    sink_res = sink_res - to_sink
    residual = list(residual)
    pushes = []
    for i, offset in enumerate(directed):
      # Admissible: residual and exactly one level down. Opposite pushes never meet on an edge.
      admissible = active & (residual[i] > 0) & (height == _neighbour(height, offset, big) + 1)
      amount = jnp.where(admissible, jnp.minimum(excess, residual[i]), zero)
      excess = excess - amount
      residual[i] = residual[i] - amount
      pushes.append(amount)
    for i, offset in enumerate(directed):
      arriving = _neighbour(pushes[i], (-offset[0], -offset[1]), zero)
      excess = excess + arriving
      reverse = (i + k) % (2 * k)
      residual[reverse] = residual[reverse] + arriving
    # Relabel the pixels still holding excess: one above their lowest residual neighbour. With a
    # valid labelling that is the height itself while an admissible edge remains.
    active = (excess > 0) & (height < big)
    lowest = jnp.where(sink_res > 0, jnp.int32(0), big)
    for i, offset in enumerate(directed):
      lowest = jnp.minimum(lowest, jnp.where(residual[i] > 0, _neighbour(height, offset, big), big))
    height = jnp.where(active, jnp.minimum(lowest + 1, big), height)
    return excess, sink_res, tuple(residual), height

  def global_relabel(excess, sink_res, residual):
    height, checks = _bfs_from_sink(sink_res, residual, directed, n)
    stranded = jnp.sum(jnp.where(height < big, excess, zero), axis=(-2, -1))
    return height, stranded, checks

  def cond(carry):
    _, _, _, _, stranded, sweeps, _ = carry
    return jnp.any(stranded > tol) & (sweeps < max_iterations)

  def body(carry):
    excess, sink_res, residual, height, _, sweeps, searches = carry
    state = lax.fori_loop(
      0, relabel_every, lambda _, s: push_relabel(s), (excess, sink_res, residual, height)
    )
    excess, sink_res, residual, _ = state
    height, stranded, checks = global_relabel(excess, sink_res, residual)
    return (excess, sink_res, residual, height, stranded, sweeps + relabel_every, searches + checks)

  height0, stranded0, checks0 = global_relabel(excess0, sink_res0, residual0)
  carry = (excess0, sink_res0, residual0, height0, stranded0, jnp.int32(0), checks0)
  _, sink_res, residual, height, _, sweeps, searches = lax.while_loop(cond, body, carry)
  # Source side: the pixels that cannot reach the sink in the residual graph. Every edge from
  # them to the rest is saturated, so the cut's capacity is the flow into the sink plus the
  # excess still stranded on the sink side: the gap, zero once no pixel is active.
  # sweeps and breadth-first relaxations (in units of _BFS_UNROLL) say where the time went.
  return height >= big, sink_res, residual, (sweeps, searches * _BFS_UNROLL)


def _warm_grid_min_cut(source_cap, sink_cap, pairwise, flow, *, connectivity=8):
  """See :func:`_warm_one_grid`; under ``vmap`` it runs grid after grid on a CPU (as
  :func:`grid_min_cut`, for the reason given in :func:`_sequential_on_cpu`)."""

  def one(source_cap, sink_cap, pairwise, flow):
    return _warm_one_grid(source_cap, sink_cap, pairwise, flow, connectivity)[:4]

  core = _batching.sequential_under_vmap(one, accelerators_vmap=True)
  return core(source_cap, sink_cap, pairwise, flow)


def _warm_one_grid(source_cap, sink_cap, pairwise, flow, connectivity, relabel_every=None):
  """:func:`grid_min_cut` of an undirected grid started from a feasible flow on its n-links.

  For a sequence of cuts with the same ``pairwise`` and changing terminal capacities (GrabCut's
  iterations; Kohli & Torr's dynamic graph cuts, 2007): ``flow`` ``(H, W, K)`` is the net flow
  along each forward edge (``|flow| <= pairwise``), for example the one this function returned
  for the previous capacities. The source edges are saturated, and a pixel whose n-links send
  out more than it receives (a deficit ``d``) gets ``d`` added to both of its terminal
  capacities, which adds ``d`` to every cut and keeps the preflow valid; the push-relabel loop
  then only moves what the new capacities changed. The returned cut value and gap are those of
  the original capacities (the added constants are taken out).

  Returns ``(labels, cut_value, gap, flow, (sweeps, relaxations))``: the new n-link flow is for
  the next call; the counts say where the time went.
  """
  k = len(OFFSETS[connectivity])
  forward = OFFSETS[connectivity]
  mask = jnp.asarray(_grid_mask(source_cap.shape[-2:], connectivity))
  zero = jnp.zeros((), source_cap.dtype)
  cap = jnp.where(mask, pairwise, zero)
  flow = jnp.clip(jnp.where(mask, flow, zero), -cap, cap)
  # Net n-link inflow of each pixel: what arrives from p - o minus what leaves along o.
  inflow = sum(
    _neighbour(flow[..., i], (-dr, -dc), zero) - flow[..., i] for i, (dr, dc) in enumerate(forward)
  )
  supply = source_cap + inflow
  deficit = jnp.maximum(-supply, zero)
  supply = jnp.maximum(supply, zero)
  sink = sink_cap + deficit
  through = jnp.minimum(supply, sink)
  residual0 = tuple(cap[..., i] - flow[..., i] for i in range(k)) + tuple(
    _neighbour(cap[..., i] + flow[..., i], (-dr, -dc), zero) for i, (dr, dc) in enumerate(forward)
  )
  h, w = source_cap.shape[-2:]
  source_side, sink_res, residual, stats = _push_relabel(
    supply - through,
    sink - through,
    residual0,
    connectivity,
    jnp.int32(2**30),
    zero,
    relabel_every or _default_relabel_every(h, w),
  )
  cut = _cut_value(source_side, source_cap, sink_cap, cap, cap, connectivity)
  value = jnp.sum(sink - sink_res, axis=(-2, -1)) - jnp.sum(deficit, axis=(-2, -1))
  # Rounding can leave |flow| an ulp above the capacity: clip, so the next start is feasible.
  new_flow = jnp.clip(jnp.stack([cap[..., i] - residual[i] for i in range(k)], axis=-1), -cap, cap)
  return source_side.astype(jnp.int32), cut, jnp.abs(cut - value), new_flow, stats


def _is_concrete(x):
  return not isinstance(x, jax.core.Tracer)


def _check_array(x, name):
  if (
    isinstance(x, (bool, np.bool_))
    or not hasattr(x, 'shape')
    and not isinstance(x, (int, float, list, tuple, np.number))
  ):
    raise TypeError(f'{name} must be an array of numbers, got {type(x).__name__}.')
  x = x if hasattr(x, 'dtype') else np.asarray(x)
  if not (
    jnp.issubdtype(x.dtype, jnp.integer)
    or jnp.issubdtype(x.dtype, jnp.floating)
    or x.dtype == np.bool_
  ):
    raise TypeError(f'{name} must have a real numeric dtype, got {x.dtype}.')
  return x


def _check_values(x, name, what):
  """Raises on NaN/inf or negative entries when `x` is concrete (a tracer cannot be checked)."""
  if not _is_concrete(x):
    return
  values = np.asarray(x)
  if not np.all(np.isfinite(values)):
    raise ValueError(f'{name} must be finite, got {np.sum(~np.isfinite(values))} NaN/inf entries.')
  if np.any(values < 0):
    raise ValueError(f'{name} must be >= 0 ({what}), got minimum {values.min()}.')


def _working_dtype(*arrays):
  """int32 when every capacity is an integer (the cut is then exact), else float32."""
  if all(jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == np.bool_ for a in arrays):
    return jnp.int32
  return jnp.float32


def _check_int_range(arrays, dtype, connectivity):
  """Integer excesses are bounded by the total capacity: it must fit in int32."""
  if dtype != jnp.int32 or not all(_is_concrete(a) for a in arrays):
    return
  total = sum(int(np.sum(np.asarray(a, np.int64))) for a in arrays)
  if total >= 2**31:
    raise ValueError(
      f'integer capacities must sum to less than 2**31 (int32 flows), got {total}; '
      'pass float capacities instead.'
    )


def _check_connectivity(connectivity):
  if connectivity not in OFFSETS:
    raise ValueError(f'connectivity must be 4 or 8, got {connectivity!r}.')


def _check_iterations(max_iterations, tol):
  if (
    isinstance(max_iterations, bool)
    or not isinstance(max_iterations, (int, np.integer))
    or (max_iterations < 1)
  ):
    raise ValueError(f'max_iterations must be a positive int, got {max_iterations!r}.')
  if not isinstance(tol, (int, float, np.number)) or isinstance(tol, bool) or not tol >= 0:
    raise ValueError(f'tol must be a number >= 0, got {tol!r}.')


def _grid_mask(shape, connectivity):
  """`(H, W, K)` bool: which of each pixel's K forward edges stay inside the grid."""
  return np.stack([_inside(shape, o) for o in OFFSETS[connectivity]], axis=-1)


def _min_cut_directed(
  source_cap, sink_cap, cap_fwd, cap_bwd, *, connectivity, max_iterations, tol, relabel_every=None
):
  """The min cut with directed neighbour capacities (validated, cast arrays); see grid_min_cut."""
  h, w = source_cap.shape[-2:]
  mask = jnp.asarray(_grid_mask((h, w), connectivity))
  zero = jnp.zeros((), source_cap.dtype)
  cap_fwd = jnp.where(mask, cap_fwd, zero)
  cap_bwd = jnp.where(mask, cap_bwd, zero)
  if relabel_every is None:
    relabel_every = _default_relabel_every(h, w)
  return _max_preflow(
    source_cap, sink_cap, cap_fwd, cap_bwd, connectivity, max_iterations, tol, relabel_every
  )


def _default_relabel_every(h, w):
  # Push-relabel sweeps between two global relabels: long enough that flow moves well between
  # breadth-first searches (each costs about the residual graph's diameter in relaxations).
  return int(max(8, min(64, (h + w) // 16)))


def grid_min_cut(
  source_cap: Any,
  sink_cap: Any,
  pairwise: Any,
  *,
  connectivity: int = 4,
  max_iterations: int = 1_000_000,
  tol: float = 0.0,
):
  r"""The exact s-t minimum cut of a grid graph (Boykov & Jolly 2001's binary segmentation).

  Minimises over the source side :math:`S` (labels 1) and sink side :math:`T` (labels 0)

  .. math::
    C(S) = \sum_{p \in T} c_{sp} + \sum_{p \in S} c_{pt} + \sum_{(p, q)} w_{pq}\,[l_p \ne l_q],

  with the neighbour pairs `(p, q)` of the 4- or 8-connected grid. Algorithm: the maximum preflow
  by synchronous push-relabel (Goldberg & Tarjan 1988; the data-parallel grid form of Vineet &
  Narayanan 2008). Each sweep pushes, at every pixel at once, its excess to the sink and along
  admissible edges (residual, one height level down), then relabels the pixels left with
  excess; every few sweeps a global relabel sets the heights to exact residual distances to the
  sink by a parallel breadth-first search (iterated min-relaxation) and retires the pixels that
  can no longer reach it. It stops when no pixel that can reach the sink holds excess: the
  pixels that cannot reach the sink then form a minimum cut's source side (max-flow min-cut
  theorem), every edge leaving it saturated. Cost: each sweep is `O(K H W)` work at constant
  depth, and each breadth-first search `O(K H W D)` for a residual-graph diameter `D`; the
  number of sweeps is `O((H W)^2)` in the worst case (Goldberg's parallel bound) and in practice
  a small multiple of the longest augmenting path, i.e. `O(H + W)` to `O(H W)` on images.
  All shapes are fixed; the loop is a `lax.while_loop`, so it jits, vmaps and runs on GPU. A
  batch (leading axes, or `vmap`) runs as one batched loop on accelerators and grid after grid
  (`lax.map`) on a CPU, where a batched loop would make every grid wait for the slowest.

  Exactness: integer capacities run in int32 and the cut is exact (their total must stay below
  `2**31`). Float capacities run in float32: each push moves `min(excess, residual)`, so one of
  the two becomes exactly zero and the combinatorial termination bound of push-relabel holds
  without any tolerance (no fixed-point iteration that could stall on ties); the flow is
  conserved to float32 rounding, so the returned cut is a minimum cut to about `1e-6` relative.

  Args:
    source_cap: `(..., H, W)`, >= 0: the capacity `c_sp` from the source to each pixel, paid
      when the pixel ends on the sink side. Leading axes are a batch.
    sink_cap: `(..., H, W)`, >= 0: the capacity `c_pt` to the sink, paid on the source side.
    pairwise: `(..., H, W, K)`, >= 0 (negative weights are not submodular and are rejected):
      undirected capacities to the neighbour right and down (`K = 2`, 4-connectivity), plus
      down-right and down-left (`K = 4`, 8-connectivity); edges leaving the image are ignored.
    connectivity: 4 or 8.
    max_iterations: the most push-relabel sweeps; if it stops the solver early, `gap > 0`.
    tol: stop once the excess stranded on the sink side (an upper bound on how far the cut is
      from the minimum) is at most `tol`; 0 (default) runs to the exact minimum.

  Returns:
    `(labels, cut_value, gap)`: `labels` int32 `(..., H, W)`, 1 on the source side; `cut_value`
    `(...)` the capacity of that cut; `gap` `(...)` `|cut_value - flow value|`, 0 at the
    minimum (up to float32 rounding), a certificate of optimality (weak duality).

  Example (two pixels, the left tied to the source, the right to the sink):
    >>> labels, cut, gap = grid_min_cut(jnp.array([[5., 0.]]), jnp.array([[0., 5.]]),
    ...                                 jnp.array([[[1., 0.], [0., 0.]]]))
    >>> labels, float(cut), float(gap)
    (Array([[1, 0]], dtype=int32), 1.0, 0.0)

  Agrees with PyMaxflow's `maxflow.Graph.maxflow` (Boykov & Kolmogorov 2004) on the cut value.
  """
  _check_connectivity(connectivity)
  _check_iterations(max_iterations, tol)
  source_cap = _check_array(source_cap, 'source_cap')
  sink_cap = _check_array(sink_cap, 'sink_cap')
  pairwise = _check_array(pairwise, 'pairwise')
  k = len(OFFSETS[connectivity])
  if source_cap.ndim < 2:
    raise ValueError(f'source_cap must have shape (..., H, W), got {source_cap.shape}.')
  if sink_cap.shape != source_cap.shape:
    raise ValueError(
      f'sink_cap must have the shape of source_cap {source_cap.shape}, got {sink_cap.shape}.'
    )
  if pairwise.shape != source_cap.shape + (k,):
    raise ValueError(
      f'pairwise must have shape {source_cap.shape + (k,)} (K = {k} for '
      f'connectivity={connectivity}), got {pairwise.shape}.'
    )
  _check_values(source_cap, 'source_cap', 'a capacity')
  _check_values(sink_cap, 'sink_cap', 'a capacity')
  _check_values(pairwise, 'pairwise', 'negative weights are not submodular')
  dtype = _working_dtype(source_cap, sink_cap, pairwise)
  masked = (
    np.where(_grid_mask(source_cap.shape[-2:], connectivity), pairwise, 0)
    if (_is_concrete(pairwise))
    else pairwise
  )
  _check_int_range((source_cap, sink_cap, masked, masked), dtype, connectivity)
  return _grid_min_cut(
    jnp.asarray(source_cap, dtype),
    jnp.asarray(sink_cap, dtype),
    jnp.asarray(pairwise, dtype),
    connectivity=connectivity,
    max_iterations=int(max_iterations),
    tol=float(tol),
  )


def _one_grid(source_cap, sink_cap, pairwise, max_iterations, tol, connectivity):
  source_side, cut, gap, _ = _min_cut_directed(
    source_cap,
    sink_cap,
    pairwise,
    pairwise,
    connectivity=connectivity,
    max_iterations=max_iterations,
    tol=tol,
  )
  return source_side.astype(jnp.int32), cut, gap


def _sequential_on_cpu(connectivity):
  """The min cut of one grid, batched one grid after another on a CPU (under `vmap` too).

  A batched `while_loop` runs every grid until the slowest one finishes, with a select per
  operation; on a CPU, which has no spare parallel hardware to fill, `lax.map` costs the sum of
  the single grids instead (3x less on 8 VOC images). Accelerators keep the batched loop.
  """

  def one(source_cap, sink_cap, pairwise, max_iterations, tol):
    return _one_grid(source_cap, sink_cap, pairwise, max_iterations, tol, connectivity)

  return _batching.sequential_under_vmap(one, accelerators_vmap=True)


@functools.partial(jax.jit, static_argnames=('connectivity',))
def _grid_min_cut(source_cap, sink_cap, pairwise, *, connectivity, max_iterations, tol):
  # max_iterations and tol are traced: changing them does not recompile.
  core = _sequential_on_cpu(connectivity)
  max_iterations = jnp.asarray(max_iterations, jnp.int32)
  tol = jnp.asarray(tol, source_cap.dtype)
  batch = source_cap.shape[:-2]
  if not batch:
    return core(source_cap, sink_cap, pairwise, max_iterations, tol)
  flat = [x.reshape((-1,) + x.shape[len(batch) :]) for x in (source_cap, sink_cap, pairwise)]
  labels, cut, gap = jax.vmap(core, in_axes=(0, 0, 0, None, None))(*flat, max_iterations, tol)
  return labels.reshape(source_cap.shape), cut.reshape(batch), gap.reshape(batch)


def _contrast_weights(image, *, sigma, connectivity=4):
  r"""Boykov-Jolly boundary weights `exp(-|I_p - I_q|^2 / (2 sigma^2)) / dist(p, q)`, `(H, W, K)`.

  Zero on edges that leave the image. `image` is `(H, W)` or `(H, W, C)`.
  """
  image = jnp.asarray(image, jnp.float32)
  if image.ndim == 2:
    image = image[..., None]
  chw = jnp.moveaxis(image, -1, 0)
  weights = []
  for offset in OFFSETS[connectivity]:
    diff = chw - _neighbour(chw, offset, 0.0)
    dist = float(np.hypot(*offset))
    weight = jnp.exp(-jnp.sum(diff * diff, axis=0) / (2.0 * sigma * sigma)) / dist
    weights.append(jnp.where(_inside(image.shape[:2], offset), weight, 0.0))
  return jnp.stack(weights, axis=-1)


def binary_graph_cut(fg_cost: Any, bg_cost: Any, image: Any, *, lam: float, sigma: float):
  r"""Boykov-Jolly (2001) binary segmentation: the exact minimum of a contrast-sensitive energy.

  .. math::
    E(L) = \sum_p R_p(L_p) + \lambda \sum_{(p, q)} B_{pq}\,[L_p \ne L_q], \qquad
    B_{pq} = \exp\!\Big(-\frac{\lVert I_p - I_q \rVert^2}{2 \sigma^2}\Big)

  over 4-connected neighbours, with `R_p(1) = fg_cost` and `R_p(0) = bg_cost` (for example
  negative log-likelihoods of colour models, or infinite-like costs at user seeds). Minimised
  exactly by :func:`grid_min_cut` with `c_sp = bg_cost - m`, `c_pt = fg_cost - m`,
  `m = min(fg_cost, bg_cost)` (so costs of any sign work) and `w_pq = lam B_pq`.

  Args:
    fg_cost: `(H, W)` cost of labelling each pixel foreground (1).
    bg_cost: `(H, W)` cost of labelling it background (0).
    image: `(H, W)` or `(H, W, C)` float image (the contrast term's intensities).
    lam: weight `lambda >= 0` of the boundary term.
    sigma: contrast scale `> 0`, in the image's units.

  Returns:
    `(labels, energy)`: int32 `(H, W)`, 1 = foreground; the energy `E(labels)` (float32).

  Example (a bright square on a dark background, noisy unaries):
    >>> image = jnp.zeros((6, 6)).at[1:4, 1:4].set(1.0)
    >>> fg = jnp.where(image > 0.5, 0.2, 0.8).at[2, 2].set(0.9)   # one misleading pixel
    >>> labels, energy = binary_graph_cut(fg, 1.0 - fg, image, lam=1.0, sigma=0.2)
    >>> labels.sum(), round(float(energy), 3)  # 35 pixels at 0.2, the misled one at 0.9
    (Array(9, dtype=int32), 7.9)

  The cut value agrees with PyMaxflow's on the same graph.
  """
  fg_cost = _check_array(fg_cost, 'fg_cost')
  bg_cost = _check_array(bg_cost, 'bg_cost')
  image = _check_array(image, 'image')
  if fg_cost.ndim != 2:
    raise ValueError(f'fg_cost must have shape (H, W), got {fg_cost.shape}.')
  if bg_cost.shape != fg_cost.shape:
    raise ValueError(
      f'bg_cost must have the shape of fg_cost {fg_cost.shape}, got {bg_cost.shape}.'
    )
  if image.shape[:2] != fg_cost.shape or image.ndim not in (2, 3):
    raise ValueError(
      f'image must have shape {fg_cost.shape} or {fg_cost.shape} + (C,), got {image.shape}.'
    )
  for name, value in (('lam', lam), ('sigma', sigma)):
    if (
      not isinstance(value, (int, float, np.number))
      or isinstance(value, bool)
      or not (np.isfinite(value))
    ):
      raise ValueError(f'{name} must be a finite number, got {value!r}.')
  if lam < 0:
    raise ValueError(f'lam must be >= 0 (a negative weight is not submodular), got {lam}.')
  if sigma <= 0:
    raise ValueError(f'sigma must be > 0, got {sigma}.')
  for name, value in (('fg_cost', fg_cost), ('bg_cost', bg_cost), ('image', image)):
    if _is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
      raise ValueError(f'{name} must be finite (no NaN/inf).')
  return _binary_graph_cut(
    jnp.asarray(fg_cost, jnp.float32),
    jnp.asarray(bg_cost, jnp.float32),
    jnp.asarray(image, jnp.float32),
    float(lam),
    float(sigma),
  )


@functools.partial(jax.jit, static_argnums=(3, 4))
def _binary_graph_cut(fg_cost, bg_cost, image, lam, sigma):
  base = jnp.minimum(fg_cost, bg_cost)
  pairwise = jnp.float32(lam) * _contrast_weights(image, sigma=sigma)
  labels, cut, _ = _grid_min_cut(
    bg_cost - base, fg_cost - base, pairwise, connectivity=4, max_iterations=1_000_000, tol=0.0
  )
  return labels, cut + jnp.sum(base)
