"""jaxseg.classic.graph_cut against exhaustive enumeration and PyMaxflow (Boykov-Kolmogorov).

The oracle path is itself checked: on 3x4 grids PyMaxflow's flow and our cut both equal the
minimum over all 4096 labellings. Larger random and real-image (Boykov-Jolly) grids compare the
cut value with PyMaxflow's maximum flow, the energy of our labels (recomputed in float64 from the
definition) with that value, and the labels themselves where the minimum is unique (continuous
random capacities: a tie has probability zero).
"""

import doctest
import functools
import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_data

from jaxseg.classic import graph_cut as gc
from jaxseg.classic.graph_cut import binary_graph_cut, grid_min_cut

OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def cut_energy(labels, source_cap, sink_cap, pairwise, connectivity):
  """The cut's capacity from the definition, in float64, for labels (..., H, W) (1 = source)."""
  labels = np.asarray(labels).astype(bool)
  source_cap, sink_cap, pairwise = (
    np.asarray(a, np.float64) for a in (source_cap, sink_cap, pairwise)
  )
  h, w = source_cap.shape
  energy = np.where(labels, sink_cap, source_cap).sum(axis=(-2, -1))
  for k, (dr, dc) in enumerate(OFFSETS[connectivity]):
    rows, cols = slice(0, h - dr), slice(max(-dc, 0), w - max(dc, 0))
    other = labels[..., dr:, max(dc, 0) : w + min(dc, 0)]
    differ = labels[..., rows, cols] != other
    energy = energy + (pairwise[rows, cols, k] * differ).sum(axis=(-2, -1))
  return energy


def brute_force(source_cap, sink_cap, pairwise, connectivity):
  """(minimum, number of minimisers, one minimiser) over all labellings."""
  h, w = source_cap.shape
  every = np.array(list(itertools.product([0, 1], repeat=h * w))).reshape(-1, h, w)
  energies = cut_energy(every, source_cap, sink_cap, pairwise, connectivity)
  best = energies.min()
  ties = np.isclose(energies, best, rtol=1e-9, atol=1e-9)
  return best, int(ties.sum()), every[np.argmin(energies)]


def pymaxflow(source_cap, sink_cap, pairwise, connectivity):
  """PyMaxflow's maximum flow and its labels (1 = source side)."""
  maxflow = pytest.importorskip('maxflow')
  integer = np.issubdtype(np.asarray(source_cap).dtype, np.integer)
  graph = maxflow.Graph[int]() if integer else maxflow.Graph[float]()
  ids = graph.add_grid_nodes(source_cap.shape)
  for k, (dr, dc) in enumerate(OFFSETS[connectivity]):
    structure = np.zeros((3, 3))
    structure[1 + dr, 1 + dc] = 1
    graph.add_grid_edges(
      ids, weights=np.asarray(pairwise[..., k]), structure=structure, symmetric=True
    )
  graph.add_grid_tedges(ids, np.asarray(source_cap), np.asarray(sink_cap))
  flow = graph.maxflow()
  return flow, (~graph.get_grid_segments(ids)).astype(np.int32)


def random_problem(rng, shape, connectivity, integer=False):
  k = len(OFFSETS[connectivity])
  if integer:
    return (
      rng.integers(0, 12, shape),
      rng.integers(0, 12, shape),
      rng.integers(0, 6, shape + (k,)),
    )
  return (
    rng.random(shape, np.float32),
    rng.random(shape, np.float32),
    (0.6 * rng.random(shape + (k,))).astype(np.float32),
  )


@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('integer', [True, False], ids=['int', 'float'])
def test_brute_force_3x4_checks_pymaxflow_and_grid_min_cut(connectivity, integer):
  rng = np.random.default_rng(connectivity + 10 * integer)
  for _ in range(4):
    problem = random_problem(rng, (3, 4), connectivity, integer)
    best, ties, argmin = brute_force(*problem, connectivity)
    flow, _ = pymaxflow(*problem, connectivity)
    labels, cut, gap = grid_min_cut(*problem, connectivity=connectivity)
    np.testing.assert_allclose(flow, best, rtol=1e-6)
    np.testing.assert_allclose(float(cut), best, rtol=1e-6)
    np.testing.assert_allclose(cut_energy(labels, *problem, connectivity), best, rtol=1e-6)
    assert float(gap) <= 1e-5 * best
    assert labels.dtype == jnp.int32
    if ties == 1:
      np.testing.assert_array_equal(labels, argmin)


