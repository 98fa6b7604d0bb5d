"""Saliency metrics, as the MIT saliency benchmark computes them.

By default every metric follows the MATLAB code of the MIT/Tuebingen saliency benchmark
(``code_forMetrics`` in the cvzoya/saliency repository: ``AUC_Judd.m``, ``AUC_Borji.m``,
``AUC_shuffled.m``, ``NSS.m``, ``CC.m``, ``similarity.m``, ``KLdiv.m``, ``InfoGain.m``), line for
line where it matters for the value:

* a saliency map whose size differs from the fixation map's is first resized to it (MATLAB's
  ``imresize`` is bicubic with antialiasing; here ``jax.image.resize(..., 'cubic')``, which uses
  the same Keys kernel and antialiasing but renormalises instead of mirroring at the border, and
  the result is clamped to the map's range as ``imresize`` clamps the benchmark's uint8 images);
* fixation maps are binary: a pixel counts once however many fixations landed on it;
* degenerate inputs give what the MATLAB code gives, never an exception:

  ========================  =======================================================
  no fixations              ``auc_*``, ``nss``, ``info_gain``: NaN
  one fixated pixel         ``auc_borji``: NaN (``AUC_Borji.m`` needs at least two)
  constant saliency map     ``nss``, ``cc``, ``similarity``, ``info_gain``: NaN;
                            ``auc_borji``, ``auc_shuffled``, ``auc_judd(jitter=False)``:
                            NaN (the ``.m`` files' "NaN saliencyMap" early return; with
                            jitter ``auc_judd`` ranks the jitter and gives about 0.5)
  all-zero saliency map     ``similarity``: 0; ``kld``: large (eps-regularised)
  ========================  =======================================================

``convention='pysaliency'`` switches to pysaliency's definitions where they differ: the exact
area under the ROC curve with all pixels as negatives (ties count one half), NSS with the
population standard deviation (``N``), SIM without min-max normalisation, CC of a constant map
against a non-constant one is 0, and repeated fixations counted (the fixation map may hold counts).

Every metric takes one image: a saliency map ``(h, w)`` and a fixation map or density ``(H, W)``.
All are jit-able and vmap-able (batch with ``jax.vmap``). :func:`per_image_scores` scores a batch
as the benchmark does (each map min-max scaled first) into sums that merge across batches: the
training task and ``jaxseg.inference.saliency.SaliencyEvaluator`` (which prints the lecture's
table) are both built on it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.metrics import _roc_host
from jaxseg.ops import _validation as v

__all__ = [
  'auc_judd',
  'auc_borji',
  'auc_shuffled',
  'nss',
  'cc',
  'similarity',
  'kld',
  'info_gain',
  'MATLAB_EPS',
  'ALL_METRICS',
  'TRAINING_METRICS',
  'as_saliency_image',
  'per_image_scores',
  'mean_scores',
]

MATLAB_EPS = 2.2204e-16  # the literal the benchmark's KLdiv/InfoGain use (MATLAB's eps)
_JUDD_JITTER = 1e-7  # AUC_Judd.m: rand(size(map)) / 10000000
_CONVENTIONS = ('mit', 'pysaliency')


# ----------------------------------------------------------------------------------------------
# Argument checks (static: shapes and Python values only, so they run before tracing).


def _check_map(x, name: str):
  if not hasattr(x, 'shape') or not hasattr(x, 'dtype'):
    raise TypeError(f'{name} must be an array of shape (H, W), got {type(x).__name__}.')
  if x.ndim != 2:
    raise ValueError(
      f'{name} must have shape (H, W) (one image; use jax.vmap for a batch), got shape '
      f'{tuple(x.shape)}.'
    )
  if min(x.shape) < 1:
    raise ValueError(f'{name} must be non-empty, got shape {tuple(x.shape)}.')


def _check_convention(convention: str) -> None:
  if convention not in _CONVENTIONS:
    raise ValueError(f'convention must be one of {_CONVENTIONS}, got {convention!r}.')


def _check_splits(n_splits, step) -> None:
  if not isinstance(n_splits, int) or isinstance(n_splits, bool) or n_splits < 1:
    raise ValueError(f'n_splits must be a positive int, got {n_splits!r}.')
  if not isinstance(step, (int, float)) or isinstance(step, bool) or not 0 < step <= 1:
    raise ValueError(f'step must be a number in (0, 1], got {step!r}.')


def _check_key(key, name: str = 'key') -> None:
  if key is None:
    raise ValueError(f'{name} must be a jax.random key, got None.')
  dtype = getattr(key, 'dtype', None)
  typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
  raw = dtype == jnp.uint32 and getattr(key, 'shape', None) == (2,)
  if not (typed or raw):
    raise TypeError(f'{name} must be a jax.random key (jax.random.key(0)), got {key!r}.')


def _all_finite(x) -> jax.Array:
  """``all(isfinite(x))``; for floats as ``isfinite(sum(x * 0))`` (``x * 0`` is NaN exactly for
  NaN and infinity, and a sum keeps NaN): XLA:CPU's boolean all-reduction costs 3-4x a float
  sum (issue 16), and its vectorised min/max do not propagate NaN."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.asarray(True)
  return jnp.isfinite(jnp.sum(x * jnp.zeros((), x.dtype)))


def _finite_or_nan(value, *maps) -> jax.Array:
  """`value`, or NaN when an input map holds NaN or infinity (never a score from part of a map)."""
  ok = functools.reduce(jnp.logical_and, [_all_finite(m) for m in maps])
  return jnp.where(ok, value, jnp.nan)


# ----------------------------------------------------------------------------------------------
# Shared pieces.


def _as_float(x) -> jax.Array:
  # float32 at least: float64 stays, integers and narrower floats become float32 (an explicit
  # choice; promote_types has no int -> float path under strict dtype promotion).
  x = jnp.asarray(x)
  return x.astype(jnp.float64 if x.dtype == jnp.float64 else jnp.float32)


def _resize_to(sal, shape) -> jax.Array:
  """MATLAB's ``imresize(sal, size(fix))``: bicubic, antialiased; identity at equal sizes.

  The cubic kernel overshoots; the result is clamped to the map's own range, as ``imresize``
  clamps the uint8 images the benchmark reads (a map may not turn negative, which KLD cannot take).
  """
  sal = _as_float(sal)
  if tuple(sal.shape) == tuple(shape):
    return sal
  resized = jax.image.resize(sal, tuple(shape), method='cubic', antialias=True)
  return jnp.clip(resized, sal.min(), sal.max())


def _min_max(x) -> jax.Array:
  # (x - min) / (max - min): NaN everywhere for a constant map, as in MATLAB.
  return (x - x.min()) / (x.max() - x.min())


