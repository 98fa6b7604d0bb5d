"""Saliency builders: ``salicon``, ``mit1003`` and ``mit300`` from their official files.

Every saliency record holds the stimulus, a binary ``fixations`` map (1 where someone fixated),
``points`` (the fixated pixels, 0-based ``(row, col)``) and a ``density`` map stored as a uint8 PNG
scaled to a maximum of 255:

* SALICON: the density is built here from the fixations, blurred by a Gaussian of ``sigma``
  pixels (``jaxseg.ops.density.fixation_density``); fixations come from the official JSON
  (``annotations[*].fixations``, ``[row, col]`` 1-based, one list per worker) or from the 2017
  ``.mat`` files (``gaze[*].fixations``, ``[x, y]`` = ``[col, row]`` 1-based).
* MIT1003: the density is the benchmark's own ``<name>_fixMap.jpg``; fixations are the pixels of
  ``<name>_fixPts.jpg`` above 127 (the JPEG blurs single white pixels a little).
* MIT300: stimuli only (the maps are withheld for the benchmark); ``density`` and ``fixations``
  are absent.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data.builders._common import (
  CorruptImageError,
  MissingFileError,
  SkipCounter,
  encode_png,
  intended_manual_dir,
  manual_dir_or_none,
  read_gray_image,
  read_rgb_image,
  require_file,
)

__all__ = [
  'Mit1003',
  'Mit300',
  'Salicon',
  'fixations_from_points',
  'mit1003_config',
  'salicon_config',
]

SALICON_SOURCE = (
  'http://salicon.net/challenge-2017/ (images: COCO train2014/val2014 subsets; '
  'fixations: fixations_train2014.json, fixations_val2014.json or the .mat files)'
)
SALICON_LAYOUT = """\
  <manual_dir>/salicon/
      images/train/COCO_train2014_<id>.jpg   (or all images directly in images/)
      images/val/COCO_val2014_<id>.jpg
      fixations/fixations_train2014.json     (official JSON: images, annotations[*].fixations)
      fixations/fixations_val2014.json
    or, instead of the JSON files, the 2017 release's
      fixations/train/<image name>.mat       (gaze(k).fixations, [x y] 1-based)
      fixations/val/<image name>.mat"""
MIT1003_SOURCE = (
  'http://people.csail.mit.edu/tjudd/WherePeopleLook/ (ALLSTIMULI.zip, ALLFIXATIONMAPS.zip)'
)
MIT1003_LAYOUT = """\
  <manual_dir>/mit1003/
      ALLSTIMULI/<name>.jpeg
      ALLFIXATIONMAPS/<name>_fixMap.jpg      (blurred fixation map)
      ALLFIXATIONMAPS/<name>_fixPts.jpg      (fixated pixels in white)"""
MIT300_SOURCE = 'http://saliency.mit.edu/BenchmarkIMAGES.zip'
MIT300_LAYOUT = """\
  <manual_dir>/mit300/
      BenchmarkIMAGES/<name>.jpg"""

_NOT_IN_A_TFDS_PACKAGE = None  # tfds would look for a checksums file with importlib_resources


def _manual_dir(dl_manager) -> str:
  # An absent manual_dir falls through to require_file, which names the exact file expected.
  return manual_dir_or_none(dl_manager) or intended_manual_dir(dl_manager)


def fixations_from_points(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """The binary ``(H, W)`` uint8 map of 0-based ``(row, col)`` points (points outside dropped)."""
  fixations = np.zeros(shape, np.uint8)
  points = np.asarray(points, np.int64).reshape(-1, 2)
  inside = (
    (points[:, 0] >= 0)
    & (points[:, 0] < shape[0])
    & (points[:, 1] >= 0)
    & (points[:, 1] < shape[1])
  )
  fixations[points[inside, 0], points[inside, 1]] = 1
  return fixations


def _density_png(density: np.ndarray) -> bytes:
  peak = float(density.max())
  scaled = density / peak * 255.0 if peak > 0 else density
  return encode_png(np.round(scaled).astype(np.uint8))


def _saliency_features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict(
    {
      'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
      'density': tfds.features.Image(shape=(None, None, 1), encoding_format='png'),
      'fixations': tfds.features.Image(shape=(None, None, 1), encoding_format='png'),
      'points': tfds.features.Tensor(shape=(None, 2), dtype=np.int32),
      'image_id': tfds.features.Text(),
    }
  )


@dataclasses.dataclass(eq=False)
class SaliconConfig(tfds.core.BuilderConfig):
  """Settings of ``salicon``: the density's Gaussian sigma in pixels."""

  sigma: float = 19.0


