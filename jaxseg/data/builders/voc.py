"""PASCAL VOC 2012 segmentation builders: ``voc2012_segmentation`` and ``voc2012_sbd``.

``voc2012_segmentation`` reads the official ``VOCtrainval_11-May-2012.tar`` layout: JPEG images,
palette-PNG class masks (index 255 marks the void outline) and the ``ImageSets/Segmentation``
lists (1464 train, 1449 val).

``voc2012_sbd`` is the augmented training set the FCN and DeepLab papers used ("train_aug",
10582 images): the images of SBD's ``train.txt`` and ``val.txt`` and of VOC's ``train.txt``,
minus VOC's ``val.txt``, which stays the validation split. Masks come from VOC's PNGs where VOC
has one, else from SBD's ``cls/<id>.mat`` (``GTcls.Segmentation``).
"""

from __future__ import annotations

import os

import numpy as np

from jaxseg.data.builders._common import (
  CorruptImageError,
  MissingFileError,
  check_mask_values,
  encode_png,
  extract_archive,
  intended_manual_dir,
  manual_dir_or_none,
  read_list_ids,
  read_mask_values,
  read_rgb_image,
  require_file,
)
from jaxseg.data.builders._manual_segmentation import ManualSegmentationBuilder

# One definition of the class names and colours, shared with the overlays.
from jaxseg.viz.palettes import VOC_CLASSES, voc_palette

__all__ = ['VOC_CLASSES', 'Voc2012Sbd', 'Voc2012Segmentation', 'find_voc_root', 'voc_palette']

VOC_URL = 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar'
SBD_URL = (
  'http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/'
  'benchmark.tgz'
)
NUM_CLASSES = 21
IGNORE_LABEL = 255

VOC_LAYOUT = """\
  <manual_dir>/VOCdevkit/VOC2012/            (extract VOCtrainval_11-May-2012.tar in manual_dir)
      JPEGImages/<id>.jpg
      SegmentationClass/<id>.png             (palette PNG: class index, 255 = void)
      ImageSets/Segmentation/train.txt       (one <id> per line)
      ImageSets/Segmentation/val.txt
  (<manual_dir>/VOC2012/... or the VOC2012 folder itself as manual_dir are accepted too)"""
VOC_SOURCE = f'{VOC_URL} (PASCAL VOC 2012 development kit, 2 GB)'
SBD_LAYOUT = """\
  <manual_dir>/benchmark_RELEASE/dataset/    (extract benchmark.tgz in manual_dir)
      cls/<id>.mat                           (struct GTcls with field Segmentation)
      img/<id>.jpg
      train.txt
      val.txt
  and VOC 2012 as for voc2012_segmentation."""
SBD_SOURCE = f'{SBD_URL} (Semantic Boundaries Dataset, Hariharan et al. 2011, 1.4 GB)'


def _candidates(manual_dir: str) -> list[str]:
  return [
    os.path.join(manual_dir, 'VOCdevkit', 'VOC2012'),
    os.path.join(manual_dir, 'VOC2012'),
    manual_dir,
  ]


def find_voc_root(manual_dir: str) -> str | None:
  """The VOC2012 folder under ``manual_dir`` (the one holding ``ImageSets``), or None."""
  for root in _candidates(manual_dir):
    if os.path.isfile(os.path.join(root, 'ImageSets', 'Segmentation', 'train.txt')):
      return root
  return None


_read_ids = read_list_ids  # every id checked to stay inside the dataset folder


def _read_voc_mask(path: str) -> np.ndarray:
  """Class indices of a VOC mask: a palette PNG's indices, or an RGB PNG mapped by the palette.

  Raises:
    CorruptImageError: naming ``path`` when the file cannot be decoded (skipped with
      ``skip_corrupt``).
    ValueError: naming ``path`` for values (16-bit masks) or colours outside the VOC classes.
  """
  values = read_mask_values(path)  # decodes inside the corrupt-image guard, names the file
  if values.ndim == 2:
    # P, L, or 16/32-bit: stored indices. A value above 255 is reported as that value.
    check_mask_values(values, num_classes=NUM_CLASSES, ignore_label=IGNORE_LABEL, where=path)
    return values.astype(np.uint8)
  if values.ndim != 3 or values.shape[-1] not in (3, 4):
    raise ValueError(
      f'Mask {path} has shape {values.shape}; expected (H, W) class indices or '
      '(H, W, 3) VOC palette colours.'
    )
  # Some redistributions store masks as RGB: map each colour back to its index.
  rgb = values[..., :3].astype(np.int64)
  codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
  palette = voc_palette().astype(np.int64)
  lookup = {int((r << 16) | (g << 8) | b): i for i, (r, g, b) in enumerate(palette[:NUM_CLASSES])}
  lookup[int((224 << 16) | (224 << 8) | 192)] = IGNORE_LABEL  # VOC's void colour
  mask = np.full(codes.shape, -1, np.int64)
  for code in np.unique(codes):
    if int(code) not in lookup:
      colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
      raise ValueError(f'Mask {path} has colour {colour} that is not in the VOC palette.')
    mask[codes == code] = lookup[int(code)]
  return mask.astype(np.uint8)


def _read_sbd_mask(path: str) -> np.ndarray:
  import scipy.io  # pylint: disable=g-import-not-at-top

  try:
    gt = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)['GTcls']
    return np.asarray(gt.Segmentation, np.uint8)
  except (KeyError, AttributeError, ValueError, OSError) as e:
    raise CorruptImageError(f'Cannot read GTcls.Segmentation from {path}: {e}') from e


