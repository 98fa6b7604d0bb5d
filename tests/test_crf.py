"""jaxseg.crf: the dense CRF against a NumPy double loop, its own exact sums, and pydensecrf2."""

import doctest
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import crf
from tests import reference_data


def _random_problem(seed, h, w, num_labels, batch=()):
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, size=batch + (h, w, 3)).astype(np.uint8)
  # Smooth-ish regions so the bilateral kernel has structure to follow.
  image[..., : h // 2, :, :] //= 4
  logits = rng.normal(size=batch + (h, w, num_labels)).astype(np.float32)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  return (-np.log(probs)).astype(np.float32), image


def _double_loop_crf(
  unary_e, image, iterations, pos_w, pos_xy_std, bi_w, bi_xy_std, bi_rgb_std, compat
):
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
      k_pos[i, j] = math.exp(-dxy / (2 * pos_xy_std**2))
      k_bi[i, j] = math.exp(-dxy / (2 * bi_xy_std**2) - drgb / (2 * bi_rgb_std**2))
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


# One 12x12 problem and one set of static arguments for the exact tests, so jit compiles each
# variant (Potts, compat matrix, batch of two) once for the whole module.
_U12, _IMAGE12 = _random_problem(0, 12, 12, 3, batch=(2,))
_EXACT = {
  'iterations': 3,
  'pos_w': 3.0,
  'pos_xy_std': 2.0,
  'bi_w': 5.0,
  'bi_xy_std': 6.0,
  'bi_rgb_std': 40.0,
}
_COMPAT = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]], np.float32)


@pytest.mark.parametrize('use_compat', [False, True])
def test_exact_matches_numpy_double_loop(use_compat):
  compat = _COMPAT if use_compat else None
  expected = _double_loop_crf(_U12[0], _IMAGE12[0], compat=compat, **_EXACT)
  got = np.asarray(crf.dense_crf_exact(_U12[0], _IMAGE12[0], compat=compat, **_EXACT))
  np.testing.assert_allclose(got, expected, atol=1e-5)
  # The iterations did something (the oracle is not the unary softmax).
  softmax = np.exp(-_U12[0]) / np.exp(-_U12[0]).sum(-1, keepdims=True)
  assert np.abs(expected - softmax).max() > 0.05


def test_potts_equals_one_minus_identity_compat():
  potts = crf.dense_crf_exact(_U12[0], _IMAGE12[0], **_EXACT)
  matrix = crf.dense_crf_exact(
    _U12[0], _IMAGE12[0], compat=1.0 - np.eye(3, dtype=np.float32), **_EXACT
  )
  np.testing.assert_allclose(potts, matrix, atol=1e-6)


def test_exact_batch_and_valid_mask():
  batch = np.asarray(crf.dense_crf_exact(_U12, _IMAGE12, **_EXACT))
  np.testing.assert_allclose(
    batch[0], crf.dense_crf_exact(_U12[0], _IMAGE12[0], **_EXACT), atol=1e-6
  )
  # Image 1 as a 7x6 image padded into 12x12: the valid part is the double loop on the 7x6.
  valid = np.zeros((2, 12, 12), bool)
  valid[0] = True
  valid[1, :7, :6] = True
  padded = np.asarray(crf.dense_crf_exact(_U12, _IMAGE12, valid=valid, **_EXACT))
  np.testing.assert_allclose(padded[0], batch[0], atol=1e-6)
  expected = _double_loop_crf(_U12[1, :7, :6], _IMAGE12[1, :7, :6], compat=None, **_EXACT)
  np.testing.assert_allclose(padded[1, :7, :6], expected, atol=1e-5)
  softmax = np.exp(-_U12[1]) / np.exp(-_U12[1]).sum(-1, keepdims=True)
  np.testing.assert_allclose(padded[1][~valid[1]], softmax[~valid[1]], atol=1e-6)