@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('size', [16, 96])  # 96: the real-image test's shape (one compilation)
def test_random_grids_match_pymaxflow(connectivity, size):
  rng = np.random.default_rng(size * connectivity)
  for _ in range(2):
    problem = random_problem(rng, (size, size), connectivity)
    flow, reference_labels = pymaxflow(*problem, connectivity)
    labels, cut, gap = grid_min_cut(*problem, connectivity=connectivity)
    np.testing.assert_allclose(float(cut), flow, rtol=1e-5)
    np.testing.assert_allclose(cut_energy(labels, *problem, connectivity), flow, rtol=1e-5)
    assert float(gap) <= 1e-5 * flow
    np.testing.assert_array_equal(labels, reference_labels)  # unique with probability 1


def test_integer_capacities_are_exact():
  rng = np.random.default_rng(3)
  problem = random_problem(rng, (96, 96), 4, integer=True)
  flow, _ = pymaxflow(*problem, 4)
  labels, cut, gap = grid_min_cut(*problem)
  assert cut.dtype == jnp.int32 and int(cut) == flow and int(gap) == 0
  assert cut_energy(labels, *problem, 4) == flow


@pytest.mark.parametrize('connectivity', [4, 8])
def test_warm_started_cuts_match_brute_force_and_pymaxflow(connectivity):
  # A sequence of cuts with fixed n-links and changing t-links (GrabCut's), each started from
  # the previous cut's n-link flow: every one is still the exact minimum. The first flow is an
  # arbitrary feasible one (random signs, |flow| <= pairwise), not a max-flow's.
  warm = jax.jit(functools.partial(gc._warm_grid_min_cut, connectivity=connectivity))
  rng = np.random.default_rng(20 + connectivity)
  for shape, integer in (((3, 4), True), ((40, 48), False)):
    _, _, pairwise = random_problem(rng, shape, connectivity, integer)
    flow = (rng.integers(-1, 2, pairwise.shape) * pairwise).astype(pairwise.dtype)
    for _ in range(3):
      source_cap, sink_cap, _ = random_problem(rng, shape, connectivity, integer)
      problem = (source_cap, sink_cap, pairwise)
      labels, cut, gap, flow = warm(*problem, flow)
      assert np.all(np.abs(np.asarray(flow)) <= pairwise)
      if shape == (3, 4):
        best, ties, argmin = brute_force(*problem, connectivity)
        if ties == 1:
          np.testing.assert_array_equal(labels, argmin)
      else:
        best, _ = pymaxflow(*problem, connectivity)
      if integer:
        assert cut.dtype == jnp.int32 and int(cut) == best and int(gap) == 0
      np.testing.assert_allclose(float(cut), best, rtol=1e-5)
      np.testing.assert_allclose(cut_energy(labels, *problem, connectivity), best, rtol=1e-5)
      assert float(gap) <= 1e-5 * best


def _voc_energy(name, size=None, connectivity=4):
  """A Boykov-Jolly energy on a VOC sample: Gaussian colour models fitted on its ground truth."""
  cv2 = pytest.importorskip('cv2')
  root = reference_data.root_or_none()
  if root is None:
    pytest.skip('reference data absent')
  image = cv2.imread(os.path.join(root, 'voc-samples', f'{name}_image.png'))[..., ::-1]
  target = cv2.imread(os.path.join(root, 'voc-samples', f'{name}_target.png'), cv2.IMREAD_GRAYSCALE)
  if size is not None:
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    target = cv2.resize(target, (size, size), interpolation=cv2.INTER_NEAREST)
  image = image.astype(np.float64) / 255.0
  foreground = (target > 0) & (target < 255)
  costs = []
  for mask in (foreground, ~foreground):
    pixels = image[mask]
    mean, cov = pixels.mean(0), np.cov(pixels.T) + 1e-3 * np.eye(3)
    diff = image - mean
    mahalanobis = np.einsum('hwi,ij,hwj->hw', diff, np.linalg.inv(cov), diff)
    costs.append(0.5 * mahalanobis + 0.5 * np.log(np.linalg.det(cov)))
  fg_cost, bg_cost = costs
  base = np.minimum(fg_cost, bg_cost)
  weights = np.asarray(gc._contrast_weights(image, sigma=0.1, connectivity=connectivity))
  return (
    (bg_cost - base).astype(np.float32),
    (fg_cost - base).astype(np.float32),
    (2.0 * weights).astype(np.float32),
  )


