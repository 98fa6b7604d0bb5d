"""Tests for jaxseg.metrics.saliency against NumPy transcriptions of the MIT benchmark code.

The references below follow cvzoya/saliency code_forMetrics (*.m) statement by statement, with
explicit loops where the MATLAB code loops, in float64; pysaliency's definitions are transcribed
the same way. Inputs are hand-written or small random maps at the fixation map's size (the
resize is tested separately).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.inference.saliency import SaliencyEvaluator, format_table
from jaxseg.metrics import saliency as sm
import reference_data

EPS = 2.2204e-16


# ---------------------------------------------------------------- NumPy references (MATLAB).


def ref_min_max(x):
  with np.errstate(invalid='ignore', divide='ignore'):  # a constant map is all NaN, as MATLAB
    return (x - x.min()) / (x.max() - x.min())


def ref_auc_judd(sal, fix, jitter_noise=None):
  """AUC_Judd.m; `jitter_noise` is the rand(size(map)) draw (None: jitter off)."""
  if not np.any(fix):
    return math.nan
  s = np.asarray(sal, np.float64)
  if jitter_noise is not None:
    s = s + jitter_noise / 10000000
  with np.errstate(invalid='ignore', divide='ignore'):
    s = ref_min_max(s)
  if np.all(np.isnan(s)):  # "NaN saliencyMap": return
    return math.nan
  S = s.ravel(order='F')  # MATLAB's S(:) is column-major; the value does not depend on it
  F = np.asarray(fix).ravel(order='F')
  Sth = S[F > 0]
  n_fix, n_pix = len(Sth), len(S)
  allthreshes = sorted(Sth, reverse=True)
  tp = [0.0] + [0.0] * n_fix + [1.0]
  fp = [0.0] + [0.0] * n_fix + [1.0]
  for i in range(1, n_fix + 1):
    thresh = allthreshes[i - 1]
    aboveth = sum(1 for v in S if v >= thresh)
    tp[i] = i / n_fix
    fp[i] = (aboveth - i) / (n_pix - n_fix)
  return sum((fp[j + 1] - fp[j]) * (tp[j + 1] + tp[j]) / 2 for j in range(len(tp) - 1))


def ref_trapz_roc(sth, negatives, step, n_neg):
  """The inner loop of AUC_Borji.m / AUC_shuffled.m for one split."""
  top = max(list(sth) + list(negatives))
  threshes = [j * step for j in range(int(math.floor(top / step + 1e-9)) + 1)][::-1]
  tp = [0.0] + [sum(1 for v in sth if v >= t) / len(sth) for t in threshes] + [1.0]
  fp = [0.0] + [sum(1 for v in negatives if v >= t) / n_neg for t in threshes] + [1.0]
  return sum((fp[j + 1] - fp[j]) * (tp[j + 1] + tp[j]) / 2 for j in range(len(tp) - 1))


def ref_auc_borji(sal, fix, rng, n_splits=100, step=0.1):
  if np.sum(np.asarray(fix) > 0) <= 1:  # AUC_Borji.m: "no fixationMap"
    return math.nan
  with np.errstate(invalid='ignore', divide='ignore'):
    S = ref_min_max(np.asarray(sal, np.float64)).ravel()
  if np.all(np.isnan(S)):  # "NaN saliencyMap"
    return math.nan
  F = np.asarray(fix).ravel()
  Sth = S[F > 0]
  r = rng.integers(0, S.size, (len(Sth), n_splits))
  return np.mean([ref_trapz_roc(Sth, S[r[:, s]], step, len(Sth)) for s in range(n_splits)])


def ref_auc_shuffled(sal, fix, other, rng, n_splits=100, step=0.1):
  if not np.any(fix):
    return math.nan
  with np.errstate(invalid='ignore', divide='ignore'):
    S = ref_min_max(np.asarray(sal, np.float64)).ravel()
  if np.all(np.isnan(S)):  # "NaN saliencyMap"
    return math.nan
  F, O = np.asarray(fix).ravel(), np.asarray(other).ravel()
  Sth = S[F > 0]
  ind = np.flatnonzero(O > 0)
  m = min(len(Sth), len(ind))
  aucs = []
  for _ in range(n_splits):
    randind = ind[rng.permutation(len(ind))]
    aucs.append(ref_trapz_roc(Sth, S[randind[:m]], step, m))
  return np.mean(aucs)


def ref_nss(sal, fix):
  m = np.asarray(sal, np.float64)
  m = (m - m.mean()) / m.std(ddof=1)
  return m[np.asarray(fix) > 0].mean()


def ref_cc(a, b):
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  a = (a - a.mean()) / a.std(ddof=1)
  b = (b - b.mean()) / b.std(ddof=1)
  # corr2: sum((a-mean)(b-mean)) / sqrt(sum((a-mean)^2) sum((b-mean)^2)), by loops.
  am, bm = a.mean(), b.mean()
  num = den_a = den_b = 0.0
  for x, y in zip(a.ravel(), b.ravel()):
    num += (x - am) * (y - bm)
    den_a += (x - am) ** 2
    den_b += (y - bm) ** 2
  return num / math.sqrt(den_a * den_b)


def ref_similarity(a, b):
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if np.any(a):
    a = ref_min_max(a)
    a = a / a.sum()
  if np.any(b):
    b = ref_min_max(b)
    b = b / b.sum()
  if np.all(np.isnan(a)) or np.all(np.isnan(b)):
    return math.nan
  return sum(min(x, y) for x, y in zip(a.ravel(), b.ravel()))


def ref_kld(sal, density):
  a = np.asarray(sal, np.float64)
  b = np.asarray(density, np.float64)
  if np.any(a):
    a = a / a.sum()
  if np.any(b):
    b = b / b.sum()
  return sum(q * math.log(EPS + q / (p + EPS)) for p, q in zip(a.ravel(), b.ravel()))


def ref_info_gain(sal, fix, base):
  a = ref_min_max(np.asarray(sal, np.float64)).ravel()
  b = ref_min_max(np.asarray(base, np.float64)).ravel()
  a, b = a / a.sum(), b / b.sum()
  locs = np.asarray(fix).ravel() > 0
  return np.mean([math.log2(EPS + x) - math.log2(EPS + y) for x, y in zip(a[locs], b[locs])])


# ------------------------------------------------------------------- pysaliency references.


def ref_pysaliency_auc(sal, fix_counts):
  """Exact ROC area: every fixation (with multiplicity) against every pixel, ties one half."""
  s = np.asarray(sal, np.float64).ravel()
  c = np.asarray(fix_counts).ravel()
  total = weight = 0.0
  for value, count in zip(s, c):
    for _ in range(int(count)):
      wins = sum(1.0 if value > neg else 0.5 if value == neg else 0.0 for neg in s)
      total += wins / s.size
      weight += 1
  return total / weight


def ref_pysaliency_nss(sal, fix_counts):
  s = np.asarray(sal, np.float64)
  mean, std = s.mean(), s.std()  # numpy's default ddof=0
  values = []
  for (y, x), count in np.ndenumerate(np.asarray(fix_counts)):
    for _ in range(int(count)):
      values.append((s[y, x] - mean) / std if std else s[y, x] - mean)
  return np.mean(values)


def ref_pysaliency_sim(a, b):
  def density(m):
    m = np.asarray(m, np.float64)
    if m.min() < 0:
      m = m - m.min()
    return m / m.sum() if m.sum() else np.full(m.shape, 1.0 / m.size)

  return np.minimum(density(a), density(b)).sum()


# ------------------------------------------------------------------------- hand-written data.

SAL = np.array(
  [[0.1, 0.5, 0.2, 0.0], [0.9, 0.3, 0.3, 0.7], [0.4, 0.8, 0.6, 0.1]], np.float32
)  # ties at 0.1 and 0.3
FIX = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], np.uint8)
DENSITY = np.array(
  [[0.05, 0.2, 0.05, 0.0], [0.25, 0.05, 0.1, 0.02], [0.03, 0.1, 0.05, 0.1]], np.float32
)


def _random_case(seed, shape=(9, 11), n_fix=7):
  rng = np.random.default_rng(seed)
  sal = rng.random(shape).astype(np.float32) ** 2
  fix = np.zeros(shape, np.uint8)
  fix[rng.integers(0, shape[0], n_fix), rng.integers(0, shape[1], n_fix)] = 1
  density = rng.random(shape).astype(np.float32)
  return sal, fix, density


# ------------------------------------------------------------------- deterministic metrics.


def test_auc_judd_hand_written_without_jitter():
  # By hand: normalised fixated values 1, 5/9, 3/9, 1/9 (N = 12, K = 4). Thresholds from 1 down:
  # #{S >= t} = 1, 5, 8, 11 -> FP = 0, 3/8, 5/8, 7/8; TP = 1/4, 2/4, 3/4, 1. Trapezoids:
  # 3/8 * (1/4 + 2/4)/2 + 2/8 * (2/4 + 3/4)/2 + 2/8 * (3/4 + 1)/2 + 1/8 * 1 = 0.640625.
  got = sm.auc_judd(SAL, FIX, jitter=False)
  assert float(got) == pytest.approx(0.640625, abs=1e-6)
  assert float(got) == pytest.approx(ref_auc_judd(SAL, FIX), abs=1e-6)


def _judd_noise(key, shape):
  """The uniform draw auc_judd jitters with for `key` (NumPy's, seeded from the key)."""
  from jaxseg.metrics import _roc_host  # noqa: PLC0415 (the metric's own host helper)

  seed = np.asarray(sm._judd_seed(key))
  return _roc_host.judd_noise(seed, int(np.prod(shape))).reshape(shape)


@pytest.mark.parametrize('seed', range(4))
def test_auc_judd_matches_matlab_transcription(seed):
  sal, fix, _ = _random_case(seed)
  assert float(sm.auc_judd(sal, fix, jitter=False)) == pytest.approx(
    ref_auc_judd(sal, fix), abs=1e-6
  )
  # With jitter: the same uniform draw fed to the reference reproduces the value exactly.
  key = jax.random.key(seed)
  noise = _judd_noise(key, sal.shape)
  got = sm.auc_judd(sal, fix, jitter=True, key=key)
  assert float(got) == pytest.approx(ref_auc_judd(sal, fix, noise.astype(np.float64)), abs=1e-6)


def test_auc_judd_jitter_breaks_ties_of_a_flat_map():
  # A map flat except one pixel: without jitter ties make the curve a single step; with it the
  # ties are ordered at random and the reference (same draw) agrees.
  sal = np.zeros((6, 6), np.float32)
  sal[2, 3] = 1.0
  fix = np.zeros((6, 6), np.uint8)
  fix[2, 3] = fix[0, 0] = fix[5, 1] = 1
  key = jax.random.key(7)
  noise = _judd_noise(key, (6, 6))
  assert float(sm.auc_judd(sal, fix, key=key)) == pytest.approx(
    ref_auc_judd(sal, fix, noise.astype(np.float64)), abs=1e-6
  )
  assert float(sm.auc_judd(sal, fix, jitter=False)) == pytest.approx(
    ref_auc_judd(sal, fix), abs=1e-6
  )


@pytest.mark.parametrize('seed', range(3))
def test_auc_judd_device_ranks_equal_host_ranks(seed):
  # ranks='device' (a jax.lax.sort, no host callback: the sharded training eval) against the
  # host's NumPy sort, on continuous maps, maps with many ties, a flat map with one peak, and
  # every convention; the jitter draw is the same hash on both sides, bit for bit.
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  np.testing.assert_array_equal(
    np.asarray(sm._judd_noise_device(sm._judd_seed(key), 4099)), _judd_noise(key, (4099,))
  )
  sal, fix, _ = _random_case(seed)
  tied = np.round(sal * 3) / 3
  peak = np.zeros_like(sal)
  peak[1, 2] = 1.0
  dense = (rng.random(sal.shape) < 0.6).astype(np.uint8)
  device = jax.jit(
    lambda s, f, k, jitter, convention: sm.auc_judd(
      s, f, key=k, jitter=jitter, convention=convention, ranks='device'
    ),
    static_argnames=('jitter', 'convention'),
  )
  for s in (sal, tied, peak):
    for f in (fix, dense):
      for kw in (
        {'jitter': True, 'convention': 'mit'},
        {'jitter': False, 'convention': 'mit'},
        {'jitter': True, 'convention': 'pysaliency'},
      ):
        host = float(sm.auc_judd(s, f, key=key, **kw))
        got = float(device(s, f, key, **kw))
        assert got == pytest.approx(host, abs=1e-6, nan_ok=True), kw
  # Ties ranked by the draw on the device agree with the MATLAB transcription given that draw.
  noise = _judd_noise(key, sal.shape).astype(np.float64)
  assert float(device(tied, fix, key, jitter=True, convention='mit')) == pytest.approx(
    ref_auc_judd(tied, fix, noise), abs=1e-6
  )
  # Degenerate: no fixations, every pixel fixated, a constant map without jitter.
  for f in (np.zeros_like(fix), np.ones_like(fix)):
    assert np.isnan(float(device(sal, f, key, jitter=True, convention='mit')))
  assert np.isnan(float(device(np.full_like(sal, 0.3), fix, key, jitter=False, convention='mit')))


def test_judd_host_counts_break_equal_keys_by_index():
  # Pixels sharing both the jittered value and the draw: the stable (value, draw) order ranks
  # the lower index first (np.lexsort's, jnp.lexsort's); brute force on tiny maps.
  from jaxseg.metrics import _roc_host  # noqa: PLC0415 (the metric's own host helper)

  rng = np.random.default_rng(0)
  for _ in range(50):
    s = (np.round(rng.random(30) * 2) / 2).astype(np.float32)
    u = (rng.integers(0, 4, 30) / 4).astype(np.float32)
    fixated = rng.random(30) < 0.4
    position = np.empty(30, np.int64)
    position[np.lexsort((np.arange(30), u, s))] = np.arange(30)
    np.testing.assert_array_equal(
      _roc_host._judd_counts_jittered(s, u, fixated), 30 - position[fixated]
    )


def test_auc_judd_degenerate_inputs():
  assert np.isnan(sm.auc_judd(SAL, np.zeros_like(FIX)))
  # A constant map without jitter: AUC_Judd.m's "NaN saliencyMap" early return.
  flat = np.full((3, 4), 0.3, np.float32)
  assert np.isnan(sm.auc_judd(flat, FIX, jitter=False)) and np.isnan(ref_auc_judd(flat, FIX))
  # With jitter the map is no longer constant: the draw ranks it, a chance-level score.
  assert 0.0 <= float(sm.auc_judd(flat, FIX, key=jax.random.key(1))) <= 1.0


def test_nss_cc_similarity_kld_info_gain_hand_written():
  assert float(sm.nss(SAL, FIX)) == pytest.approx(ref_nss(SAL, FIX), abs=1e-6)
  assert float(sm.cc(SAL, DENSITY)) == pytest.approx(ref_cc(SAL, DENSITY), abs=1e-6)
  assert float(sm.similarity(SAL, DENSITY)) == pytest.approx(ref_similarity(SAL, DENSITY), abs=1e-6)
  assert float(sm.kld(SAL, DENSITY)) == pytest.approx(ref_kld(SAL, DENSITY), abs=1e-6)
  base = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]], np.float32)
  assert float(sm.info_gain(SAL, FIX, base)) == pytest.approx(
    ref_info_gain(SAL, FIX, base), abs=1e-5
  )


