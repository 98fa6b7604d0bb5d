"""The rank-based parts of the saliency AUCs, computed on the host with NumPy.

AUC-Judd ranks every pixel of a map among all others, and shuffled AUC draws negatives without
replacement; on the device both took a full sort per map, and XLA:CPU sorts ~30x slower than
NumPy (issue 16: 100 maps of 480x640 took 9.2 s against 0.25 s). These helpers are called
through `jax.pure_callback`, so the metrics stay jit-able and vmap-able (a batch is one call),
and compute exactly the same quantities:

* `judd_area`: AUC-Judd's trapezoidal area from the counts ``c_i = #{pixels ranked at or above
  fixated pixel i}``. With the ``K`` fixated pixels taken from the highest threshold down
  (``TP_r = r / K``, ``FP_r = (c_(r) - r) / (N - K)``), the trapezoids between ``(0, 0)``, the
  ``K`` points and ``(1, 1)`` sum to ``1 - mean_r FP_r + FP_K / (2K)``, and
  ``sum_r c_(r)`` does not depend on the order: only the counts of the fixated pixels are
  needed, one `np.sort` and a `np.searchsorted` per map.
* `exact_auc`: pysaliency's ``P(S_fix > S_pix) + P(S_fix = S_pix) / 2`` the same way.
* `hypergeometric_bins`: shuffled AUC's negatives: choosing ``m`` of the ``M`` other-fixated
  pixels uniformly without replacement puts a multivariate hypergeometric number of them in
  each threshold bin, drawn directly (`numpy.random.Generator.multivariate_hypergeometric`)
  from the candidates' bin counts (counted on the device).
"""

from __future__ import annotations

import numpy as np


def _rows(*arrays):
  """Broadcasts the leading (batch) axes of per-map arrays; yields one row per map."""
  lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
  flat = [np.broadcast_to(a, lead + a.shape[-1:]).reshape(-1, a.shape[-1]) for a in arrays]
  return lead, zip(*flat)


def _judd_counts_jittered(s, u, fixated):
  """c_i = n - (position of fixated pixel i in the stable order by (s, u)), as jnp.lexsort."""
  # One float64 key per pixel ordered as (s, u): s + u * spacing(s) / 2 is exact (24 + 24
  # significant bits) and below the next float32 after s, so keys are equal iff (s, u) are.
  # Jittered maps of few levels (8-bit images) tie often: a stable argsort of uint64 (s, u) keys
  # took 7x longer (issue 16).
  s = np.asarray(s, np.float32) + np.float32(0)  # -0.0 -> +0.0
  half_spacing = np.abs(np.spacing(s)).astype(np.float64) * 0.5
  keys = s.astype(np.float64) + np.asarray(u, np.float64) * half_spacing
  ordered = np.sort(keys)
  where = np.flatnonzero(fixated)
  thresholds = keys[where]
  position = np.searchsorted(ordered, thresholds, side='left')
  # A key shared with other pixels: the stable order puts the lower indices first.
  for j in np.flatnonzero(np.searchsorted(ordered, thresholds, side='right') - position != 1):
    position[j] += np.count_nonzero(keys[: where[j]] == thresholds[j])
  return s.size - position


def _judd_counts_plain(s, fixated):
  """c_i = #{S >= S_i} for each fixated pixel (0 for a NaN threshold: NaN >= NaN is false)."""
  thresholds = s[fixated]
  counts = s.size - np.searchsorted(np.sort(s), thresholds, side='left')
  return np.where(np.isnan(thresholds), 0, counts)


# MurmurHash3's 32-bit finalizer and the golden-ratio increment of a Weyl sequence.
_MIX1, _MIX2, _GOLDEN = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35), np.uint32(0x9E3779B9)


