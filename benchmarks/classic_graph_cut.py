"""grid_min_cut against PyMaxflow, alpha_expansion against gco-wrapper (rows for classic.py).

Problems: Boykov-Jolly energies on real images (the VOC samples of ../shared/reference-data, or
scikit-image's astronaut and coffee when absent): full-covariance colour Gaussians fitted inside
a central box (foreground) and on the border (background), contrast weights
`2 exp(-|dI|^2 / (2 0.1^2))`, 4-connected; a batch of 8 is 8 such images (flips of the samples).
One random-capacity grid row shows a harder flow pattern. PyMaxflow's time includes building its
graph (its users pay that too); jaxseg's excludes compilation (reported in the note). Times
are process CPU times, best of 3 runs (1 for alpha-expansion), on both sides (see _best_ms). The
alpha-expansion row is 256x256 with 21 labels and integer colour-likelihood unaries, both to
convergence; gco runs in a subprocess because importing it rebinds numpy.int for the process.

  python benchmarks/classic.py --families=graph_cut [--quick]
"""

import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxseg.classic import graph_cut as gc
from jaxseg.classic.alpha_expansion import alpha_expansion
import timing  # benchmarks/timing.py (this folder is on sys.path)

_REFERENCE = timing.reference_path('voc-samples')


def _images(size, count):
  import cv2

  if os.path.isdir(_REFERENCE):
    base = [
      cv2.imread(os.path.join(_REFERENCE, f'{n}_image.png'))[..., ::-1] for n in ('1', '23', '114')
    ]
  else:
    import skimage.data

    base = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
  variants = [im for b in base for im in (b, b[:, ::-1], b[::-1])]
  return [
    cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA) / 255.0
    for im in variants[:count]
  ]


