"""The one-pass kernels behind the saliency metrics (issue 16), each against a brute force.

`test_metrics_saliency.py` checks the metrics against the MATLAB transcriptions; these pin the
pieces that make them fast: the checked min-max, AUC-Judd's ranks from uint32 values,
and the two samplers that replace drawing pixels (with and without replacement).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.metrics import _roc_host
from jaxseg.metrics import saliency as sm


@pytest.mark.parametrize(
  ('values', 'ok'),
  [
    ([0.0, 1.0, 3.0], True),
    ([2.0, 2.0, 2.0], False),  # constant: all NaN after min-max in MATLAB
    ([0.0, np.nan, 1.0], False),
    ([0.0, np.inf, 1.0], False),
    ([-3e38, 0.0, 3e38], False),  # the range overflows: the maximum normalises to NaN
  ],
)
def test_min_max_checked_flags_what_the_normalised_map_would_show(values, ok):
  # Large enough for XLA:CPU's vectorised reductions (whose min/max drop NaN).
  x = np.tile(np.asarray(values, np.float32), 700)
  s, got_ok = jax.jit(sm._min_max_checked)(x)
  assert bool(got_ok) == ok
  with np.errstate(invalid='ignore', over='ignore'):
    ref = (x - x.min()) / (x.max() - x.min())
  assert bool(np.all(np.isfinite(ref))) == ok
  if ok:
    np.testing.assert_allclose(np.asarray(s), ref, atol=1e-7)


def _stable_counts(ordered, draws, fixated):
  """c_i = n - position of fixated pixel i in the stable order by (value, draw): brute force."""
  order = np.lexsort((np.arange(ordered.size), draws, ordered))
  position = np.empty(ordered.size, np.int64)
  position[order] = np.arange(ordered.size)
  return ordered.size - position[fixated]


def _area(counts, n):
  counts = np.sort(counts)  # ascending counts: thresholds from the highest down
  k = counts.size
  fp = np.concatenate([[0], (counts - np.arange(1, k + 1)) / (n - k), [1]])
  tp = np.concatenate([[0], np.arange(1, k + 1) / k, [1]])
  return np.trapezoid(tp, fp)


def test_judd_ordered_bits_order_as_the_jittered_values():
  # The device's uint32 sorts exactly as the jittered float32 values (negative values, -0.0
  # and +0.0, ties), and the host's _ordered_bits gives the same integers.
  rng = np.random.default_rng(1)
  s = np.concatenate(
    [rng.normal(size=300), [-0.0, 0.0, -1e-30, 1e-30, 3.0, 3.0, -2.0, -2.0]]
  ).astype(np.float32)
  s[:100] = np.round(s[:100])  # many ties
  seed = jnp.asarray([5, 9], jnp.uint32)
  ordered = np.asarray(jax.jit(sm._judd_ordered)(jnp.asarray(s), seed))
  bits = np.asarray(sm._judd_noise_bits(seed, s.size))
  np.testing.assert_array_equal(bits, _roc_host.noise_bits(np.asarray(seed), np.arange(s.size)))
  jittered = np.asarray(sm._judd_jittered(jnp.asarray(s), jnp.asarray(bits)))
  np.testing.assert_array_equal(ordered, _roc_host._ordered_bits(jittered))
  np.testing.assert_array_equal(
    np.lexsort((np.arange(s.size), bits, ordered)),
    np.lexsort((np.arange(s.size), bits, jittered)),
  )


@pytest.mark.parametrize('levels', [1_000_000, 3, 60])
def test_judd_area_jittered_equals_brute_force(levels):
  # Distinct values (no ties), a few tied values (ranked group by group) and many tied values
  # (the full-key fallback): the stable (value, draw, index) order, by brute force.
  rng = np.random.default_rng(levels)
  n = 400
  ordered = rng.integers(0, levels, (3, n)).astype(np.uint32)
  fixated = rng.random((3, n)) < 0.1
  seed = np.array([[1, 2], [3, 4], [5, 6]], np.uint32)
  expected = [
    _area(_stable_counts(o, _roc_host.noise_bits(sd, np.arange(n)), f), n)
    for o, sd, f in zip(ordered, seed, fixated)
  ]
  got = _roc_host.judd_area_jittered(ordered, seed, fixated)
  np.testing.assert_allclose(got, expected, atol=1e-6)
  # The draw really breaks the ties here: ranking ties by index alone gives other areas.
  if levels < n:
    by_index = [
      _area(_stable_counts(o, np.zeros(n, np.uint32), f), n) for o, f in zip(ordered, fixated)
    ]
    assert not np.allclose(by_index, expected, atol=1e-6)


def test_uniform_draws_above_is_the_multinomial_of_randi():
  # Counts at or above nested thresholds of `count` uniform draws: exact at fractions 1 and 0,
  # binomial mean and variance in between (4000 splits: 4-sigma bounds).
  fractions = jnp.asarray([1.0, 0.75, 0.3, 0.0], jnp.float32)
  count = 150
  got = np.asarray(
    jax.jit(lambda k: sm._uniform_draws_above(k, fractions, jnp.int32(count), 4000))(
      jax.random.key(0)
    )
  )
  assert np.all(got[:, 0] == count) and np.all(got[:, 3] == 0)
  assert np.all(np.diff(got, axis=1) <= 0)
  for j, p in ((1, 0.75), (2, 0.3)):
    sd = np.sqrt(count * p * (1 - p))
    assert abs(got[:, j].mean() - count * p) < 4 * sd / np.sqrt(4000)
    assert got[:, j].std() == pytest.approx(sd, rel=0.1)


def test_urn_draws_above_is_the_hypergeometric_of_randperm():
  # Without replacement: all candidates drawn gives their counts exactly; otherwise the
  # hypergeometric mean and variance (finite-population correction), and never more than
  # there are.
  above = jnp.asarray([40.0, 25.0, 6.0, 0.0], jnp.float32)
  total = jnp.float32(50.0)
  draw = jax.jit(lambda k, c: sm._urn_draws_above(k, above, total, c, 4000))
  np.testing.assert_array_equal(
    np.asarray(draw(jax.random.key(1), jnp.int32(50))), np.broadcast_to(above, (4000, 4))
  )
  n = 30
  got = np.asarray(draw(jax.random.key(2), jnp.int32(n)))
  assert np.all(got <= np.asarray(above)) and np.all(got[:, 0] >= n - 10)
  for j in range(3):
    p = float(above[j]) / 50
    sd = np.sqrt(n * p * (1 - p) * (50 - n) / 49)
    assert abs(got[:, j].mean() - n * p) < 4 * sd / np.sqrt(4000) + 1e-9
    assert got[:, j].std() == pytest.approx(sd, rel=0.1)


def test_per_image_scores_without_host_callbacks_gives_the_same_sums():
  # host_callbacks=False (sharded programs) used to refuse shuffled AUC, whose draw ran on the
  # host; its urn runs on the device now, so it is allowed and the sums are the same.
  rng = np.random.default_rng(3)
  sal = rng.random((3, 12, 14)).astype(np.float32)
  fix = (rng.random((3, 12, 14)) < 0.1).astype(np.uint8)
  density = rng.random((3, 12, 14)).astype(np.float32)
  other = np.roll(fix, 1, axis=0)
  scores = jax.jit(
    lambda s, f, d, o, host: sm.per_image_scores(
      s,
      f,
      d,
      key=jax.random.key(4),
      metrics=('auc_shuffled',),
      other_fixations=o,
      n_splits=10,
      host_callbacks=host,
    ),
    static_argnames='host',
  )
  host = scores(sal, fix, density, other, host=True)
  device = scores(sal, fix, density, other, host=False)
  assert set(host) == set(device)
  for name in host:
    assert float(device[name]) == pytest.approx(float(host[name]), abs=1e-5), name
  assert float(host['auc_shuffled_count']) == 3.0


@pytest.mark.parametrize('shape', [(37, 53), (2, 65_535), (1, 70_000)])
def test_packed_threshold_bins_equal_one_counter_per_mask(shape):
  # Two masks' counts packed in one int32 per threshold and row (rows narrower than 2^16;
  # wider ones take the unpacked path), against the one-counter-per-mask reduction: values on
  # the thresholds, one ulp below, NaN, and rows of 2^16 - 1 pixels (the largest count that
  # packs: a mask true on almost the whole row fills the low half without carrying).
  thresholds = sm._thresholds(0.1)
  t32 = thresholds.astype(np.float32)
  rng = np.random.default_rng(5)
  values = rng.random(shape).astype(np.float32)
  flat = values.reshape(-1)
  flat[: t32.size] = t32
  flat[t32.size : 2 * t32.size - 1] = np.nextafter(t32[1:], np.float32(-1))
  flat[-1] = np.nan
  first = rng.random(shape) < 0.7
  second = rng.random(shape) < 0.99
  for masks in ((first, None), (first, second)):
    flat_masks = tuple(None if m is None else jnp.asarray(m.reshape(-1)) for m in masks)
    expected = sm._threshold_bins(jnp.asarray(flat), flat_masks, thresholds)
    got = jax.jit(lambda v, a, b: sm._threshold_bins_2d(v, (a, b), thresholds))(
      values, *(None if m is None else jnp.asarray(m) for m in masks)
    )
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
