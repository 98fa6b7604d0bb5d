"""The rank-based parts of the saliency AUCs, computed on the host with NumPy.

AUC-Judd ranks every pixel of a map among all others; on the device that took a full sort per
map, and XLA:CPU sorts ~30x slower than NumPy (issue 16: 100 maps of 480x640 took 9.2 s against
0.25 s). These helpers are called through `jax.pure_callback`, so the metrics stay jit-able and
vmap-able (a batch is one call), and compute exactly the same quantities:

* `judd_area`: AUC-Judd's trapezoidal area from the counts ``c_i = #{pixels ranked at or above
  fixated pixel i}``. With the ``K`` fixated pixels taken from the highest threshold down
  (``TP_r = r / K``, ``FP_r = (c_(r) - r) / (N - K)``), the trapezoids between ``(0, 0)``, the
  ``K`` points and ``(1, 1)`` sum to ``1 - mean_r FP_r + FP_K / (2K)``, and
  ``sum_r c_(r)`` does not depend on the order: only the counts of the fixated pixels are
  needed, one `np.sort` (of the keys at or above the lowest fixated one) and a
  `np.searchsorted` per map. With jitter (`judd_area_jittered`) the device sends the jittered
  values as order-preserving uint32 and the draw's seed (ties are ranked by the draw, drawn
  again here for the tied pixels only); without (`judd_area`), the normalised map.
* `exact_auc`: pysaliency's ``P(S_fix > S_pix) + P(S_fix = S_pix) / 2`` the same way.
"""

from __future__ import annotations

import numpy as np


def _rows(*arrays):
  """Broadcasts the leading (batch) axes of per-map arrays; yields one row per map."""
  lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
  flat = [np.broadcast_to(a, lead + a.shape[-1:]).reshape(-1, a.shape[-1]) for a in arrays]
  return lead, zip(*flat)


def _judd_counts_keyed(keys, fixated):
  """c_i = n - (position of fixated pixel i in the stable ascending order of `keys`).

  Only the keys at or above the lowest fixated one can rank at or above a fixated pixel, so
  only those are sorted (all of them for a map with a fixation at its minimum; a small part
  when fixations lie on the salient pixels).
  """
  where = np.flatnonzero(fixated)
  thresholds = keys[where]
  candidates = keys[keys >= thresholds.min()]
  candidates.sort()
  position = np.searchsorted(candidates, thresholds, side='left')
  # A key shared with other pixels: the stable order puts the lower indices first.
  for j in np.flatnonzero(np.searchsorted(candidates, thresholds, side='right') - position != 1):
    position[j] += np.count_nonzero(keys[: where[j]] == thresholds[j])
  return candidates.size - position


def _ordered_bits(s):
  """float32 -> uint32 of the same order (negatives: every bit flipped; others: sign bit set)."""
  raw = (np.asarray(s, np.float32) + np.float32(0)).view(np.uint32)  # -0.0 -> +0.0
  sign = np.uint32(0x80000000)
  return np.where(raw & sign, ~raw, raw | sign)


def _judd_counts_jittered(s, u, fixated):
  """c_i = n - (position of fixated pixel i in the stable order by (s, u)), as jnp.lexsort.

  ``u`` lies on the 2^-24 grid of `judd_noise`; the (s, u) pairs become the uint64 keys of
  `_judd_counts_ordered`'s fallback (a float64 key or a stable argsort of pairs cost more:
  issue 16).
  """
  bits = (np.asarray(u, np.float32) * np.float32(2.0**24)).astype(np.uint64)
  keys = (_ordered_bits(s).astype(np.uint64) << np.uint64(24)) | bits
  return _judd_counts_keyed(keys, fixated)


def _judd_counts_plain(s, fixated):
  """c_i = #{S >= S_i} for each fixated pixel (0 for a NaN threshold: NaN >= NaN is false)."""
  thresholds = s[fixated]
  counts = s.size - np.searchsorted(np.sort(s), thresholds, side='left')
  return np.where(np.isnan(thresholds), 0, counts)


# MurmurHash3's 32-bit finalizer and the golden-ratio increment of a Weyl sequence.
_MIX1, _MIX2, _GOLDEN = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35), np.uint32(0x9E3779B9)


def noise_bits(seed: np.ndarray, index: np.ndarray) -> np.ndarray:
  """AUC-Judd's draw for the pixels ``index`` as uint32 integers in ``[0, 2^24)``.

  Pixel ``j`` gets ``fmix32(((j + seed[0]) * 0x9E3779B9) ^ seed[1]) >> 8`` (MurmurHash3's
  finalizer over a seeded Weyl sequence): a counter-based hash that
  ``jaxseg.metrics.saliency`` computes bit for bit on the device too, so ranking on the host
  and on the device gives the same AUC-Judd (the draw only breaks ties), and the host can draw
  for a few pixels alone.
  """
  seed = np.asarray(seed, np.uint32).ravel()
  x = (np.asarray(index).astype(np.uint32) + seed[0]) * _GOLDEN ^ seed[1]
  x ^= x >> np.uint32(16)
  x *= _MIX1
  x ^= x >> np.uint32(13)
  x *= _MIX2
  x ^= x >> np.uint32(16)
  return x >> np.uint32(8)


def judd_noise(seed: np.ndarray, size: int) -> np.ndarray:
  """AUC_Judd.m's ``rand(size(map))``: float32 ``U[0, 1)`` on a 2^-24 grid, from ``seed``
  (`noise_bits` of every pixel times ``2^-24``)."""
  bits = noise_bits(seed, np.arange(size, dtype=np.uint32))
  return bits.astype(np.float32) * np.float32(2.0**-24)


