"""Level sets against scikit-image: time per iteration of Chan-Vese and morphological Chan-Vese.

Both run a fixed number of iterations (``tol=0``) from the same checkerboard on the camera image
(512x512 float32; a batch of 8 is the image and 7 shifted copies, scikit-image looping over them).
jaxseg is timed after a warm-up call (compilation excluded) and waits with ``block_until_ready``;
the two sides are timed alternately, best of 4. The columns are process CPU time per iteration
(wall time in the note): on a shared machine wall time mostly measures the scheduler.
Run through ``python benchmarks/classic.py --families=level_sets``.
"""

import time

import jax
import numpy as np

from jaxseg.classic import level_sets


def _best_ms_interleaved(ours, theirs, repeats):
  """Best-of (CPU ms, wall ms) of two functions, measured alternately.

  CPU time is the process's (all of XLA's threads included): on a machine shared by many
  processes, wall time mostly measures the scheduler, CPU time the work."""
  cpu = [float('inf'), float('inf')]
  wall = [float('inf'), float('inf')]
  for _ in range(repeats):
    for n, fn in enumerate((ours, theirs)):
      start, start_cpu = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn())
      cpu[n] = min(cpu[n], time.process_time() - start_cpu)
      wall[n] = min(wall[n], time.perf_counter() - start)
  return [c * 1e3 for c in cpu], [w * 1e3 for w in wall]


def _images(size, batch):
  from skimage import data, transform

  image = transform.resize(
    data.camera().astype(np.float32) / 255.0, (size, size), anti_aliasing=True
  ).astype(np.float32)
  return np.stack([np.roll(image, 16 * n, axis=1) for n in range(batch)])


def rows(quick: bool) -> list[dict]:
  from skimage import segmentation

  size, iterations, repeats = (128, 10, 2) if quick else (512, 20, 4)
  out = []
  for batch in (1, 8):
    images = _images(size, batch)
    single = images[0] if batch == 1 else images

    def ours_cv(x=single):
      return level_sets.chan_vese(x, tol=0.0, max_iterations=iterations)[1]

    def theirs_cv(x=images):
      return [segmentation.chan_vese(im, tol=0.0, max_num_iter=iterations) for im in x]

    def ours_mcv(x=single):
      return level_sets.morphological_chan_vese(x, iterations)

    def theirs_mcv(x=images):
      return [segmentation.morphological_chan_vese(im, iterations) for im in x]

    for method, ours, theirs, anchor in (
      ('chan_vese (per iteration)', ours_cv, theirs_cv, 'skimage.segmentation.chan_vese'),
      (
        'morphological_chan_vese (per iteration)',
        ours_mcv,
        theirs_mcv,
        'skimage.segmentation.morphological_chan_vese',
      ),
    ):
      compile_start = time.perf_counter()
      jax.block_until_ready(ours())
      compile_s = time.perf_counter() - compile_start
      cpu, wall = _best_ms_interleaved(ours, theirs, repeats)
      out.append(
        {
          'method': method,
          'size': f'{size}x{size}',
          'batch': batch,
          'jaxseg_ms': cpu[0] / iterations,
          'anchor': anchor,
          'anchor_ms': cpu[1] / iterations,
          'note': f'CPU ms per iteration ({iterations} it., float32); wall '
          f'{wall[0] / iterations:.1f} vs {wall[1] / iterations:.1f} ms; '
          f'first call {compile_s:.1f} s',
        }
      )
  return out


if __name__ == '__main__':
  for row in rows(quick=False):
    print(row)
