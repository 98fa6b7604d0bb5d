"""Real images for the classic methods' oracle tests: scikit-image's bundled samples and the
VOC/CamVid samples under ``shared/reference-data`` (skipped cleanly when either is absent)."""

import glob
import os

import numpy as np
import pytest
import reference_data


def skimage_image(name: str) -> np.ndarray:
  """``skimage.data.<name>()`` (camera, coins, astronaut: bundled, no download)."""
  data = pytest.importorskip('skimage.data')
  return getattr(data, name)()


def reference_images() -> dict[str, str]:
  """Name -> path of the VOC and CamVid sample images (empty without the reference data)."""
  root = reference_data.root_or_none()
  if root is None:
    return {}
  paths = sorted(glob.glob(os.path.join(root, 'voc-samples', '*_image.png')))
  paths += sorted(glob.glob(os.path.join(root, 'camvid-samples', 'images_prepped_test', '*.png')))[
    :2
  ]
  paths += [os.path.join(root, 'voc-fcn-demo', 'image.jpg')]
  return {
    os.path.basename(os.path.dirname(p)) + '/' + os.path.basename(p): p
    for p in paths
    if os.path.exists(p)
  }


REFERENCE_NAMES = sorted(reference_images()) or ['absent']


def load_reference(name: str) -> np.ndarray:
  """The RGB uint8 pixels of reference image ``name``; skips when the data is absent."""
  paths = reference_images()
  if name not in paths:
    pytest.skip('shared/reference-data is absent')
  from PIL import Image

  with Image.open(paths[name]) as image:
    return np.asarray(image.convert('RGB'))