def _min_max_checked(x) -> tuple[jax.Array, jax.Array]:
  """``(_min_max(x), ok)`` from ``x``'s min, max and finiteness.

  ``ok`` is False where the normalised map is not finite everywhere: ``x`` holds NaN or
  infinity, its range overflows, or it is constant (all NaN after min-max: the .m files' "NaN
  saliencyMap" return). For finite ``x`` with a finite non-zero range every normalised value
  lies in ``[0, 1]``, so this is what ``_is_constant`` and a finiteness check of the normalised
  map decide, without two more passes (a variadic one-pass reduction of the three ran 4x slower
  on XLA:CPU than the three reductions, which it vectorises: issue 16).
  """
  lo, hi, bad = x.min(), x.max(), jnp.sum(x * 0)
  span = hi - lo
  ok = jnp.isfinite(bad) & jnp.isfinite(span) & (span != 0)
  # Times the reciprocal, spelt out: XLA rewrites `_min_max`'s division by a broadcast scalar
  # this way, but not always inside this fusion, and a one-ulp difference moves a value across
  # a threshold (eager, jit and vmap must agree).
  return (x - lo) * (1 / span), ok


def _is_constant(normalised) -> jax.Array:
  # The .m files' `sum(isnan(saliencyMap(:))) == length(saliencyMap(:))` after min-max, as a
  # float max (XLA:CPU's boolean all-reduction is 3-4x slower): -inf only if every value is NaN.
  flags = jnp.where(jnp.isnan(normalised), -jnp.inf, 0.0).astype(normalised.dtype)
  return jnp.max(flags) == -jnp.inf


def _centred(x) -> jax.Array:
  # Exactly zero for a constant map: float32 means of a constant are not always exact, and the
  # benchmark's NaN for a constant map must not become a ratio of round-off errors.
  return jnp.where(x.max() == x.min(), 0.0, x - x.mean())


def _std(x, ddof: int) -> jax.Array:
  return jnp.sqrt(jnp.sum(_centred(x) ** 2) / (x.size - ddof))


def _trapz(xs, ys) -> jax.Array:
  """MATLAB's trapz(x, y) along the last axis."""
  return jnp.sum((xs[..., 1:] - xs[..., :-1]) * (ys[..., 1:] + ys[..., :-1]), axis=-1) / 2


def _thresholds(step: float) -> np.ndarray:
  # AUC_Borji.m: fliplr(0:stepSize:max(values)). Normalised values lie in [0, 1], so these are
  # every threshold MATLAB can use; those above the largest value add (0, 0) ROC points, which
  # enclose no area. Computed as j * step in float64, as MATLAB's colon does.
  count = int(math.floor(1.0 / step + 1e-9)) + 1
  return np.arange(count, dtype=np.float64) * step


def _threshold_bins(values, masks, thresholds: np.ndarray) -> jax.Array:
  """Per mask, how many values fall in each threshold bin: ``(len(masks), J + 1)`` int32.

  Bin ``j + 1`` holds the values ``v`` with ``t_j <= v < t_(j+1)`` (``j`` the highest threshold
  ``<= v``), bin 0 those below every threshold and NaN (which compares False). A mask of None
  counts every value. One variadic reduction counts ``#{mask & v >= t_j}`` for every mask and
  threshold in a single pass over the map: XLA:CPU's scatter-add, or one reduction per bin over
  a materialised bin index, cost 4x more than the whole pass (issue 16).
  """
  t = [jnp.asarray(x, values.dtype) for x in thresholds]
  ops = tuple(
    ((values >= t_j) if m is None else ((values >= t_j) & m)).astype(jnp.int32)
    for m in masks
    for t_j in t
  )
  # The masks' sizes in the same pass (a separate sum is one more loop over the map).
  ops += tuple(m.astype(jnp.int32) for m in masks if m is not None)
  zero = jnp.zeros((), jnp.int32)
  counts = jax.lax.reduce(
    ops, (zero,) * len(ops), lambda a, b: tuple(x + y for x, y in zip(a, b)), (values.ndim - 1,)
  )
  n_above = len(masks) * len(t)
  above = jnp.stack(counts[:n_above], axis=-1).reshape(values.shape[:-1] + (len(masks), len(t)))
  sizes = iter(counts[n_above:])
  totals = jnp.stack(
    [
      jnp.full(values.shape[:-1], values.shape[-1], jnp.int32) if m is None else next(sizes)
      for m in masks
    ],
    axis=-1,
  )[..., None]
  last = jnp.zeros_like(above[..., :1])
  # Thresholds ascend, so #{v >= t_j} - #{v >= t_(j+1)} values lie in bin j + 1.
  return jnp.concatenate(
    [totals - above[..., :1], above - jnp.concatenate([above[..., 1:], last], -1)], -1
  )


def _threshold_bins_2d(values, masks, thresholds: np.ndarray) -> jax.Array:
  """`_threshold_bins` of ``values.ravel()`` for a map ``(H, W)`` and two masks (the second may
  be None), with both masks' counts packed in one int32 per threshold: ``mask0 << 16 | mask1``.

  Each row's counts stay below 2^16 (``W < 2^16``), so the row sums unpack exactly: half the
  additions of one counter per mask and threshold (0.24 ms per 480x640 map: issue 16).
  """
  first, second = masks
  height, width = values.shape
  if width >= 2**16:
    flat = None if second is None else second.ravel()
    return _threshold_bins(values.ravel(), (first.ravel(), flat), thresholds)
  # uint32: a row's count in the high half may exceed 2^15 (a signed shift would smear it).
  low = jnp.ones((), jnp.uint32) if second is None else second.astype(jnp.uint32)
  weight = (first.astype(jnp.uint32) << 16) | low
  t = [jnp.asarray(x, values.dtype) for x in thresholds]
  ops = tuple(jnp.where(values >= t_j, weight, jnp.uint32(0)) for t_j in t) + (
    jnp.broadcast_to(weight, values.shape),
  )
  zero = jnp.zeros((), jnp.uint32)
  rows = jax.lax.reduce(
    ops, (zero,) * len(ops), lambda a, b: tuple(x + y for x, y in zip(a, b)), (1,)
  )
  rows = jnp.stack(rows, axis=-1)  # (H, J + 1): J thresholds, then the masks' sizes
  halves = ((rows >> 16).astype(jnp.int32), (rows & 0xFFFF).astype(jnp.int32))
  counts = jnp.stack([jnp.sum(half, axis=0) for half in halves])
  above, totals = counts[:, :-1], counts[:, -1:]
  last = jnp.zeros_like(above[:, :1])
  return jnp.concatenate(
    [totals - above[:, :1], above - jnp.concatenate([above[:, 1:], last], -1)], -1
  )


def _above_from_bins(bins) -> jax.Array:
  """Counts at or above threshold j (j = 0 .. J-1: bins j+1 .. J) from per-bin counts."""
  return jnp.flip(jnp.cumsum(jnp.flip(bins[..., 1:], -1), -1), -1)


def _roc_from_bins(tp_bins, fp_bins, n_tp, n_fp) -> jax.Array:
  """AUC from per-bin counts: thresholds swept from the highest down, as the MATLAB loops do.

  ``tp_bins``/``fp_bins`` (..., J + 1) count values in each threshold bin (bin 0: below all);
  the rate at threshold j is the count in bins > j divided by ``n_tp``/``n_fp``.
  """
  return _roc_from_above(_above_from_bins(tp_bins), _above_from_bins(fp_bins), n_tp, n_fp)