def test_unary_from_softmax_and_labels_closed_forms():
  probs = np.array([[[0.25, 0.75], [1.0, 0.0]]], np.float32)
  np.testing.assert_allclose(
    crf.unary_from_softmax(probs),
    [[[math.log(4), -math.log(0.75)], [0.0, -math.log(1e-5)]]],
    rtol=1e-6,
  )
  labels = np.array([[0, 1, 3]], np.int32)
  got = np.asarray(crf.unary_from_labels(labels, 3, gt_prob=0.6))
  np.testing.assert_allclose(
    np.exp(-got), [[[1 / 3] * 3, [0.6, 0.2, 0.2], [0.2, 0.2, 0.6]]], rtol=1e-6
  )
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
  np.testing.assert_allclose(
    np.asarray(crf.unary_from_softmax(probs)).reshape(-1, 3).T, theirs, rtol=1e-6
  )


_GOOD_U, _GOOD_IMAGE = _random_problem(4, 6, 5, 2)


@pytest.mark.parametrize('fn', [crf.dense_crf, crf.dense_crf_exact], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
  'kwargs, error, words',
  [
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
    (
      {'unary': np.where(np.eye(6, 5, dtype=bool)[..., None], np.nan, _GOOD_U)},
      ValueError,
      'unary',
    ),
    ({'unary': _GOOD_U.astype(np.int32)}, TypeError, 'unary'),
    ({'unary': _GOOD_U[0]}, ValueError, 'unary'),
    ({'image': _GOOD_IMAGE.astype(np.int32)}, TypeError, 'image'),
    ({'image': _GOOD_IMAGE[..., :1]}, ValueError, 'image'),
    ({'image': [[0]]}, TypeError, 'image'),
  ],
)
def test_bad_arguments_name_the_argument(fn, kwargs, error, words):
  args = {'unary': _GOOD_U, 'image': _GOOD_IMAGE}
  args.update(kwargs)
  with pytest.raises(error, match=words):
    fn(args.pop('unary'), args.pop('image'), **args)


@pytest.mark.parametrize(
  'call, error, words',
  [
    (
      lambda: crf.unary_from_labels(np.zeros((2, 2), np.float32), 2, gt_prob=0.5),
      TypeError,
      'labels',
    ),
    (
      lambda: crf.unary_from_labels(np.zeros((2, 2), np.int32), 1, gt_prob=0.5),
      ValueError,
      'num_labels',
    ),
    (
      lambda: crf.unary_from_labels(np.zeros((2, 2), np.int32), 2, gt_prob=1.0),
      ValueError,
      'gt_prob',
    ),
    (lambda: crf.unary_from_softmax(np.zeros((2, 2, 2), np.int32)), TypeError, 'probs'),
    (lambda: crf.unary_from_softmax(np.zeros((2, 2, 2), np.float32), clip=0.0), ValueError, 'clip'),
    (lambda: crf.map_labels(np.zeros((2, 2), np.float32)), ValueError, 'q'),
  ],
)
def test_helpers_bad_arguments(call, error, words):
  with pytest.raises(error, match=words):
    call()


@pytest.mark.parametrize(
  'obj',
  [
    crf.dense_crf,
    crf.dense_crf_exact,
    crf.unary_from_softmax,
    crf.unary_from_labels,
    crf.map_labels,
  ],
  ids=lambda f: f.__name__,
)
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


# ---- the permutohedral lattice (dense_crf) ----------------------------------------------------

_EXAMPLE = {'pos_w': 3.0, 'pos_xy_std': 3.0, 'bi_w': 10.0, 'bi_xy_std': 80.0, 'bi_rgb_std': 13.0}
_DEEPLAB = {'pos_w': 3.0, 'pos_xy_std': 3.0, 'bi_w': 4.0, 'bi_xy_std': 121.0, 'bi_rgb_std': 5.0}


def _read_rgb(name):
  image_module = pytest.importorskip('PIL.Image')
  path = reference_data.path(name)
  if not __import__('os').path.exists(path):
    pytest.skip(f'reference data {name} absent')
  return np.array(image_module.open(path).convert('RGB'))


