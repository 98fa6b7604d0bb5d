"""jaxseg.crf: the dense CRF against a NumPy double loop, its own exact sums, and pydensecrf2."""
import doctest
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import crf
from jaxseg.crf import permutohedral


def _random_problem(seed, h, w, num_labels, batch=()):
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, size=batch + (h, w, 3)).astype(np.uint8)
  # Smooth-ish regions so the bilateral kernel has structure to follow.
  image[..., : h // 2, :, :] //= 4
  logits = rng.normal(size=batch + (h, w, num_labels)).astype(np.float32)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  return (-np.log(probs)).astype(np.float32), image


def _double_loop_crf(unary_e, image, iterations, pos_w, pos_xy_std, bi_w, bi_xy_std, bi_rgb_std,
                     compat):
  """Krähenbühl & Koltun's mean-field update, pixel by pixel, in float64.

  k(i, j) summed over all j (the self-term included, as densecrf's lattice filter does), each
  kernel normalised symmetrically by sqrt(d_i d_j), d_i = sum_j k(i, j) (densecrf's
  NORMALIZE_SYMMETRIC); Q_i(l) ~ exp(-u_i(l) - sum_l' mu(l, l') sum_m w_m sum_j kbar_m Q_j(l')).
  """
  h, w, num_labels = unary_e.shape
  pixels = [(y, x) for y in range(h) for x in range(w)]
  n = len(pixels)
  image = image.astype(np.float64)
  k_pos = np.zeros((n, n))
  k_bi = np.zeros((n, n))
  for i, (yi, xi) in enumerate(pixels):
    for j, (yj, xj) in enumerate(pixels):
      dxy = (yi - yj) ** 2 + (xi - xj) ** 2
      drgb = float(np.sum((image[yi, xi] - image[yj, xj]) ** 2))
      k_pos[i, j] = math.exp(-dxy / (2 * pos_xy_std ** 2))
      k_bi[i, j] = math.exp(-dxy / (2 * bi_xy_std ** 2) - drgb / (2 * bi_rgb_std ** 2))
  kernels = []
  for weight, k in ((pos_w, k_pos), (bi_w, k_bi)):
    d = k.sum(1)
    kernels.append((weight, k, d))
  u = unary_e.reshape(n, num_labels).astype(np.float64)
  q = np.exp(-u) / np.exp(-u).sum(1, keepdims=True)
  for _ in range(iterations):
    new_q = np.zeros_like(q)
    for i in range(n):
      message = np.zeros(num_labels)
      for weight, k, d in kernels:
        for j in range(n):
          message += weight * k[i, j] / math.sqrt(d[i] * d[j]) * q[j]
      if compat is None:
        energy = u[i] - message
      else:
        energy = u[i] + compat @ message
      e = np.exp(-(energy - energy.min()))
      new_q[i] = e / e.sum()
    q = new_q
  return q.reshape(h, w, num_labels)


@pytest.mark.parametrize('use_compat', [False, True])
def test_exact_matches_numpy_double_loop(use_compat):
  u, image = _random_problem(0, 12, 12, 3)
  params = {'iterations': 3, 'pos_w': 3.0, 'pos_xy_std': 2.0, 'bi_w': 5.0, 'bi_xy_std': 6.0, 'bi_rgb_std': 40.0}
  compat = None
  if use_compat:
    compat = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]], np.float32)
  expected = _double_loop_crf(u, image, compat=compat, **params)
  got = np.asarray(crf.dense_crf_exact(u, image, compat=compat, **params))
  np.testing.assert_allclose(got, expected, atol=1e-5)
  # The iterations did something (the oracle is not the unary softmax).
  assert np.abs(expected - np.exp(-u) / np.exp(-u).sum(-1, keepdims=True)).max() > 0.05


def test_potts_equals_one_minus_identity_compat():
  u, image = _random_problem(1, 10, 9, 4)
  potts = crf.dense_crf_exact(u, image, iterations=4, bi_xy_std=5.0, bi_rgb_std=30.0)
  matrix = crf.dense_crf_exact(u, image, iterations=4, bi_xy_std=5.0, bi_rgb_std=30.0,
                               compat=1.0 - np.eye(4, dtype=np.float32))
  np.testing.assert_allclose(potts, matrix, atol=1e-6)


def test_exact_batch_and_valid_mask():
  u, image = _random_problem(2, 10, 10, 3, batch=(2,))
  params = {'iterations': 3, 'bi_xy_std': 5.0, 'bi_rgb_std': 30.0}
  batch = np.asarray(crf.dense_crf_exact(u, image, **params))
  for b in range(2):
    np.testing.assert_allclose(batch[b], crf.dense_crf_exact(u[b], image[b], **params),
                               atol=1e-6)
  valid = np.zeros((10, 10), bool)
  valid[:7, :6] = True
  padded = np.asarray(crf.dense_crf_exact(u[0], image[0], valid=valid, **params))
  alone = crf.dense_crf_exact(u[0, :7, :6], image[0, :7, :6], **params)
  np.testing.assert_allclose(padded[:7, :6], alone, atol=1e-6)
  softmax = np.exp(-u[0]) / np.exp(-u[0]).sum(-1, keepdims=True)
  np.testing.assert_allclose(padded[~valid], softmax[~valid], atol=1e-6)