def _judd_from_counts(counts, n, k):
  """AUC-Judd's trapezoidal area from the counts c_i (see the module docstring)."""
  counts = counts.astype(np.int64)
  false_pos = (int(counts.sum()) - k * (k + 1) // 2) / (n - k)  # sum_r FP_r (N - K)/(N - K)
  last = (int(counts.max()) - k) / (n - k)  # FP_K: the lowest threshold counts the most
  return 1.0 - false_pos / k + last / (2 * k)


_TIE_GROUPS = 8  # tied values ranked one by one; with more (8-bit maps) rank by full keys


def _judd_counts_ordered(ordered, seed, fixated):
  """c_i = n - (position of fixated pixel i in the stable order by (value, draw)), from the
  values as order-preserving uint32 (`_ordered_bits`) and the draw's seed.

  The draw only matters among equal values: the values alone are sorted (half the bytes of a
  (value, draw) key), and the few fixated pixels whose value other pixels share are ranked
  within their group by (draw, index), drawing for that group's pixels only. Many tied values
  (8-bit maps, where the 1e-7 jitter rounds away) fall back to sorting full keys.
  """
  where = np.flatnonzero(fixated)
  thresholds = ordered[where]
  chosen = ordered >= thresholds.min()  # only these rank at or above a fixated pixel
  candidates = ordered[chosen]
  candidates.sort()
  position = np.searchsorted(candidates, thresholds, side='left')
  tied = np.searchsorted(candidates, thresholds, side='right') - position > 1
  if not tied.any():
    return candidates.size - position
  values = np.unique(thresholds[tied])
  if values.size > _TIE_GROUPS:
    index = np.flatnonzero(chosen)  # ascending: the stable order's tie-break survives
    keys = (ordered[index].astype(np.uint64) << np.uint64(24)) | noise_bits(seed, index)
    return _judd_counts_keyed(keys, fixated[index])
  for value in values:
    members = np.flatnonzero(ordered == value)
    draws = noise_bits(seed, members)
    for j in np.flatnonzero(tied & (thresholds == value)):
      mine = draws[np.searchsorted(members, where[j])]
      position[j] += np.count_nonzero((draws < mine) | ((draws == mine) & (members < where[j])))
  return candidates.size - position


def judd_area_jittered(ordered: np.ndarray, seed: np.ndarray, fixated: np.ndarray) -> np.ndarray:
  """AUC-Judd per map (leading axes are maps) of jittered maps, ranked by (value, draw).

  Args:
    ordered: ``(..., N)`` uint32, the jittered float32 values as order-preserving integers
      (`jaxseg.metrics.saliency._judd_ordered`; `_ordered_bits` here); pixels with equal values
      rank by the draw (`noise_bits`), then by index (a stable order, ``jnp.lexsort``'s).
    seed: ``(..., 2)`` uint32 per map, the draw's seed.
    fixated: ``(..., N)`` bool.

  Returns:
    ``(...)`` float32 areas; NaN without fixations or without non-fixated pixels.
  """
  lead, rows = _rows(
    np.asarray(ordered, np.uint32), np.asarray(seed, np.uint32), np.asarray(fixated, bool)
  )
  areas = []
  for ordered_row, seed_row, fix_row in rows:
    n, k = ordered_row.size, int(np.count_nonzero(fix_row))
    if k == 0 or k == n:  # no positives, or no negatives (FP = 0/0 in the .m file)
      areas.append(np.nan)
      continue
    counts = _judd_counts_ordered(ordered_row, seed_row, fix_row)
    areas.append(_judd_from_counts(counts, n, k))
  return np.asarray(areas, np.float32).reshape(lead)


def judd_area(s: np.ndarray, fixated: np.ndarray) -> np.ndarray:
  """AUC-Judd per map (leading axes are maps) without jitter: ``c_i = #{S >= t_i}``.

  Args:
    s: ``(..., N)`` float32 min-max normalised saliency.
    fixated: ``(..., N)`` bool.

  Returns:
    ``(...)`` float32 areas; NaN without fixations or without non-fixated pixels.
  """
  lead, rows = _rows(np.asarray(s, np.float32), np.asarray(fixated, bool))
  areas = []
  for s_row, fix_row in rows:
    n, k = s_row.size, int(np.count_nonzero(fix_row))
    if k == 0 or k == n:
      areas.append(np.nan)
      continue
    areas.append(_judd_from_counts(_judd_counts_plain(s_row, fix_row), n, k))
  return np.asarray(areas, np.float32).reshape(lead)


def exact_auc(s: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """pysaliency's AUC per map: ``sum_f w_f (#{S < S_f} + #{S = S_f} / 2) / N / sum_f w_f``.

  ``#{S < t} = N - #{S >= t}``, and only the values at or above the lowest fixated one are
  needed for the counts from the top: only those are sorted. NaN values count nowhere (as in
  a sort, where they go last; the metric returns NaN for such a map anyway).
  """
  lead, rows = _rows(np.asarray(s), np.asarray(weights))
  areas = []
  for s_row, w_row in rows:
    hit = w_row > 0
    thresholds = s_row[hit]
    if thresholds.size == 0:
      areas.append(np.nan)
      continue
    candidates = s_row[s_row >= thresholds.min()]
    candidates.sort()
    at_or_above = candidates.size - np.searchsorted(candidates, thresholds, side='left')
    above = candidates.size - np.searchsorted(candidates, thresholds, side='right')
    n = s_row.size
    per_pixel = ((n - at_or_above) + 0.5 * (at_or_above - above)) / n
    w = w_row[hit].astype(np.float64)
    areas.append(np.sum(w * per_pixel) / np.sum(w))
  return np.asarray(areas, np.float32).reshape(lead)
