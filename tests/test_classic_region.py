"""Region growing against skimage's flood and a NumPy reference; Felzenszwalb merging against
skimage's felzenszwalb."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _real_images import REFERENCE_NAMES, load_reference, skimage_image
from test_classic_thresholding import check_docstring

from jaxseg.classic import region

segmentation = pytest.importorskip('skimage.segmentation')
ndimage = pytest.importorskip('scipy.ndimage')


@pytest.mark.parametrize('connectivity', [4, 8])
def test_one_seed_equals_skimage_flood(connectivity):
  camera = skimage_image('camera')[::4, ::4]
  for seed in [(10, 10), (64, 64), (100, 30), (127, 127)]:
    for tolerance in (0, 5, 20):
      # flood's connectivity counts orthogonal steps: 1 is 4-connectivity, 2 is 8.
      expected = segmentation.flood(
        camera, seed, tolerance=tolerance, connectivity=connectivity // 4
      )
      got = region.region_grow(
        camera, np.array([seed]), tolerance=tolerance, connectivity=connectivity
      )
      np.testing.assert_array_equal(np.asarray(got) == 1, expected)
      assert set(np.unique(got)) <= {0, 1}


def test_one_seed_on_a_float_image_equals_flood():
  rng = np.random.default_rng(0)
  # Dyadic values and tolerance: seed +- tolerance is exact in float32 and float64 alike.
  image = (rng.integers(0, 64, (40, 50)) / 64).astype(np.float32)
  for connectivity in (4, 8):
    expected = segmentation.flood(image, (20, 25), tolerance=0.25, connectivity=connectivity // 4)
    got = region.region_grow(image, np.array([[20, 25]]), tolerance=0.25, connectivity=connectivity)
    np.testing.assert_array_equal(np.asarray(got) == 1, expected)


def _numpy_grow(image, seeds, tolerance, connectivity, mean_mode):
  """The documented rule from the definitions, with scipy's connected components: rounds in
  which every region takes the free accepting pixels connected to it, contested pixels go to
  the nearest reference (then the lowest seed), regions are cut back to their seed's component,
  means recomputed; until nothing changes."""
  values = image.astype(np.float64).reshape(image.shape[0], image.shape[1], -1)
  structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)

  def component(seed_mask, allowed):
    labels, _ = ndimage.label(allowed, structure)
    keep = np.unique(labels[seed_mask & allowed])
    return np.isin(labels, keep[keep > 0])

  refs = np.array([values[r, c] for r, c in seeds])
  start = np.zeros((len(seeds),) + image.shape[:2], bool)
  for s, (r, c) in enumerate(seeds):
    start[s, r, c] = True
  reach = start.copy()
  while True:
    dist = ((values[None] - refs[:, None, None]) ** 2).sum(-1)
    free = ~reach.any(0)
    new = (
      np.stack(
        [
          component(reach[s], reach[s] | ((dist[s] <= tolerance**2) & free))
          for s in range(len(seeds))
        ]
      )
      & ~reach
    )
    winner = np.where(new, dist, np.inf).argmin(0)
    keep = reach | (new & (np.arange(len(seeds))[:, None, None] == winner[None]))
    keep = np.stack([component(start[s], keep[s]) for s in range(len(seeds))])
    if mean_mode:
      refs = np.array([values[keep[s]].mean(0) for s in range(len(seeds))])
    if (keep == reach).all():
      break
    reach = keep
  return np.where(reach.any(0), reach.argmax(0) + 1, 0)


@pytest.mark.parametrize(
  'mode, connectivity',
  [
    ('seed', 4),
    ('mean', 8),
    pytest.param('seed', 8, marks=pytest.mark.slow),
    pytest.param('mean', 4, marks=pytest.mark.slow),
  ],
)
def test_several_seeds_follow_the_documented_rule(mode, connectivity):
  image = skimage_image('astronaut')[::8, ::8].astype(np.float32)
  seeds = np.array([[5, 5], [40, 20], [60, 60], [30, 45], [5, 6], [50, 10]])
  got = region.region_grow(image, seeds, tolerance=40.0, connectivity=connectivity, mode=mode)
  want = _numpy_grow(image, seeds, 40.0, connectivity, mode == 'mean')
  np.testing.assert_array_equal(got, want)
  assert len(np.unique(got)) >= 5  # the regions compete (not one swallowing the others)
  for s, (r, c) in enumerate(seeds):
    assert got[r, c] == s + 1


def test_region_grow_vmaps_over_images():
  camera = skimage_image('camera')[::8, ::8]
  images = np.stack([camera, camera.T, 255 - camera])
  seeds = np.array([[[3, 3], [40, 50]], [[10, 10], [60, 2]], [[0, 0], [63, 63]]])
  batched = jax.vmap(lambda im, s: region.region_grow(im, s, tolerance=12, connectivity=8))(
    images, seeds
  )
  for i in range(3):
    np.testing.assert_array_equal(
      batched[i], region.region_grow(images[i], seeds[i], tolerance=12, connectivity=8)
    )


def _same_partition(a, b):
  """True when the label maps are equal up to a relabelling (a bijection between labels)."""
  pairs = set(zip(np.asarray(a).ravel().tolist(), np.asarray(b).ravel().tolist()))
  return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _untied_image(seed, shape=(24, 28)):
  """Blocks (so that regions form) plus distinct noise, all on a 2**-24 grid below 1 so every
  edge weight |a - b| is exact in float32 and float64; redrawn until no two weights tie."""
  for attempt in range(200):
    rng = np.random.default_rng([seed, attempt])
    blocks = rng.integers(0, 8, (3, 4)) / 16
    base = np.kron(blocks, np.ones((shape[0] // 3, shape[1] // 4)))
    noise = rng.choice(1 << 20, size=shape, replace=False) / (1 << 24)  # below 1/16
    image = (base + noise).astype(np.float32)
    weights = _edge_weights(image)
    if len(np.unique(weights)) == len(weights):
      return image
  raise AssertionError('no untied image found')


def _edge_weights(image):
  image = image.reshape(image.shape[0], image.shape[1], -1).astype(np.float64)
  pairs = [
    (image[:, 1:], image[:, :-1]),
    (image[1:], image[:-1]),
    (image[1:, 1:], image[:-1, :-1]),
    (image[:-1, 1:], image[1:, :-1]),
  ]
  return np.concatenate([np.sqrt(((a - b) ** 2).sum(-1)).ravel() for a, b in pairs])


@pytest.mark.parametrize(
  'scale, min_size', [(20.0, 5), (300.0, 20), pytest.param(1.0, 1, marks=pytest.mark.slow)]
)
def test_hierarchical_merge_equals_felzenszwalb_without_ties(scale, min_size):
  image = _untied_image(0)
  expected = segmentation.felzenszwalb(
    image.astype(np.float64), scale=scale, sigma=0.0, min_size=min_size, channel_axis=None
  )
  got = region.hierarchical_merge(image, scale=scale, sigma=0.0, min_size=min_size)
  assert 1 < len(np.unique(expected)) < image.size
  assert _same_partition(got, expected)


def test_hierarchical_merge_equals_felzenszwalb_on_colour_without_ties():
  # The colour path (channels summed in the weight) with constant green and blue: the weights
  # are sqrt(d * d) = |d|, exact in IEEE arithmetic, so still untied.
  grey = _untied_image(1)
  image = np.stack([grey, np.full_like(grey, 0.5), np.full_like(grey, 0.25)], axis=-1)
  expected = segmentation.felzenszwalb(image.astype(np.float64), scale=50.0, sigma=0.0, min_size=3)
  got = region.hierarchical_merge(image, scale=50.0, sigma=0.0, min_size=3)
  assert 1 < len(np.unique(expected)) < image.size
  assert _same_partition(got, expected)


@pytest.mark.parametrize(
  'name',
  ['astronaut', pytest.param('camera', marks=pytest.mark.slow)]
  + [pytest.param(n, marks=pytest.mark.slow) for n in REFERENCE_NAMES[:1]],
)
def test_hierarchical_merge_on_real_images(name):
  metrics = pytest.importorskip('sklearn.metrics')
  image = skimage_image(name) if name in ('astronaut', 'camera') else load_reference(name)
  image = image[::4, ::4]
  # Smoothed (sigma 0.8): weights almost never tie in float64, but float32 rounds some distinct
  # ones together or swaps near-equal neighbours in the sort, so equality is not promised; it
  # holds on astronaut. Unsmoothed uint8 (sigma 0): integer differences tie by the thousand and
  # scikit-image's quicksort orders ties arbitrarily while this sort is stable: ARI > 0.99.
  for sigma in (0.8, 0.0):
    expected = segmentation.felzenszwalb(
      image, scale=100.0, sigma=sigma, min_size=20, channel_axis=-1 if image.ndim == 3 else None
    )
    got = np.asarray(region.hierarchical_merge(image, scale=100.0, sigma=sigma, min_size=20))
    ari = metrics.adjusted_rand_score(expected.ravel(), got.ravel())
    assert ari > 0.99, (sigma, ari)
    if name == 'astronaut' and sigma > 0:
      assert _same_partition(got, expected)
    sizes = np.bincount(got.ravel())
    assert sizes.min() >= 20 and got.max() + 1 == len(sizes)


def test_hierarchical_merge_vmaps_and_numbers_in_raster_order():
  images = np.stack([_untied_image(s) for s in (4, 5)])
  batched = jax.vmap(lambda im: region.hierarchical_merge(im, scale=20.0, sigma=0.5))(images)
  for i in range(2):
    single = np.asarray(region.hierarchical_merge(images[i], scale=20.0, sigma=0.5))
    np.testing.assert_array_equal(batched[i], single)
    firsts = [np.flatnonzero(single.ravel() == label)[0] for label in range(single.max() + 1)]
    assert firsts == sorted(firsts)


@pytest.mark.slow
def test_hierarchical_merge_under_nested_vmap():
  # vmap runs the union-find once per image (a lax.map, custom_vmap): nested batch axes too.
  images = np.stack([_untied_image(s) for s in (4, 5)])
  merge = functools.partial(region.hierarchical_merge, scale=20.0, sigma=0.5)
  nested = jax.vmap(jax.vmap(merge))(images.reshape(2, 1, *images.shape[1:]))
  for i in range(2):
    np.testing.assert_array_equal(nested[i, 0], merge(images[i]))


@pytest.mark.parametrize('count', [1, 2, 1000, 40_000])
def test_stable_argsort_equals_numpy_stable_argsort(count):
  # The radix passes against NumPy's stable sort: ties (few distinct values), zeros, denormals,
  # the largest float32, and sizes whose position bits leave 30, 21 and 15 key bits per pass.
  rng = np.random.default_rng(count)
  pool = np.array([0.0, 1e-45, 1e-38, 0.25, 0.5, 1.0, 1.7320508, 3.4e38], np.float32)
  keys = np.where(rng.random(count) < 0.5, rng.choice(pool, count), rng.random(count))
  keys = keys.astype(np.float32)
  got = np.asarray(jax.jit(region._stable_argsort)(keys))
  np.testing.assert_array_equal(got, np.argsort(keys, kind='stable'))


def test_hierarchical_merge_loop_copies_no_per_pixel_array():
  # The union-find writes a few elements per edge in place. A copy of a (H W,) array in a
  # computation that writes elements means a copy per edge: the loop turns quadratic (it did,
  # 4.7 s at 256x256, when reads of the per-node arrays were fused into the writes). The one
  # allowed copy is in the pointer-jumping loop, which runs log(H W) times and writes no element.
  image = jnp.zeros((32, 32, 3), jnp.float32)
  hlo = region._felzenszwalb.lower(image, jnp.float32(100.0), sigma=0.8, min_size=20)
  for computation in re.split(r'\n(?=%\S+ \()', hlo.compile().as_text()):
    if 'dynamic-update-slice' in computation or 'scatter' in computation:
      copies = re.findall(r'.*\[1024\]\{0\} copy\(.*', computation)
      assert not copies, copies


def test_bad_arguments_are_named():
  image = np.zeros((5, 6), np.float32)
  with pytest.raises(ValueError, match=r'\[\[5, 0\]\]'):
    region.region_grow(image, np.array([[5, 0]]), tolerance=1.0)
  with pytest.raises(ValueError, match='seeds'):
    region.region_grow(image, np.array([1, 2]), tolerance=1.0)
  with pytest.raises(TypeError, match='seeds'):
    region.region_grow(image, np.array([[1.0, 2.0]]), tolerance=1.0)
  with pytest.raises(ValueError, match='tolerance'):
    region.region_grow(image, np.array([[1, 2]]), tolerance=-1.0)
  with pytest.raises(ValueError, match='connectivity'):
    region.region_grow(image, np.array([[1, 2]]), tolerance=1.0, connectivity=6)
  with pytest.raises(ValueError, match='mode'):
    region.region_grow(image, np.array([[1, 2]]), tolerance=1.0, mode='median')
  with pytest.raises(ValueError, match='finite'):
    region.hierarchical_merge(np.full((4, 4), np.nan), scale=1.0)
  with pytest.raises(ValueError, match='empty'):
    region.hierarchical_merge(np.zeros((0, 4)), scale=1.0)
  with pytest.raises(ValueError, match='scale'):
    region.hierarchical_merge(image, scale=0.0)
  with pytest.raises(ValueError, match='rank'):
    region.hierarchical_merge(np.zeros((2, 3, 4, 3)), scale=1.0)


@pytest.mark.parametrize(
  'fn', [region.region_grow, region.hierarchical_merge], ids=lambda fn: fn.__name__
)
def test_docstrings(fn):
  check_docstring(fn, {'jnp': jnp, 'np': np, 'jax': jax, **vars(region)})