def test_unary_from_softmax_and_labels_closed_forms():
  probs = np.array([[[0.25, 0.75], [1.0, 0.0]]], np.float32)
  np.testing.assert_allclose(crf.unary_from_softmax(probs),
                             [[[math.log(4), -math.log(0.75)], [0.0, -math.log(1e-5)]]],
                             rtol=1e-6)
  labels = np.array([[0, 1, 3]], np.int32)
  got = np.asarray(crf.unary_from_labels(labels, 3, gt_prob=0.6))
  np.testing.assert_allclose(np.exp(-got), [[[1 / 3] * 3, [0.6, 0.2, 0.2], [0.2, 0.2, 0.6]]],
                             rtol=1e-6)
  got = np.asarray(crf.unary_from_labels(labels, 4, gt_prob=0.7, zero_unsure=False))
  np.testing.assert_allclose(np.exp(-got[0, 0]), [0.7, 0.1, 0.1, 0.1], rtol=1e-6)
  assert crf.map_labels(jnp.asarray(np.exp(-got))).tolist() == [[0, 1, 3]]


def test_unary_helpers_match_pydensecrf():
  utils = pytest.importorskip('pydensecrf.utils')
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 4, size=(5, 7)).astype(np.int32)
  for zero_unsure in (True, False):
    n = 3 if zero_unsure else 4
    ours = np.asarray(crf.unary_from_labels(labels, n, gt_prob=0.7, zero_unsure=zero_unsure))
    theirs = utils.unary_from_labels(labels, n, 0.7, zero_unsure=zero_unsure)
    np.testing.assert_allclose(ours.reshape(-1, n).T, theirs, rtol=1e-6)
  probs = rng.dirichlet(np.ones(3), size=(5, 7)).astype(np.float32)
  probs[0, 0] = (1.0, 0.0, 0.0)
  theirs = utils.unary_from_softmax(np.moveaxis(probs, -1, 0))
  np.testing.assert_allclose(np.asarray(crf.unary_from_softmax(probs)).reshape(-1, 3).T, theirs,
                             rtol=1e-6)


_GOOD_U, _GOOD_IMAGE = _random_problem(4, 6, 5, 2)


@pytest.mark.parametrize('fn', [crf.dense_crf, crf.dense_crf_exact], ids=lambda f: f.__name__)
@pytest.mark.parametrize('kwargs, error, words', [
    ({'pos_xy_std': 0.0}, ValueError, 'pos_xy_std'),
    ({'bi_xy_std': -1.0}, ValueError, 'bi_xy_std'),
    ({'bi_rgb_std': float('nan')}, ValueError, 'bi_rgb_std'),
    ({'iterations': -1}, ValueError, 'iterations'),
    ({'iterations': 2.0}, ValueError, 'iterations'),
    ({'pos_w': float('inf')}, ValueError, 'pos_w'),
    ({'bi_w': '4'}, TypeError, 'bi_w'),
    ({'compat': np.eye(3, dtype=np.float32)}, ValueError, 'compat'),
    ({'valid': np.ones((5, 6), bool)}, ValueError, 'valid'),
    ({'valid': np.ones((6, 5), np.int32)}, TypeError, 'valid'),
    ({'unary': _GOOD_U[:5]}, ValueError, 'image'),
    ({'unary': np.where(np.eye(6, 5, dtype=bool)[..., None], np.nan, _GOOD_U)}, ValueError,
     'unary'),
    ({'unary': _GOOD_U.astype(np.int32)}, TypeError, 'unary'),
    ({'unary': _GOOD_U[0]}, ValueError, 'unary'),
    ({'image': _GOOD_IMAGE.astype(np.int32)}, TypeError, 'image'),
    ({'image': _GOOD_IMAGE[..., :1]}, ValueError, 'image'),
    ({'image': [[0]]}, TypeError, 'image'),
])
def test_bad_arguments_name_the_argument(fn, kwargs, error, words):
  args = {'unary': _GOOD_U, 'image': _GOOD_IMAGE}
  args.update(kwargs)
  with pytest.raises(error, match=words):
    fn(args.pop('unary'), args.pop('image'), **args)


@pytest.mark.parametrize('call, error, words', [
    (lambda: crf.unary_from_labels(np.zeros((2, 2), np.float32), 2, gt_prob=0.5), TypeError,
     'labels'),
    (lambda: crf.unary_from_labels(np.zeros((2, 2), np.int32), 1, gt_prob=0.5), ValueError,
     'num_labels'),
    (lambda: crf.unary_from_labels(np.zeros((2, 2), np.int32), 2, gt_prob=1.0), ValueError,
     'gt_prob'),
    (lambda: crf.unary_from_softmax(np.zeros((2, 2, 2), np.int32)), TypeError, 'probs'),
    (lambda: crf.unary_from_softmax(np.zeros((2, 2, 2), np.float32), clip=0.0), ValueError,
     'clip'),
    (lambda: crf.map_labels(np.zeros((2, 2), np.float32)), ValueError, 'q'),
])
def test_helpers_bad_arguments(call, error, words):
  with pytest.raises(error, match=words):
    call()


@pytest.mark.parametrize('obj', [crf.dense_crf, crf.dense_crf_exact, crf.unary_from_softmax,
                                 crf.unary_from_labels, crf.map_labels,
                                 permutohedral.lattice_filter], ids=lambda f: f.__name__)
def test_docstring_parts_and_example(obj):
  doc = obj.__doc__
  for part in ('Args:', 'Returns:', 'Example', '.. math::'):
    assert part in doc, (obj.__name__, part)
  assert 'pydensecrf' in doc or 'densecrf' in doc or 'NumPy' in doc
  globs = {'jnp': jnp, 'np': np, **{name: getattr(crf, name) for name in crf.__all__}}
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in doctest.DocTestFinder(recurse=False).find(obj, obj.__name__, globs=globs):
    result = runner.run(test)
    assert result.failed == 0, obj.__name__