def salicon_config(sigma: float = 19.0) -> SaliconConfig:
  """A :class:`SaliconConfig` whose name encodes sigma (its cache directory)."""
  if not sigma > 0:
    raise ValueError(f'blur_sigma must be positive, got {sigma!r}.')
  return SaliconConfig(name=f'sigma{sigma:g}', sigma=float(sigma))


def _salicon_json_points(path: str) -> dict[str, tuple[dict, np.ndarray]]:
  """file_name -> (image entry, (N, 2) 0-based points) from an official SALICON JSON."""
  with open(path) as f:
    content = json.load(f)
  try:
    images = {entry['id']: entry for entry in content['images']}
    points = {image_id: [] for image_id in images}
    for annotation in content['annotations']:
      points[annotation['image_id']].extend(annotation['fixations'])
  except (KeyError, TypeError) as e:
    raise ValueError(
      f"{path} is not a SALICON fixations JSON (needs 'images' with 'id', "
      f"'file_name' and 'annotations' with 'image_id', 'fixations'): {e}"
    ) from e
  # [row, col] 1-based -> 0-based.
  return {
    images[i]['file_name']: (images[i], np.asarray(p, np.int64).reshape(-1, 2) - 1)
    for i, p in points.items()
  }


def _salicon_mat_points(path: str) -> np.ndarray:
  import scipy.io  # pylint: disable=g-import-not-at-top

  try:
    gaze = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)['gaze']
  except (KeyError, ValueError, OSError) as e:
    raise CorruptImageError(f"Cannot read 'gaze' from {path}: {e}") from e
  rows = []
  for record in np.atleast_1d(gaze):
    xy = np.asarray(record.fixations, np.int64).reshape(-1, 2)
    rows.append(xy[:, ::-1] - 1)  # [x, y] 1-based -> [row, col] 0-based
  return np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)