def test_closed_forms():
  # NSS of a one-hot map at its peak: the std over N - 1 is exactly 1/sqrt(N), so
  # NSS = (1 - 1/N) sqrt(N) = 3.75 for N = 16 (and (1 - 1/N) sqrt(N - 1) with pysaliency's N).
  n = 16
  onehot = np.zeros((4, 4), np.float32)
  onehot[1, 2] = 1
  assert float(sm.nss(onehot, onehot.astype(np.uint8))) == pytest.approx(3.75, abs=1e-5)
  assert float(sm.nss(onehot, onehot.astype(np.uint8), convention='pysaliency')) == (
    pytest.approx((1 - 1 / n) * n / math.sqrt(n - 1), abs=1e-5)
  )
  # CC is invariant to affine maps and -1 under negation; SIM of a density with itself is 1.
  assert float(sm.cc(3 * DENSITY + 2, DENSITY)) == pytest.approx(1.0, abs=1e-6)
  assert float(sm.cc(-DENSITY, DENSITY)) == pytest.approx(-1.0, abs=1e-6)
  assert float(sm.similarity(DENSITY, DENSITY)) == pytest.approx(1.0, abs=1e-6)
  assert float(sm.kld(DENSITY, DENSITY)) == pytest.approx(0.0, abs=1e-6)
  # KLD from a uniform prediction is log(N) - entropy(Q).
  q = DENSITY / DENSITY.sum()
  entropy = -sum(v * math.log(v) for v in q.ravel() if v > 0)
  assert float(sm.kld(np.ones_like(DENSITY), DENSITY)) == pytest.approx(
    math.log(q.size) - entropy, abs=1e-5
  )


