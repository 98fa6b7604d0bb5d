"""jaxseg.classic.alpha_expansion against exhaustive search and a dual-decomposition bound.

On 3x3 grids with 3 labels every labelling is enumerated: the returned energy is that of the
returned labels, within the method's factor of the global minimum, and no expansion move (all
2^9 of them, for every alpha) lowers it, i.e. every move was solved exactly. Larger problems are
bounded below by mrf_reference.lower_bound (rows + columns dual decomposition), itself checked
against exhaustive search. gco-wrapper's comparison lives in its own module (it rebinds
numpy.int for the whole process).
"""

import doctest
import itertools

import jax.numpy as jnp
import mrf_reference as ref
import numpy as np
import pytest

from jaxseg.classic.alpha_expansion import alpha_expansion

EVERY_3X3 = np.array(list(itertools.product(range(3), repeat=9))).reshape(-1, 3, 3)
EVERY_MOVE = np.array(list(itertools.product([0, 1], repeat=9)), bool).reshape(-1, 3, 3)


def _problem(rng, integer, connectivity):
  k = len(ref.OFFSETS[connectivity])
  if integer:
    return rng.integers(0, 10, (3, 3, 3)), rng.integers(0, 6, (3, 3, k))
  return rng.random((3, 3, 3)).astype(np.float32), (0.8 * rng.random((3, 3, k))).astype(np.float32)


# Each case compiles the solver once: a covering subset of model x connectivity x dtype.
@pytest.mark.parametrize(
  'model, truncation, factor, connectivity, integer',
  [
    ('potts', None, 2.0, 4, True),
    ('potts', None, 2.0, 8, False),
    ('truncated_linear', 2, 4.0, 8, True),
    ('truncated_linear', 2, 4.0, 4, False),
  ],
)
def test_exhaustive_3x3_three_labels(model, truncation, factor, connectivity, integer):
  rng = np.random.default_rng(connectivity + 2 * integer + (model == 'potts'))
  for _ in range(3):
    unary, pairwise = _problem(rng, integer, connectivity)
    options = {'connectivity': connectivity, 'model': model, 'truncation': truncation}
    labels, energy = alpha_expansion(unary, pairwise, iterations=10, **options)
    labels = np.asarray(labels)
    every = ref.energy(EVERY_3X3, unary, pairwise, **options)
    mine = ref.energy(labels, unary, pairwise, **options)
    np.testing.assert_allclose(float(energy), mine, rtol=1e-6)
    assert every.min() - 1e-6 <= mine <= factor * every.min() + 1e-6
    for alpha in range(3):
      moves = np.where(EVERY_MOVE, alpha, labels)
      assert ref.energy(moves, unary, pairwise, **options).min() >= mine - 1e-5, alpha


def test_lower_bound_oracle_is_below_the_exhaustive_minimum():
  rng = np.random.default_rng(0)
  for model, truncation in (('potts', None), ('truncated_linear', 2)):
    unary, pairwise = _problem(rng, False, 4)
    every = ref.energy(EVERY_3X3, unary, pairwise, model=model, truncation=truncation)
    bound = ref.lower_bound(unary, pairwise, model=model, truncation=truncation, upper=every.min())
    assert bound <= every.min() + 1e-9
    assert bound > np.asarray(unary).min(-1).sum()  # tighter than the trivial bound


@pytest.mark.parametrize(
  'model, truncation, factor', [('potts', None, 2.0), ('truncated_linear', 3, 6.0)]
)
def test_within_its_factor_of_a_lower_bound(model, truncation, factor):
  rng = np.random.default_rng(1)
  truth = np.zeros((32, 32), np.int64)
  truth[8:24, 4:20] = 2
  truth[16:, 16:] = 4
  unary = rng.random((32, 32, 5)) + 1.5 * (np.arange(5) != truth[..., None])
  unary = unary.astype(np.float32)
  labels, energy = alpha_expansion(unary, 0.6, model=model, truncation=truncation)
  np.testing.assert_allclose(
    float(energy), ref.energy(labels, unary, 0.6, model=model, truncation=truncation), rtol=1e-5
  )
  bound = ref.lower_bound(unary, 0.6, model=model, truncation=truncation, upper=float(energy))
  assert bound <= float(energy) <= factor * bound
  assert float(energy) <= 1.02 * bound  # in practice far inside the factor


@pytest.mark.parametrize(
  'kwargs, match',
  [
    ({'model': 'quadratic'}, 'model must be one of'),
    ({'truncation': 2}, "truncation must be None for model='potts'"),
    ({'model': 'truncated_linear'}, 'truncation must be a finite number > 0'),
    ({'pairwise': -1.0}, 'not submodular'),
    ({'pairwise': np.ones((4, 4, 4))}, r'pairwise must be a scalar or have shape \(4, 4, 2\)'),
    ({'unary': np.ones((4, 4))}, r'unary must have shape \(H, W, L\)'),
    ({'unary': np.full((4, 4, 2), np.nan)}, 'unary must be finite'),
    ({'iterations': 0}, 'iterations must be a positive int'),
    ({'connectivity': 5}, 'connectivity must be 4 or 8'),
    ({'unary': np.full((4, 4, 2), 2**28), 'pairwise': 1}, 'below 2\\*\\*31'),
  ],
)
def test_rejects_bad_arguments(kwargs, match):
  args = {'unary': np.ones((4, 4, 2)), 'pairwise': 1.0}
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    alpha_expansion(args.pop('unary'), args.pop('pairwise'), **args)


def test_docstring_parts_and_example():
  doc = alpha_expansion.__doc__
  for part in ('Args:', 'Returns:', 'Example', '.. math::', 'gco'):
    assert part in doc, part
  finder = doctest.DocTestFinder(recurse=False)
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in finder.find(
    alpha_expansion, globs={'jnp': jnp, 'np': np, 'alpha_expansion': alpha_expansion}
  ):
    runner.run(test)
  assert runner.failures == 0