def _roc_from_above(tp_above, fp_above, n_tp, n_fp) -> jax.Array:
  """`_roc_from_bins` from the counts at or above each threshold, ``(..., J)``."""
  tp = jnp.flip(tp_above, -1) / n_tp
  fp = jnp.flip(fp_above, -1) / n_fp
  zeros = jnp.zeros(fp.shape[:-1] + (1,), fp.dtype)
  ones = jnp.ones(fp.shape[:-1] + (1,), fp.dtype)
  tp = jnp.concatenate([zeros, jnp.broadcast_to(tp, fp.shape), ones], -1)
  fp = jnp.concatenate([zeros, fp, ones], -1)
  return _trapz(fp, tp)


def _draw_chunk(n_splits: int) -> int:
  # Draws per split per loop step: ~16k uniforms a step (K = 150 of 100 splits: one step).
  return max(8, min(256, 16384 // n_splits))


def _uniform_draws_above(key, fractions, count, n_splits: int) -> jax.Array:
  """Of ``count`` pixels drawn uniformly with replacement (``randi``), how many lie at or above
  each threshold, per split: ``(n_splits, J)`` int32, for ``fractions[j] = #{S >= t_j} / N``.

  A uniformly drawn pixel lies at or above ``t_j`` iff its rank from the top is below
  ``#{S >= t_j}``: one uniform ``u`` per draw, compared with every fraction (nested, as the
  thresholds are). ``u`` is 24 random bits (`_hash_bits24`) times 2^-24, so each probability is
  exact to 2^-24; ``u < f`` is compared as ``bits < ceil(f 2^24)``, the same test. The draws go
  a chunk at a time while fewer than ``count`` were made: the cost grows with ``count``, as the
  ``.m`` file's does, and stays a few fused operations (a multinomial through JAX's sequential
  binomial samplers cost ~0.25 ms per map: issue 16).
  """
  chunk = _draw_chunk(n_splits)
  seed = jax.random.bits(key, (2,), jnp.uint32)
  limits = jnp.ceil(fractions * 2.0**24).astype(jnp.uint32)
  cells = jnp.arange(n_splits * chunk, dtype=jnp.uint32).reshape(n_splits, chunk)
  columns = jnp.arange(chunk, dtype=jnp.int32)

  def body(carry):
    step, total = carry
    counters = cells + step.astype(jnp.uint32) * jnp.uint32(n_splits * chunk)
    bits = _hash_bits24(seed, counters)
    drawn = (step * chunk + columns < count)[None, :, None]
    hits = (bits[..., None] < limits) & drawn
    return step + 1, total + jnp.sum(hits, axis=1, dtype=jnp.int32)

  total = jnp.zeros((n_splits, fractions.shape[-1]), jnp.int32)
  step = jnp.zeros((), jnp.int32)
  return jax.lax.while_loop(lambda c: c[0] * chunk < count, body, (step, total))[1]


_URN_UNROLL = 4  # draws per loop step of `_urn_draws_above` (4 ran fastest of 1 to 32)


def _urn_draws_above(key, above, total, count, n_splits: int) -> jax.Array:
  """Of ``count`` of ``total`` candidates drawn without replacement (``randperm``'s first
  ``count``), how many lie at or above each threshold, per split: ``(n_splits, J)`` float.

  ``above[j]`` is the number of candidates at or above ``t_j`` (non-increasing in ``j``). One
  draw picks a uniform rank ``r`` among the remaining candidates ordered from the top, which
  lies at or above ``t_j`` iff ``r`` is below the remaining count there; that candidate leaves
  the urn. ``r = floor(u R)`` (at most ``R - 1``) with ``u`` 24 random bits (`_hash_bits24`)
  times 2^-24: each probability exact to about 2^-24; the counts are exact integers in float32
  below 2^24. Draws go ``_URN_UNROLL`` at a time while fewer than ``count`` were made:
  sequential, but a handful of fused operations on ``(n_splits, J)`` per draw.
  """
  dtype = above.dtype
  seed = jax.random.bits(key, (2,), jnp.uint32)
  cells = jnp.arange(_URN_UNROLL * n_splits, dtype=jnp.uint32).reshape(_URN_UNROLL, n_splits)

  def body(carry):
    step, left_above, left, drawn = carry
    counters = cells + step.astype(jnp.uint32) * jnp.uint32(_URN_UNROLL * n_splits)
    bits = _hash_bits24(seed, counters)
    u = bits.astype(dtype) * jnp.asarray(2.0**-24, dtype)
    for d in range(_URN_UNROLL):
      live = (step * _URN_UNROLL + d < count).astype(dtype)
      rank = jnp.minimum(jnp.floor(u[d] * left), left - 1)
      hit = (rank[:, None] < left_above).astype(dtype) * live
      left_above = left_above - hit
      drawn = drawn + hit
      left = left - live
    return step + 1, left_above, left, drawn

  init = (
    jnp.zeros((), jnp.int32),
    jnp.broadcast_to(above, (n_splits,) + above.shape),
    jnp.broadcast_to(total, (n_splits,)),
    jnp.zeros((n_splits,) + above.shape, dtype),
  )
  return jax.lax.while_loop(lambda c: c[0] * _URN_UNROLL < count, body, init)[3]


# ----------------------------------------------------------------------------------------------
# Location-based metrics (binary fixation maps).


def auc_judd(
  sal, fix, *, jitter: bool = True, key=None, convention: str = 'mit', ranks: str = 'host'
) -> jax.Array:
  """Area under the ROC curve with thresholds at the fixated saliency values (AUC-Judd).

  With ``S`` the min-max normalised saliency map over ``N`` pixels and ``t_1 >= ... >= t_K`` its
  values at the ``K`` fixated pixels, threshold ``i`` gives ``TP_i = i / K`` and
  ``FP_i = (#{S >= t_i} - i) / (N - K)``; the score is the trapezoidal area under
  ``(0, 0), (FP_1, TP_1), ..., (FP_K, TP_K), (1, 1)``. ``jitter`` adds ``U(0, 1e-7)`` to every
  pixel first (in map units, before the normalisation), as ``AUC_Judd.m`` does, so ties are
  broken at random (a counter-based hash of ``key`` and the pixel index, the same bits on the
  host and on the device); in float32 remaining exact ties are broken by the same draw (MATLAB
  computes in float64, where the jitter never rounds away). The area is computed in closed
  form, ``1 - mean_i FP_i + FP_K / (2K)``, equal to the trapezoids, from the ranks of the
  fixated pixels: ``ranks='host'`` ranks by one NumPy sort per map through
  ``jax.pure_callback`` (jit and vmap work; XLA:CPU sorts ~30x slower than NumPy) of one uint64
  key per pixel built on the device, and only of the pixels at or above the lowest fixated one;
  ``ranks='device'`` by one ``jax.lax.sort`` per map, with no host callback: use it inside a
  program sharded over several devices, where on XLA:CPU a host callback that reads its
  arguments can deadlock the devices' collectives (issue 16). Both give the same value.

  ``convention='pysaliency'``: the exact ROC area with every fixation (counted with its
  multiplicity) as a positive and every pixel as a negative,
  ``mean_{f, p} ([S_f > S_p] + [S_f = S_p] / 2)``; ``jitter`` and ``key`` are ignored.

  Args:
    sal: ``(h, w)`` saliency map; resized to ``fix``'s size if it differs.
    fix: ``(H, W)`` fixation map; pixels ``> 0`` are fixated (counts under 'pysaliency').
    jitter: add the MIT benchmark's tie-breaking noise.
    key: ``jax.random`` key for the jitter; ``None`` means ``jax.random.key(0)`` so that a default
      evaluation is reproducible.
    convention: ``'mit'`` or ``'pysaliency'``.
    ranks: ``'host'`` (NumPy through ``jax.pure_callback``) or ``'device'`` (``jax.lax.sort``,
      no host callback).

  Returns:
    Scalar float32 AUC; NaN without fixations, or for a constant map with ``jitter=False``.

  Example:
    >>> sal = jnp.array([[0.1, 0.9], [0.2, 0.4]])
    >>> fix = jnp.array([[0, 1], [0, 0]])
    >>> float(auc_judd(sal, fix, jitter=False))
    1.0
    >>> float(auc_judd(sal, fix, ranks='device')) == float(auc_judd(sal, fix))
    True
  """
  _check_map(sal, 'sal')
  _check_map(fix, 'fix')
  _check_convention(convention)
  _check_ranks(ranks)
  s = _resize_to(sal, fix.shape).ravel()
  f = jnp.asarray(fix).ravel()
  if convention == 'pysaliency':
    if ranks == 'host':
      return _finite_or_nan(_exact_auc(s, f), s, f)
    return _finite_or_nan(_exact_auc_device(s, f.astype(s.dtype)), s, f)
  finite_inputs = (s, f)
  fixated = f > 0
  constant = jnp.asarray(False)  # jittered maps are never constant (ranked by the draw)
  if jitter:
    key = jax.random.key(0) if key is None else key
    # The draw is a hash, not threefry (whose draw of a map's noise cost more than NumPy's whole
    # metric; issue 16). Ranked by (jittered value, draw): min-max normalisation keeps the
    # order, so the count #{S >= t_i} is the rank from the top of the i-th fixated pixel.
    seed = _judd_seed(key)
  else:
    s = _min_max(s)
    constant = _is_constant(s)
    seed = jnp.zeros((2,), jnp.uint32)
  if ranks == 'device':
    area = _judd_area_device(s.astype(jnp.float32), seed, fixated, jitter=jitter)
    area = jnp.where(~constant, area, jnp.nan).astype(s.dtype)
    return _finite_or_nan(area, *finite_inputs)
  if jitter:
    # The jittered values leave the device as order-preserving uint32 (the hash and the jitter
    # are one fused pass here); the host sorts them and draws again only for tied pixels.
    area = jax.pure_callback(
      _roc_host.judd_area_jittered,
      jax.ShapeDtypeStruct((), jnp.float32),
      _judd_ordered(s.astype(jnp.float32), seed),
      seed,
      fixated,
      vmap_method='expand_dims',
    )
  else:
    area = jax.pure_callback(
      _roc_host.judd_area,
      jax.ShapeDtypeStruct((), jnp.float32),
      s.astype(jnp.float32),
      fixated,
      vmap_method='expand_dims',
    )
  area = jnp.where(~constant, area, jnp.nan).astype(s.dtype)
  return _finite_or_nan(area, *finite_inputs)


def _judd_seed(key) -> jax.Array:
  """The uint32 pair seeding AUC-Judd's jitter (`_roc_host.judd_noise`) for `key`."""
  return jax.random.bits(key, (2,), jnp.uint32)


def _check_ranks(ranks) -> None:
  if ranks not in ('host', 'device'):
    raise ValueError(f"ranks must be 'host' or 'device', got {ranks!r}.")


def _hash_bits24(seed, counters) -> jax.Array:
  """The top 24 bits of uint32 ``fmix32((counter + seed[0]) * 0x9E3779B9 ^ seed[1])``
  (MurmurHash3's finalizer of a seeded Weyl sequence): counter-based random bits, a few fused
  integer operations each; every sampler here takes 24 bits (exact in float32 times 2^-24).

  Threefry, JAX's default, cost 2-4x these samplers' whole draw on XLA:CPU (issue 16); seeds
  come from ``jax.random.bits(key)``, so distinct keys give unrelated streams.
  """
  u32 = functools.partial(jnp.asarray, dtype=jnp.uint32)
  x = (counters + seed[0]) * u32(0x9E3779B9) ^ seed[1]
  x = x ^ (x >> u32(16))
  x = x * u32(0x85EBCA6B)
  x = x ^ (x >> u32(13))
  x = x * u32(0xC2B2AE35)
  return (x ^ (x >> u32(16))) >> u32(8)


def _judd_noise_bits(seed, size: int) -> jax.Array:
  """`_roc_host.judd_noise` as uint32 integers in ``[0, 2^24)`` (the draw is these times 2^-24)."""
  return _hash_bits24(seed, jnp.arange(size, dtype=jnp.uint32))


def _judd_noise_device(seed, size: int) -> jax.Array:
  """`_roc_host.judd_noise` on the device, bit for bit (uint32 arithmetic wraps alike)."""
  return _judd_noise_bits(seed, size).astype(jnp.float32) * jnp.float32(2.0**-24)


def _judd_jittered(s, bits) -> jax.Array:
  """AUC_Judd.m's ``map + rand / 1e7`` in float32 from the draw's bits; -0.0 becomes +0.0."""
  u = bits.astype(jnp.float32) * jnp.float32(2.0**-24)
  return s + u * jnp.float32(_JUDD_JITTER) + jnp.float32(0.0)


def _judd_ordered(s, seed) -> jax.Array:
  """The jittered map as uint32 integers of the same order (`_roc_host._ordered_bits`): negative
  values with every bit flipped, the others with the sign bit set (-0.0 is +0.0 already)."""
  raw = jax.lax.bitcast_convert_type(_judd_jittered(s, _judd_noise_bits(seed, s.size)), jnp.uint32)
  sign = jnp.uint32(0x80000000)
  return jnp.where((raw & sign) != 0, ~raw, raw | sign)


def _split_sum(counts) -> jax.Array:
  """``sum(counts)`` of int32 values below 2^20, exact in int32 parts, as one float32."""
  high = jnp.sum(counts >> 10)  # each part sums at most 2^10 * N: exact for N < 2^21
  low = jnp.sum(counts & 1023)
  return high.astype(jnp.float32) * 1024.0 + low.astype(jnp.float32)


def _judd_area_device(s, seed, fixated, *, jitter: bool) -> jax.Array:
  """`_roc_host.judd_area` for one map with one `jax.lax.sort`: the same value, no callback.

  With the pixels sorted ascending (by (jittered value, draw), stable, or by value), the
  fixated pixel at position ``p`` has ``c = N - p`` pixels at or above it (ties: all of them,
  the first position of its value); ``sum_r FP_r (N - K) = sum c - K (K + 1) / 2``.
  """
  n = s.size
  if n >= 2**20:  # the exact int32 sums of `_split_sum`
    raise ValueError(f"ranks='device' takes maps of fewer than 2^20 pixels, got {n}.")
  k = jnp.sum(fixated).astype(jnp.int32)
  if jitter:
    bits = _judd_noise_bits(seed, n)
    jittered = _judd_jittered(s, bits)
    _, _, fix_sorted = jax.lax.sort((jittered, bits, fixated), num_keys=2, is_stable=True)
    counts = jnp.where(fix_sorted, n - jnp.arange(n, dtype=jnp.int32), 0)
  else:
    ordered = jnp.sort(s)
    # NaN thresholds count 0 (NaN >= NaN is false), as the host's.
    first = jnp.searchsorted(ordered, s, side='left', method='sort').astype(jnp.int32)
    counts = jnp.where(fixated & ~jnp.isnan(s), n - first, 0)
  kf = k.astype(jnp.float32)
  negatives = jnp.float32(n) - kf
  false_pos = (_split_sum(counts) - kf * (kf + 1.0) / 2.0) / negatives
  last = (jnp.max(counts).astype(jnp.float32) - kf) / negatives
  area = 1.0 - false_pos / kf + last / (2.0 * kf)
  return jnp.where((k > 0) & (k < n), area, jnp.nan)


def _exact_auc(s, weights) -> jax.Array:
  """P(S_fix > S_pixel) + P(S_fix = S_pixel) / 2 with fixations weighted by `weights` (sent in
  their own dtype: a uint8 fixation map is a quarter of the float32 bytes)."""
  return jax.pure_callback(
    _roc_host.exact_auc,
    jax.ShapeDtypeStruct((), jnp.float32),
    s.astype(jnp.float32),
    weights,
    vmap_method='expand_dims',
  ).astype(s.dtype)


def _exact_auc_device(s, weights) -> jax.Array:
  """`_exact_auc` with one device sort, no host callback."""
  ordered = jnp.sort(s)
  below = jnp.searchsorted(ordered, s, side='left', method='sort')
  at_or_below = jnp.searchsorted(ordered, s, side='right', method='sort')
  per_pixel = (below.astype(s.dtype) + 0.5 * (at_or_below - below).astype(s.dtype)) / s.size
  hit = jnp.where(weights > 0, weights, 0.0)
  return jnp.sum(hit * per_pixel) / jnp.sum(hit)


def auc_borji(sal, fix, *, key, n_splits: int = 100, step: float = 0.1) -> jax.Array:
  """AUC with uniformly sampled negatives, averaged over random splits (AUC-Borji).

  ``S`` is min-max normalised. For each of ``n_splits`` splits, ``K`` pixels (one per fixated
  pixel) are drawn uniformly with replacement from the whole map as negatives; thresholds
  ``0, step, 2 step, ...`` give ``TP = #{S_fix >= t} / K`` and ``FP = #{S_neg >= t} / K``; the
  score is the mean trapezoidal area. Only how many draws lie at or above each threshold enters
  the area, and a uniformly drawn pixel lies at or above ``t_j`` with probability
  ``#{S >= t_j} / N``: each draw is one uniform number compared with those fractions (on the
  device, in one pass over the map for the counts), the same distribution as ``AUC_Borji.m``'s
  ``randi`` draws without gathering pixels.

  Args:
    sal: ``(h, w)`` saliency map; resized to ``fix``'s size if it differs.
    fix: ``(H, W)`` binary fixation map (pixels ``> 0`` are fixated).
    key: ``jax.random`` key for the draws (required).
    n_splits: number of random splits.
    step: threshold spacing in ``(0, 1]``.

  Returns:
    Scalar float32 AUC; NaN with fewer than two fixated pixels (``AUC_Borji.m``'s
    ``sum(fixationMap(:) > 0) <= 1``) or for a constant map.

  Example:
    >>> sal = jnp.array([[0.0, 1.0], [0.2, 0.9]])
    >>> fix = jnp.array([[0, 1], [0, 1]])
    >>> 0.5 < float(auc_borji(sal, fix, key=jax.random.key(0))) <= 1.0
    True
  """
  _check_map(sal, 'sal')
  _check_map(fix, 'fix')
  _check_splits(n_splits, step)
  _check_key(key)
  thresholds = _thresholds(step)
  s, ok = _min_max_checked(_resize_to(sal, fix.shape).ravel())
  fixated = jnp.asarray(fix) > 0
  tp_bins, pixel_bins = _threshold_bins_2d(s.reshape(fix.shape), (fixated, None), thresholds)
  k = jnp.sum(tp_bins)
  fractions = _above_from_bins(pixel_bins).astype(s.dtype) / s.size
  fp_above = _uniform_draws_above(key, fractions, k, n_splits)
  kf = k.astype(s.dtype)
  tp_above = _above_from_bins(tp_bins).astype(s.dtype)
  area = jnp.mean(_roc_from_above(tp_above, fp_above.astype(s.dtype), kf, kf))
  return _finite_or_nan(jnp.where((k > 1) & ok, area, jnp.nan), fix)


def auc_shuffled(
  sal,
  fix,
  other_fix,
  *,
  key,
  n_splits: int = 100,
  step: float = 0.1,
  max_other_fixations: int | None = None,
) -> jax.Array:
  """AUC with negatives at fixations of other images (shuffled AUC, sAUC).

  As :func:`auc_borji`, but each split's negatives are ``m = min(K, M)`` of the ``M`` fixated
  pixels of ``other_fix`` chosen without replacement (``AUC_shuffled.m``'s ``randperm``), and
  ``FP = #{S_neg >= t} / m``. ``other_fix`` is usually the union of the fixation maps of about
  ten other images of the dataset, which discounts the centre bias.

  Only the number of negatives at or above each threshold enters the area, and a uniform draw
  of ``m`` of the ``M`` candidates without replacement puts a multivariate hypergeometric number
  of them in each threshold bin: drawn directly on the device from the candidates' counts per
  bin (an urn: ``m`` sequential draws of a uniform rank among the candidates left), the same
  distribution as ``randperm`` at a cost independent of the map size and no host callback.
  ``max_other_fixations`` (default ``H * W``) is a check kept from the former sorted draw: if
  ``other_fix`` has more fixated pixels the result is NaN.

  Args:
    sal: ``(h, w)`` saliency map; resized to ``fix``'s size if it differs.
    fix: ``(H, W)`` binary fixation map of this image.
    other_fix: ``(H, W)`` binary fixation map of other images.
    key: ``jax.random`` key (required).
    n_splits: number of random splits.
    step: threshold spacing in ``(0, 1]``.
    max_other_fixations: static cap on the fixated pixels of ``other_fix``.

  Returns:
    Scalar float32 AUC; NaN without fixations (in either map), beyond the cap, or for a
    constant map.

  Example:
    >>> sal = jnp.array([[0.0, 1.0], [0.2, 0.4]])
    >>> fix = jnp.array([[0, 1], [0, 0]]); other = jnp.array([[1, 0], [1, 1]])
    >>> float(auc_shuffled(sal, fix, other, key=jax.random.key(0)))
    1.0
  """
  _check_map(sal, 'sal')
  _check_map(fix, 'fix')
  _check_map(other_fix, 'other_fix')
  if tuple(other_fix.shape) != tuple(fix.shape):
    raise ValueError(
      f"other_fix must have fix's shape {tuple(fix.shape)}, got {tuple(other_fix.shape)}."
    )
  _check_splits(n_splits, step)
  _check_key(key)
  size = int(np.prod(fix.shape))
  cap = size if max_other_fixations is None else max_other_fixations
  if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
    raise ValueError(
      f'max_other_fixations must be a positive int or None, got {max_other_fixations!r}.'
    )
  cap = min(cap, size)
  thresholds = _thresholds(step)
  s, finite = _min_max_checked(_resize_to(sal, fix.shape).ravel())
  fixated = jnp.asarray(fix) > 0
  other = jnp.asarray(other_fix) > 0
  tp_bins, other_bins = _threshold_bins_2d(s.reshape(fix.shape), (fixated, other), thresholds)
  k = jnp.sum(tp_bins)
  m_total = jnp.sum(other_bins)
  m = jnp.minimum(k, m_total)
  tp_above = _above_from_bins(tp_bins).astype(s.dtype)
  # Choosing m of the M other-fixated pixels uniformly without replacement (the .m file's
  # randperm) puts a multivariate hypergeometric number in each bin: drawn from the candidates'
  # counts per bin by an urn on the device (a sorted priority per candidate, then a NumPy draw
  # through a host callback, cost more: issue 16).
  fp_above = _urn_draws_above(
    key, _above_from_bins(other_bins).astype(s.dtype), m_total.astype(s.dtype), m, n_splits
  )
  area = jnp.mean(
    _roc_from_above(tp_above, fp_above.astype(s.dtype), k.astype(s.dtype), m.astype(s.dtype))
  )
  ok = (k > 0) & (m_total > 0) & (m_total <= cap) & finite
  return _finite_or_nan(jnp.where(ok, area, jnp.nan), fix, other_fix)


def nss(sal, fix, *, convention: str = 'mit') -> jax.Array:
  """Normalized scanpath saliency: the mean standardised saliency at fixations.

  ``NSS = mean_{fixated p} (S_p - mean(S)) / std(S)``, ``std`` with ``N - 1`` (MATLAB's ``std``).
  ``convention='pysaliency'``: ``std`` with ``N``, each fixation weighted by its count, and a
  constant map scores 0 instead of NaN.

  Args:
    sal: ``(h, w)`` saliency map; resized to ``fix``'s size if it differs.
    fix: ``(H, W)`` fixation map (binary under 'mit', counts under 'pysaliency').
    convention: ``'mit'`` or ``'pysaliency'``.

  Returns:
    Scalar float32; NaN without fixations (and, under 'mit', for a constant map).

  Example:
    >>> float(nss(jnp.array([[0., 0.], [0., 4.]]), jnp.array([[0, 0], [0, 1]])))
    1.5
  """
  _check_map(sal, 'sal')
  _check_map(fix, 'fix')
  _check_convention(convention)
  s = _resize_to(sal, fix.shape)
  f = jnp.asarray(fix)
  if convention == 'mit':
    z = _centred(s) / _std(s, ddof=1)
    weights = (f > 0).astype(s.dtype)
  else:
    std = _std(s, ddof=0)
    z = _centred(s) / jnp.where(std > 0, std, 1.0)
    weights = f.astype(s.dtype)
  return _finite_or_nan(jnp.sum(weights * z) / jnp.sum(weights), s, f)


def info_gain(sal, fix, baseline) -> jax.Array:
  """Information gain of a saliency map over a baseline map at fixations, in bits.

  Both maps are min-max normalised and divided by their sums (``P``, ``B``);
  ``IG = mean_{fixated p} (log2(eps + P_p) - log2(eps + B_p))`` with ``eps = 2.2204e-16``
  (``InfoGain.m``).

  Args:
    sal: ``(h, w)`` saliency map; resized to ``fix``'s size if it differs.
    fix: ``(H, W)`` binary fixation map.
    baseline: ``(h', w')`` baseline map (e.g. a centre bias); resized likewise.

  Returns:
    Scalar float32 bits per fixation; NaN without fixations or with a constant map.

  Example:
    >>> sal = jnp.array([[0., 1.], [0., 1.]]); base = jnp.array([[0., 1.], [1., 1.]])
    >>> round(float(info_gain(sal, jnp.array([[0, 1], [0, 0]]), base)), 4)
    0.585
  """
  _check_map(sal, 'sal')
  _check_map(fix, 'fix')
  _check_map(baseline, 'baseline')
  p = _min_max(_resize_to(sal, fix.shape))
  b = _min_max(_resize_to(baseline, fix.shape))
  p = p / p.sum()
  b = b / b.sum()
  weights = (jnp.asarray(fix) > 0).astype(p.dtype)
  gain = jnp.log2(MATLAB_EPS + p) - jnp.log2(MATLAB_EPS + b)
  return _finite_or_nan(jnp.sum(weights * gain) / jnp.sum(weights), p, b, fix)


# ----------------------------------------------------------------------------------------------
# Distribution-based metrics (continuous ground-truth densities).


def cc(sal, density, *, convention: str = 'mit') -> jax.Array:
  """Pearson's linear correlation coefficient between a saliency map and a density.

  ``CC = sum(a b) / sqrt(sum(a^2) sum(b^2))`` with ``a, b`` the mean-subtracted maps (``CC.m``
  standardises first, which does not change the value). ``convention='pysaliency'`` returns 0
  when only the saliency map is constant.

  Args:
    sal: ``(h, w)`` saliency map; resized to ``density``'s size if it differs.
    density: ``(H, W)`` ground-truth density (or any real map).
    convention: ``'mit'`` or ``'pysaliency'``.

  Returns:
    Scalar float32 in ``[-1, 1]``; NaN if either map is constant (see above for 'pysaliency').

  Example:
    >>> float(cc(jnp.array([[1., 2.], [3., 4.]]), jnp.array([[2., 4.], [6., 8.]])))
    1.0
  """
  _check_map(sal, 'sal')
  _check_map(density, 'density')
  _check_convention(convention)
  a = _resize_to(sal, density.shape)
  b = _as_float(density)
  a = _centred(a)
  b = _centred(b)
  value = jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))
  if convention == 'pysaliency':
    value = jnp.where((jnp.sum(a * a) == 0) & (jnp.sum(b * b) > 0), 0.0, value)
  return _finite_or_nan(value, sal, density)