@pytest.mark.parametrize('seed', range(3))
def test_random_maps_match_transcriptions(seed):
  sal, fix, density = _random_case(seed + 10)
  assert float(sm.nss(sal, fix)) == pytest.approx(ref_nss(sal, fix), abs=1e-5)
  assert float(sm.cc(sal, density)) == pytest.approx(ref_cc(sal, density), abs=1e-6)
  assert float(sm.similarity(sal, density)) == pytest.approx(ref_similarity(sal, density), abs=1e-6)
  assert float(sm.kld(sal, density)) == pytest.approx(ref_kld(sal, density), abs=1e-5)
  assert float(sm.info_gain(sal, fix, density)) == pytest.approx(
    ref_info_gain(sal, fix, density), abs=1e-4
  )


def test_degenerate_inputs_match_matlab():
  flat = np.full((3, 4), 0.3, np.float32)
  zero = np.zeros((3, 4), np.float32)
  nofix = np.zeros_like(FIX)
  assert np.isnan(sm.nss(SAL, nofix)) and np.isnan(sm.nss(flat, FIX))
  assert np.isnan(sm.cc(flat, DENSITY))
  assert np.isnan(sm.similarity(flat, DENSITY)) and np.isnan(ref_similarity(flat, DENSITY))
  assert float(sm.similarity(zero, DENSITY)) == 0.0 == ref_similarity(zero, DENSITY)
  assert float(sm.kld(zero, DENSITY)) == pytest.approx(ref_kld(zero, DENSITY), rel=1e-5)
  assert np.isnan(sm.info_gain(SAL, nofix, DENSITY))
  key = jax.random.key(0)
  assert np.isnan(sm.auc_borji(SAL, nofix, key=key))
  assert np.isnan(sm.auc_shuffled(SAL, nofix, FIX, key=key))
  assert np.isnan(sm.auc_shuffled(SAL, FIX, nofix, key=key))
  # A constant map: min-max makes it all NaN and the .m files return NaN ("NaN saliencyMap").
  rng = np.random.default_rng(0)
  assert np.isnan(sm.auc_borji(flat, FIX, key=key)) and np.isnan(ref_auc_borji(flat, FIX, rng))
  assert np.isnan(sm.auc_shuffled(flat, FIX, 1 - FIX, key=key))
  assert np.isnan(ref_auc_shuffled(flat, FIX, 1 - FIX, rng))
  # AUC_Borji.m (not AUC_shuffled.m) also needs at least two fixated pixels.
  one = np.zeros_like(FIX)
  one[1, 2] = 1
  assert np.isnan(sm.auc_borji(SAL, one, key=key)) and np.isnan(ref_auc_borji(SAL, one, rng))
  assert not np.isnan(sm.auc_shuffled(SAL, one, 1 - one, key=key))


