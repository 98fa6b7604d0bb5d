"""Otsu and multi-Otsu against scikit-image on a 512x512 uint8 image (camera).

jaxseg: the public function under ``jax.jit`` (the DP over the histogram, O(classes x 256^2));
a batch of 8 is the image and 7 shifted copies in one vmapped call. scikit-image enumerates every
threshold tuple (O(256^(classes-1))): ~10 s per image at 5 classes, so its batch-of-8 time at 5
classes is 8 times one measured image (noted), not 8 more runs. jaxseg is timed after a warm-up
call (compilation excluded) and waits with ``block_until_ready``.
Run through ``python benchmarks/classic.py --families=thresholding``.
"""

import functools
import time

import jax
import numpy as np

from jaxseg.classic import thresholding
import timing  # benchmarks/timing.py (this folder is on sys.path)


def _images(size, batch):
  from skimage import data, transform

  image = data.camera()
  if size != image.shape[0]:
    image = (transform.resize(image, (size, size)) * 255).astype(np.uint8)
  return np.stack([np.roll(image, 16 * n, axis=1) for n in range(batch)])[..., None]


def rows(quick: bool) -> list[dict]:
  from skimage import filters

  size, repeats = (128, 3) if quick else (512, 5)
  out = []
  for classes in (2, 3, 5):
    for batch in (1, 8):
      images = _images(size, batch)
      single = images[0, ..., 0] if batch == 1 else images
      if classes == 2:
        ours = jax.jit(thresholding.threshold_otsu)
        anchor, theirs = 'skimage.filters.threshold_otsu', filters.threshold_otsu
        method = 'threshold_otsu'
      else:
        ours = jax.jit(functools.partial(thresholding.threshold_multiotsu, classes=classes))
        anchor = 'skimage.filters.threshold_multiotsu'
        theirs = functools.partial(filters.threshold_multiotsu, classes=classes)
        method = f'threshold_multiotsu (classes={classes})'
      jax.block_until_ready(ours(single))
      jax_ms = timing.best_ms(lambda f=ours, x=single: f(x), repeats)
      note = 'uint8, 256 bins'
      if classes == 5:
        start = time.perf_counter()  # one run: it takes seconds
        theirs(images[0, ..., 0])
        anchor_ms = (time.perf_counter() - start) * 1e3 * batch
        if batch > 1:
          note += f'; anchor: {batch} x one measured image'
      else:
        anchor_ms = timing.best_ms(lambda f=theirs, x=images: [f(im[..., 0]) for im in x], repeats)
      out.append(
        {
          'method': method,
          'size': f'{size}x{size}',
          'batch': batch,
          'jaxseg_ms': jax_ms,
          'anchor': anchor,
          'anchor_ms': anchor_ms,
          'note': note,
        }
      )
  return out


if __name__ == '__main__':
  for row in rows(quick=False):
    print(row)
