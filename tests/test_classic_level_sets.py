"""Tests for jaxseg.classic.level_sets against scikit-image, run live on real images.

The level sets are compared in float64: scikit-image's own float32 and float64 runs drift apart
by up to 0.4 in the level set after a few hundred steps, so a float32 comparison would measure
rounding, not the algorithm.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_data

from jaxseg.classic import level_sets

skimage = pytest.importorskip('skimage')
from skimage import data, segmentation, transform
from skimage.segmentation import morphsnakes


def _grey(name, size):
  image = getattr(data, name)()
  if image.ndim == 3:
    image = image[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
  return transform.resize(image.astype(np.float64), (size, size), anti_aliasing=True)


def _voc_grey(size):
  path = os.path.join(reference_data.ROOT, 'voc-samples', '1_image.png')
  if not os.path.exists(path):
    pytest.skip('reference data absent')
  from PIL import Image

  image = np.asarray(Image.open(path).convert('L'), np.float64) / 255.0
  return transform.resize(image, (size, size), anti_aliasing=True)


def _fresh_skimage_cycle():
  """scikit-image keeps the SI/IS alternation in a module-level cycle; start it afresh."""
  morphsnakes._curvop = morphsnakes._fcycle(
    [
      lambda u: morphsnakes.sup_inf(morphsnakes.inf_sup(u)),
      lambda u: morphsnakes.inf_sup(morphsnakes.sup_inf(u)),
    ]
  )


IMAGES = [('camera', 128), ('coins', 256), ('astronaut', 128), ('voc', 256)]


def _image(name, size):
  return _voc_grey(size) if name == 'voc' else _grey(name, size)


@pytest.mark.parametrize('name,size', IMAGES)
def test_chan_vese_matches_skimage_in_float64(name, size):
  image = _image(name, size)
  kwargs = {'mu': 0.2, 'lambda1': 1.0, 'lambda2': 1.5, 'dt': 0.5}
  ref_seg, ref_phi, ref_energies = segmentation.chan_vese(
    image, tol=0.0, max_num_iter=40, extended_output=True, **kwargs
  )
  with jax.enable_x64(True):
    seg, phi, energies = level_sets.chan_vese(
      jnp.asarray(image), tol=0.0, max_iterations=40, **kwargs
    )
    assert phi.dtype == jnp.float64
    seg, phi, energies = np.asarray(seg), np.asarray(phi), np.asarray(energies)
  assert seg.dtype == np.bool_ and seg.shape == image.shape
  assert (seg == ref_seg).mean() >= 0.999
  np.testing.assert_allclose(phi, ref_phi, atol=1e-5)
  np.testing.assert_allclose(energies, ref_energies, rtol=1e-6)
  assert energies[-1] < energies[0]


def test_chan_vese_stops_at_tol_as_skimage_and_pads_energies_with_nan():
  image = _grey('coins', 128)
  ref_seg, _, ref_energies = segmentation.chan_vese(
    image, tol=2e-3, max_num_iter=200, extended_output=True, init_level_set='disk'
  )
  with jax.enable_x64(True):
    seg, _, energies = level_sets.chan_vese(image, tol=2e-3, max_iterations=200, init='disk')
    seg, energies = np.asarray(seg), np.asarray(energies)
  steps = int(np.isfinite(energies).sum())
  assert steps == len(ref_energies) < 200
  assert np.isnan(energies[steps:]).all()
  assert (seg == ref_seg).mean() >= 0.999


def test_chan_vese_float32_energy_decreases_and_segments_the_coins():
  image = _grey('coins', 128).astype(np.float32)
  seg, phi, energies = level_sets.chan_vese(image, tol=0.0, max_iterations=80)
  assert phi.dtype == jnp.float32 and energies.shape == (80,)
  energies = np.asarray(energies)
  assert energies[-1] < 0.5 * energies[0]
  # Non-increasing up to the step's discretisation slack (the scheme is not exactly monotone).
  assert (np.diff(energies) <= 1e-3 * energies[0]).all()
  ref = segmentation.chan_vese(image.astype(np.float64), tol=0.0, max_num_iter=80)
  assert (np.asarray(seg) == ref).mean() >= 0.99


def test_chan_vese_batch_equals_each_image_and_runs_under_jit():
  # float64: a batch reduces in another order, which float32 rounding would amplify.
  images = np.stack([_grey('camera', 32), _grey('coins', 32)])
  with jax.enable_x64(True):
    seg, phi, energies = level_sets.chan_vese(images, tol=1e-2, max_iterations=40)
    assert seg.shape == (2, 32, 32) and energies.shape == (2, 40)
    for n in range(2):
      s, p, e = level_sets.chan_vese(images[n], tol=1e-2, max_iterations=40)
      np.testing.assert_array_equal(seg[n], s)
      np.testing.assert_allclose(phi[n], p, rtol=1e-9, atol=1e-9)
      np.testing.assert_array_equal(np.isfinite(energies[n]), np.isfinite(e))
    jitted = jax.jit(lambda x: level_sets.chan_vese(x, tol=1e-2, max_iterations=40)[1])
    np.testing.assert_allclose(jitted(images[0]), phi[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
  'name,size,smoothing,lambdas',
  [
    ('camera', 128, 1, (1.0, 1.0)),
    ('coins', 256, 2, (1.0, 2.0)),
    ('astronaut', 256, 3, (1.0, 1.0)),
    ('voc', 128, 1, (2.0, 1.0)),
  ],
)
def test_morphological_chan_vese_matches_skimage(name, size, smoothing, lambdas):
  image = _image(name, size)
  _fresh_skimage_cycle()
  ref = segmentation.morphological_chan_vese(
    image, 35, smoothing=smoothing, lambda1=lambdas[0], lambda2=lambdas[1]
  )
  with jax.enable_x64(True):
    u = np.asarray(
      level_sets.morphological_chan_vese(
        image, 35, smoothing=smoothing, lambda1=lambdas[0], lambda2=lambdas[1]
      )
    )
  assert u.dtype == np.int32 and set(np.unique(u)) <= {0, 1}
  assert (u == ref).mean() >= 0.999


def test_morphological_chan_vese_disk_and_array_init_match_skimage():
  image = _grey('camera', 128)
  rng = np.random.default_rng(0)
  init = rng.random(image.shape) - 0.5
  for given, ours in (('disk', 'disk'), (init, init)):
    _fresh_skimage_cycle()
    ref = segmentation.morphological_chan_vese(image, 20, init_level_set=given, smoothing=1)
    with jax.enable_x64(True):
      u = np.asarray(level_sets.morphological_chan_vese(image, 20, init=ours))
    assert (u == ref).mean() >= 0.999


def test_morphological_chan_vese_batch():
  images = np.stack([_grey('camera', 24), _grey('coins', 24)]).astype(np.float32)
  u = level_sets.morphological_chan_vese(images, 8, smoothing=2)
  for n in range(2):
    np.testing.assert_array_equal(
      u[n], level_sets.morphological_chan_vese(images[n], 8, smoothing=2)
    )


def test_float32_arctan_is_within_3e_7_relative():
  x = np.concatenate(
    [
      np.linspace(-50, 50, 20001),
      np.geomspace(1e-8, 1e8, 2001),
      -np.geomspace(1e-8, 1e8, 2001),
      [0.0],
    ]
  ).astype(np.float32)
  got = np.asarray(jax.jit(level_sets._arctan)(jnp.asarray(x)), np.float64)
  ref = np.arctan(x.astype(np.float64))
  assert np.all(np.abs(got - ref) <= 3e-7 * np.abs(ref))


def test_curvature_operators_match_scipy_morphology():
  rng = np.random.default_rng(1)
  sup_inf, inf_sup = jax.jit(level_sets._sup_inf), jax.jit(level_sets._inf_sup)
  for u in (rng.random((9, 11)) < 0.5, rng.random((6, 5)) < 0.7):
    u = u.astype(np.int8)
    np.testing.assert_array_equal(sup_inf(jnp.asarray(u, jnp.int32)), morphsnakes.sup_inf(u))
    np.testing.assert_array_equal(inf_sup(jnp.asarray(u, jnp.int32)), morphsnakes.inf_sup(u))
    np.testing.assert_array_equal(
      level_sets._gradient_l1(jnp.asarray(u)), np.abs(np.gradient(u)).sum(0)
    )


@pytest.mark.parametrize(
  'call,match',
  [
    (lambda: level_sets.chan_vese(np.zeros((4, 4, 3, 1))), 'image must be a grey'),
    (lambda: level_sets.chan_vese(np.zeros((1, 5))), 'at least 2x2'),
    (lambda: level_sets.chan_vese(np.zeros((0, 4, 4))), 'non-empty batch'),
    (lambda: level_sets.chan_vese(np.full((4, 4), np.nan)), 'NaN'),
    (lambda: level_sets.chan_vese(np.zeros((4, 4)), dt=0.0), 'dt must be'),
    (lambda: level_sets.chan_vese(np.zeros((4, 4)), mu=-1.0), 'mu must be'),
    (lambda: level_sets.chan_vese(np.zeros((4, 4)), max_iterations=0), 'max_iterations'),
    (lambda: level_sets.chan_vese(np.zeros((4, 4)), init='square'), 'init must be one of'),
    (lambda: level_sets.chan_vese(np.zeros((4, 4)), init=np.zeros((3, 4))), 'init must have'),
    (lambda: level_sets.morphological_chan_vese(np.zeros((4, 4)), -1), 'iterations'),
    (
      lambda: level_sets.morphological_chan_vese(np.zeros((4, 4)), 2, init='small disk'),
      'init must be one of',
    ),
  ],
)
def test_bad_arguments_raise_value_error(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_bad_types_raise_type_error():
  with pytest.raises(TypeError, match='max_iterations'):
    level_sets.chan_vese(np.zeros((4, 4)), max_iterations=2.5)
  with pytest.raises(TypeError, match='image must be numeric'):
    level_sets.chan_vese(np.zeros((4, 4), bool))


def test_docstring_examples_run():
  import doctest

  for fn in (level_sets.chan_vese, level_sets.morphological_chan_vese):
    tests = doctest.DocTestFinder(recurse=False).find(
      fn, fn.__name__, globs={'jnp': jnp, fn.__name__: fn}
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
      runner.run(test)
    assert runner.failures == 0 and runner.tries > 0, fn.__name__
