r"""Saliency metrics and the confusion matrix: jaxseg against NumPy implementations, one table.

Usage::

  python benchmarks/metrics.py                 # 100 maps of 480x640, 100 images of 512x512
  python benchmarks/metrics.py --quick         # 8 small maps: a smoke run
  python benchmarks/metrics.py --json=out.json

Every saliency metric of `jaxseg.metrics.saliency` runs on ``--maps`` random maps (smooth
blobs, ~150 fixated pixels each) as one jitted ``jax.lax.map`` over the maps (compilation
excluded, reported apart; ``vmap`` over 100 maps of this size runs memory-bound, 2-6x slower);
``confusion_matrix`` on ``--images`` label maps with 21 classes and 10% ``ignore_label``, both
outside ``jit`` (what an evaluation loop calls) and inside. The anchors, timed in the same run
on the same data:

* ``numpy``: the MIT benchmark's definition (the ``.m`` files), vectorised NumPy in float64, one
  map at a time (FCN's ``fast_hist`` for the confusion matrix);
* ``pysaliency``: pysaliency's definition where it differs (exact AUC with ties counting one
  half, NSS with the population standard deviation), vectorised NumPy. pysaliency itself is not
  installed in the development environment; this reimplements its definition.

``ratio`` = fastest anchor ms / jaxseg ms: at least 1 means jaxseg is no slower; ``cpu ratio``
the same with this process's CPU time (all threads), steadier on a shared host. Times are the
median of ``--repeats`` runs, timed in alternating rounds (jaxseg, then each anchor, per round)
so that a change of load on a shared host hits both sides; there only ratios are meaningful.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxseg.metrics import saliency as sm  # noqa: E402
from jaxseg.metrics import segmentation as seg  # noqa: E402

EPS = 2.2204e-16


def _maps(count, shape, rng):
  """Smooth random saliency maps, fixation maps (~150 px), densities and a baseline."""
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w]
  sal = np.zeros((count, h, w), np.float32)
  for i in range(count):
    for _ in range(4):
      cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.2) * h
      sal[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)).astype(np.float32)
  fix = np.zeros((count, h, w), np.uint8)
  n_fix = min(150, h * w // 4)
  for i in range(count):
    p = sal[i].ravel() / sal[i].sum()
    fix[i].ravel()[rng.choice(h * w, n_fix, p=p)] = 1
  density = sal / sal.sum((1, 2), keepdims=True)
  # A centre-bias baseline (a constant one is NaN after the MIT min-max normalisation).
  baseline = np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (0.25 * h) ** 2)).astype(
    np.float32
  )
  return sal, fix, density, baseline


# ---------------------------------------------------------------- NumPy: the MIT definitions


def _mm(x):
  return (x - x.min()) / (x.max() - x.min())


def np_auc_judd(sal, fix, rng):
  s = _mm(sal.astype(np.float64) + rng.random(sal.shape) / 1e7).ravel()
  f = fix.ravel() > 0
  thresholds = np.sort(s[f])[::-1]
  n, k = s.size, thresholds.size
  above = n - np.searchsorted(np.sort(s), thresholds, side='left')
  tp = np.concatenate([[0], np.arange(1, k + 1) / k, [1]])
  fp = np.concatenate([[0], (above - np.arange(1, k + 1)) / (n - k), [1]])
  return np.trapezoid(tp, fp)


def _binned_auc(s_fix, negatives, step=0.1):
  """AUC_Borji.m's threshold loop for many splits: negatives (splits, m) -> mean area."""
  thresholds = np.arange(0, 1 + 1e-9, step)[::-1]
  tp = (s_fix[None, :] >= thresholds[:, None]).mean(1)
  fp = (negatives[:, None, :] >= thresholds[None, :, None]).mean(2)
  tp = np.concatenate([[0], tp, [1]])
  fp = np.concatenate([np.zeros((len(fp), 1)), fp, np.ones((len(fp), 1))], 1)
  return np.mean(np.trapezoid(tp[None], fp, axis=1))


def np_auc_borji(sal, fix, rng, splits=100):
  s = _mm(sal.astype(np.float64)).ravel()
  s_fix = s[fix.ravel() > 0]
  return _binned_auc(s_fix, s[rng.integers(0, s.size, (splits, s_fix.size))])


def np_auc_shuffled(sal, fix, other, rng, splits=100):
  s = _mm(sal.astype(np.float64)).ravel()
  s_fix = s[fix.ravel() > 0]
  candidates = s[other.ravel() > 0]
  m = min(s_fix.size, candidates.size)
  picks = np.stack([rng.permutation(candidates.size)[:m] for _ in range(splits)])
  return _binned_auc(s_fix, candidates[picks])


def np_nss(sal, fix, ddof=1):
  s = sal.astype(np.float64)
  return ((s - s.mean()) / s.std(ddof=ddof))[fix > 0].mean()