def _example(index):
  """pydensecrf's examples/inference.py: image, its unary (gt_prob 0.7) and label count."""
  image = _read_rgb(f'densecrf-examples/im{index}.png')
  anno = _read_rgb(f'densecrf-examples/anno{index}.png').astype(np.int64)
  packed = anno[..., 0] + (anno[..., 1] << 8) + (anno[..., 2] << 16)
  colors, labels = np.unique(packed, return_inverse=True)
  has_unknown = bool(colors[0] == 0)
  num_labels = len(colors) - int(has_unknown)
  labels = labels.reshape(packed.shape).astype(np.int32)
  unary_e = np.asarray(
    crf.unary_from_labels(labels, num_labels, gt_prob=0.7, zero_unsure=has_unknown)
  )
  return image, unary_e


def _synthetic_crops():
  """Two 48x48 scenes built like pydensecrf's example: shaded regions, unknown boundary bands.

  Three regions (background, a disk, a rectangle) of low-contrast colours under a shading ramp
  and noise, annotated with classes 1-3 and 0 (unknown) in an 11-pixel band around every
  boundary, as the example's annotation is; the unary is ``unary_from_labels(gt_prob=0.7)``.
  Colour differences then sit at the bilateral kernel's scale, so the CRF decides the bands
  from colour (the regime of the real crops: lattice error ~1e-3, while a 30% wider colour
  kernel is off by 2e-2). A flat-colour scene would not test the lattice: Q saturates.
  """
  from scipy import ndimage  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:48, :48]
  grey = np.full(3, 120.0)
  colours = grey + 0.3 * (np.array([[60, 110, 150], [170, 70, 100], [150, 160, 70]]) - grey)
  shading = 60 * ((xx + yy) / 94 - 0.5)[..., None] * np.array([1.0, 0.8, 0.6])
  images, unaries = [], []
  for n in range(2):
    regions = np.zeros((48, 48), np.int32)
    regions[(yy - 20 - 4 * n) ** 2 + (xx - 18) ** 2 < 14**2] = 1
    regions[30:44, 26 + 2 * n : 46] = 2
    image = colours[regions] + shading + rng.normal(0, 8, (48, 48, 3))
    images.append(np.clip(image, 0, 255).astype(np.uint8))
    band = ndimage.morphological_gradient(regions, size=11) > 0
    labels = np.where(band, 0, regions + 1).astype(np.int32)
    unaries.append(np.asarray(crf.unary_from_labels(labels, 3, gt_prob=0.7, zero_unsure=True)))
  return np.stack(images), np.stack(unaries)


def _crops():
  """Two 48x48 crops of the first pydensecrf example, or synthetic ones when it is absent."""
  try:
    image, unary_e = _example(1)
  except pytest.skip.Exception:
    return _synthetic_crops()
  corners = ((100, 100), (130, 180))  # both cross object boundaries and the unknown region
  return (
    np.stack([image[y : y + 48, x : x + 48] for y, x in corners]),
    np.stack([unary_e[y : y + 48, x : x + 48] for y, x in corners]),
  )


def test_lattice_matches_exact_sums():
  """dense_crf (lattice) against dense_crf_exact (all pairs) on 48x48, 5 iterations.

  What the lattice approximates: splatting each pixel onto the d+1 vertices of its simplex of
  the permutohedral lattice, blurring with [1/2, 1, 1/2] along the d+1 lattice directions and
  slicing back is, up to a constant that the normalisation cancels, a convolution in feature
  space with a kernel close to exp(-|f_i - f_j|^2 / 2) but not equal to it: it is ~5% wider
  (measured against pydensecrf: the best-fitting Gaussian has std x1.05-1.1), piecewise
  linear between vertices, and not exactly shift-invariant (it depends on where a point falls
  in its simplex). The error is therefore a few percent of each kernel sum, not a round-off:
  mean |dQ| stays below 2e-3 (measured ~1e-3 on these crops, where Q moves by O(0.1-1) from
  the unary), and only pixels whose two best labels are within that of each other can flip,
  so at least 99.5% of the labels agree. The positional kernel is exact up to its 4-sigma
  truncation (~1e-4 of its mass), so the bound is the bilateral lattice's.
  """
  image, u = _crops()
  exact = np.asarray(crf.dense_crf_exact(u, image, iterations=5, **_EXAMPLE))
  lattice = np.asarray(crf.dense_crf(u, image, iterations=5, **_EXAMPLE))
  assert np.abs(lattice - exact).mean() < 2e-3
  assert (lattice.argmax(-1) == exact.argmax(-1)).mean() >= 0.995
  np.testing.assert_allclose(lattice.sum(-1), 1.0, atol=1e-5)
  # The CRF changed the labelling (the comparison is not between two copies of the unary).
  assert (exact.argmax(-1) != u.argmin(-1)).mean() > 0.01