class _VocBase(ManualSegmentationBuilder, skip_registration=True):
  """Shared root finding and example generation of the two VOC builders."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = VOC_LAYOUT
  CLASS_NAMES = VOC_CLASSES

  def _voc_root(self, dl_manager) -> str:
    manual_dir = manual_dir_or_none(dl_manager)
    root = find_voc_root(manual_dir) if manual_dir else None
    if root is not None:
      return root
    archive = os.path.join(manual_dir or '', os.path.basename(VOC_URL))
    if manual_dir and os.path.isfile(archive):
      root = find_voc_root(extract_archive(archive))
    elif self._allow_download:
      root = find_voc_root(extract_archive(os.fspath(dl_manager.download(VOC_URL))))
    if root is None:
      manual_dir = manual_dir or intended_manual_dir(dl_manager)
      raise MissingFileError(
        f'Missing {os.path.join(manual_dir, "VOCdevkit", "VOC2012", "ImageSets")}'
        f'{os.sep}Segmentation{os.sep}train.txt.'
        f'\nExpected layout:\n{VOC_LAYOUT}\nGet it from: {VOC_SOURCE}\n(or set '
        'data.download=True to download it).'
      )
    return root

  def _example(self, image_id: str, image_path: str, mask_path: str, read_mask):
    """One record, or None when a corrupt file is skipped (``skip_corrupt``)."""
    layout = getattr(self, '_layout', VOC_LAYOUT)
    require_file(image_path, layout=layout, source=VOC_SOURCE)
    require_file(mask_path, layout=layout, source=VOC_SOURCE)
    try:
      image_bytes, size = read_rgb_image(image_path)
      mask = read_mask(mask_path)
    except CorruptImageError as e:
      self._skip.handle(e)
      return None
    if mask.shape != size:
      raise ValueError(
        f'Mask {mask_path} has shape {mask.shape} but image {image_path} is '
        f'{size}: they must match.'
      )
    check_mask_values(mask, num_classes=NUM_CLASSES, ignore_label=IGNORE_LABEL, where=mask_path)
    return {'image': image_bytes, 'mask': encode_png(mask), 'image_id': image_id}

  def _generate_examples(self, items):
    for image_id, image_path, mask_path, read_mask in items:
      record = self._example(image_id, image_path, mask_path, read_mask)
      if record is not None:
        yield image_id, record
    self._skip.log_summary(self.name)


class Voc2012Segmentation(_VocBase, skip_registration=True):
  """PASCAL VOC 2012 semantic segmentation: 1464 train and 1449 validation images, 21 classes."""

  name = 'voc2012_segmentation'

  def _split_generators(self, dl_manager):
    root = self._voc_root(dl_manager)
    lists = os.path.join(root, 'ImageSets', 'Segmentation')

    def items(list_name):
      ids = _read_ids(os.path.join(lists, list_name), layout=VOC_LAYOUT, source=VOC_SOURCE)
      return [
        (
          i,
          os.path.join(root, 'JPEGImages', i + '.jpg'),
          os.path.join(root, 'SegmentationClass', i + '.png'),
          _read_voc_mask,
        )
        for i in ids
      ]

    return {
      'train': self._generate_examples(items('train.txt')),
      'validation': self._generate_examples(items('val.txt')),
    }


def find_sbd_root(manual_dir: str) -> str | None:
  """The SBD ``dataset`` folder under ``manual_dir`` (the one holding ``cls``), or None."""
  for root in (
    os.path.join(manual_dir, 'benchmark_RELEASE', 'dataset'),
    os.path.join(manual_dir, 'dataset'),
    manual_dir,
  ):
    if os.path.isdir(os.path.join(root, 'cls')):
      return root
  return None


class Voc2012Sbd(_VocBase, skip_registration=True):
  """VOC 2012 train + SBD train/val minus VOC 2012 val ("train_aug"); VOC 2012 val held out."""

  name = 'voc2012_sbd'
  MANUAL_DOWNLOAD_INSTRUCTIONS = SBD_LAYOUT
  _layout = SBD_LAYOUT

  def _split_generators(self, dl_manager):
    voc_root = self._voc_root(dl_manager)
    manual_dir = manual_dir_or_none(dl_manager) or intended_manual_dir(dl_manager)
    sbd_root = find_sbd_root(manual_dir)
    if sbd_root is None:
      raise MissingFileError(
        f'Missing {os.path.join(manual_dir, "benchmark_RELEASE", "dataset", "cls")}.\n'
        f'Expected layout:\n{SBD_LAYOUT}\nGet it from: {SBD_SOURCE}'
      )
    lists = os.path.join(voc_root, 'ImageSets', 'Segmentation')
    voc_train = _read_ids(os.path.join(lists, 'train.txt'), layout=VOC_LAYOUT, source=VOC_SOURCE)
    voc_val = _read_ids(os.path.join(lists, 'val.txt'), layout=VOC_LAYOUT, source=VOC_SOURCE)
    sbd_ids = []
    for list_name in ('train.txt', 'val.txt'):
      sbd_ids += _read_ids(os.path.join(sbd_root, list_name), layout=SBD_LAYOUT, source=SBD_SOURCE)
    held_out = set(voc_val)
    voc_masks = set(voc_train) | held_out
    train_ids = sorted((set(sbd_ids) | set(voc_train)) - held_out)

    def item(image_id):
      image = os.path.join(voc_root, 'JPEGImages', image_id + '.jpg')
      if not os.path.exists(image):
        image = os.path.join(sbd_root, 'img', image_id + '.jpg')
      if image_id in voc_masks:
        return (
          image_id,
          image,
          os.path.join(voc_root, 'SegmentationClass', image_id + '.png'),
          _read_voc_mask,
        )
      return image_id, image, os.path.join(sbd_root, 'cls', image_id + '.mat'), _read_sbd_mask

    return {
      'train': self._generate_examples([item(i) for i in train_ids]),
      'validation': self._generate_examples([item(i) for i in voc_val]),
    }
