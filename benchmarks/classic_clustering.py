"""k-means against scikit-learn and OpenCV on the pixels of a 512x512 RGB image (astronaut).

The same 8 initial centres for jaxseg and scikit-learn (``KMeans(init=centres, n_init=1,
algorithm='lloyd')``, float32 data, its OpenMP threads), so both run the same iterations;
``cv2.kmeans`` seeds itself (k-means++, one attempt) and stops on its own criterion (100
iterations or a centre move below 1e-4), so its iteration count differs (noted). A batch of 8 is
the image and 7 shifted copies: jaxseg vmaps ``kmeans`` over them, the anchors loop.
``kmeans_segment`` adds the colour conversion and the k-means++ seeding. jaxseg is timed after a
warm-up call (compilation excluded) and waits with ``block_until_ready``.
Run through ``python benchmarks/classic.py --families=clustering``.
"""

import jax
import numpy as np

from jaxseg.classic import clustering
import timing  # benchmarks/timing.py (this folder is on sys.path)


def _images(size, batch):
  from skimage import data, transform

  image = data.astronaut()
  if size != image.shape[0]:
    image = (transform.resize(image, (size, size)) * 255).astype(np.uint8)
  return np.stack([np.roll(image, 16 * n, axis=1) for n in range(batch)])


def rows(quick: bool) -> list[dict]:
  import cv2
  from sklearn.cluster import KMeans

  size, repeats, k = (128, 2, 8) if quick else (512, 3, 8)
  criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
  key = jax.random.key(0)
  out = []
  for batch in (1, 8):
    images = _images(size, batch)
    points = images.reshape(batch, -1, 3).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    inits = np.stack([p[rng.choice(len(p), k, replace=False)] for p in points])
    run = jax.jit(jax.vmap(lambda p, c: clustering.kmeans(p, k, init=c)))
    jax.block_until_ready(run(points, inits))
    jax_ms = timing.best_ms(lambda run=run, points=points, inits=inits: run(points, inits), repeats)
    fits = []

    def sklearn_all(fits=fits, points=points, inits=inits):
      fits[:] = [
        KMeans(k, init=c, n_init=1, algorithm='lloyd').fit(p) for p, c in zip(points, inits)
      ]
      return 0

    sk_ms = timing.best_ms(sklearn_all, repeats)
    iters = max(f.n_iter_ for f in fits)
    out.append(
      {
        'method': f'kmeans (k={k}, same init)',
        'size': f'{size}x{size} RGB',
        'batch': batch,
        'jaxseg_ms': jax_ms,
        'anchor': 'sklearn KMeans lloyd',
        'anchor_ms': sk_ms,
        'note': f'{iters} Lloyd iterations (both)',
      }
    )
    cv_ms = timing.best_ms(
      lambda points=points: [
        cv2.kmeans(p, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS) for p in points
      ],
      repeats,
    )
    out.append(
      {
        'method': f'kmeans (k={k})',
        'size': f'{size}x{size} RGB',
        'batch': batch,
        'jaxseg_ms': jax_ms,
        'anchor': 'cv2.kmeans (k-means++, 1 attempt)',
        'anchor_ms': cv_ms,
        'note': 'jaxseg row as above; cv2 seeds and stops itself',
      }
    )
    single = images[0] if batch == 1 else images
    segment = jax.jit(lambda x, key: clustering.kmeans_segment(x, k, key=key, colorspace='lab'))
    jax.block_until_ready(segment(single, key))
    seg_ms = timing.best_ms(lambda segment=segment, single=single: segment(single, key), repeats)

    def sklearn_lab(images=images):
      from skimage.color import rgb2lab

      return [
        KMeans(k, n_init=1, algorithm='lloyd', random_state=0)
        .fit(rgb2lab(im).reshape(-1, 3).astype(np.float32))
        .labels_
        for im in images
      ]

    out.append(
      {
        'method': f"kmeans_segment (k={k}, 'lab')",
        'size': f'{size}x{size}',
        'batch': batch,
        'jaxseg_ms': seg_ms,
        'anchor': 'rgb2lab + sklearn KMeans',
        'anchor_ms': timing.best_ms(sklearn_lab, 1),
        'note': 'own k-means++ seeds each, so iteration counts differ',
      }
    )
  return out


if __name__ == '__main__':
  for row in rows(quick=False):
    print(row)
