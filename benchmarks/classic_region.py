"""Region growing and Felzenszwalb merging against scikit-image.

``region_grow`` (one seed, 4-connectivity, the same mask as ``skimage.segmentation.flood``) on
the 512x512 camera image, and the mean mode (no anchor: flood has none; the seed row's anchor is
repeated for scale). ``hierarchical_merge`` against ``skimage.segmentation.felzenszwalb`` on the
astronaut (RGB): its sequential union-find over ~4 H W sorted edges is one ``lax.fori_loop`` of
scalar steps (a batch under ``vmap`` runs it once per image). jaxseg is timed after a warm-up
call (compilation excluded) and waits with ``block_until_ready``; the merge rows give process
CPU time (best of the repeats, jaxseg and scikit-image alternating), the stable measure on a
shared machine, and wall time in the note.
Run through ``python benchmarks/classic.py --families=region``.
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
  for batch in (1, 8):
    images = np.stack([np.roll(_resized(astronaut, size), 16 * n, axis=1) for n in range(batch)])
    merge = jax.jit(
      jax.vmap(lambda im: region.hierarchical_merge(im, scale=100.0, sigma=0.8, min_size=20))
    )
    start = time.perf_counter()
    jax.block_until_ready(merge(images))
    first_s = time.perf_counter() - start

    def anchor(x=images):
      return [segmentation.felzenszwalb(im, scale=100.0, sigma=0.8, min_size=20) for im in x]

    # Alternate jaxseg and the anchor, so both see the same load.
    wall, cpu = {'jax': [], 'skimage': []}, {'jax': [], 'skimage': []}
    for _ in range(repeats):
      for name, fn in (('jax', lambda m=merge, x=images: m(x)), ('skimage', anchor)):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        wall[name].append(1e3 * (time.perf_counter() - start))
        cpu[name].append(1e3 * (time.process_time() - start_cpu))
    out.append(
      {
        'method': 'hierarchical_merge (scale=100)',
        'size': f'{size}x{size} RGB',
        'batch': batch,
        'jaxseg_ms': min(cpu['jax']),
        'anchor': 'skimage.segmentation.felzenszwalb',
        'anchor_ms': min(cpu['skimage']),
        'note': f'CPU ms; wall {min(wall["jax"]):.1f} vs {min(wall["skimage"]):.1f} ms; '
        f'first call {first_s:.1f} s',
      }
    )
  return out


if __name__ == '__main__':
  for row in rows(quick=False):
    print(row)