# ------------------------------------------------------------------ stochastic AUCs.


def test_threshold_bins_count_each_bin_exactly():
  # The one-pass variadic count against np.searchsorted, with values exactly on the float32
  # thresholds and one ulp below (not below 0: XLA:CPU flushes denormals to zero), negative,
  # NaN (below every threshold), and a mask.
  thresholds = sm._thresholds(0.1)
  t32 = thresholds.astype(np.float32)
  rng = np.random.default_rng(0)
  values = np.concatenate(
    [t32, np.nextafter(t32[1:], np.float32(-1)), rng.random(500), [-0.5, np.nan]]
  ).astype(np.float32)
  mask = rng.random(values.size) < 0.3
  got = np.asarray(sm._threshold_bins(jnp.asarray(values), (jnp.asarray(mask), None), thresholds))
  bins = np.where(np.isnan(values), 0, np.searchsorted(t32, values, side='right'))
  np.testing.assert_array_equal(got[0], np.bincount(bins[mask], minlength=t32.size + 1))
  np.testing.assert_array_equal(got[1], np.bincount(bins, minlength=t32.size + 1))


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_non_finite_pixel_of_a_large_map_gives_nan(bad):
  # Large enough for XLA:CPU's vectorised reductions (whose min/max drop NaN): one bad pixel
  # anywhere makes every score NaN, under jit.
  rng = np.random.default_rng(0)
  good = rng.random((128, 160)).astype(np.float32)
  fix = (rng.random(good.shape) < 0.01).astype(np.uint8)
  key = jax.random.key(0)
  fns = {
    'judd': lambda s, d: sm.auc_judd(s, fix, key=key),
    'judd_device': lambda s, d: sm.auc_judd(s, fix, key=key, ranks='device'),
    'borji': lambda s, d: sm.auc_borji(s, fix, key=key, n_splits=4),
    'shuffled': lambda s, d: sm.auc_shuffled(s, fix, 1 - fix, key=key, n_splits=4),
    'nss': lambda s, d: sm.nss(s, fix),
    'cc': lambda s, d: sm.cc(s, d),
    'sim': lambda s, d: sm.similarity(s, d),
    'kld': lambda s, d: sm.kld(s, d),
    'ig': lambda s, d: sm.info_gain(s, fix, d),
  }
  for where in ((0, 0), (77, 101), (127, 159)):
    broken = good.copy()
    broken[where] = bad
    for name, fn in fns.items():
      fn_jit = jax.jit(fn)
      assert np.isfinite(float(fn_jit(good, good))), name
      assert np.isnan(float(fn_jit(broken, good))), (name, where)
      if name in ('cc', 'sim', 'kld', 'ig'):  # the others do not read the second map
        assert np.isnan(float(fn_jit(good, broken))), (name, where)


