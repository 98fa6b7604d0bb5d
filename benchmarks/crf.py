r"""The dense CRF (jaxseg.crf.dense_crf) against pydensecrf2, in the same run.

Usage::

  python benchmarks/crf.py                 # 320x240 (3 labels, 5 it.), 513x513 (21, 10), batch 8
  python benchmarks/crf.py --repeats=5 --cases=small

Each case runs pydensecrf2 (``DenseCRF2D``: setUnaryEnergy, addPairwiseGaussian,
addPairwiseBilateral, inference) and ``dense_crf`` on the same unary and image. Times are
medians over ``--repeats`` runs after one warm-up; jaxseg's time is the whole call (features
and lattice built on the host, the jitted mean field, ``block_until_ready``), its ``build``
column the lattice build alone, ``compile s`` the first call minus a steady one. ``ratio`` is
``pydensecrf ms / jaxseg ms``: above 1, jaxseg is faster. Images: the pydensecrf example and a
VOC image from ``../shared/reference-data`` when present, else synthetic blocks.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax

from jaxseg import crf
from jaxseg.crf import permutohedral
import timing  # benchmarks/timing.py (this folder is on sys.path)

_REFERENCE = timing.REFERENCE_DATA
# (name, image file, (H, W), labels, iterations, DenseCRF keyword values)
CASES = {
  'small': (
    '320x240',
    'densecrf-examples/im1.png',
    (240, 320),
    3,
    5,
    {'pos_w': 3.0, 'pos_xy_std': 3.0, 'bi_w': 10.0, 'bi_xy_std': 80.0, 'bi_rgb_std': 13.0},
  ),
  'voc': (
    '513x513',
    'voc-samples/1_image.png',
    (513, 513),
    21,
    10,
    {'pos_w': 3.0, 'pos_xy_std': 3.0, 'bi_w': 4.0, 'bi_xy_std': 121.0, 'bi_rgb_std': 5.0},
  ),
}


def _image(path, shape):
  full = os.path.join(_REFERENCE, path)
  if os.path.exists(full):
    from PIL import Image

    image = np.asarray(Image.open(full).convert('RGB'))
    return np.array(image[: shape[0], : shape[1]])
  rng = np.random.default_rng(0)
  blocks = rng.integers(0, 256, size=(shape[0] // 40 + 1, shape[1] // 40 + 1, 3))
  return np.repeat(np.repeat(blocks, 40, 0), 40, 1)[: shape[0], : shape[1]].astype(np.uint8)


def _unary(shape, labels, seed):
  rng = np.random.default_rng(seed)
  # Coarse random logits, upsampled: unaries with regions, like a network's.
  coarse = rng.normal(size=(shape[0] // 16 + 1, shape[1] // 16 + 1, labels)) * 2.0
  logits = np.repeat(np.repeat(coarse, 16, 0), 16, 1)[: shape[0], : shape[1]]
  logits = logits + rng.normal(size=logits.shape)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return (-np.log(np.clip(probs, 1e-5, 1.0))).astype(np.float32)


def _median_ms(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _pydensecrf(dcrf, unary, image, iterations, p):
  h, w, labels = unary.shape
  d = dcrf.DenseCRF2D(w, h, labels)
  d.setUnaryEnergy(np.ascontiguousarray(unary.reshape(-1, labels).T))
  d.addPairwiseGaussian(sxy=p['pos_xy_std'], compat=p['pos_w'])
  d.addPairwiseBilateral(
    sxy=p['bi_xy_std'], srgb=p['bi_rgb_std'], rgbim=np.ascontiguousarray(image), compat=p['bi_w']
  )
  return np.asarray(d.inference(iterations))


def _jaxseg(unary, image, iterations, p):
  return crf.dense_crf(unary, image, iterations=iterations, **p).block_until_ready()


def _row(dcrf, title, unary, image, shape, iterations, p, repeats):
  """One row: ``unary``/``image`` hold ``count`` images (a leading batch axis, or one image)."""
  count = 1 if unary.ndim == 3 else len(unary)
  unaries = unary.reshape((count,) + unary.shape[-3:])
  images = image.reshape((count,) + image.shape[-3:])
  start = time.perf_counter()
  _jaxseg(unary, image, iterations, p)
  first = time.perf_counter() - start
  ours = _median_ms(lambda: _jaxseg(unary, image, iterations, p), repeats)
  build = _median_ms(
    lambda: permutohedral.build_lattice(
      images, np.ones((count,) + shape, bool), xy_std=p['bi_xy_std'], rgb_std=p['bi_rgb_std']
    ),
    repeats,
  )

  def theirs_loop():
    for i in range(count):
      _pydensecrf(dcrf, unaries[i], images[i], iterations, p)

  theirs = _median_ms(theirs_loop, repeats) if dcrf else float('nan')
  return {
    'case': title,
    'batch': count,
    'pydensecrf': theirs,
    'jaxseg': ours,
    'build': build,
    'compile': first - ours / 1e3,
  }


def _case(dcrf, key, repeats, batch):
  """The rows of one case: one image, then (batch > 1) a batch of different images."""
  name, path, shape, labels, iterations, p = CASES[key]
  title = f'{name}, {labels} labels, {iterations} it.'
  image = _image(path, shape)
  out = [_row(dcrf, title, _unary(shape, labels, 0), image, shape, iterations, p, repeats)]
  if batch > 1:
    # Different images (flips, shifts) and unaries, so each lattice differs.
    images = np.stack([np.roll(image[:, :: (-1) ** i], 7 * i, axis=0) for i in range(batch)])
    unaries = np.stack([_unary(shape, labels, i) for i in range(batch)])
    out.append(_row(dcrf, title, unaries, images, shape, iterations, p, repeats))
  return out


def rows(case_names, repeats, batch, batch_cases=('small',)):
  """Rows of the table: every case once, the ``batch_cases`` also as a batch of ``batch``."""
  try:
    import pydensecrf.densecrf as dcrf
  except ImportError:
    dcrf = None
  out = []
  for key in case_names:
    out += _case(dcrf, key, repeats, batch if key in batch_cases else 1)
  return out


def _format(rows_):
  header = (
    'case',
    'batch',
    'pydensecrf2 ms',
    'jaxseg ms',
    'of which build ms',
    'compile s',
    'ratio',
    'jaxseg img/s',
  )
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows_:
    lines.append(
      f'| {r["case"]} | {r["batch"]} | {r["pydensecrf"]:.0f} | {r["jaxseg"]:.0f} | '
      f'{r["build"]:.0f} | {r["compile"]:.1f} | {r["pydensecrf"] / r["jaxseg"]:.2f} | '
      f'{1e3 * r["batch"] / r["jaxseg"]:.1f} |'
    )
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cases', default='small,voc', help='comma-separated: small, voc')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--batch', type=int, default=8, help='batch size of the batched rows')
  parser.add_argument('--batch-cases', default='small', help='cases with a batched row')
  args = parser.parse_args(argv)
  cases = args.cases.split(',')
  for case in cases:
    if case not in CASES:
      parser.error(f'--cases: unknown case {case!r}; expected some of {sorted(CASES)}')
  print(
    f'jax {jax.__version__}, devices {jax.devices()}, os.cpu_count() {os.cpu_count()}, '
    f'load average {os.getloadavg()[0]:.1f}'
  )
  result = rows(cases, args.repeats, args.batch, args.batch_cases.split(','))
  print(_format(result))
  return result


if __name__ == '__main__':
  main()
