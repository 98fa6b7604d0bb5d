"""NumPy references for grid MRFs: the energy from its definition, and a dual-decomposition bound.

The lower bound splits the grid into its rows and its columns (two sets of chains, each minimised
exactly by dynamic programming) with the unaries shared `U/2 + lam` and `U/2 - lam`; any `lam`
gives a valid bound (Komodakis, Paragios & Tziritas 2007; its maximum is the tree-reweighted LP
bound), and projected supergradient ascent on `lam` tightens it.
"""

import numpy as np

OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def distance(a, b, model, truncation):
  if model == 'potts':
    return (a != b).astype(np.float64)
  return np.minimum(np.abs(a - b), truncation).astype(np.float64)


def weights_array(pairwise, shape, connectivity):
  k = len(OFFSETS[connectivity])
  return np.broadcast_to(np.asarray(pairwise, np.float64), shape + (k,))


def energy(labels, unary, pairwise, connectivity=4, model='potts', truncation=None):
  """E(labels) in float64 for labels (..., H, W) (a leading axis enumerates labellings)."""
  labels = np.asarray(labels)
  unary = np.asarray(unary, np.float64)
  h, w, _ = unary.shape
  weights = weights_array(pairwise, (h, w), connectivity)
  rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
  total = unary[rows, cols, labels].sum(axis=(-2, -1))
  for k, (dr, dc) in enumerate(OFFSETS[connectivity]):
    r, c = slice(0, h - dr), slice(max(-dc, 0), w - max(dc, 0))
    other = labels[..., dr:, max(dc, 0) : w + min(dc, 0)]
    v = distance(labels[..., r, c], other, model, truncation)
    total = total + (weights[r, c, k] * v).sum(axis=(-2, -1))
  return total


def _chains_min(theta, weights, num_labels, model, truncation):
  """Exact minimum of independent chains along axis 1: theta (N, M, L), weights (N, M - 1)."""
  labels = np.arange(num_labels)
  pair = distance(labels[:, None], labels[None, :], model, truncation)  # (L, L)
  n, m, _ = theta.shape
  message = theta[:, 0].copy()
  back = np.zeros((n, m, num_labels), np.int64)
  for j in range(1, m):
    # cost[n, a, b]: previous label a, next label b
    cost = message[:, :, None] + weights[:, j - 1, None, None] * pair[None]
    back[:, j] = cost.argmin(axis=1)
    message = cost.min(axis=1) + theta[:, j]
  best = message.min(axis=1)
  x = np.zeros((n, m), np.int64)
  x[:, -1] = message.argmin(axis=1)
  for j in range(m - 1, 0, -1):
    x[:, j - 1] = back[np.arange(n), j, x[:, j]]
  return best.sum(), x


def lower_bound(unary, pairwise, *, model='potts', truncation=None, upper=None, steps=60):
  """A dual-decomposition lower bound on min E for 4-connected grids (rows + columns)."""
  unary = np.asarray(unary, np.float64)
  h, w, num_labels = unary.shape
  weights = weights_array(pairwise, (h, w), 4)
  lam = np.zeros_like(unary)
  best = -np.inf
  eye = np.eye(num_labels)
  for step in range(steps):
    rows_min, x_rows = _chains_min(
      unary / 2 + lam, weights[:, :-1, 0], num_labels, model, truncation
    )
    cols_min, x_cols = _chains_min(
      np.swapaxes(unary / 2 - lam, 0, 1), weights[:-1, :, 1].T, num_labels, model, truncation
    )
    x_cols = x_cols.T
    bound = rows_min + cols_min
    best = max(best, bound)
    supergradient = eye[x_rows] - eye[x_cols]
    norm = (supergradient**2).sum()
    if norm == 0:
      break  # the two halves agree: the bound is tight
    gap = (upper - bound) if upper is not None else 1.0
    lam += max(gap, 1e-9) / norm * supergradient / (1 + step) ** 0.5
  return best