def test_auc_borji_statistically_matches_transcription():
  # Means over many seeds of both: one call (20 splits) has a standard deviation of ~0.025
  # here, so over 200 seeds each the means' difference has sigma ~0.0025; allow 4 sigma.
  sal, fix, _ = _random_case(3, shape=(10, 12), n_fix=9)
  rng = np.random.default_rng(0)
  keys = jax.random.split(jax.random.key(0), 200)
  ours = np.asarray(jax.jit(jax.vmap(lambda k: sm.auc_borji(sal, fix, key=k, n_splits=20)))(keys))
  theirs = np.array([ref_auc_borji(sal, fix, rng, n_splits=20) for _ in range(200)])
  assert abs(ours.mean() - theirs.mean()) < 0.01
  assert ours.std() == pytest.approx(theirs.std(), rel=0.3)


def test_auc_borji_expected_value_closed_form():
  # With both fixated pixels at the maximum (normalised value 1), TP jumps to 1 at threshold 1,
  # so AUC = 1 - E[FP(1)] / 2 and E[FP(1)] = fraction of pixels with value 1: 2 of 12 pixels.
  # (AUC_Borji.m returns NaN for a single fixated pixel.)
  sal = np.array([[0.0, 1.0, 0.3, 0.2], [0.4, 0.5, 1.0, 0.6], [0.7, 0.1, 0.9, 0.8]], np.float32)
  fix = np.zeros((3, 4), np.uint8)
  fix[0, 1] = fix[1, 2] = 1
  value = float(sm.auc_borji(sal, fix, key=jax.random.key(1), n_splits=4000))
  assert value == pytest.approx(1 - (2 / 12) / 2, abs=0.01)


