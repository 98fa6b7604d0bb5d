"""Tests of the top-k counts against a NumPy loop, and of their merging and finalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.metrics.classification import top_k_correct, top_k_error


def _reference_correct(logits, labels, k):
  """Counts examples whose label is among the k largest scores (distinct scores)."""
  count = 0
  for scores, label in zip(logits, labels):
    order = sorted(range(len(scores)), key=lambda c: -scores[c])
    count += label in order[:k]
  return count


@pytest.mark.parametrize('k', [1, 2, 5, 10])
def test_matches_numpy_loop(k):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(50, 10)).astype(np.float32)
  labels = rng.integers(0, 10, size=50)
  assert float(top_k_correct(jnp.asarray(logits), jnp.asarray(labels), k=k)) == _reference_correct(
    logits, labels, k
  )


def test_top_k_of_all_classes_counts_everything():
  assert (
    float(top_k_correct(jnp.ones((4, 3)) * jnp.arange(3.0), jnp.array([0, 1, 2, 0]), k=3)) == 4.0
  )


def test_ties_count_in_the_examples_favour():
  logits = jnp.array([[1.0, 1.0, 0.0], [2.0, 1.0, 1.0]])
  assert float(top_k_correct(logits, jnp.array([1, 2]), k=1)) == 1.0  # first ties, second not
  assert float(top_k_correct(logits, jnp.array([1, 2]), k=2)) == 2.0


def test_weights_mask_padded_examples():
  logits = jnp.eye(4)
  labels = jnp.array([0, 1, 3, 3])  # third is wrong
  assert float(top_k_correct(logits, labels, k=1)) == 3.0
  valid = jnp.array([True, False, True, True])
  assert float(top_k_correct(logits, labels, k=1, weights=valid)) == 2.0


def test_sums_over_batches_give_the_split_error():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(30, 8)))
  labels = jnp.asarray(rng.integers(0, 8, size=30))
  whole = top_k_correct(logits, labels, k=5)
  parts = sum(top_k_correct(logits[i : i + 7], labels[i : i + 7], k=5) for i in range(0, 30, 7))
  assert float(parts) == float(whole)
  expected = 1 - _reference_correct(np.asarray(logits), np.asarray(labels), 5) / 30
  assert top_k_error(parts, 30) == pytest.approx(expected)


@pytest.mark.parametrize('k', [0, 4, 1.5])
def test_rejects_bad_k(k):
  with pytest.raises(ValueError, match='k must be'):
    top_k_correct(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), k=k)


def test_rejects_bad_shapes_and_counts():
  with pytest.raises(ValueError, match='labels'):
    top_k_correct(jnp.zeros((2, 3)), jnp.zeros(3, jnp.int32))
  with pytest.raises(ValueError, match='weights'):
    top_k_correct(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), weights=jnp.ones(3))
  with pytest.raises(ValueError, match='count'):
    top_k_error(0, 0)
  with pytest.raises(ValueError, match=r'labels must lie in \[0, 3\), found \[3\]'):
    top_k_correct(jnp.zeros((2, 3)), jnp.array([0, 3]))
  with pytest.raises(TypeError, match='integer'):
    top_k_correct(jnp.zeros((2, 3)), jnp.zeros(2))
  # Under jit the label cannot be checked: the count turns NaN instead of clamping 3 to 2.
  assert np.isnan(jax.jit(top_k_correct)(jnp.zeros((2, 3)), jnp.array([0, 3])))
  # ... unless that example is padding (weight 0).
  assert (
    float(
      jax.jit(top_k_correct)(jnp.zeros((2, 3)), jnp.array([0, 3]), weights=jnp.array([1.0, 0.0]))
    )
    == 1.0
  )