def similarity(sal, density, *, convention: str = 'mit') -> jax.Array:
  """Similarity (histogram intersection) of a saliency map and a density: ``sum_p min(P_p, Q_p)``.

  ``similarity.m``: each map that is not all zero is min-max normalised, then divided by its sum
  (a zero map stays zero). ``convention='pysaliency'``: no min-max; a map with negative values is
  shifted by its minimum, then divided by its sum (an all-zero map becomes uniform).

  Args:
    sal: ``(h, w)`` saliency map; resized to ``density``'s size if it differs.
    density: ``(H, W)`` ground-truth density.
    convention: ``'mit'`` or ``'pysaliency'``.

  Returns:
    Scalar float32 in ``[0, 1]``; under 'mit' NaN for a constant non-zero map, 0 against a zero
    map.

  Example:
    >>> float(similarity(jnp.array([[0., 1.], [1., 0.]]), jnp.array([[0., 1.], [0., 0.]])))
    0.5
  """
  _check_map(sal, 'sal')
  _check_map(density, 'density')
  _check_convention(convention)
  p = _resize_to(sal, density.shape)
  q = _as_float(density)
  normalise = _sim_normalise_mit if convention == 'mit' else _sim_normalise_pysaliency
  return _finite_or_nan(jnp.sum(jnp.minimum(normalise(p), normalise(q))), p, q)