def judd_noise(seed: np.ndarray, size: int) -> np.ndarray:
  """AUC_Judd.m's ``rand(size(map))``: float32 ``U[0, 1)`` on a 2^-24 grid, from ``seed``.

  Pixel ``j`` gets ``fmix32(((j + seed[0]) * 0x9E3779B9) ^ seed[1]) >> 8`` times ``2^-24``
  (MurmurHash3's finalizer over a seeded Weyl sequence): a counter-based hash that
  ``jaxseg.metrics.saliency`` computes bit for bit on the device too, so ranking on the host
  and on the device gives the same AUC-Judd (the draw only breaks ties).
  """
  seed = np.asarray(seed, np.uint32).ravel()
  x = (np.arange(size, dtype=np.uint32) + seed[0]) * _GOLDEN ^ seed[1]
  x ^= x >> np.uint32(16)
  x *= _MIX1
  x ^= x >> np.uint32(13)
  x *= _MIX2
  x ^= x >> np.uint32(16)
  return (x >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def judd_area(
  s: np.ndarray, seed: np.ndarray, fixated: np.ndarray, *, jitter: bool, jitter_scale: float
) -> np.ndarray:
  """AUC-Judd per map (leading axes are maps); NaN without fixations or non-fixated pixels.

  Args:
    s: ``(..., N)`` float32 saliency (raw with jitter, min-max normalised without).
    seed: ``(..., 2)`` uint32 per map, the jitter's seed (see `judd_noise`).
    fixated: ``(..., N)`` bool.
    jitter: add ``judd_noise * jitter_scale`` in float32 and rank by (value, noise) with a
      stable order (``jnp.lexsort``'s), or count ``S >= t`` (ties count).
    jitter_scale: the noise's scale (``1e-7``, in map units).

  Returns:
    ``(...)`` float32 areas.
  """
  lead, rows = _rows(np.asarray(s, np.float32), np.asarray(seed), np.asarray(fixated, bool))
  areas = []
  for s_row, seed_row, fix_row in rows:
    n, k = s_row.size, int(fix_row.sum())
    if k == 0 or k == n:  # no positives, or no negatives (FP = 0/0 in the .m file)
      areas.append(np.nan)
      continue
    if jitter:
      u = judd_noise(seed_row, n)
      counts = _judd_counts_jittered(s_row + u * np.float32(jitter_scale), u, fix_row)
    else:
      counts = _judd_counts_plain(s_row, fix_row)
    counts = counts.astype(np.int64)
    false_pos = (int(counts.sum()) - k * (k + 1) // 2) / (n - k)  # sum_r FP_r (N - K)/(N - K)
    last = (int(counts.max()) - k) / (n - k)  # FP_K: the lowest threshold counts the most
    areas.append(1.0 - false_pos / k + last / (2 * k))
  return np.asarray(areas, np.float32).reshape(lead)


def exact_auc(s: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """pysaliency's AUC per map: ``sum_f w_f (#{S < S_f} + #{S = S_f} / 2) / N / sum_f w_f``."""
  lead, rows = _rows(np.asarray(s), np.asarray(weights))
  areas = []
  for s_row, w_row in rows:
    ordered = np.sort(s_row)
    hit = w_row > 0
    below = np.searchsorted(ordered, s_row[hit], side='left')
    at_or_below = np.searchsorted(ordered, s_row[hit], side='right')
    per_pixel = (below + 0.5 * (at_or_below - below)) / s_row.size
    with np.errstate(invalid='ignore', divide='ignore'):
      areas.append(np.sum(w_row[hit] * per_pixel) / np.sum(w_row[hit]))
  return np.asarray(areas, np.float32).reshape(lead)


def hypergeometric_bins(
  seed: np.ndarray, colors: np.ndarray, m: np.ndarray, *, n_splits: int, n_bins: int
) -> np.ndarray:
  """Per split, how many of ``m`` other-fixated pixels drawn without replacement fall in each bin.

  Args:
    seed: ``(..., 2)`` uint32 per map (from the metric's JAX key).
    colors: ``(..., n_bins)`` int, how many of the candidates (the other images' fixated
      pixels) lie in each threshold bin.
    m: ``(..., 1)`` int, how many to draw (at most the candidates).
    n_splits: draws per map.
    n_bins: number of bins.

  Returns:
    ``(..., n_splits, n_bins)`` float32 counts.
  """
  lead, rows = _rows(np.asarray(seed), np.asarray(colors), np.asarray(m))
  out = []
  for seed_row, color_row, m_row in rows:
    color_row = color_row.astype(np.int64)
    draw = int(min(m_row[0], color_row.sum()))
    rng = np.random.default_rng([int(x) for x in seed_row])
    out.append(
      rng.multivariate_hypergeometric(color_row, draw, size=n_splits)
      if draw
      else np.zeros((n_splits, n_bins), np.int64)
    )
  return np.asarray(out, np.float32).reshape(lead + (n_splits, n_bins))
