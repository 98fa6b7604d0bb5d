"""k-means and k-means++ against scikit-learn, the D^2 law, and image clustering."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _real_images import REFERENCE_NAMES, load_reference, skimage_image
from test_classic_thresholding import check_docstring

from jaxseg.classic import clustering, color

sklearn_cluster = pytest.importorskip('sklearn.cluster')


def _pixels(name, step=4):
  """Colour (or grey) pixels of a real image in [0, 1], float32, one row per pixel."""
  image = skimage_image(name) if name in ('camera', 'coins', 'astronaut') else load_reference(name)
  image = image[::step, ::step].astype(np.float32) / 255
  return image.reshape(-1, image.shape[-1] if image.ndim == 3 else 1)


@pytest.mark.parametrize(
  'name, k',
  [('astronaut', 5), ('coins', 3)]
  + [pytest.param(n, 8, marks=pytest.mark.slow) for n in REFERENCE_NAMES[:1]],
)
def test_same_init_equals_sklearn_lloyd(name, k):
  points = _pixels(name)
  init = points[np.random.default_rng(k).choice(len(points), k, replace=False)]
  # scikit-learn in float64: its own float32 run drifts from it by up to 4e-5 on these images
  # (float32 sums of many points); the one-hot matmul of offsets here stays within 3e-6.
  ref = sklearn_cluster.KMeans(k, init=init.astype(np.float64), n_init=1, algorithm='lloyd').fit(
    points.astype(np.float64)
  )
  centres, labels, inertia = clustering.kmeans(points, k, init=init)
  np.testing.assert_array_equal(labels, ref.labels_)
  np.testing.assert_allclose(centres, ref.cluster_centers_, atol=1e-5)
  np.testing.assert_allclose(float(inertia), ref.inertia_, rtol=1e-5)


def test_empty_cluster_is_relocated_as_sklearn():
  points = _pixels('astronaut', step=8)
  init = np.concatenate([points[[0, 500, 1000]], np.full((2, 3), 5.0, np.float32)])
  ref = sklearn_cluster.KMeans(5, init=init.astype(np.float64), n_init=1, algorithm='lloyd').fit(
    points.astype(np.float64)
  )
  centres, labels, inertia = clustering.kmeans(points, 5, init=init)
  np.testing.assert_array_equal(labels, ref.labels_)
  np.testing.assert_allclose(centres, ref.cluster_centers_, atol=1e-5)
  np.testing.assert_allclose(float(inertia), ref.inertia_, rtol=1e-5)
  assert len(np.unique(labels)) == 5


@pytest.mark.parametrize(
  'name, k',
  [('astronaut', 5)] + [pytest.param(n, 6, marks=pytest.mark.slow) for n in REFERENCE_NAMES[:1]],
)
def test_kmeans_plusplus_inertia_within_one_percent_of_sklearn_best_of_ten(name, k):
  points = _pixels(name, step=8)
  best = sklearn_cluster.KMeans(k, n_init=10, random_state=0).fit(points.astype(np.float64))
  # Best of 10 against best of 10: one run of either lands in a local optimum ~1% worse on
  # these images for some seeds (astronaut, k=5: 4 keys of 6 here).
  keys = jax.random.split(jax.random.key(0), 10)
  _, _, inertia = jax.vmap(lambda key: clustering.kmeans(points, k, key=key))(keys)
  assert float(inertia.min()) <= 1.01 * best.inertia_


def _d2_law(points, k):
  """Exact probability of every ordered seed tuple under D^2 sampling (uniform first seed)."""
  n = len(points)
  d2 = ((points[:, None] - points[None]) ** 2).sum(-1)
  probs = {}

  def walk(chosen, p):
    if len(chosen) == k:
      probs[tuple(chosen)] = p
      return
    closest = d2[chosen].min(0)
    for j in range(n):
      if closest[j] > 0:
        walk([*chosen, j], p * closest[j] / closest.sum())

  for i in range(n):
    walk([i], 1.0 / n)
  return probs


def test_seeding_follows_the_d2_law():
  stats = pytest.importorskip('scipy.stats')
  points = np.array([[0, 0], [1, 0], [0, 2], [3, 3], [5, 1], [2, 2]], np.float32)
  law = _d2_law(points.astype(np.float64), 3)
  draws = 40000
  keys = jax.random.split(jax.random.key(1234), draws)
  seeds = jax.vmap(lambda key: clustering.kmeans_plusplus(points, 3, key=key)[1])(keys)
  seeds = np.asarray(seeds)
  cells = sorted(law)
  index = {cell: i for i, cell in enumerate(cells)}
  observed = np.zeros(len(cells))
  for row in map(tuple, seeds):
    observed[index[row]] += 1  # a KeyError would be a tuple the law forbids
  expected = np.array([law[c] for c in cells]) * draws
  assert expected.min() >= 5  # the chi-square approximation holds
  # With a correct sampler the p-value is uniform: this fixed key fails with probability 1e-3
  # over the choice of key (it passes with p = its printed value).
  p_value = stats.chisquare(observed, expected).pvalue
  assert p_value > 1e-3, p_value


def test_vmap_over_point_sets_equals_one_by_one():
  rng = np.random.default_rng(0)
  sets = rng.normal(size=(3, 40, 2)).astype(np.float32)
  keys = jax.random.split(jax.random.key(0), 3)
  batched = jax.vmap(lambda p, key: clustering.kmeans(p, 4, key=key))(sets, keys)
  for i in range(3):
    single = clustering.kmeans(sets[i], 4, key=keys[i])
    for got, want in zip(batched, single):
      np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
  'colorspace, spatial_weight', [('lab', 50.0), pytest.param('rgb', 0.0, marks=pytest.mark.slow)]
)
def test_kmeans_segment_is_kmeans_of_the_features(colorspace, spatial_weight):
  image = skimage_image('astronaut')[::8, ::8]
  key = jax.random.key(3)
  labels = clustering.kmeans_segment(
    image, 4, key=key, colorspace=colorspace, spatial_weight=spatial_weight
  )
  colour = color.rgb_to_lab(image) if colorspace == 'lab' else jnp.asarray(image, jnp.float32) / 255
  rows, cols = np.mgrid[:64, :64].astype(np.float32)
  feats = np.concatenate(
    [np.asarray(colour).reshape(-1, 3)]
    + ([np.stack([rows, cols], -1).reshape(-1, 2) * spatial_weight / 64] if spatial_weight else []),
    axis=1,
  )
  _, want, _ = clustering.kmeans(feats, 4, key=key)
  np.testing.assert_array_equal(labels, np.asarray(want).reshape(64, 64))
  batch = clustering.kmeans_segment(
    np.stack([image, image[::-1]]), 4, key=key, colorspace=colorspace, spatial_weight=spatial_weight
  )
  second = jax.random.split(key, 2)[1]
  np.testing.assert_array_equal(
    batch[1],
    clustering.kmeans_segment(
      image[::-1], 4, key=second, colorspace=colorspace, spatial_weight=spatial_weight
    ),
  )


def test_bad_arguments_are_named():
  points = np.zeros((5, 2), np.float32)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match='k=6'):
    clustering.kmeans(points, 6, key=key)
  with pytest.raises(ValueError, match=r'\(P, D\)'):
    clustering.kmeans(points[0], 1, key=key)
  with pytest.raises(ValueError, match='finite'):
    clustering.kmeans(np.full((5, 2), np.nan), 2, key=key)
  with pytest.raises(ValueError, match='init'):
    clustering.kmeans(points, 2, init=np.zeros((3, 2)))
  with pytest.raises(ValueError, match='key'):
    clustering.kmeans(points, 2)
  with pytest.raises(ValueError, match='empty'):
    clustering.kmeans(np.zeros((0, 2)), 1, key=key)
  with pytest.raises(ValueError, match='colorspace'):
    clustering.kmeans_segment(np.zeros((4, 4, 3)), 2, key=key, colorspace='hsv')
  with pytest.raises(ValueError, match='k=17'):
    clustering.kmeans_segment(np.zeros((4, 4, 3)), 17, key=key)
  with pytest.raises(ValueError, match='spatial_weight'):
    clustering.kmeans_segment(np.zeros((4, 4, 3)), 2, key=key, spatial_weight=-1.0)


@pytest.mark.parametrize(
  'fn',
  [clustering.kmeans, clustering.kmeans_plusplus, clustering.kmeans_segment],
  ids=lambda fn: fn.__name__,
)
def test_docstrings(fn):
  check_docstring(fn, {'jnp': jnp, 'np': np, 'jax': jax, **vars(clustering)})