def np_cc(sal, density):
  return np.corrcoef(sal.ravel().astype(np.float64), density.ravel())[0, 1]


def np_similarity(sal, density):
  a, b = _mm(sal.astype(np.float64)), _mm(density.astype(np.float64))
  return np.minimum(a / a.sum(), b / b.sum()).sum()


def np_kld(sal, density):
  p, q = sal / sal.sum(), density / density.sum()
  return np.sum(q * np.log(EPS + q / (p + EPS)))


def np_info_gain(sal, fix, baseline):
  s, b = _mm(sal.astype(np.float64)), _mm(baseline.astype(np.float64))
  s, b = s / s.sum(), b / b.sum()
  f = fix > 0
  return np.mean(np.log2(EPS + s[f]) - np.log2(EPS + b[f]))


def pys_auc(sal, fix):
  """pysaliency's AUC: P(S_fix > S) + P(S_fix = S) / 2 over all pixels as negatives."""
  s = sal.ravel().astype(np.float64)
  ordered = np.sort(s)
  s_fix = s[fix.ravel() > 0]
  below = np.searchsorted(ordered, s_fix, 'left')
  at = np.searchsorted(ordered, s_fix, 'right')
  return np.mean((below + 0.5 * (at - below)) / s.size)


def np_confusion(labels, preds, n):
  """FCN score.py's fast_hist."""
  k = (labels >= 0) & (labels < n)
  return np.bincount(n * labels[k].astype(int) + preds[k], minlength=n * n).reshape(n, n)


# ---------------------------------------------------------------- timing