def test_auc_shuffled_statistically_matches_transcription():
  sal, fix, _ = _random_case(4, shape=(10, 12), n_fix=9)
  _, other, _ = _random_case(5, shape=(10, 12), n_fix=14)
  rng = np.random.default_rng(1)
  keys = jax.random.split(jax.random.key(1), 200)
  ours = np.asarray(
    jax.jit(jax.vmap(lambda k: sm.auc_shuffled(sal, fix, other, key=k, n_splits=20)))(keys)
  )
  theirs = np.array([ref_auc_shuffled(sal, fix, other, rng, n_splits=20) for _ in range(200)])
  assert abs(ours.mean() - theirs.mean()) < 0.01
  assert ours.std() == pytest.approx(theirs.std(), rel=0.3)
  # When the other map has no more fixated pixels than K, every split uses all of them: exact.
  _, few, _ = _random_case(6, shape=(10, 12), n_fix=5)
  exact = ref_auc_shuffled(sal, fix, few, np.random.default_rng(0), n_splits=1)
  assert float(sm.auc_shuffled(sal, fix, few, key=jax.random.key(0))) == pytest.approx(
    exact, abs=1e-6
  )


def test_auc_shuffled_cap():
  sal, fix, _ = _random_case(4, shape=(10, 12), n_fix=9)
  _, other, _ = _random_case(5, shape=(10, 12), n_fix=14)
  key = jax.random.key(3)
  m = int((other > 0).sum())
  full = sm.auc_shuffled(sal, fix, other, key=key)
  # A cap that holds every other fixation gives a valid draw; one below gives NaN, never a
  # silently truncated draw.
  assert not np.isnan(sm.auc_shuffled(sal, fix, other, key=key, max_other_fixations=m))
  assert np.isnan(sm.auc_shuffled(sal, fix, other, key=key, max_other_fixations=m - 1))
  assert 0.0 <= float(full) <= 1.0


# -------------------------------------------------------------------------- pysaliency.