# One small problem for the batch, traced and gradient tests (shared compilations).
_U_SMALL, _IMAGE_SMALL = _random_problem(6, 12, 10, 3)
_SMALL = {'iterations': 3, 'pos_xy_std': 2.0, 'bi_xy_std': 5.0, 'bi_rgb_std': 30.0}


def test_batch_equals_singles_and_valid_mask_pads_different_sizes():
  other_u, other_image = _random_problem(10, 16, 12, 3)
  images = np.zeros((2, 16, 12, 3), np.uint8)
  unaries = np.zeros((2, 16, 12, 3), np.float32)
  images[0], unaries[0] = other_image, other_u
  images[1, :12, :10], unaries[1, :12, :10] = _IMAGE_SMALL, _U_SMALL
  valid = np.zeros((2, 16, 12), bool)
  valid[0] = True
  valid[1, :12, :10] = True
  batch = np.asarray(crf.dense_crf(unaries, images, valid=valid, **_SMALL))
  np.testing.assert_allclose(batch[0], crf.dense_crf(other_u, other_image, **_SMALL), atol=2e-5)
  np.testing.assert_allclose(
    batch[1, :12, :10], crf.dense_crf(_U_SMALL, _IMAGE_SMALL, **_SMALL), atol=2e-5
  )
  softmax = np.exp(-unaries[1]) / np.exp(-unaries[1]).sum(-1, keepdims=True)
  np.testing.assert_allclose(batch[1][~valid[1]], softmax[~valid[1]], atol=1e-6)


def test_traced_image_uses_the_callback_lattice():
  eager = crf.dense_crf(_U_SMALL, _IMAGE_SMALL, **_SMALL)
  traced = jax.jit(lambda u, image: crf.dense_crf(u, image, **_SMALL))(_U_SMALL, _IMAGE_SMALL)
  np.testing.assert_allclose(traced, eager, atol=2e-5)


@pytest.mark.slow
def test_gradient_matches_finite_differences():
  u = _U_SMALL
  target = np.random.default_rng(8).normal(size=u.shape).astype(np.float32)

  def loss(u, pos_w, bi_w):
    q = crf.dense_crf(u, _IMAGE_SMALL, pos_w=pos_w, bi_w=bi_w, **_SMALL)
    return jnp.sum(q * target)

  grads = jax.grad(loss, argnums=(0, 1, 2))(jnp.asarray(u), jnp.float32(3.0), jnp.float32(4.0))
  direction = np.random.default_rng(9).normal(size=u.shape).astype(np.float32)
  direction /= np.linalg.norm(direction)  # a unit step, so eps is the step's length
  eps = 1e-2
  # Central differences along one random direction of the unary and along each weight: the
  # O(eps^2) truncation and the float32 round-off (~1e-7 / eps, relative) stay below 1e-3.
  step = eps * direction
  numeric = [
    (loss(u + step, 3.0, 4.0) - loss(u - step, 3.0, 4.0)) / (2 * eps),
    (loss(u, 3.0 + eps, 4.0) - loss(u, 3.0 - eps, 4.0)) / (2 * eps),
    (loss(u, 3.0, 4.0 + eps) - loss(u, 3.0, 4.0 - eps)) / (2 * eps),
  ]
  analytic = [float(jnp.sum(grads[0] * direction)), float(grads[1]), float(grads[2])]
  for a, n in zip(analytic, numeric):
    assert abs(a - float(n)) <= 1e-3 * max(1.0, abs(float(n))), (analytic, numeric)
  assert abs(analytic[1]) > 1e-3 and abs(analytic[2]) > 1e-3  # the weights matter here