def boykov_jolly(image):
  """(source_cap, sink_cap, pairwise) float32 of a box-initialised colour-model energy."""
  h, w, _ = image.shape
  inside = np.zeros((h, w), bool)
  inside[h // 5 : 4 * h // 5, w // 5 : 4 * w // 5] = True
  costs = []
  for mask in (inside, ~inside):
    pixels = image[mask]
    mean, cov = pixels.mean(0), np.cov(pixels.T) + 1e-3 * np.eye(3)
    diff = image - mean
    costs.append(
      0.5 * np.einsum('hwi,ij,hwj->hw', diff, np.linalg.inv(cov), diff)
      + 0.5 * np.log(np.linalg.det(cov))
    )
  fg, bg = costs
  base = np.minimum(fg, bg)
  weights = 2.0 * np.asarray(gc._contrast_weights(image, sigma=0.1))
  return (bg - base).astype(np.float32), (fg - base).astype(np.float32), weights.astype(np.float32)


def pymaxflow(source_cap, sink_cap, pairwise):
  import maxflow

  graph = maxflow.Graph[float]()
  ids = graph.add_grid_nodes(source_cap.shape)
  for k, (dr, dc) in enumerate(gc.OFFSETS[4]):
    structure = np.zeros((3, 3))
    structure[1 + dr, 1 + dc] = 1
    graph.add_grid_edges(ids, weights=pairwise[..., k], structure=structure, symmetric=True)
  graph.add_grid_tedges(ids, source_cap, sink_cap)
  flow = graph.maxflow()
  graph.get_grid_segments(ids)
  return flow


def _cut_rows(size, batch, problems, label, repeats):
  stacked = [np.stack(parts) for parts in zip(*problems)]
  if batch == 1:
    call = jax.jit(
      lambda a, b, c: gc._grid_min_cut(a, b, c, connectivity=4, max_iterations=10**9, tol=0.0)
    )
    args = [s[0] for s in stacked]
  else:
    call = jax.jit(
      jax.vmap(
        lambda a, b, c: gc._grid_min_cut(a, b, c, connectivity=4, max_iterations=10**9, tol=0.0)
      )
    )
    args = stacked
  start = time.process_time()
  _, cut, _ = jax.block_until_ready(call(*args))
  first_ms = 1e3 * (time.process_time() - start)
  ours = timing.best_ms(
    lambda: jax.block_until_ready(call(*args)), repeats, clock=time.process_time
  )
  flows = []
  anchor = timing.best_ms(
    lambda: flows.__setitem__(slice(None), [pymaxflow(*p) for p in problems[:batch]]),
    repeats,
    clock=time.process_time,
  )
  error = max(abs(float(c) - f) / f for c, f in zip(np.atleast_1d(cut), flows))
  return {
    'method': f'grid_min_cut ({label})',
    'size': f'{size}x{size}',
    'batch': batch,
    'jaxseg_ms': ours,
    'anchor': 'PyMaxflow',
    'anchor_ms': anchor,
    'note': f'first call {first_ms / 1e3:.1f} s CPU; cut rel. diff {error:.1e}',
  }


_GCO_SCRIPT = """
import sys, time
import numpy as np
import gco
data = np.load(sys.argv[1])
unary = data['unary']
h, w, n = unary.shape
cost_v = np.full((h - 1, w), data['weight'], np.int32)
cost_h = np.full((h, w - 1), data['weight'], np.int32)
times = []
for _ in range(int(sys.argv[2])):
  start = time.process_time()
  labels = gco.cut_grid_graph(unary, (1 - np.eye(n)).astype(np.int32), cost_v, cost_h, None, None,
                              n_iter=-1, algorithm='expansion')
  times.append(1e3 * (time.process_time() - start))
labels = np.asarray(labels).reshape(h, w)
energy = np.take_along_axis(unary, labels[..., None], -1).sum() + data['weight'] * (
    (labels[:, 1:] != labels[:, :-1]).sum() + (labels[1:] != labels[:-1]).sum())
print(min(times), energy)
"""


def _expansion_row(size, num_labels, repeats):
  image = _images(size, 1)[0]
  pixels = image.reshape(-1, 3)
  order = np.argsort(pixels @ np.array([0.299, 0.587, 0.114]))
  centres = pixels[order[np.linspace(0, len(order) - 1, num_labels).astype(int)]]
  squared = ((image[:, :, None, :] - centres[None, None]) ** 2).sum(-1)
  unary = np.round(np.minimum(squared / (2 * 0.1**2), 10.0) * 10).astype(np.int32)
  weight = 20
  start = time.process_time()
  _, energy = jax.block_until_ready(alpha_expansion(unary, weight))
  first_ms = 1e3 * (time.process_time() - start)
  ours = timing.best_ms(
    lambda: jax.block_until_ready(alpha_expansion(unary, weight)), repeats, clock=time.process_time
  )
  try:
    with tempfile.TemporaryDirectory() as folder:
      path = os.path.join(folder, 'in.npz')
      np.savez(path, unary=unary, weight=np.int32(weight))
      out = subprocess.run(
        [sys.executable, '-c', _GCO_SCRIPT, path, str(repeats)],
        check=True,
        capture_output=True,
        text=True,
      ).stdout.split()
    anchor, gco_energy = float(out[0]), int(out[1])
    note = f'energy {int(energy)} vs gco {gco_energy} ({int(energy) / gco_energy - 1:+.3%})'
  except subprocess.CalledProcessError:
    anchor, note = None, 'gco-wrapper missing'
  return {
    'method': f'alpha_expansion (Potts, {num_labels} labels)',
    'size': f'{size}x{size}',
    'batch': 1,
    'jaxseg_ms': ours,
    'anchor': 'gco',
    'anchor_ms': anchor,
    'note': f'first call {first_ms / 1e3:.1f} s CPU; {note}',
  }


def rows(quick):
  sizes = (64,) if quick else (256, 512)
  repeats = 2 if quick else 3
  out = []
  for size in sizes:
    problems = [boykov_jolly(image) for image in _images(size, 8)]
    out.append(_cut_rows(size, 1, problems, 'Boykov-Jolly', repeats))
    out.append(_cut_rows(size, 8, problems, 'Boykov-Jolly', repeats))
  size = sizes[-1]
  rng = np.random.default_rng(0)
  random_problem = [
    (
      rng.random((size, size), np.float32),
      rng.random((size, size), np.float32),
      (0.6 * rng.random((size, size, 2))).astype(np.float32),
    )
  ]
  out.append(_cut_rows(size, 1, random_problem, 'random capacities', repeats))
  out.append(_expansion_row(32 if quick else 256, 21, 1 if not quick else 2))
  return out


if __name__ == '__main__':
  import classic

  classic.main(['--families=graph_cut'] + sys.argv[1:])
