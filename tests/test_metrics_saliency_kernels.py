"""The one-pass kernels behind the saliency metrics (issue 16), each against a brute force.

`test_metrics_saliency.py` checks the metrics against the MATLAB transcriptions; these pin the
pieces that make them fast: the checked min-max, AUC-Judd's uint64 keys,
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


def test_judd_keys_order_as_value_then_draw():
  # The uint64 keys (from the device's (low, high) words) sort exactly as (jittered value,
  # draw) with ties by index: negative values, -0.0 and +0.0, ties in value and in the draw.
  rng = np.random.default_rng(1)
  s = np.concatenate(
    [rng.normal(size=300), [-0.0, 0.0, -1e-30, 1e-30, 3.0, 3.0, -2.0, -2.0]]
  ).astype(np.float32)
  s[:100] = np.round(s[:100])  # many ties
  seed = jnp.asarray([5, 9], jnp.uint32)
  words = np.asarray(jax.jit(sm._judd_keys)(jnp.asarray(s), seed))
  keys = words.view(np.uint64)[:, 0]
  bits = np.asarray(sm._judd_noise_bits(seed, s.size))
  jittered = np.asarray(sm._judd_jittered(jnp.asarray(s), jnp.asarray(bits)))
  expected = np.lexsort((np.arange(s.size), bits, jittered))
  np.testing.assert_array_equal(np.argsort(keys, kind='stable'), expected)


def test_judd_area_keyed_equals_brute_force_and_either_byte_order(monkeypatch):
  rng = np.random.default_rng(2)
  words = rng.integers(0, 2**32, (3, 200, 2), dtype=np.uint64).astype(np.uint32)
  words[..., 1] %= 4  # few distinct high words: many equal keys
  words[..., 0] %= 8
  fixated = rng.random((3, 200)) < 0.1
  keys = (words[..., 1].astype(np.uint64) << np.uint64(32)) | words[..., 0]
  expected = []
  for key, fix in zip(keys, fixated):
    order = np.argsort(key, kind='stable')  # ties by index
    position = np.empty(key.size, np.int64)
    position[order] = np.arange(key.size)
    counts = np.sort(key.size - position[fix])  # c_i, ascending = thresholds descending
    k, n = counts.size, key.size
    fp = np.concatenate([[0], (counts - np.arange(1, k + 1)) / (n - k), [1]])
    tp = np.concatenate([[0], np.arange(1, k + 1) / k, [1]])
    expected.append(np.trapezoid(tp, fp))
  np.testing.assert_allclose(_roc_host.judd_area_keyed(words, fixated), expected, atol=1e-6)
  monkeypatch.setattr(_roc_host.sys, 'byteorder', 'big')  # the word-by-word fallback
  np.testing.assert_allclose(_roc_host.judd_area_keyed(words, fixated), expected, atol=1e-6)


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
  # host_callbacks=False (sharded programs) ranks AUC-Judd on the device; shuffled AUC's urn
  # runs on the device either way, so every metric is allowed and the sums are the same.
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
      metrics=('auc_judd', 'auc_shuffled'),
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