class _ManualSaliencyBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What the saliency builders share: manual files, corrupt-image counting, their features."""

  VERSION = tfds.core.Version('1.0.0')
  code_path = _NOT_IN_A_TFDS_PACKAGE

  def __init__(self, *, skip_corrupt: bool = False, **kwargs):
    self._skip = SkipCounter(skip_corrupt)
    super().__init__(**kwargs)

  def _features(self) -> tfds.features.FeaturesDict:
    return _saliency_features()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=self.__doc__, features=self._features())


class Salicon(_ManualSaliencyBuilder, skip_registration=True):
  """SALICON: 10000 training and 5000 validation COCO images with mouse-contingent fixations."""

  name = 'salicon'
  MANUAL_DOWNLOAD_INSTRUCTIONS = SALICON_LAYOUT

  def _split_generators(self, dl_manager):
    root = os.path.join(_manual_dir(dl_manager), 'salicon')
    return {
      'train': self._generate_examples(root, 'train'),
      'validation': self._generate_examples(root, 'val'),
    }

  def _image_path(self, root: str, split: str, file_name: str) -> str:
    for candidate in (
      os.path.join(root, 'images', split, file_name),
      os.path.join(root, 'images', file_name),
    ):
      if os.path.exists(candidate):
        return candidate
    return require_file(
      os.path.join(root, 'images', split, file_name), layout=SALICON_LAYOUT, source=SALICON_SOURCE
    )

  def _items(self, root: str, split: str):
    json_path = os.path.join(root, 'fixations', f'fixations_{split}2014.json')
    mat_dir = os.path.join(root, 'fixations', split)
    if os.path.isfile(json_path):
      for file_name, (_, points) in sorted(_salicon_json_points(json_path).items()):
        yield file_name, self._image_path(root, split, file_name), (lambda p=points: p)
    elif os.path.isdir(mat_dir):
      for mat in sorted(glob.glob(os.path.join(mat_dir, '*.mat'))):
        stem = os.path.splitext(os.path.basename(mat))[0]
        yield (
          stem + '.jpg',
          self._image_path(root, split, stem + '.jpg'),
          (lambda m=mat: _salicon_mat_points(m)),
        )
    else:
      require_file(json_path, layout=SALICON_LAYOUT, source=SALICON_SOURCE)

  def _generate_examples(self, root, split):
    from jaxseg.ops.density import fixation_density  # pylint: disable=g-import-not-at-top

    sigma = self.builder_config.sigma
    for file_name, image_path, load_points in self._items(root, split):
      try:
        image_bytes, size = read_rgb_image(image_path)
        points = load_points()
      except CorruptImageError as e:
        self._skip.handle(e)
        continue
      fixations = fixations_from_points(points, size)
      density = fixation_density(fixations, sigma=sigma)
      yield (
        file_name,
        {
          'image': image_bytes,
          'density': _density_png(density),
          'fixations': encode_png(fixations),
          'points': np.argwhere(fixations).astype(np.int32),
          'image_id': file_name,
        },
      )
    self._skip.log_summary(self.name)


@dataclasses.dataclass(eq=False)
class Mit1003Config(tfds.core.BuilderConfig):
  """Settings of ``mit1003``: the seeded validation hold-out."""

  num_validation: int = 100
  seed: int = 0


def mit1003_config(num_validation: int = 100, seed: int = 0) -> Mit1003Config:
  """A :class:`Mit1003Config` whose name encodes its settings (its cache directory)."""
  return Mit1003Config(
    name=f'v{num_validation}_seed{seed}', num_validation=num_validation, seed=seed
  )


def _stems(directory: str, pattern: str) -> list[str]:
  return sorted(
    os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(directory, pattern))
  )


class Mit1003(_ManualSaliencyBuilder, skip_registration=True):
  """MIT1003 (Judd et al. 2009): 1003 images, 15 observers; a seeded validation hold-out."""

  name = 'mit1003'
  MANUAL_DOWNLOAD_INSTRUCTIONS = MIT1003_LAYOUT

  def _split_generators(self, dl_manager):
    root = os.path.join(_manual_dir(dl_manager), 'mit1003')
    stimuli = os.path.join(root, 'ALLSTIMULI')
    require_file(stimuli, layout=MIT1003_LAYOUT, source=MIT1003_SOURCE)
    stems = _stems(stimuli, '*.jpeg') + _stems(stimuli, '*.jpg')
    if not stems:
      raise MissingFileError(
        f'No stimuli (*.jpeg) in {stimuli}.\nExpected layout:\n'
        f'{MIT1003_LAYOUT}\nGet it from: {MIT1003_SOURCE}'
      )
    c = self.builder_config
    if not 0 < c.num_validation < len(stems):
      raise ValueError(f'num_validation must be in (0, {len(stems)}), got {c.num_validation}.')
    order = np.random.default_rng(c.seed).permutation(len(stems))
    validation = sorted(stems[i] for i in order[: c.num_validation])
    train = sorted(stems[i] for i in order[c.num_validation :])
    return {
      'train': self._generate_examples(root, train),
      'validation': self._generate_examples(root, validation),
    }

  def _generate_examples(self, root, stems):
    maps = os.path.join(root, 'ALLFIXATIONMAPS')
    for stem in stems:
      image_path = os.path.join(root, 'ALLSTIMULI', stem + '.jpeg')
      if not os.path.exists(image_path):
        image_path = os.path.join(root, 'ALLSTIMULI', stem + '.jpg')
      map_path = require_file(
        os.path.join(maps, stem + '_fixMap.jpg'), layout=MIT1003_LAYOUT, source=MIT1003_SOURCE
      )
      points_path = require_file(
        os.path.join(maps, stem + '_fixPts.jpg'), layout=MIT1003_LAYOUT, source=MIT1003_SOURCE
      )
      try:
        image_bytes, size = read_rgb_image(image_path)
        density = read_gray_image(map_path)
        fixations = (read_gray_image(points_path) > 127).astype(np.uint8)
      except CorruptImageError as e:
        self._skip.handle(e)
        continue
      for path, array in ((map_path, density), (points_path, fixations)):
        if array.shape != size:
          raise ValueError(f'{path} has shape {array.shape} but {image_path} is {size}.')
      yield (
        stem,
        {
          'image': image_bytes,
          'density': encode_png(density),
          'fixations': encode_png(fixations),
          'points': np.argwhere(fixations).astype(np.int32),
          'image_id': stem,
        },
      )
    self._skip.log_summary(self.name)


class Mit300(_ManualSaliencyBuilder, skip_registration=True):
  """MIT300 benchmark stimuli (no public fixations): a single ``test`` split to predict maps on."""

  name = 'mit300'
  MANUAL_DOWNLOAD_INSTRUCTIONS = MIT300_LAYOUT

  def _features(self) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict(
      {
        'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
        'image_id': tfds.features.Text(),
      }
    )

  def _split_generators(self, dl_manager):
    directory = os.path.join(_manual_dir(dl_manager), 'mit300', 'BenchmarkIMAGES')
    require_file(directory, layout=MIT300_LAYOUT, source=MIT300_SOURCE)
    return {'test': self._generate_examples(directory)}

  def _generate_examples(self, directory):
    for stem in _stems(directory, '*.jpg'):
      try:
        image_bytes, _ = read_rgb_image(os.path.join(directory, stem + '.jpg'))
      except CorruptImageError as e:
        self._skip.handle(e)
        continue
      yield stem, {'image': image_bytes, 'image_id': stem}
    self._skip.log_summary(self.name)