def _pydensecrf_q(unary_e, image, iterations, p):
  dcrf = pytest.importorskip('pydensecrf.densecrf')
  h, w, num_labels = unary_e.shape
  d = dcrf.DenseCRF2D(w, h, num_labels)
  d.setUnaryEnergy(np.ascontiguousarray(unary_e.reshape(-1, num_labels).T))
  d.addPairwiseGaussian(sxy=p['pos_xy_std'], compat=p['pos_w'])
  d.addPairwiseBilateral(
    sxy=p['bi_xy_std'], srgb=p['bi_rgb_std'], rgbim=np.ascontiguousarray(image), compat=p['bi_w']
  )
  return np.asarray(d.inference(iterations)).T.reshape(h, w, num_labels)


@pytest.mark.parametrize(
  'index', [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
def test_agrees_with_pydensecrf_on_its_examples(index):
  """pydensecrf's examples/inference.py settings: gt_prob 0.7, Gaussian sxy 3 compat 3,
  bilateral sxy 80 srgb 13 compat 10, 5 iterations."""
  pytest.importorskip('pydensecrf.densecrf')
  image, unary_e = _example(index)
  theirs = _pydensecrf_q(unary_e, image, 5, _EXAMPLE)
  ours = np.asarray(crf.dense_crf(unary_e, image, iterations=5, **_EXAMPLE))
  assert (ours.argmax(-1) == theirs.argmax(-1)).mean() >= 0.998
  # Same lattice, same normalisation: the marginals agree closely too (measured ~4e-5).
  assert np.abs(ours - theirs).mean() < 1e-3
  assert (theirs.argmax(-1) != unary_e.argmin(-1)).mean() > 0.05  # the CRF did something


_VOC_PALETTE = np.array(
  [
    [
      (c >> 0 & 1) << 7 | (c >> 3 & 1) << 6 | (c >> 6 & 1) << 5,
      (c >> 1 & 1) << 7 | (c >> 4 & 1) << 6 | (c >> 7 & 1) << 5,
      (c >> 2 & 1) << 7 | (c >> 5 & 1) << 6,
    ]
    for c in range(21)
  ]
)


def voc_labels(rgb):
  """Class indices of a VOC-palette RGB label image (unknown colours -> 0)."""
  match = np.all(rgb[..., None, :] == _VOC_PALETTE, axis=-1)
  return np.where(match.any(-1), match.argmax(-1), 0).astype(np.int32)


@pytest.mark.slow
def test_agrees_with_pydensecrf_on_a_voc_image_with_deeplab_parameters():
  """513x513 VOC image, 21 labels, DeepLab's LargeFOV CRF (bi 4/121/5, pos 3/3, 10 it.); the
  unary is unary_from_labels(DeepLabV3+ prediction, gt_prob=0.6, zero_unsure=False)."""
  pytest.importorskip('pydensecrf.densecrf')
  image = _read_rgb('voc-samples/1_image.png')
  labels = voc_labels(_read_rgb('voc-samples/1_pred.png'))
  unary_e = np.asarray(crf.unary_from_labels(labels, 21, gt_prob=0.6, zero_unsure=False))
  theirs = _pydensecrf_q(unary_e, image, 10, _DEEPLAB)
  ours = np.asarray(crf.dense_crf(unary_e, image, iterations=10, **_DEEPLAB))
  assert (ours.argmax(-1) == theirs.argmax(-1)).mean() >= 0.998
  # The CRF moved some boundaries (~200 pixels: a confident unary, DeepLab's mild kernels).
  assert (theirs.argmax(-1) != labels).sum() >= 100
