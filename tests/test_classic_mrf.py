"""Tests for jaxseg.classic.mrf: energies from the definition, exhaustive search, certificates.

gco-wrapper's alpha-expansion is compared in tests/test_classic_alpha_expansion_gco.py (its own
module: importing gco rebinds numpy.int for the process); here alpha-expansion is reached through
``mrf_map`` and checked against exhaustive search and TRW-S's bound.

Every method's reported energy is the energy of its labels; exhaustive search over all 3^9
labellings of 3x3 problems gives the optimum, which TRW-S's lower bound never exceeds and no
method beats; TRW-S is exact on chains and trees; ICM never increases the energy.
"""

import doctest
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.classic import mrf

MODELS = [('potts', None), ('truncated_linear', 1.0)]


def _numpy_energy(labels, unary, pairwise, connectivity, model, truncation):
  """The energy by a loop over pixels and their forward neighbours."""
  h, w, _ = unary.shape
  weights = np.broadcast_to(np.asarray(pairwise, np.float64), (h, w, connectivity // 2))
  offsets = [(0, 1), (1, 0), (1, 1), (1, -1)][: connectivity // 2]
  total = 0.0
  for r in range(h):
    for c in range(w):
      a = labels[r, c]
      total += unary[r, c, a]
      for k, (dr, dc) in enumerate(offsets):
        rr, cc = r + dr, c + dc
        if 0 <= rr < h and 0 <= cc < w:
          b = labels[rr, cc]
          dist = float(a != b) if model == 'potts' else min(abs(int(a) - int(b)), truncation)
          total += weights[r, c, k] * dist
  return total


def _all_energies(unary, pairwise, connectivity, model, truncation):
  """The energy of every labelling of a small grid (vectorised over labellings)."""
  h, w, num_labels = unary.shape
  labels = np.array(list(itertools.product(range(num_labels), repeat=h * w)), np.int32)
  weights = mrf._check_pairwise(pairwise, (h, w), connectivity, jnp.float32)
  labels = jnp.asarray(labels.reshape(-1, h, w))
  return labels, np.asarray(
    _energies(labels, jnp.asarray(unary), weights, model, truncation or 1.0)
  )


_energies = jax.jit(
  jax.vmap(mrf._energy, in_axes=(0, None, None, None, None)), static_argnums=(3, 4)
)


def _problem(seed, shape, connectivity, scale=2.0):
  rng = np.random.default_rng(seed)
  unary = rng.random(shape).astype(np.float32)
  pairwise = (scale * rng.random(shape[:2] + (connectivity // 2,))).astype(np.float32)
  return unary, pairwise


def _methods(unary, pairwise, connectivity, model, truncation, iterations=30):
  kwargs = {'connectivity': connectivity, 'model': model, 'truncation': truncation}
  out = {
    m: mrf.mrf_map(unary, pairwise, method=m, iterations=iterations, **kwargs)
    for m in ('icm', 'mean_field', 'trws')
  }
  out['alpha_expansion'] = mrf.mrf_map(
    unary, pairwise, method='alpha_expansion', iterations=5, **kwargs
  )
  labels, energy, bound = mrf.trws(unary, pairwise, iterations=iterations, **kwargs)
  return out, (labels, energy, bound)


@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('model,truncation', MODELS + [('truncated_linear', 2.5)])
def test_mrf_energy_matches_loop_over_edges(connectivity, model, truncation):
  unary, pairwise = _problem(0, (5, 6, 4), connectivity)
  labels = np.random.default_rng(1).integers(0, 4, (5, 6))
  for weights in (pairwise, 0.7):
    got = mrf.mrf_energy(
      labels, unary, weights, connectivity=connectivity, model=model, truncation=truncation
    )
    want = _numpy_energy(labels, unary, weights, connectivity, model, truncation)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


@pytest.mark.parametrize('connectivity', [4, pytest.param(8, marks=pytest.mark.slow)])
@pytest.mark.parametrize('model,truncation', MODELS)
def test_exhaustive_3x3_three_labels(connectivity, model, truncation):
  kwargs = {'connectivity': connectivity, 'model': model, 'truncation': truncation}
  found_gap = False
  for seed in range(3):
    unary, pairwise = _problem(seed, (3, 3, 3), connectivity, scale=2.5)
    _, energies = _all_energies(unary, pairwise, connectivity, model, truncation)
    optimum = energies.min()
    tol = 1e-5 * max(1.0, abs(optimum))
    results, (labels, energy, bound) = _methods(unary, pairwise, connectivity, model, truncation)
    assert float(bound) <= optimum + tol
    for method, (lab, e) in list(results.items()) + [('trws()', (labels, energy))]:
      assert lab.shape == (3, 3) and lab.dtype == jnp.int32, method
      np.testing.assert_allclose(
        float(e), float(mrf.mrf_energy(lab, unary, pairwise, **kwargs)), rtol=1e-6, err_msg=method
      )
      assert float(e) >= optimum - tol, method
    # Alpha-expansion's guarantee: within 2 max V / min V of the optimum (unaries >= 0).
    factor = 2.0 if model == 'potts' else 2.0 * truncation
    assert float(results['alpha_expansion'][1]) <= factor * optimum + tol
    # The bound certifies optimality where it meets the energy; then the labels are optimal.
    if float(energy) - float(bound) <= tol:
      np.testing.assert_allclose(float(energy), optimum, atol=tol)
    found_gap |= float(results['icm'][1]) > optimum + tol
  assert found_gap or connectivity == 8, 'problems too easy: ICM always optimal'


@pytest.mark.parametrize('shape', [(1, 9), (8, 1), (1, 1)])
@pytest.mark.parametrize('model,truncation', MODELS)
def test_trws_is_exact_on_chains(shape, model, truncation):
  unary, pairwise = _problem(3, shape + (3,), 4, scale=3.0)
  _, energies = _all_energies(unary, pairwise, 4, model, truncation)
  _, energy, bound = mrf.trws(unary, pairwise, iterations=1, model=model, truncation=truncation)
  np.testing.assert_allclose(float(energy), energies.min(), rtol=1e-5)
  np.testing.assert_allclose(float(bound), energies.min(), rtol=1e-5)


@pytest.mark.parametrize(
  'model,truncation', [MODELS[0], pytest.param(*MODELS[1], marks=pytest.mark.slow)]
)
def test_trws_is_exact_on_a_spanning_tree_of_the_grid(model, truncation):
  # Zero weights on every down edge but the first column's leave a comb-shaped spanning tree.
  for seed in range(3):
    unary, pairwise = _problem(10 + seed, (3, 3, 3), 4, scale=3.0)
    pairwise[:, 1:, 1] = 0.0
    _, energies = _all_energies(unary, pairwise, 4, model, truncation)
    _, energy, bound = mrf.trws(unary, pairwise, iterations=20, model=model, truncation=truncation)
    np.testing.assert_allclose(float(energy), energies.min(), rtol=1e-5)
    np.testing.assert_allclose(float(bound), energies.min(), rtol=1e-5)


@pytest.mark.parametrize(
  'connectivity,model,truncation',
  [
    (4, 'potts', None),
    pytest.param(8, 'potts', None, marks=pytest.mark.slow),
    pytest.param(4, 'truncated_linear', 2.0, marks=pytest.mark.slow),
    pytest.param(8, 'truncated_linear', 1.0, marks=pytest.mark.slow),
  ],
)
def test_trws_bound_is_below_every_method_on_random_32x32(connectivity, model, truncation):
  unary, pairwise = _problem(5, (32, 32, 5), connectivity, scale=1.0)
  results, (_, energy, bound) = _methods(
    unary, pairwise, connectivity, model, truncation, iterations=10
  )
  tol = 1e-5 * float(energy)
  for method, (_, e) in results.items():
    assert float(bound) <= float(e) + tol, method
  assert float(bound) <= float(energy) + tol
  # TRW-S is stronger than ICM and mean field here.
  assert float(energy) <= min(float(results[m][1]) for m in ('icm', 'mean_field')) + tol


@pytest.mark.slow
def test_trws_bound_does_not_decrease_with_iterations():
  unary, pairwise = _problem(6, (12, 12, 4), 4, scale=1.5)
  bounds = [float(mrf.trws(unary, pairwise, iterations=i)[2]) for i in range(1, 6)]
  assert all(b1 >= b0 - 1e-5 * abs(b0) for b0, b1 in itertools.pairwise(bounds)), bounds


@pytest.mark.parametrize('connectivity', [4, pytest.param(8, marks=pytest.mark.slow)])
def test_icm_energy_never_increases(connectivity):
  unary, pairwise = _problem(7, (24, 24, 4), connectivity, scale=1.0)
  energies = [
    float(mrf.mrf_map(unary, pairwise, method='icm', iterations=i, connectivity=connectivity)[1])
    for i in range(6)
  ]
  assert all(e1 <= e0 for e0, e1 in itertools.pairwise(energies)), energies
  assert energies[-1] < energies[0]


def test_mean_field_reports_the_energy_of_its_map_labels():
  unary, pairwise = _problem(8, (16, 16, 3), 4, scale=1.0)
  labels, energy = mrf.mrf_map(5 * unary, pairwise, method='mean_field', iterations=10)
  np.testing.assert_allclose(
    float(energy),
    _numpy_energy(np.asarray(labels), 5 * unary, pairwise, 4, 'potts', None),
    rtol=1e-5,
  )
  # Mean field smooths: its labels have a lower energy than the unaries' argmin.
  start = mrf.mrf_energy(jnp.argmin(5 * unary, -1), 5 * unary, pairwise)
  assert float(energy) < float(start)


def test_ising_denoising_recovers_a_binary_image():
  truth = np.zeros((32, 32), np.int32)
  truth[8:24, 6:20] = 1
  truth[4:12, 22:30] = 1
  rng = np.random.default_rng(9)
  noisy = np.where(rng.random(truth.shape) < 0.15, 1 - truth, truth)
  unary = np.stack([noisy == 1, noisy == 0], axis=-1).astype(np.float32)  # cost 1 to flip
  for method in ('icm', 'trws', 'mean_field'):
    labels, _ = mrf.mrf_map(unary, 0.7, method=method, iterations=10)
    assert np.mean(np.asarray(labels) != truth) < 0.5 * np.mean(noisy != truth), method


@pytest.mark.slow
def test_runs_under_jit_and_vmap():
  unary, pairwise = _problem(11, (8, 8, 3), 4)
  batch = np.stack([unary, unary[::-1]])
  run = jax.jit(jax.vmap(lambda u: mrf.mrf_map(u, pairwise, method='trws', iterations=3)))
  labels, energy = run(batch)
  for n in range(2):
    single = mrf.mrf_map(batch[n], pairwise, method='trws', iterations=3)
    np.testing.assert_array_equal(labels[n], single[0])
    np.testing.assert_allclose(energy[n], single[1], rtol=1e-6)


@pytest.mark.parametrize('method', ['icm', 'trws', 'alpha_expansion'])
def test_a_batch_equals_each_image(method):
  unary, pairwise = _problem(12, (6, 7, 3), 4)
  batch = np.stack([unary, unary[::-1], 2 * unary])
  per_image = np.stack([pairwise, pairwise[::-1], pairwise])
  for weights, each in ((0.8, [0.8] * 3), (per_image, list(per_image))):
    labels, energy = mrf.mrf_map(batch, weights, method=method, iterations=3)
    assert labels.shape == (3, 6, 7) and energy.shape == (3,)
    for n in range(3):
      single = mrf.mrf_map(batch[n], each[n], method=method, iterations=3)
      np.testing.assert_array_equal(labels[n], single[0])
      np.testing.assert_allclose(energy[n], single[1], rtol=1e-6)
  with pytest.raises(ValueError, match='batch size'):
    mrf.mrf_map(batch, per_image[:2], method=method, iterations=1)


@pytest.mark.parametrize(
  'call,error,match',
  [
    (lambda: mrf.mrf_map(np.zeros((3, 3)), 1.0, iterations=1), ValueError, 'unary must have'),
    (lambda: mrf.mrf_map(np.zeros((3, 3, 2), np.int32), 1.0, iterations=1), TypeError, 'floating'),
    (lambda: mrf.mrf_map(np.full((3, 3, 2), np.nan), 1.0, iterations=1), ValueError, 'NaN'),
    (lambda: mrf.mrf_map(np.zeros((3, 3, 2)), -1.0, iterations=1), ValueError, 'pairwise'),
    (
      lambda: mrf.mrf_map(np.zeros((3, 3, 2)), np.ones((3, 3, 4)), iterations=1),
      ValueError,
      r'shape \(H, W, K\)',
    ),
    (
      lambda: mrf.mrf_map(np.zeros((3, 3, 2)), 1.0, method='gibbs', iterations=1),
      ValueError,
      'method',
    ),
    (lambda: mrf.mrf_map(np.zeros((3, 3, 2)), 1.0, iterations=-1), ValueError, 'iterations'),
    (
      lambda: mrf.mrf_map(np.zeros((3, 3, 2)), 1.0, iterations=1, connectivity=6),
      ValueError,
      'connectivity',
    ),
    (
      lambda: mrf.mrf_map(np.zeros((3, 3, 2)), 1.0, iterations=1, model='truncated_linear'),
      ValueError,
      'truncation',
    ),
    (
      lambda: mrf.mrf_map(np.zeros((3, 3, 2)), 1.0, iterations=1, truncation=2.0),
      ValueError,
      'truncation',
    ),
    (
      lambda: mrf.mrf_energy(np.full((3, 3), 2), np.zeros((3, 3, 2)), 1.0),
      ValueError,
      'labels must lie',
    ),
    (
      lambda: mrf.mrf_energy(np.zeros((3, 3)), np.zeros((3, 3, 2)), 1.0),
      TypeError,
      'labels must be an integer',
    ),
    (lambda: mrf.trws(np.zeros((3, 3, 2)), 1.0, iterations=1.5), TypeError, 'iterations'),
  ],
)
def test_bad_arguments(call, error, match):
  with pytest.raises(error, match=match):
    call()


@pytest.mark.parametrize('fn', [mrf.mrf_energy, mrf.mrf_map, mrf.trws])
def test_docstring_has_parts_and_example_runs(fn):
  doc = fn.__doc__
  for part in ('Args:', 'Returns:', 'Example', '.. math::'):
    assert part in doc, part
  tests = doctest.DocTestFinder(recurse=False).find(
    fn, fn.__name__, globs={'jnp': jnp, fn.__name__: fn}
  )
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in tests:
    runner.run(test)
  assert runner.failures == 0 and runner.tries > 0
