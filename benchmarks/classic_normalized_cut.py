"""Normalized cut against scikit-image's cut_normalized, and the pixel spectrum against SciPy.

Rows (process CPU times, best of `repeats`, jaxseg without compilation, first call in the note):

* the same region adjacency graph: SLIC superpixels (about 400) of a real image and
  skimage.graph.rag_mean_color(mode='similarity'); scikit-image's recursive cut with its
  defaults (thresh 0.001, 10 candidate splits) against partition_graph asked for as many
  segments as scikit-image returned; the note gives both partitions' Ncut on that graph;
* end to end from the image and the same superpixels: rag_mean_color + cut_normalized against
  normalized_cut(superpixels=...) (its own graph: the Shi-Malik pixel affinity summed onto the
  superpixels);
* the pixel problem without superpixels: ncut_spectrum's matrix-free Lanczos (6 eigenpairs)
  against scipy.sparse.linalg.eigsh in shift-invert mode on the same sparse matrices (built
  outside the timing).

  python benchmarks/classic.py --families=normalized_cut [--quick]
"""

import importlib
import os
import sys
import time

import jax
import numpy as np
import timing  # benchmarks/timing.py (this folder is on sys.path)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

nc = importlib.import_module('jaxseg.classic.normalized_cut')

_REFERENCE = timing.reference_path('voc-samples')


def _image(width, height):
  import cv2

  if os.path.isdir(_REFERENCE):
    image = cv2.imread(os.path.join(_REFERENCE, '23_image.png'))[..., ::-1]
  else:
    import skimage.data

    image = skimage.data.astronaut()
  return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_AREA)


def _ncut(labels, W):
  total = 0.0
  for c in np.unique(labels):
    inside = labels == c
    total += W[inside][:, ~inside].sum() / W[inside].sum()
  return total


def _rag_rows(image, n_segments, repeats):
  from skimage import graph, segmentation

  superpixels = segmentation.slic(image, n_segments=n_segments, compactness=20, start_label=0)
  count = int(superpixels.max()) + 1

  def skimage_cut():
    rag = graph.rag_mean_color(image, superpixels, mode='similarity')
    return rag, graph.cut_normalized(superpixels, rag, rng=0)

  rag, theirs = skimage_cut()
  W = np.zeros((count, count))
  for a, b, data in rag.edges(data=True):
    W[a, b] = W[b, a] = data['weight']
  W[np.arange(count), np.arange(count)] = 1.0  # cut_normalized's self-loops
  nodes = np.zeros(count, np.int64)
  nodes[superpixels.reshape(-1)] = theirs.reshape(-1)
  _, nodes = np.unique(nodes, return_inverse=True)
  k = int(nodes.max()) + 1

  def skimage_partition():
    rag = graph.rag_mean_color(image, superpixels, mode='similarity')
    return graph.cut_normalized(superpixels, rag, rng=0)

  def ours_partition():
    return jax.block_until_ready(nc.partition_graph(W, k))

  start = time.process_time()
  ours = np.asarray(ours_partition())
  first = time.process_time() - start
  size = f'{image.shape[1]}x{image.shape[0]}'
  rows = [
    {
      'method': f'ncut partition, same RAG ({count} nodes)',
      'size': size,
      'batch': 1,
      'jaxseg_ms': timing.best_ms(ours_partition, repeats, clock=time.process_time),
      'anchor': 'skimage cut_normalized',
      'anchor_ms': timing.best_ms(skimage_partition, repeats, clock=time.process_time),
      'note': f'k={k}; Ncut {_ncut(ours, W):.4f} vs skimage {_ncut(nodes, W):.4f}; first '
      f'call {first:.1f} s CPU; skimage time includes its RAG',
    }
  ]

  def ours_image():
    return jax.block_until_ready(nc.normalized_cut(image, num_segments=k, superpixels=superpixels))

  start = time.process_time()
  ours_image()
  first = time.process_time() - start
  rows.append(
    {
      'method': 'normalized_cut(superpixels=SLIC)',
      'size': size,
      'batch': 1,
      'jaxseg_ms': timing.best_ms(ours_image, repeats, clock=time.process_time),
      'anchor': 'skimage RAG + cut',
      'anchor_ms': timing.best_ms(skimage_partition, repeats, clock=time.process_time),
      'note': f'k={k}; different graphs (pixel affinity summed onto superpixels vs '
      f'mean-colour RAG); first call {first:.1f} s CPU',
    }
  )
  return rows


def _spectrum_row(image, repeats):
  import scipy.sparse as sp
  import scipy.sparse.linalg as sla

  grey = image.mean(-1).astype(np.float32) / 255.0
  height, width = grey.shape
  weights = np.asarray(nc._stencil_weights(grey[..., None], nc._half_offsets(5.0), 0.1, 4.0))
  src, dst, w = (np.asarray(a) for a in nc._stencil_edges(weights, nc._half_offsets(5.0)))
  n = height * width
  W = sp.coo_matrix((w, (src, dst)), shape=(n, n)).tocsr()
  W = (W + W.T).astype(np.float64)
  D = sp.diags(np.asarray(W.sum(1)).ravel())

  def scipy_eigs():
    return sla.eigsh(D - W, k=6, M=D, sigma=-1e-6, which='LM')[0]

  def ours():
    return jax.block_until_ready(nc.ncut_spectrum(grey, num_vectors=6))

  start = time.process_time()
  values = np.asarray(ours()[0])
  first = time.process_time() - start
  error = np.max(np.abs(values - scipy_eigs()))
  return {
    'method': 'ncut_spectrum (pixels, r=5, 6 vectors)',
    'size': f'{width}x{height}',
    'batch': 1,
    'jaxseg_ms': timing.best_ms(ours, repeats, clock=time.process_time),
    'anchor': 'scipy eigsh (shift-invert)',
    'anchor_ms': timing.best_ms(scipy_eigs, repeats, clock=time.process_time),
    'note': f'max eigenvalue diff {error:.1e}; first call {first:.1f} s CPU',
  }


def rows(quick):
  repeats = 2 if quick else 3
  image = _image(125, 84) if quick else _image(500, 334)
  out = _rag_rows(image, 100 if quick else 400, repeats)
  out.append(_spectrum_row(_image(48, 32) if quick else _image(160, 107), repeats))
  return out


if __name__ == '__main__':
  import classic

  classic.main(['--families=normalized_cut'] + sys.argv[1:])