def _sim_normalise_mit(x):
  # A map is all zero iff its min and max are (a NaN makes the score NaN anyway): XLA:CPU's
  # boolean any() costs 3-4x a float reduction (issue 16). An all-zero map stays zero through
  # safe scalar divisors, not a per-pixel select (which XLA:CPU would not fuse into the sums).
  lo, hi = x.min(), x.max()
  nonzero = (lo != 0) | (hi != 0)
  y = (x - lo) / jnp.where(nonzero, hi - lo, 1.0)
  total = y.sum()
  return y / jnp.where(nonzero, total, 1.0)


def _sim_normalise_pysaliency(x):
  x = jnp.where(x.min() < 0, x - x.min(), x)
  total = x.sum()
  return jnp.where(total != 0, x / jnp.where(total != 0, total, 1.0), 1.0 / x.size)


def kld(sal, density) -> jax.Array:
  """KL divergence of a saliency map from a ground-truth density (``KLdiv.m``).

  ``P = sal / sum(sal)``, ``Q = density / sum(density)`` (a map that is all zero stays zero);
  ``KLD = sum_p Q_p log(eps + Q_p / (P_p + eps))`` with ``eps = 2.2204e-16``. Lower is better.

  Args:
    sal: ``(h, w)`` non-negative saliency map; resized to ``density``'s size if it differs.
    density: ``(H, W)`` non-negative ground-truth density.

  A negative value in either map raises ``ValueError`` when concrete; under ``jit`` the result
  is NaN (a negative "probability" would give a meaningless, even negative, divergence).

  Returns:
    Scalar float32 in nats, ``>= 0`` up to eps (0 for identical distributions).

  Example:
    >>> round(float(kld(jnp.array([[1., 1.]]), jnp.array([[1., 0.]]))), 5)
    0.69315
  """
  _check_map(sal, 'sal')
  _check_map(density, 'density')
  v.check_range(sal, 'sal', low=0.0)
  v.check_range(density, 'density', low=0.0)
  p = _resize_to(sal, density.shape)
  q = _as_float(density)
  # With every value finite, all >= 0 is min >= 0 and a map is all zero iff its sum is 0 (a sum
  # of non-negative numbers is 0 only if each is); a NaN or infinity makes the sum non-finite
  # (XLA:CPU's vectorised min drops NaN; the sum does not), and so does a float32 sum that
  # overflows, where the normalised map would be meaningless. The normalised maps are finite
  # iff the maps are. A min and a sum per map (XLA fuses them) instead of min, max, sum and a
  # finiteness sum: 0.64 -> 0.38 ms CPU per 480x640 pair in one A/B run (folding the sign test
  # into the divergence's pass instead ran slower, 0.46; issue 16).
  p_lo, p_sum, q_lo, q_sum = p.min(), p.sum(), q.min(), q.sum()
  ok = (p_lo >= 0) & (q_lo >= 0) & jnp.isfinite(p_sum) & jnp.isfinite(q_sum)
  # Divided by a safe scalar, not selected per pixel: XLA:CPU then fuses the normalisation
  # into the divergence's reduction instead of writing both normalised maps (0.44 -> 0.37 ms
  # per pair in one A/B run; an all-zero map divided by 1 stays zero, as in KLdiv.m).
  p = p / jnp.where(p_sum != 0, p_sum, 1.0)
  q = q / jnp.where(q_sum != 0, q_sum, 1.0)
  value = jnp.sum(q * jnp.log(MATLAB_EPS + q / (p + MATLAB_EPS)))
  return jnp.where(ok, value, jnp.nan)


