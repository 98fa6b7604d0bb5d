"""GrabCut against cv2.grabCut at 500x334 (rows for classic.py).

The image is a VOC sample of ../shared/reference-data (scikit-image's astronaut when absent)
resized to 500x334, the rectangle the object's box; both run 5 iterations from the rectangle.
Times are process CPU times (best of `repeats`; see classic_graph_cut._best_ms), jaxseg's
without compilation (the first call is in the note). A second jaxseg row swaps PyMaxflow in as
the exact cut (a host callback inside the same jitted loop): it separates the cost of the
mixtures/k-means from that of grid_min_cut. A third starts every cut from zero flow (grabcut
starts each from the previous cut's n-link flow): the warm start's gain, in the same run.

  python benchmarks/classic.py --families=grabcut [--quick]
"""

import importlib
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import timing  # benchmarks/timing.py (this folder is on sys.path)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

gc = importlib.import_module('jaxseg.classic.grabcut')

_REFERENCE = timing.reference_path('voc-samples')


def _case(width, height):
  import cv2

  if os.path.isdir(_REFERENCE):
    image = cv2.imread(os.path.join(_REFERENCE, '23_image.png'))[..., ::-1]
    box = (49, 81, 333 - 49, 512 - 81)  # the ground truth's box of sample 23
  else:
    import skimage.data

    image, box = skimage.data.astronaut(), (100, 10, 260, 500)
  sy, sx = height / image.shape[0], width / image.shape[1]
  x, y, w, h = box
  rect = (int(x * sx), int(y * sy), max(int(w * sx), 1), max(int(h * sy), 1))
  rect = (rect[0], rect[1], min(rect[2], width - rect[0]), min(rect[3], height - rect[1]))
  image = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_AREA)
  return np.ascontiguousarray(image), rect


def _opencv(image, rect):
  import cv2

  cv2.setRNGSeed(0)
  mask = np.zeros(image.shape[:2], np.uint8)
  cv2.grabCut(
    np.ascontiguousarray(image[..., ::-1]),
    mask,
    rect,
    np.zeros((1, 65)),
    np.zeros((1, 65)),
    5,
    cv2.GC_INIT_WITH_RECT,
  )
  return (mask == 1) | (mask == 3)


def _pymaxflow_cut(source, sink, pairwise, flow):
  def host(s, k, p):
    import maxflow

    graph = maxflow.Graph[float]()
    ids = graph.add_grid_nodes(s.shape)
    for j, (dy, dx) in enumerate(((0, 1), (1, 0), (1, 1), (1, -1))):
      structure = np.zeros((3, 3))
      structure[1 + dy, 1 + dx] = 1
      graph.add_grid_edges(
        ids, weights=np.asarray(p[..., j], np.float64), structure=structure, symmetric=True
      )
    graph.add_grid_tedges(ids, np.asarray(s, np.float64), np.asarray(k, np.float64))
    flow = graph.maxflow()
    return (~graph.get_grid_segments(ids)).astype(np.int32), np.float32(flow)

  labels, value = jax.pure_callback(
    host,
    (jax.ShapeDtypeStruct(source.shape, jnp.int32), jax.ShapeDtypeStruct((), jnp.float32)),
    source,
    sink,
    pairwise,
  )
  return labels, value, jnp.float32(0), flow


def _cold_cut(source, sink, pairwise, flow):
  """grabcut's cut without the warm start: each cut starts from zero n-link flow."""
  labels, cut, gap, _ = gc._grid_cut_8(source, sink, pairwise, jnp.zeros_like(flow))
  return labels, cut, gap, flow


def rows(quick):
  width, height = (125, 84) if quick else (500, 334)
  repeats = 2 if quick else 1
  image, rect = _case(width, height)
  theirs = _opencv(image, rect)
  anchor = timing.best_ms(lambda: _opencv(image, rect), 3, clock=time.process_time)
  out = []
  key = jax.random.PRNGKey(0)
  pixels = gc._prepare_image(image)
  codes = jnp.asarray(gc._initial_codes(image.shape[:2], rect, None))
  for label, kwargs in (
    ('grabcut', {}),
    ('grabcut (every cut from zero flow)', {'min_cut': _cold_cut}),
    ('grabcut (PyMaxflow as its cut)', {'min_cut': _pymaxflow_cut}),
  ):

    def call(kwargs=kwargs):
      return jax.block_until_ready(
        gc._grabcut_core(
          pixels, codes, key, jnp.float32(50.0), iterations=5, num_components=5, **kwargs
        )
      )

    start = time.process_time()
    result = call()
    first_ms = 1e3 * (time.process_time() - start)
    ours = timing.best_ms(call, repeats, clock=time.process_time)
    fg = np.asarray(gc._is_foreground(result[0]))
    iou = np.sum(fg & theirs) / max(np.sum(fg | theirs), 1)
    out.append(
      {
        'method': label,
        'size': f'{width}x{height}',
        'batch': 1,
        'jaxseg_ms': ours,
        'anchor': 'cv2.grabCut',
        'anchor_ms': anchor,
        'note': f'5 iterations; first call {first_ms / 1e3:.1f} s CPU; IoU with '
        f'OpenCV (seed 0) {iou:.3f}',
      }
    )
  return out


if __name__ == '__main__':
  import classic

  classic.main(['--families=grabcut'] + sys.argv[1:])