def test_pysaliency_convention():
  counts = FIX.copy()
  counts[1, 0] = 3  # repeated fixations count under pysaliency, once under MIT
  assert float(sm.auc_judd(SAL, counts, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_auc(SAL, counts), abs=1e-6
  )
  assert float(sm.nss(SAL, counts, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_nss(SAL, counts), abs=1e-5
  )
  assert float(sm.similarity(SAL, DENSITY, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_sim(SAL, DENSITY), abs=1e-6
  )
  # The conventions really differ on these inputs.
  assert float(sm.nss(SAL, counts)) != pytest.approx(
    float(sm.nss(SAL, counts, convention='pysaliency')), abs=1e-3
  )
  assert float(sm.similarity(SAL + 0.2, DENSITY)) != pytest.approx(
    float(sm.similarity(SAL + 0.2, DENSITY, convention='pysaliency')), abs=1e-3
  )
  assert float(sm.similarity(SAL + 0.2, DENSITY, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_sim(SAL + 0.2, DENSITY), abs=1e-6
  )
  # A constant map: pysaliency gives NSS 0 and CC 0 where MIT gives NaN.
  flat = np.full((3, 4), 0.3, np.float32)
  assert float(sm.nss(flat, FIX, convention='pysaliency')) == 0.0
  assert float(sm.cc(flat, DENSITY, convention='pysaliency')) == 0.0
  # Exact AUC of a random case against the double loop.
  sal, fix, _ = _random_case(20)
  assert float(sm.auc_judd(sal, fix, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_auc(sal, fix), abs=1e-6
  )
  assert float(sm.similarity(sal - 0.5, fix, convention='pysaliency')) == pytest.approx(
    ref_pysaliency_sim(sal - 0.5, fix), abs=1e-6
  )


# ------------------------------------------------------------------- resize, jit, vmap.


def test_saliency_map_is_resized_to_the_fixation_map():
  small = np.random.default_rng(0).random((6, 8)).astype(np.float32)
  fix = np.zeros((12, 16), np.uint8)
  fix[3, 4] = fix[9, 10] = 1
  resized = np.clip(jax.image.resize(small, (12, 16), 'cubic'), small.min(), small.max())
  assert float(jax.image.resize(small, (12, 16), 'cubic').min()) < small.min()  # overshoot
  for fn in (
    lambda s: sm.nss(s, fix),
    lambda s: sm.cc(s, fix.astype(np.float32)),
    lambda s: sm.auc_judd(s, fix, jitter=False),
  ):
    assert float(fn(small)) == pytest.approx(float(fn(resized)), abs=1e-6)


def test_jit_and_vmap_equal_eager():
  cases = [_random_case(s) for s in range(2)]
  sal = np.stack([c[0] for c in cases])
  fix = np.stack([c[1] for c in cases])
  dens = np.stack([c[2] for c in cases])
  keys = jax.random.split(jax.random.key(0), 2)
  fns = {
    'judd': lambda s, f, d, k: sm.auc_judd(s, f, key=k),
    'borji': lambda s, f, d, k: sm.auc_borji(s, f, key=k, n_splits=10),
    'shuffled': lambda s, f, d, k: sm.auc_shuffled(s, f, 1 - f, key=k, n_splits=10),
    'nss': lambda s, f, d, k: sm.nss(s, f),
    'cc': lambda s, f, d, k: sm.cc(s, d),
    'sim': lambda s, f, d, k: sm.similarity(s, d),
    'kld': lambda s, f, d, k: sm.kld(s, d),
    'ig': lambda s, f, d, k: sm.info_gain(s, f, d),
  }
  for name, fn in fns.items():
    eager = np.array([fn(sal[i], fix[i], dens[i], keys[i]) for i in range(2)])
    fn_jit = jax.jit(fn)
    jitted = np.array([fn_jit(sal[i], fix[i], dens[i], keys[i]) for i in range(2)])
    vmapped = np.asarray(jax.jit(jax.vmap(fn))(sal, fix, dens, keys))
    np.testing.assert_allclose(jitted, eager, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(vmapped, eager, atol=1e-6, err_msg=name)


def test_bad_arguments():
  with pytest.raises(ValueError, match='sal must have shape'):
    sm.nss(SAL[None], FIX)
  with pytest.raises(TypeError, match='fix must be an array'):
    sm.nss(SAL, [[1]])
  with pytest.raises(ValueError, match='convention must be one of'):
    sm.cc(SAL, DENSITY, convention='matlab')
  with pytest.raises(ValueError, match='key must be a jax.random key'):
    sm.auc_borji(SAL, FIX, key=None)
  with pytest.raises(ValueError, match='n_splits must be a positive int'):
    sm.auc_borji(SAL, FIX, key=jax.random.key(0), n_splits=0)
  with pytest.raises(ValueError, match=r'step must be a number in \(0, 1\]'):
    sm.auc_shuffled(SAL, FIX, FIX, key=jax.random.key(0), step=2.0)
  with pytest.raises(ValueError, match="other_fix must have fix's shape"):
    sm.auc_shuffled(SAL, FIX, FIX[:2], key=jax.random.key(0))
  with pytest.raises(ValueError, match='n_splits must be a positive int, got 0'):
    SaliencyEvaluator(key=jax.random.key(0), n_splits=0)
  with pytest.raises(ValueError, match='n_other must be a positive int, got 0'):
    SaliencyEvaluator(key=jax.random.key(0), n_other=0)
  with pytest.raises(ValueError, match='max_other_fixations must be a positive int or None'):
    SaliencyEvaluator(key=jax.random.key(0), max_other_fixations=-3)
  with pytest.raises(ValueError, match="ranks must be 'host' or 'device', got 'gpu'"):
    sm.auc_judd(SAL, FIX, ranks='gpu')


# ---------------------------------------------------------------------------- evaluator.


def test_evaluator_means_and_table():
  cases = [_random_case(s) for s in range(4)]
  sal = np.stack([c[0] for c in cases])
  fix = np.stack([c[1] for c in cases])
  dens = np.stack([c[2] for c in cases])
  evaluator = SaliencyEvaluator(key=jax.random.key(0), n_splits=10)
  # Signed maps (as the deep SalNet's): scored min-max scaled, as the benchmark receives them.
  signed = sal - 0.5
  evaluator.update(signed[:2, ..., None], fix[:2], dens[:2])
  evaluator.update(signed[2:], fix[2:], dens[2:], valid=np.array([True, False]))
  result = evaluator.result()
  # KLD of the min-max scaled map (the training task's path, tests/test_saliency_training.py,
  # meets the same oracle); the raw signed map would give P < 0.
  assert result['kld'] == pytest.approx(
    np.mean([ref_kld(ref_min_max(c[0] - 0.5), c[2]) for c in cases[:3]]), rel=1e-5
  )
  assert np.isnan(result['info_gain'])  # no baseline given
  with_baseline = SaliencyEvaluator(key=jax.random.key(0), n_splits=10)
  with_baseline.update(sal[:2], fix[:2], dens[:2], baseline=dens[3])
  assert with_baseline.result()['info_gain'] == pytest.approx(
    np.mean([ref_info_gain(c[0], c[1], dens[3]) for c in cases[:2]]), abs=1e-4
  )
  # Deterministic metrics are the means of the per-image references over the 3 valid images.
  assert result['cc'] == pytest.approx(np.mean([ref_cc(c[0], c[2]) for c in cases[:3]]), abs=1e-6)
  assert result['nss'] == pytest.approx(np.mean([ref_nss(c[0], c[1]) for c in cases[:3]]), abs=1e-5)
  assert result['similarity'] == pytest.approx(
    np.mean([ref_similarity(c[0], c[2]) for c in cases[:3]]), abs=1e-6
  )
  assert 0.0 < result['auc_shuffled'] < 1.0 and 0.0 < result['auc_borji'] < 1.0
  table = format_table({'model': result})
  header, rule, row = table.splitlines()
  assert header.split()[1:] == [
    'Similarity',
    'CC',
    'AUC',
    'shuffled',
    'AUC',
    'Borji',
    'AUC',
    'Judd',
  ]
  assert row.split()[2] == f'{result["cc"]:.3f}'


# ------------------------------------------------------------------------------ real data.

REFERENCE = reference_data.path('mit1003-i210')


def test_classic_models_on_mit1003_i210():
  # The benchmark's demo image with the maps of Judd et al.'s model and Itti-Koch. Sanity, not a
  # golden value: Judd's model predicts fixations far above chance on every location metric,
  # better than Itti-Koch, and a map of the fixations themselves beats both.
  import os

  if not os.path.isdir(REFERENCE):
    pytest.skip('reference data absent')
  io = pytest.importorskip('scipy.io')
  from PIL import Image

  fix = io.loadmat(os.path.join(REFERENCE, 'fixation_locations.mat'))['fixations']
  read = lambda name: np.asarray(Image.open(os.path.join(REFERENCE, name)), np.float32)
  judd, itti, fixmap = read('judd_model.jpg'), read('ittikoch_model.jpg'), read('fixation_map.jpg')
  key = jax.random.key(0)
  scores = {}
  for name, m in [('judd', judd), ('itti', itti), ('human', fixmap)]:
    scores[name] = {
      'judd': float(sm.auc_judd(m, fix, key=key)),
      'nss': float(sm.nss(m, fix)),
      'cc': float(sm.cc(m, fixmap)),
    }
  assert scores['judd']['judd'] > 0.8
  assert scores['judd']['nss'] > 1.0
  assert scores['judd']['judd'] > scores['itti']['judd'] > 0.5
  assert scores['human']['judd'] > scores['judd']['judd']
  # A random map is at chance.
  noise = np.random.default_rng(0).random(fix.shape).astype(np.float32)
  assert float(sm.auc_judd(noise, fix, key=key)) == pytest.approx(0.5, abs=0.05)


def test_evaluator_shuffled_auc_uses_the_other_images_fixations():
  # Two images with as many fixated pixels each: with n_other=1 each image's negatives are all of
  # the other's fixations (m = K = M), so the draw is deterministic and equals the transcription.
  sal0, fix0, dens0 = _random_case(30, n_fix=6)
  sal1, fix1, dens1 = _random_case(31, n_fix=6)
  assert fix0.sum() == fix1.sum()
  evaluator = SaliencyEvaluator(key=jax.random.key(0), n_splits=5, n_other=1)
  evaluator.update(np.stack([sal0, sal1]), np.stack([fix0, fix1]), np.stack([dens0, dens1]))
  rng = np.random.default_rng(0)
  expected = np.mean(
    [
      ref_auc_shuffled(sal0, fix0, fix1, rng, n_splits=1),
      ref_auc_shuffled(sal1, fix1, fix0, rng, n_splits=1),
    ]
  )
  assert evaluator.result()['auc_shuffled'] == pytest.approx(expected, abs=1e-6)


def test_info_gain_closed_forms():
  # Against itself the gain is 0; against a uniform baseline it is log2(N P_f) averaged over the
  # fixations, P the min-max normalised map divided by its sum.
  sal, fix, _ = _random_case(40)
  assert float(sm.info_gain(sal, fix, sal)) == pytest.approx(0.0, abs=1e-6)
  ramp = np.arange(sal.size, dtype=np.float32).reshape(sal.shape)  # min-max keeps it a ramp
  p = (ramp - ramp.min()) / (ramp.max() - ramp.min())
  p = p / p.sum()
  uniform_after_min_max = np.ones_like(sal)
  uniform_after_min_max[0, 0] = 0.0  # min-max of a constant is NaN; a single zero is near-uniform
  b = uniform_after_min_max / uniform_after_min_max.sum()
  expected = np.mean(np.log2(EPS + p[fix > 0]) - np.log2(EPS + b[fix > 0]))
  assert float(sm.info_gain(ramp, fix, uniform_after_min_max)) == pytest.approx(expected, abs=1e-4)
