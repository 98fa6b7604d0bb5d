"""Decoders: one decoded tfds record -> one :mod:`jaxseg.data.transforms` sample.

A sample is a dict of NumPy arrays: a uint8 ``(H, W, 3)`` image and one of an int32 ``label``, an
int32 ``(H, W)`` mask, or a float32 density in [0, 1] with uint8 fixations. Each dataset's
:class:`~jaxseg.data.registry.DatasetSpec` names its decoder. They are module-level functions so
that grain can pickle them into worker processes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
  'CITYSCAPES_LUT',
  'cityscapes',
  'classification',
  'pet',
  'saliency',
  'scene_parse150',
  'segmentation',
  'stimulus',
]


def classification(record, options):
  """An image and its int32 ``label``."""
  del options
  return {'image': _rgb(record['image']), 'label': np.int32(record['label'])}


def segmentation(record, options):
  """An image and its int32 ``mask`` (index PNG values as stored)."""
  del options
  return {'image': _rgb(record['image']), 'mask': _single(record['mask']).astype(np.int32)}


def saliency(record, options):
  """An image, its density in [0, 1] (float32) and its fixations (uint8 0/1)."""
  del options
  return {
    'image': _rgb(record['image']),
    # Step 2 of the density's scales (docs/saliency.md, "The density's scales").
    'density': _single(record['density']).astype(np.float32) / 255.0,
    'fixations': (_single(record['fixations']) > 0).astype(np.uint8),
  }


def stimulus(record, options):
  """An image without maps (MIT300): zero density and fixations of its size."""
  del options
  image = _rgb(record['image'])
  return {
    'image': image,
    'density': np.zeros(image.shape[:2], np.float32),
    'fixations': np.zeros(image.shape[:2], np.uint8),
  }


def pet(record, options):
  """Oxford-IIIT Pet's trimap as ``options['pet_mask']`` says: binary (border ignored) or trimap."""
  # Trimap: 1 pet, 2 background, 3 border ("not classified").
  trimap = _single(record['segmentation_mask']).astype(np.int32)
  if options['pet_mask'] == 'trimap':
    mask = trimap - 1  # 0 pet, 1 background, 2 border
  else:
    mask = np.where(trimap == 1, 1, np.where(trimap == 2, 0, 255)).astype(np.int32)
  return {'image': _rgb(record['image']), 'mask': mask}


# Cityscapes labelIds (0..33, -1 license plate) -> the 19 train ids, others ignored (255); from
# cityscapesScripts/helpers/labels.py.
_CITYSCAPES_TRAIN_IDS = {
  7: 0,
  8: 1,
  11: 2,
  12: 3,
  13: 4,
  17: 5,
  19: 6,
  20: 7,
  21: 8,
  22: 9,
  23: 10,
  24: 11,
  25: 12,
  26: 13,
  27: 14,
  28: 15,
  31: 16,
  32: 17,
  33: 18,
}
CITYSCAPES_LUT = np.full(256, 255, np.int32)
for _label_id, _train_id in _CITYSCAPES_TRAIN_IDS.items():
  CITYSCAPES_LUT[_label_id] = _train_id


def cityscapes(record, options):
  """Cityscapes' left image and its labelIds mapped to the 19 train ids (others 255)."""
  del options
  return {
    'image': _rgb(record['image_left']),
    'mask': CITYSCAPES_LUT[_single(record['segmentation_label'])],
  }


def scene_parse150(record, options):
  """ADE20K SceneParsing: annotation k in 1..150 -> class k - 1, 0 ("other") -> 255."""
  del options
  # ADE20K SceneParsing: 0 = "other" (not scored), 1..150 the classes -> 0..149, 0 -> 255.
  annotation = _single(record['annotation']).astype(np.int32)
  return {
    'image': _rgb(record['image']),
    'mask': np.where(annotation == 0, 255, annotation - 1).astype(np.int32),
  }


def _rgb(image) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, -1)
  return np.ascontiguousarray(image[..., :3], np.uint8)


def _single(image) -> np.ndarray:
  image = np.asarray(image)
  return image[..., 0] if image.ndim == 3 else image
