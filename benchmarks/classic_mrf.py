"""MRF MAP inference against gco-wrapper's alpha-expansion: time and energy, one problem each.

The problem: 21 labels, Potts, 4-connected, unit edge weights times `lam`, unaries the colour
likelihoods of a real image (squared distance to 21 colour centres, rounded to integers so that
gco, which works in int32, sees the same energy). gco (GCO v3, C++) runs in a subprocess: importing
it rebinds numpy.int for the whole process. jaxseg is timed after a warm-up call (compilation
excluded) and waits with ``block_until_ready``; both sides report process CPU time (best of 2).
Every row's note gives its energy, gco's, and the
TRW-S lower bound, so speed and quality are read together.
Run through ``python benchmarks/classic.py --families=mrf``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from jaxseg.classic import mrf
import timing  # benchmarks/timing.py (this folder is on sys.path)

_GCO_SCRIPT = r"""
import json, sys, time
import numpy as np
from gco import pygco
data = np.load(sys.argv[1])
unary, lam, iterations = data['unary'].astype(np.int32), int(data['lam']), int(data['iterations'])
potts = (lam * (1 - np.eye(unary.shape[-1]))).astype(np.int32)
best, labels = float('inf'), None
for _ in range(int(data['repeats'])):
  start = time.process_time()
  labels = pygco.cut_grid_graph_simple(unary, potts, n_iter=iterations, algorithm='expansion')
  best = min(best, time.process_time() - start)
labels = labels.reshape(unary.shape[:2])
print(json.dumps({'ms': best * 1e3, 'labels': labels.tolist()}))
"""


def colour_unaries(image: np.ndarray, num_labels: int = 21, scale: float = 30.0) -> np.ndarray:
  """(H, W, L) integer-valued costs: squared RGB distance to L colour centres / scale.

  The centres are the colours at L fixed pixels of a coarse grid (deterministic, no clustering),
  so the labels are colour classes of the image itself."""
  h, w, _ = image.shape
  rows = np.linspace(h // 8, h - 1 - h // 8, 7).astype(int)
  cols = np.linspace(w // 8, w - 1 - w // 8, 3).astype(int)
  centres = np.array([image[r, c] for r in rows for c in cols], np.float64)[:num_labels]
  dist = ((image[:, :, None, :].astype(np.float64) - centres[None, None]) ** 2).sum(-1)
  return np.round(dist / scale).astype(np.float32)


def _real_image(size):
  path = timing.reference_path('voc-samples', '1_image.png')
  from PIL import Image

  if os.path.exists(path):
    image = Image.open(path).convert('RGB')
    source = 'VOC 1_image'
  else:
    from skimage import data

    image = Image.fromarray(data.astronaut())
    source = 'skimage astronaut'
  return np.asarray(image.resize((size, size), Image.BILINEAR), np.float64), source


def _gco(unary, lam, iterations, repeats):
  """(ms, labels) of gco's expansion in a subprocess, or (None, None) when gco is absent."""
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'problem.npz')
    np.savez(path, unary=unary, lam=lam, iterations=iterations, repeats=repeats)
    done = subprocess.run(
      [sys.executable, '-c', _GCO_SCRIPT, path], capture_output=True, text=True, check=False
    )
  if done.returncode != 0:
    return None, None
  out = json.loads(done.stdout)
  return out['ms'], np.asarray(out['labels'], np.int32)


def rows(quick: bool) -> list[dict]:
  size, repeats = (64, 1) if quick else (256, 2)
  lam = 20
  image, source = _real_image(size)
  unary = colour_unaries(image)
  gco_ms, gco_labels = _gco(unary, lam, 5, repeats)
  gco_energy = (
    float(mrf.mrf_energy(gco_labels, unary, float(lam))) if gco_labels is not None else float('nan')
  )
  _, _, bound = mrf.trws(unary, float(lam), iterations=20)
  bound = float(bound)
  out = []
  methods = [('icm', 10), ('mean_field', 10), ('trws', 5), ('trws', 20)]
  try:
    from jaxseg.classic import alpha_expansion  # noqa: F401  (lands with the graph-cut work)

    methods.append(('alpha_expansion', 5))
  except ImportError:
    pass
  for method, iterations in methods:

    def run(method=method, iterations=iterations):
      return mrf.mrf_map(unary, float(lam), method=method, iterations=iterations)

    start = time.perf_counter()
    jax.block_until_ready(run())
    compile_s = time.perf_counter() - start
    ms = timing.best_ms(run, repeats, clock=time.process_time)
    energy = float(run()[1])
    out.append(
      {
        'method': f'mrf_map {method} x{iterations}',
        'size': f'{size}x{size}x21',
        'batch': 1,
        'jaxseg_ms': ms,
        'anchor': 'gco expansion x5',
        'anchor_ms': gco_ms,
        'note': f'{source}, Potts w={lam}: E={energy:.0f}, gco E={gco_energy:.0f}, '
        f'TRW-S bound (20 it.) {bound:.0f}; first call {compile_s:.1f} s',
      }
    )
  return out


if __name__ == '__main__':
  for row in rows(quick='--quick' in sys.argv):
    print(row)