# ----------------------------------------------------------------------------------------------
# Per-image scores as mergeable sums: the one evaluation path. The training task's evaluation
# (jaxseg.train.tasks.saliency) and the stateful evaluator (jaxseg.inference.saliency) both call
# per_image_scores, so they report the same numbers for the same maps.

ALL_METRICS = (
  'similarity',
  'cc',
  'auc_shuffled',
  'auc_borji',
  'auc_judd',
  'nss',
  'kld',
  'info_gain',
)
# The metrics the training task reports at each evaluation: no shuffled AUC (it needs other
# images' fixations), no AUC-Borji (100 random splits per image), no info gain (a baseline).
TRAINING_METRICS = ('cc', 'nss', 'auc_judd', 'similarity', 'kld')


def as_saliency_image(saliency) -> jax.Array:
  r"""A network's map as the benchmark receives it: min-max scaled to ``[0, 1]`` (zeros if flat).

  .. math:: S' = (S - \min S) / (\max S - \min S)

  Benchmarks score saved images, so a map reaches them scaled to the image range. A regression
  output may be negative (the deep SalNet's is about ``[-1, 1]``), which KLD, a divergence of
  distributions, cannot take; CC, NSS, AUC and SIM do not change under this positive affine map.

  Args:
    saliency: one ``(H, W)`` map (vmap for a batch).

  Returns:
    The ``(H, W)`` float32 map scaled to ``[0, 1]``.

  Example:
    >>> as_saliency_image(jnp.array([[-1.0, 0.0, 3.0]])).tolist()
    [[0.0, 0.25, 1.0]]
  """
  saliency = _as_float(saliency)
  low, high = saliency.min(), saliency.max()
  return jnp.where(high > low, (saliency - low) / jnp.where(high > low, high - low, 1.0), 0.0)


