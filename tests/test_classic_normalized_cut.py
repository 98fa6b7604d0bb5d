"""Normalized cut: the affinity from its definition, the spectrum against SciPy's eigsh, the
partition against scikit-image's cut_normalized on the same region adjacency graph, and
synthetic images whose split is known."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The package exports the function normalized_cut, which shadows the module of the same name.
nc = importlib.import_module('jaxseg.classic.normalized_cut')


def _naive_affinity(image, radius, sigma_i, sigma_x):
  """Shi & Malik's eq. 11 over all pairs, in float64."""
  image = image if image.ndim == 3 else image[..., None]
  height, width = image.shape[:2]
  features = image.reshape(height * width, -1).astype(np.float64)
  positions = np.stack(np.divmod(np.arange(height * width), width), axis=1).astype(np.float64)
  feat2 = np.sum((features[:, None] - features[None]) ** 2, axis=-1)
  dist2 = np.sum((positions[:, None] - positions[None]) ** 2, axis=-1)
  W = np.exp(-feat2 / sigma_i**2) * np.exp(-dist2 / sigma_x**2)
  return np.where((dist2 > 0) & (dist2 < radius**2), W, 0.0)


def _naive_ncut(labels, W):
  labels = np.asarray(labels).reshape(-1)
  total = 0.0
  for c in np.unique(labels):
    inside = labels == c
    total += W[inside][:, ~inside].sum() / W[inside].sum()
  return total


def _camera48():
  skimage = pytest.importorskip('skimage')
  from skimage.transform import resize

  return resize(skimage.data.camera(), (48, 48), anti_aliasing=True).astype(np.float32)


def test_pixel_affinity_matches_the_definition():
  image = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
  got = np.asarray(nc.pixel_affinity(image, radius=2.5, sigma_i=0.5, sigma_x=2.0))
  np.testing.assert_allclose(got, _naive_affinity(image, 2.5, 0.5, 2.0), rtol=1e-5, atol=1e-7)


def test_ncut_value_matches_the_definition():
  rng = np.random.default_rng(1)
  W = rng.random((9, 9))
  W = (W + W.T) * (rng.random((9, 9)) < 0.6)
  W = np.triu(W, 1) + np.triu(W, 1).T
  labels = rng.integers(0, 3, 9)
  np.testing.assert_allclose(float(nc.ncut_value(labels, W)), _naive_ncut(labels, W), rtol=1e-5)


def test_spectrum_matches_scipy_eigsh_on_48x48():
  sla = pytest.importorskip('scipy.sparse.linalg')
  image = _camera48()
  W = _naive_affinity(image, 5, 0.1, 4.0)
  D = np.diag(W.sum(1))
  want_values, want_vectors = sla.eigsh(D - W, k=6, M=D, sigma=-1e-6, which='LM')
  values, vectors = nc.ncut_spectrum(image, num_vectors=6)
  np.testing.assert_allclose(np.asarray(values), want_values, atol=1e-4)
  vectors = np.asarray(vectors, np.float64).reshape(-1, 6)
  # D-normalised eigenvectors, equal up to sign: |y^T D v| = 1 (the eigenvalues are simple).
  assert np.all(np.diff(want_values) > 5e-4)
  cosines = np.abs(np.sum(vectors * (D @ want_vectors), axis=0))
  np.testing.assert_allclose(cosines, 1.0, atol=1e-3)


def _two_shapes():
  image = np.full((32, 32), 0.1, np.float32)
  image[4:14, 4:28] = 0.9  # a bar
  yy, xx = np.mgrid[:32, :32]
  image[(yy - 23) ** 2 + (xx - 16) ** 2 < 36] = 0.5  # a disc
  truth = np.zeros((32, 32), np.int32)
  truth[4:14, 4:28] = 1
  truth[(yy - 23) ** 2 + (xx - 16) ** 2 < 36] = 2
  noise = np.random.default_rng(0).normal(0, 0.02, image.shape).astype(np.float32)
  return image + noise, truth


@pytest.mark.parametrize('method', ['recursive', 'kway'])
def test_two_shapes_are_split_along_the_shapes(method):
  image, truth = _two_shapes()
  labels = np.asarray(nc.normalized_cut(image, num_segments=3, method=method))
  assert labels.shape == (32, 32) and labels.dtype == np.int32
  # Equal to the truth up to a permutation of the ids.
  assert len(np.unique(labels)) == 3
  mapping = {int(t): int(np.bincount(labels[truth == t]).argmax()) for t in range(3)}
  assert sorted(mapping.values()) == [0, 1, 2]
  assert np.array_equal(np.vectorize(mapping.get)(truth), labels)


