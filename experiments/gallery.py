r"""One real image through every classic segmentation method jaxseg has, as one labelled grid.

Usage::

  python -m experiments.gallery --output=docs/images/classic_gallery.png \
      [--image=PATH] [--size=192] [--workdir=RUN]

The image is ``--image``, else the first VOC sample of ``../shared/reference-data``, else
scikit-image's astronaut. Each method of ``jaxseg.classic`` that exists (thresholding,
k-means, region growing, Felzenszwalb, Chan-Vese, graph cut, normalized cut, GrabCut, MRF
inference), the dense CRF of ``jaxseg.crf`` and, with ``--workdir``, a trained segmentation run
each give one tile, titled; a method that is missing is left out (and listed), one that fails
is reported and left out. The grey/colour models the binary methods need come from a box
around the image centre (the object prior every box-initialised method uses).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

_OUTPUT = flags.DEFINE_string('output', 'docs/images/classic_gallery.png', 'PNG to write.')
_IMAGE = flags.DEFINE_string('image', '', 'An image file (default: a VOC sample or astronaut).')
_SIZE = flags.DEFINE_integer('size', 192, 'Resize so that the longer side has this many pixels.')
_WORKDIR = flags.DEFINE_string('workdir', '', 'A trained segmentation run to add (optional).')
_COLUMNS = flags.DEFINE_integer('columns', 6, 'Tiles per row.')

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_image() -> tuple[np.ndarray, str]:
  """The first VOC sample of the reference data, or scikit-image's astronaut."""
  from PIL import Image

  path = os.path.join(_REPO, '..', 'shared', 'reference-data', 'voc-samples', '1_image.png')
  if os.path.isfile(path):
    return np.asarray(Image.open(path).convert('RGB')), 'VOC sample 1'
  import skimage.data

  return skimage.data.astronaut(), 'scikit-image astronaut'


def _resize(image: np.ndarray, size: int) -> np.ndarray:
  from PIL import Image

  height, width = image.shape[:2]
  scale = size / max(height, width)
  shape = (max(round(width * scale), 8), max(round(height * scale), 8))
  return np.asarray(Image.fromarray(image).resize(shape, Image.BILINEAR))