def _one_image_scores(
  sal, fix, density, other_fix, baseline, key, *, metrics, n_splits, max_other, ranks
):
  sal = as_saliency_image(sal)
  k_judd, k_borji, k_shuf = jax.random.split(key, 3)
  every = {
    'similarity': lambda: similarity(sal, density),
    'cc': lambda: cc(sal, density),
    'auc_shuffled': lambda: auc_shuffled(
      sal, fix, other_fix, key=k_shuf, n_splits=n_splits, max_other_fixations=max_other
    ),
    'auc_borji': lambda: auc_borji(sal, fix, key=k_borji, n_splits=n_splits),
    'auc_judd': lambda: auc_judd(sal, fix, key=k_judd, ranks=ranks),
    'nss': lambda: nss(sal, fix),
    'kld': lambda: kld(sal, density),
    'info_gain': lambda: info_gain(sal, fix, baseline),
  }
  return {name: every[name]() for name in metrics}


def per_image_scores(
  saliency,
  fixations,
  density,
  *,
  key,
  valid=None,
  metrics: Sequence[str] = TRAINING_METRICS,
  other_fixations=None,
  baseline=None,
  n_splits: int = 100,
  max_other_fixations: int | None = None,
  host_callbacks: bool = True,
) -> dict[str, jax.Array]:
  """Scores each image of a batch and sums them into mergeable ``(sum, count)`` pairs.

  Each map is first scaled as the benchmark receives it (:func:`as_saliency_image`), then scored
  by the metrics above; the benchmark reports per-image means over the images with a defined
  score (an image without fixations has no NSS or AUC). So this returns, per metric ``m``,
  ``m_sum`` (the sum over valid images with a non-NaN score) and ``m_count`` (how many); a valid
  map holding NaN or infinity makes every ``m_sum`` NaN rather than being skipped. Sums of
  several batches (or devices) merge with ``+``; :func:`mean_scores` divides once at the end.

  Args:
    saliency: ``(B, h, w)`` or ``(B, h, w, 1)`` predicted maps (any range, any sign).
    fixations: ``(B, H, W)`` binary fixation maps.
    density: ``(B, H, W)`` ground-truth densities.
    key: a ``jax.random`` key; image ``i`` uses ``split(key, B)[i]``, split again for AUC-Judd's
      jitter, AUC-Borji's and shuffled AUC's draws.
    valid: optional ``(B,)`` bools; padding examples (False) count nowhere.
    metrics: which of :data:`ALL_METRICS` to compute (static).
    other_fixations: ``(B, H, W)`` negatives of shuffled AUC (needed for ``'auc_shuffled'``).
    baseline: ``(B, h', w')`` baseline maps of info gain (needed for ``'info_gain'``).
    n_splits: random splits of AUC-Borji and shuffled AUC.
    max_other_fixations: candidate cap of :func:`auc_shuffled`.
    host_callbacks: rank AUC-Judd on the host (NumPy through ``jax.pure_callback``, faster on
      CPU) or, if False, on the device (``auc_judd(ranks='device')``, the same values) with no
      host callback in the program: needed where the program is sharded over several devices
      (on XLA:CPU a host callback there can deadlock the collectives; the training task's
      evaluation). No other metric calls the host.

  Returns:
    ``{f'{m}_sum': float32 scalar, f'{m}_count': float32 scalar}`` for each metric ``m``.

  Example:
    >>> fix = jnp.zeros((1, 4, 4), jnp.uint8).at[0, 1, 1].set(1)
    >>> sums = per_image_scores(-fix.astype(jnp.float32), fix, fix.astype(jnp.float32),
    ...                         key=jax.random.key(0), metrics=('cc',))
    >>> {k: round(float(v), 3) for k, v in sums.items()}
    {'cc_sum': -1.0, 'cc_count': 1.0}
  """
  metrics = tuple(metrics)
  unknown = sorted(set(metrics) - set(ALL_METRICS))
  if unknown:
    raise ValueError(f'metrics must be among {ALL_METRICS}, got unknown {unknown}.')
  saliency = jnp.asarray(saliency)
  if saliency.ndim == 4 and saliency.shape[-1] == 1:
    saliency = saliency[..., 0]
  if saliency.ndim != 3 or np.ndim(fixations) != 3 or np.ndim(density) != 3:
    raise ValueError(
      'saliency, fixations and density must be batches (B, H, W); got shapes '
      f'{saliency.shape}, {np.shape(fixations)}, {np.shape(density)}.'
    )
  _check_key(key)
  n = saliency.shape[0]
  fixations = jnp.asarray(fixations)
  if 'auc_shuffled' in metrics:
    if other_fixations is None:
      raise ValueError("metrics include 'auc_shuffled': pass other_fixations (B, H, W).")
    _check_splits(n_splits, 0.1)
  else:
    other_fixations = jnp.zeros((n, 1, 1), jnp.uint8)
  if 'info_gain' in metrics:
    if baseline is None:
      raise ValueError("metrics include 'info_gain': pass baseline (B, h', w').")
  else:
    baseline = jnp.zeros((n, 1, 1), jnp.float32)
  one_image = functools.partial(
    _one_image_scores,
    metrics=metrics,
    n_splits=n_splits,
    max_other=max_other_fixations,
    ranks='host' if host_callbacks else 'device',
  )
  scores = jax.vmap(one_image)(
    saliency,
    fixations,
    jnp.asarray(density),
    jnp.asarray(other_fixations),
    jnp.asarray(baseline),
    jax.random.split(key, n),
  )
  valid = jnp.ones((n,), bool) if valid is None else jnp.asarray(valid, bool)
  # A predicted map holding NaN or infinity is not "an image without a score": skipping it would
  # report a model that emits NaN as a good one. It makes every sum NaN instead (loud).
  poisoned = valid & ~jnp.all(jnp.isfinite(saliency.reshape(n, -1)), axis=1)
  poison = jnp.where(jnp.any(poisoned), jnp.nan, 0.0)
  sums = {}
  for name in metrics:
    counted = valid & ~poisoned & ~jnp.isnan(scores[name])
    sums[f'{name}_sum'] = jnp.sum(jnp.where(counted, scores[name], 0.0)) + poison
    sums[f'{name}_count'] = jnp.sum(counted | poisoned).astype(jnp.float32)
  return sums


def mean_scores(
  sums: Mapping[str, object], metrics: Sequence[str] | None = None
) -> dict[str, float]:
  """Per-image means from the merged sums of :func:`per_image_scores` (host side).

  Args:
    sums: ``{f'{m}_sum', f'{m}_count'}``, summed over batches.
    metrics: the metrics to report; None: those present in ``sums``. A metric without sums, or
      whose count is zero, is NaN.

  Returns:
    ``{metric: float}``.

  Example:
    >>> mean_scores({'cc_sum': 1.5, 'cc_count': 2.0, 'nss_sum': 0.0, 'nss_count': 0.0})
    {'cc': 0.75, 'nss': nan}
  """
  if metrics is None:
    metrics = [k[: -len('_sum')] for k in sums if k.endswith('_sum')]
  means = {}
  for name in metrics:
    count = float(np.asarray(sums.get(f'{name}_count', 0.0)))
    means[name] = float(np.asarray(sums[f'{name}_sum'])) / count if count else math.nan
  return means