@pytest.mark.slow
def test_superpixel_graph_keeps_the_pixel_ncut():
  # A partition constant on superpixels has the same Ncut in the contracted graph (1x2
  # superpixels here): the pixel graph summed onto the superpixels, with self-loops.
  image, _ = _two_shapes()
  image = image[::2, ::2]
  superpixels = (np.arange(16 * 16).reshape(16, 16) // 2).astype(np.int32)
  labels = nc.normalized_cut(image, num_segments=3, superpixels=superpixels)
  assert np.all(np.asarray(labels)[:, ::2] == np.asarray(labels)[:, 1::2])
  W = np.asarray(nc.pixel_affinity(image), np.float64)
  sp = np.asarray(labels).reshape(-1)
  got = _naive_ncut(sp, W)
  graph_w = np.zeros((128, 128))
  flat = superpixels.reshape(-1)
  np.add.at(graph_w, (flat[:, None].repeat(256, 1), flat[None, :].repeat(256, 0)), W)
  node_labels = np.asarray(labels).reshape(-1)[::2]
  np.testing.assert_allclose(float(nc.ncut_value(node_labels, graph_w)), got, rtol=1e-4)


def _rag_problem(image, n_segments):
  skimage = pytest.importorskip('skimage')
  from skimage import graph, segmentation

  superpixels = segmentation.slic(image, n_segments=n_segments, compactness=20, start_label=0)
  rag = graph.rag_mean_color(image, superpixels, mode='similarity')
  count = int(superpixels.max()) + 1
  W = np.zeros((count, count))
  for a, b, data in rag.edges(data=True):
    W[a, b] = W[b, a] = data['weight']
  # cut_normalized adds a self-loop of weight max_edge = 1 to every node: the same graph.
  W[np.arange(count), np.arange(count)] = 1.0
  skimage_labels = graph.cut_normalized(superpixels, rag, rng=0)
  node_labels = np.zeros(count, np.int64)
  node_labels[superpixels.reshape(-1)] = skimage_labels.reshape(-1)
  _, node_labels = np.unique(node_labels, return_inverse=True)
  del skimage
  return W, node_labels


def _compare_with_skimage(image, n_segments):
  W, skimage_nodes = _rag_problem(image, n_segments)
  k = int(skimage_nodes.max()) + 1
  skimage_ncut = _naive_ncut(skimage_nodes, W)
  ours = np.asarray(nc.partition_graph(W, k))
  ours_ncut = _naive_ncut(ours, W)
  np.testing.assert_allclose(float(nc.ncut_value(ours, W)), ours_ncut, rtol=1e-4, atol=1e-6)
  return k, ours_ncut, skimage_ncut


def test_partition_is_no_worse_than_skimage_cut_normalized():
  skimage = pytest.importorskip('skimage')
  image = skimage.data.coffee()[::2, ::2]
  k, ours, theirs = _compare_with_skimage(image, 100)
  assert k >= 2
  assert ours <= theirs + 1e-6, (k, ours, theirs)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['astronaut', 'chelsea', 'rocket', 'voc'])
def test_partition_is_no_worse_than_skimage_on_more_images(name):
  skimage = pytest.importorskip('skimage')
  if name == 'voc':
    import imageio.v3 as iio

    from tests import reference_data

    path = reference_data.path('voc-samples/1_image.png')
    if reference_data.root_or_none() is None:
      pytest.skip('reference data absent')
    image = iio.imread(path)[..., :3]
  else:
    image = getattr(skimage.data, name)()[::2, ::2]
  k, ours, theirs = _compare_with_skimage(image, 200)
  assert ours <= theirs + 1e-6, (k, ours, theirs)


def test_jit_and_key():
  image, _ = _two_shapes()
  eager = nc.normalized_cut(image[:16, :16], num_segments=2, method='kway')
  jitted = jax.jit(lambda x: nc.normalized_cut(x, num_segments=2, method='kway'))(
    jnp.asarray(image[:16, :16])
  )
  assert np.array_equal(np.asarray(eager), np.asarray(jitted))


@pytest.mark.parametrize(
  'kwargs, error, match',
  [
    ({'image': np.zeros((4,))}, ValueError, 'image must be'),
    ({'image': np.full((4, 4), np.nan)}, ValueError, 'finite'),
    ({'image': np.zeros((4, 4), bool)}, TypeError, 'dtype'),
    ({'radius': 1.0}, ValueError, 'radius'),
    ({'sigma_i': 0.0}, ValueError, 'sigma_i'),
    ({'num_segments': 0}, ValueError, 'num_segments'),
    ({'num_segments': 17}, ValueError, 'num_segments'),
    ({'method': 'spectral'}, ValueError, 'method'),
    ({'superpixels': np.zeros((3, 4), np.int32)}, ValueError, 'superpixels'),
    ({'superpixels': np.full((4, 4), 2, np.int32)}, ValueError, 'every id'),
    ({'superpixels': np.zeros((4, 4), np.float32)}, TypeError, 'superpixels'),
  ],
)
def test_bad_arguments(kwargs, error, match):
  kwargs = {'image': np.zeros((4, 4), np.float32), **kwargs}
  with pytest.raises(error, match=match):
    nc.normalized_cut(**kwargs)


def test_bad_graphs():
  with pytest.raises(ValueError, match='symmetric'):
    nc.partition_graph(np.array([[0.0, 1.0], [0.0, 0.0]]))
  with pytest.raises(ValueError, match='non-negative'):
    nc.partition_graph(-np.ones((2, 2)))
  with pytest.raises(ValueError, match='elements'):
    nc.ncut_value(np.zeros(3, np.int32), np.ones((2, 2)))
  with pytest.raises(TypeError, match='integer'):
    nc.ncut_value(np.zeros(2), np.ones((2, 2)))