class _Context:
  """What several methods share: the image, the centre box, colour models, k-means unaries."""

  def __init__(self, image: np.ndarray, key: jax.Array):
    self.image = image
    self.float = image.astype(np.float32) / 255.0
    height, width = image.shape[:2]
    self.rect = (width // 8, height // 8, width - 2 * (width // 8), height - 2 * (height // 8))
    x, y, w, h = self.rect
    self.inside = np.zeros((height, width), bool)
    self.inside[y : y + h, x : x + w] = True
    self.key = key
    self._unary = None

  def gaussian_costs(self) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihoods of full-covariance colour Gaussians (box = fg, border = bg)."""
    costs = []
    for mask in (self.inside, ~self.inside):
      pixels = self.float[mask]
      mean, cov = pixels.mean(0), np.cov(pixels.T) + 1e-3 * np.eye(3)
      diff = self.float - mean
      costs.append(
        0.5 * np.einsum('hwi,ij,hwj->hw', diff, np.linalg.inv(cov), diff)
        + 0.5 * np.log(np.linalg.det(cov))
      )
    return costs[0].astype(np.float32), costs[1].astype(np.float32)

  def unary(self, classic, k: int = 4) -> np.ndarray:
    """``(H, W, k)`` costs: squared colour distance to k-means centres / (2 * 0.1^2), capped."""
    if self._unary is None:
      centres, _, _ = classic.kmeans(jnp.asarray(self.float.reshape(-1, 3)), k, key=self.key)
      d2 = np.sum((self.float[:, :, None] - np.asarray(centres)[None, None]) ** 2, axis=-1)
      self._unary = np.minimum(d2 / (2 * 0.1**2), 20.0).astype(np.float32)
    return self._unary


def methods(classic, crf) -> list[tuple[str, str, Callable[[_Context], np.ndarray]]]:
  """``(title, the jaxseg names it needs, function of the context -> labels)``."""

  def gray(c):
    return classic.rgb_to_gray(jnp.asarray(c.float))

  def grid_cut(c):
    fg, bg = c.gaussian_costs()
    return classic.binary_graph_cut(fg, bg, c.float, lam=2.0, sigma=0.1)[0]

  def mrf(method, iterations):
    return lambda c: classic.mrf_map(c.unary(classic), 1.0, method=method, iterations=iterations)[0]

  def dense(c):
    q = crf.dense_crf(c.unary(classic), c.image.astype(np.float32), iterations=5)
    return jnp.argmax(q, axis=-1)

  def region(c):
    height, width = c.image.shape[:2]
    return classic.region_grow(gray(c), jnp.array([[height // 2, width // 2]]), tolerance=0.12)

  return [
    (
      'Otsu',
      'threshold_otsu rgb_to_gray',
      lambda c: gray(c) > classic.threshold_otsu(jnp.asarray(c.float)),
    ),
    (
      'multi-Otsu, 3 classes',
      'threshold_multiotsu apply_thresholds rgb_to_gray',
      lambda c: classic.apply_thresholds(gray(c), classic.threshold_multiotsu(gray(c))),
    ),
    (
      'k-means, k=4 (RGB)',
      'kmeans_segment',
      lambda c: classic.kmeans_segment(jnp.asarray(c.float), 4, key=c.key),
    ),
    ('region growing (centre seed)', 'region_grow rgb_to_gray', region),
    (
      'Felzenszwalb, scale 100',
      'hierarchical_merge',
      lambda c: classic.hierarchical_merge(jnp.asarray(c.image), scale=100.0, min_size=50),
    ),
    ('Chan-Vese', 'chan_vese rgb_to_gray', lambda c: classic.chan_vese(gray(c))[0]),
    (
      'morph. Chan-Vese',
      'morphological_chan_vese rgb_to_gray',
      lambda c: classic.morphological_chan_vese(gray(c), 50),
    ),
    ('graph cut (Boykov-Jolly)', 'binary_graph_cut', grid_cut),
    (
      'normalized cut, k=4',
      'normalized_cut',
      lambda c: classic.normalized_cut(c.float, num_segments=4),
    ),
    ('GrabCut (centre box)', 'grabcut', lambda c: classic.grabcut(c.image, c.rect, key=c.key)),
    ('MRF ICM (k-means unary)', 'mrf_map kmeans', mrf('icm', 10)),
    ('MRF alpha-expansion', 'mrf_map kmeans', mrf('alpha_expansion', 3)),
    ('MRF TRW-S', 'mrf_map kmeans', mrf('trws', 20)),
    ('dense CRF (k-means unary)', 'crf:dense_crf kmeans', dense),
  ]


def _available(names: str, classic, crf) -> bool:
  for name in names.split():
    module, name = (crf, name[4:]) if name.startswith('crf:') else (classic, name)
    if module is None or not hasattr(module, name):
      return False
  return True


def _network_labels(workdir: str, image: np.ndarray) -> np.ndarray:
  from jaxseg.train import evaluation, inference, prediction

  run = inference.load_run(workdir, checkpoint='best')
  recipe = evaluation.Recipe(
    sliding_window=None, scales=evaluation.parse_scales(''), flip=False, crf=False
  )
  logits = prediction.predict_segmentation(run, image, recipe)
  return np.argmax(np.asarray(logits), axis=-1)


def _tile(image: np.ndarray, labels: np.ndarray | None, title: str) -> np.ndarray:
  from jaxseg import viz
  from jaxseg.viz.figures import text_strip

  if labels is None:
    shown = image
  else:
    labels = np.asarray(labels).astype(np.int32)
    if labels.max() > 1:
      # Many segments: shift off VOC's black (0) and wrap below its void index (255).
      labels = labels % 254 + 1
    shown = viz.overlay(image, labels, alpha=0.65)
  strip = text_strip([title], [image.shape[1]], pad=0)
  return np.concatenate([strip, shown], axis=0)


def build_gallery(
  image: np.ndarray,
  *,
  workdir: str = '',
  columns: int = 6,
  seed: int = 0,
  only: tuple[str, ...] | None = None,
  log=print,
) -> tuple[np.ndarray, list[str]]:
  """Runs every available method on ``image`` (uint8 RGB); returns the grid and its titles.

  ``only`` restricts the run to the methods whose titles start with one of its strings.
  """
  from jaxseg import classic

  try:
    from jaxseg import crf
  except ImportError:
    crf = None
  from jaxseg import viz

  context = _Context(image, jax.random.PRNGKey(seed))
  tiles, titles = [_tile(image, None, 'input')], ['input']
  for title, names, function in methods(classic, crf):
    if only is not None and not title.startswith(tuple(only)):
      continue
    if not _available(names, classic, crf):
      log(f'[missing] {title}: needs {names}')
      continue
    start = time.perf_counter()
    try:
      labels = np.asarray(jax.block_until_ready(function(context)))
    except Exception as error:  # noqa: BLE001 (a broken method must not hide the other tiles)
      log(f'[failed] {title}: {type(error).__name__}: {error}')
      continue
    log(f'[ok] {title} ({time.perf_counter() - start:.1f} s)')
    tiles.append(_tile(image, labels, title))
    titles.append(title)
  if workdir:
    tiles.append(_tile(image, _network_labels(workdir, image), 'network (trained run)'))
    titles.append('network')
  rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
  return viz.make_grid(rows, pad=4), titles


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _IMAGE.value:
    from PIL import Image

    image, source = np.asarray(Image.open(_IMAGE.value).convert('RGB')), _IMAGE.value
  else:
    image, source = default_image()
  image = _resize(image, _SIZE.value)
  print(f'gallery of {source} at {image.shape[1]}x{image.shape[0]}')
  grid, titles = build_gallery(image, workdir=_WORKDIR.value, columns=_COLUMNS.value)
  from jaxseg import viz

  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  viz.save_png(grid, _OUTPUT.value)
  print(f'wrote {_OUTPUT.value}: {len(titles)} tiles')


if __name__ == '__main__':
  app.run(main)