def _rounds(fns, repeats):
  """(wall ms, CPU ms of this process, all threads) of each function, each the median of
  `repeats` runs timed in alternating rounds (one run of each per round), so that a change of
  the host's load hits every side alike; None entries give None."""
  walls, cpus = [[] for _ in fns], [[] for _ in fns]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      if fn is None:
        continue
      start, cpu = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn())
      walls[i].append(time.perf_counter() - start)
      cpus[i].append(time.process_time() - cpu)
  return [
    (1e3 * statistics.median(w), 1e3 * statistics.median(c)) if w else None
    for w, c in zip(walls, cpus)
  ]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--maps', type=int, default=100)
  parser.add_argument('--size', default='480x640')
  parser.add_argument('--images', type=int, default=100)
  parser.add_argument('--label-size', type=int, default=512)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--quick', action='store_true', help='8 maps of 60x80, 8 images of 64x64')
  parser.add_argument('--json', default='')
  args = parser.parse_args(argv)
  if args.quick:
    args.maps, args.size, args.images, args.label_size, args.repeats = 8, '60x80', 8, 64, 1
  shape = tuple(int(v) for v in args.size.split('x'))
  rng = np.random.default_rng(0)
  sal, fix, density, baseline = _maps(args.maps, shape, rng)
  other = np.roll(fix, 1, axis=0) | np.roll(fix, 2, axis=0)  # two other images' fixations
  keys = jax.random.split(jax.random.key(0), args.maps)
  j_sal, j_fix, j_den, j_other = map(jnp.asarray, (sal, fix, density, other))
  j_base = jnp.asarray(baseline)
  n = args.maps

  jax_metrics = {
    'auc_judd': (lambda s, f, d, o, k: sm.auc_judd(s, f, key=k)),
    'auc_borji': (lambda s, f, d, o, k: sm.auc_borji(s, f, key=k)),
    'auc_shuffled': (lambda s, f, d, o, k: sm.auc_shuffled(s, f, o, key=k)),
    'nss': (lambda s, f, d, o, k: sm.nss(s, f)),
    'cc': (lambda s, f, d, o, k: sm.cc(s, d)),
    'similarity': (lambda s, f, d, o, k: sm.similarity(s, d)),
    'kld': (lambda s, f, d, o, k: sm.kld(s, d)),
    'info_gain': (lambda s, f, d, o, k: sm.info_gain(s, f, j_base)),
    'auc_judd (pysaliency)': (lambda s, f, d, o, k: sm.auc_judd(s, f, convention='pysaliency')),
    'nss (pysaliency)': (lambda s, f, d, o, k: sm.nss(s, f, convention='pysaliency')),
  }
  np_metrics = {
    'auc_judd': lambda i: np_auc_judd(sal[i], fix[i], rng),
    'auc_borji': lambda i: np_auc_borji(sal[i], fix[i], rng),
    'auc_shuffled': lambda i: np_auc_shuffled(sal[i], fix[i], other[i], rng),
    'nss': lambda i: np_nss(sal[i], fix[i]),
    'cc': lambda i: np_cc(sal[i], density[i]),
    'similarity': lambda i: np_similarity(sal[i], density[i]),
    'kld': lambda i: np_kld(sal[i], density[i]),
    'info_gain': lambda i: np_info_gain(sal[i], fix[i], baseline),
  }
  pys_metrics = {
    'auc_judd (pysaliency)': lambda i: pys_auc(sal[i], fix[i]),
    'nss (pysaliency)': lambda i: np_nss(sal[i], fix[i], ddof=0),
  }
  print(
    f'jax {jax.__version__} ({jax.default_backend()}), {n} maps of {shape[0]}x{shape[1]}, '
    f'{args.images} label maps of {args.label_size}^2 (21 classes), median of '
    f'{args.repeats}, load {os.getloadavg()[0]:.1f}'
  )
  header = (
    f'{"metric":<24}{"jaxseg ms":>11}{"compile s":>10}{"numpy ms":>10}'
    f'{"pysaliency ms":>14}{"ratio":>8}{"cpu ratio":>10}'
  )
  print(header)
  print('-' * len(header))
  rows = []

  def emit(name, jax_t, compile_s, numpy_t, pys_t):
    # *_t: (wall ms, CPU ms); the CPU ratio is steadier on a shared host (preemption inflates
    # wall time, more so for the NumPy anchors' Python loops).
    anchors = [a for a in (numpy_t, pys_t) if a is not None]
    jax_ms = jax_t[0]
    numpy_ms, pys_ms = (t[0] if t is not None else None for t in (numpy_t, pys_t))
    row = {
      'metric': name,
      'jaxseg_ms': jax_ms,
      'compile_s': compile_s,
      'numpy_ms': numpy_ms,
      'pysaliency_ms': pys_ms,
      'ratio': min(a[0] for a in anchors) / jax_ms if anchors else None,
      'cpu_ratio': min(a[1] for a in anchors) / jax_t[1] if anchors else None,
      'jaxseg_cpu_ms': jax_t[1],
      'numpy_cpu_ms': numpy_t[1] if numpy_t is not None else None,
      'pysaliency_cpu_ms': pys_t[1] if pys_t is not None else None,
    }
    rows.append(row)
    fmt = lambda v: f'{v:.1f}' if v is not None else '-'
    print(
      f'{name:<24}{jax_ms:>11.1f}{fmt(compile_s):>10}{fmt(numpy_ms):>10}{fmt(pys_ms):>14}'
      f'{fmt(row["ratio"]):>8}{fmt(row["cpu_ratio"]):>10}',
      flush=True,
    )

  for name, metric in jax_metrics.items():
    # One map at a time (lax.map), not vmap: over 100 maps of 480x640 vmap keeps every
    # intermediate of the batch live (~120 MB each) and ran memory-bound, 2-6x slower on the
    # CPU (kld: 645 against 106 ms at load ~12); a loop over maps stays in cache.
    fn = jax.jit(lambda *args, metric=metric: jax.lax.map(lambda a: metric(*a), args))
    start = time.perf_counter()
    jax.block_until_ready(fn(j_sal, j_fix, j_den, j_other, keys))
    compile_s = time.perf_counter() - start
    loop = lambda table, name=name: [table[name](i) for i in range(n)]
    jax_ms, numpy_ms, pys_ms = _rounds(
      [
        lambda fn=fn: fn(j_sal, j_fix, j_den, j_other, keys),
        (lambda: loop(np_metrics)) if name in np_metrics else None,
        (lambda: loop(pys_metrics)) if name in pys_metrics else None,
      ],
      args.repeats,
    )
    emit(name, jax_ms, compile_s, numpy_ms, pys_ms)

  size = args.label_size
  labels = rng.integers(0, 21, (args.images, size, size)).astype(np.int32)
  labels[rng.random(labels.shape) < 0.1] = 255
  preds = rng.integers(0, 21, labels.shape).astype(np.int32)
  j_labels, j_preds = jnp.asarray(labels), jnp.asarray(preds)
  expected = np_confusion(labels, preds, 21)
  assert np.array_equal(np.asarray(seg.confusion_matrix(j_labels, j_preds, 21)), expected)
  start = time.perf_counter()
  jax.block_until_ready(seg.confusion_matrix(j_labels, j_preds, 21))
  eager_compile_s = time.perf_counter() - start
  jitted = jax.jit(lambda a, b: seg.confusion_matrix(a, b, 21))
  start = time.perf_counter()
  jax.block_until_ready(jitted(j_labels, j_preds))
  jit_compile_s = time.perf_counter() - start
  eager_ms, jit_ms, numpy_ms = _rounds(
    [
      lambda: seg.confusion_matrix(j_labels, j_preds, 21),
      lambda: jitted(j_labels, j_preds),
      lambda: np_confusion(labels, preds, 21),
    ],
    args.repeats,
  )
  emit('confusion_matrix (eager)', eager_ms, eager_compile_s, numpy_ms, None)
  emit('confusion_matrix (jit)', jit_ms, jit_compile_s, numpy_ms, None)
  print(f'load {os.getloadavg()[0]:.1f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=1)
  return rows


if __name__ == '__main__':
  main()