@pytest.mark.parametrize('connectivity', [4, 8])
def test_real_image_boykov_jolly_energy_matches_pymaxflow(connectivity):
  problem = _voc_energy('23', size=96, connectivity=connectivity)
  flow, _ = pymaxflow(*problem, connectivity)
  labels, cut, gap = grid_min_cut(*problem, connectivity=connectivity)
  np.testing.assert_allclose(float(cut), flow, rtol=1e-5)
  np.testing.assert_allclose(cut_energy(labels, *problem, connectivity), flow, rtol=1e-5)
  assert float(gap) <= 1e-5 * flow


@pytest.mark.slow
@pytest.mark.parametrize('name', ['1', '23', '114'])
def test_real_images_full_size_match_pymaxflow(name):
  problem = _voc_energy(name)
  flow, _ = pymaxflow(*problem, 4)
  labels, cut, _ = grid_min_cut(*problem)
  np.testing.assert_allclose(float(cut), flow, rtol=1e-5)
  np.testing.assert_allclose(cut_energy(labels, *problem, 4), flow, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('size', [128, 512])
def test_large_random_grids_match_pymaxflow(connectivity, size):
  problem = random_problem(np.random.default_rng(size), (size, size), connectivity)
  flow, reference_labels = pymaxflow(*problem, connectivity)
  labels, cut, gap = grid_min_cut(*problem, connectivity=connectivity)
  np.testing.assert_allclose(float(cut), flow, rtol=1e-5)
  assert float(gap) <= 1e-5 * flow
  np.testing.assert_array_equal(labels, reference_labels)  # unique with probability 1


def test_batch_axis_and_vmap_and_jit_agree_with_single_images():
  rng = np.random.default_rng(5)
  problems = [random_problem(rng, (12, 10), 4) for _ in range(3)]
  stacked = [np.stack(parts) for parts in zip(*problems)]
  labels, cut, gap = grid_min_cut(*stacked)
  mapped = jax.vmap(grid_min_cut)(*stacked)
  jitted = jax.jit(grid_min_cut)(*stacked)
  assert labels.shape == (3, 12, 10) and cut.shape == gap.shape == (3,)
  for b, problem in enumerate(problems):
    flow, reference_labels = pymaxflow(*problem, 4)
    np.testing.assert_allclose(float(cut[b]), flow, rtol=1e-5)
    for other in (mapped, jitted):
      np.testing.assert_array_equal(other[0][b], labels[b])
      np.testing.assert_allclose(float(other[1][b]), float(cut[b]), rtol=1e-6)
    np.testing.assert_array_equal(labels[b], reference_labels)


def test_edges_leaving_the_image_are_ignored():
  rng = np.random.default_rng(6)
  source_cap, sink_cap, pairwise = random_problem(rng, (3, 4), 8)
  cleared = pairwise.copy()
  cleared[:, -1, 0] = cleared[-1, :, 1] = 0  # right / down off the grid
  cleared[-1, :, 2] = cleared[:, -1, 2] = 0  # down-right
  cleared[-1, :, 3] = cleared[:, 0, 3] = 0  # down-left
  noisy = pairwise + (pairwise == cleared) * 0 + (pairwise != cleared) * 50.0
  a = grid_min_cut(source_cap, sink_cap, cleared, connectivity=8)
  b = grid_min_cut(source_cap, sink_cap, noisy.astype(np.float32), connectivity=8)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_allclose(float(a[1]), float(b[1]), rtol=1e-6)


def test_early_stop_reports_a_gap_that_bounds_the_error():
  problem = random_problem(np.random.default_rng(7), (96, 96), 4)
  flow, _ = pymaxflow(*problem, 4)
  labels, cut, gap = grid_min_cut(*problem, max_iterations=1)
  energy = cut_energy(labels, *problem, 4)
  assert float(gap) > 0
  np.testing.assert_allclose(float(cut), energy, rtol=1e-5)
  # weak duality: flow value = cut - gap <= minimum <= cut
  assert float(cut) - float(gap) <= flow * (1 + 1e-6) and energy >= flow * (1 - 1e-6)


def test_binary_graph_cut_is_the_boykov_jolly_minimum():
  rng = np.random.default_rng(8)
  image = np.zeros((20, 24, 3), np.float32)
  image[5:15, 6:18] = [0.9, 0.2, 0.1]
  image += 0.1 * rng.standard_normal(image.shape).astype(np.float32)
  fg_cost = np.where(image[..., 0] > 0.5, 0.3, 1.0) + 0.5 * rng.random((20, 24))
  bg_cost = (1.5 - fg_cost).astype(np.float32)
  fg_cost = fg_cost.astype(np.float32) - 0.2  # costs of any sign
  labels, energy = binary_graph_cut(fg_cost, bg_cost, image, lam=0.7, sigma=0.3)
  weights = 0.7 * np.exp(
    -np.stack(
      [
        np.pad(((image[:, 1:] - image[:, :-1]) ** 2).sum(-1), ((0, 0), (0, 1))),
        np.pad(((image[1:] - image[:-1]) ** 2).sum(-1), ((0, 1), (0, 0))),
      ],
      -1,
    )
    / (2 * 0.3**2)
  )
  base = np.minimum(fg_cost, bg_cost)
  flow, reference_labels = pymaxflow(bg_cost - base, fg_cost - base, weights, 4)
  np.testing.assert_allclose(float(energy), flow + base.astype(np.float64).sum(), rtol=1e-5)
  np.testing.assert_array_equal(labels, reference_labels)
  assert 100 < int(labels.sum()) < 140  # the 120-pixel red square


@pytest.mark.parametrize(
  'kwargs, match',
  [
    ({'source_cap': -np.ones((3, 3))}, 'source_cap must be >= 0'),
    ({'sink_cap': np.full((3, 3), np.nan)}, 'sink_cap must be finite'),
    ({'pairwise': -np.ones((3, 3, 2))}, 'not submodular'),
    ({'sink_cap': np.ones((3, 4))}, 'sink_cap must have the shape'),
    ({'pairwise': np.ones((3, 3, 4))}, r'pairwise must have shape \(3, 3, 2\)'),
    ({'source_cap': np.ones(3), 'sink_cap': np.ones(3)}, r'source_cap must have shape \(\.\.\., H'),
    ({'connectivity': 6}, 'connectivity must be 4 or 8'),
    ({'max_iterations': 0}, 'max_iterations must be a positive int'),
    ({'tol': -1.0}, 'tol must be a number >= 0'),
    (
      {
        'source_cap': np.full((3, 3), 2**29, np.int64),
        'sink_cap': np.zeros((3, 3), np.int64),
        'pairwise': np.zeros((3, 3, 2), np.int64),
      },
      'sum to less than 2',
    ),
  ],
)
def test_grid_min_cut_rejects_bad_arguments(kwargs, match):
  args = {
    'source_cap': np.ones((3, 3)),
    'sink_cap': np.ones((3, 3)),
    'pairwise': np.ones((3, 3, 2)),
  }
  args.update(kwargs)
  options = {key: args.pop(key) for key in ('connectivity', 'max_iterations', 'tol') if key in args}
  with pytest.raises(ValueError, match=match):
    grid_min_cut(args['source_cap'], args['sink_cap'], args['pairwise'], **options)


def test_grid_min_cut_rejects_non_numeric():
  with pytest.raises(TypeError, match='source_cap'):
    grid_min_cut(np.array([['a']]), np.ones((1, 1)), np.ones((1, 1, 2)))


@pytest.mark.parametrize(
  'kwargs, match',
  [
    ({'lam': -1.0}, 'lam must be >= 0'),
    ({'sigma': 0.0}, 'sigma must be > 0'),
    ({'image': np.ones((4, 5))}, 'image must have shape'),
    ({'fg_cost': np.full((4, 4), np.nan)}, 'fg_cost must be finite'),
    ({'bg_cost': np.ones((4, 3))}, 'bg_cost must have the shape'),
  ],
)
def test_binary_graph_cut_rejects_bad_arguments(kwargs, match):
  args = {
    'fg_cost': np.ones((4, 4)),
    'bg_cost': np.ones((4, 4)),
    'image': np.ones((4, 4, 3)),
    'lam': 1.0,
    'sigma': 0.5,
  }
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    binary_graph_cut(args.pop('fg_cost'), args.pop('bg_cost'), args.pop('image'), **args)


@pytest.mark.parametrize('function', [grid_min_cut, binary_graph_cut], ids=lambda f: f.__name__)
def test_docstring_parts_and_example(function):
  doc = function.__doc__
  for part in ('Args:', 'Returns:', 'Example', '.. math::', 'PyMaxflow'):
    assert part in doc, part
  finder = doctest.DocTestFinder(recurse=False)
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in finder.find(function, globs={'jnp': jnp, 'np': np, function.__name__: function}):
    runner.run(test)
  assert runner.failures == 0
