"""Region growing and Felzenszwalb merging against scikit-image.

``region_grow`` (one seed, 4-connectivity, the same mask as ``skimage.segmentation.flood``) on
the 512x512 camera image, and the mean mode (no anchor: flood has none; the seed row's anchor is
repeated for scale). ``hierarchical_merge`` against ``skimage.segmentation.felzenszwalb`` on the
astronaut (RGB): its sequential union-find over ~4 H W sorted edges is one ``lax.fori_loop`` of
scalar steps, slow on XLA:CPU; the batch of 8 runs at 128x128 only (it is 8 sequential loops).
jaxseg is timed after a warm-up call (compilation excluded) and waits with
``block_until_ready``. Run through ``python benchmarks/classic.py --families=region``.
"""

import time

import jax
import numpy as np

from jaxseg.classic import region
import timing  # benchmarks/timing.py (this folder is on sys.path)


def _resized(image, size):
  from skimage import transform

  if size == image.shape[0]:
    return image
  return (transform.resize(image, (size, size)) * 255).astype(np.uint8)


def rows(quick: bool) -> list[dict]:
  from skimage import data, segmentation

  size, repeats = (128, 2) if quick else (512, 3)
  out = []
  camera = _resized(data.camera(), size)
  seed = (size * 3 // 4, size // 4)  # the grass: a large winding region
  for batch in (1, 8):
    images = np.stack([np.roll(camera, 16 * n, axis=1) for n in range(batch)])
    seeds = np.tile(np.array([[seed]]), (batch, 1, 1))
    anchor_ms = timing.best_ms(
      lambda images=images: [
        segmentation.flood(im, seed, tolerance=20, connectivity=1) for im in images
      ],
      repeats,
    )
    for mode in ('seed', 'mean'):
      grow = jax.jit(
        jax.vmap(
          lambda im, s, mode=mode: region.region_grow(
            im, s, tolerance=20.0, connectivity=4, mode=mode
          )
        )
      )
      jax.block_until_ready(grow(images, seeds))
      out.append(
        {
          'method': f"region_grow (mode='{mode}')",
          'size': f'{size}x{size}',
          'batch': batch,
          'jaxseg_ms': timing.best_ms(lambda g=grow, x=images, s=seeds: g(x, s), repeats),
          'anchor': 'skimage.segmentation.flood' + (' (seed mode)' if mode == 'mean' else ''),
          'anchor_ms': anchor_ms,
          'note': 'tolerance 20, 4-connectivity, uint8',
        }
      )
  astronaut = data.astronaut()
  for batch, fz_size in ((1, size), (8, 128)):
    images = np.stack([np.roll(_resized(astronaut, fz_size), 16 * n, axis=1) for n in range(batch)])
    merge = jax.jit(
      jax.vmap(lambda im: region.hierarchical_merge(im, scale=100.0, sigma=0.8, min_size=20))
    )
    start = time.perf_counter()
    jax.block_until_ready(merge(images))
    first_s = time.perf_counter() - start
    jax_ms = timing.best_ms(lambda m=merge, x=images: m(x), 1)
    anchor_ms = timing.best_ms(
      lambda x=images: [
        segmentation.felzenszwalb(im, scale=100.0, sigma=0.8, min_size=20) for im in x
      ],
      repeats,
    )
    out.append(
      {
        'method': 'hierarchical_merge (scale=100)',
        'size': f'{fz_size}x{fz_size} RGB',
        'batch': batch,
        'jaxseg_ms': jax_ms,
        'anchor': 'skimage.segmentation.felzenszwalb',
        'anchor_ms': anchor_ms,
        'note': f'sequential union-find in fori_loop; first call {first_s:.1f} s',
      }
    )
  return out


if __name__ == '__main__':
  for row in rows(quick=False):
    print(row)
