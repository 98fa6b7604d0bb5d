"""jaxseg.classic.alpha_expansion against gco-wrapper's alpha-expansion (the GCO library).

gco-wrapper rebinds numpy.int/float/bool when imported, so it runs in a subprocess here and
never enters the test process. Energies are integers (gco's native type), so both sides are
exact and compared on the definition's energy: ours must be within 0.1% of gco's (both are local
minima of the same move space, reached from different starts) and within the Potts factor 2 of
the rows + columns dual-decomposition lower bound.
"""

import os
import subprocess
import sys
import tempfile

import mrf_reference as ref
import numpy as np
import pytest
import reference_data

from jaxseg.classic.alpha_expansion import alpha_expansion

_GCO_SCRIPT = """
import sys, time
import numpy as np
import gco
data = np.load(sys.argv[1])
unary, pairwise = data['unary'], data['pairwise']
h, w, num_labels = unary.shape
start = time.perf_counter()
labels = gco.cut_grid_graph(unary, pairwise, data['cost_v'], data['cost_h'], None, None,
                            n_iter=-1, algorithm='expansion')
np.save(sys.argv[2], np.asarray(labels).reshape(h, w).astype(np.int32))
print(1e3 * (time.perf_counter() - start))
"""


def gco_expansion(unary, weight, pairwise_matrix):
  """gco's alpha-expansion to convergence on a 4-connected grid with a uniform edge weight.

  Returns (labels, milliseconds inside gco, construction included).
  """
  pytest.importorskip('gco')
  h, w, _ = unary.shape
  with tempfile.TemporaryDirectory() as folder:
    inputs, output = os.path.join(folder, 'in.npz'), os.path.join(folder, 'out.npy')
    np.savez(
      inputs,
      unary=unary.astype(np.int32),
      pairwise=pairwise_matrix.astype(np.int32),
      cost_v=np.full((h - 1, w), weight, np.int32),
      cost_h=np.full((h, w - 1), weight, np.int32),
    )
    done = subprocess.run(
      [sys.executable, '-c', _GCO_SCRIPT, inputs, output],
      check=True,
      capture_output=True,
      text=True,
    )
    return np.load(output), float(done.stdout.strip().splitlines()[-1])


def potts_matrix(num_labels):
  return 1 - np.eye(num_labels, dtype=np.int32)


def random_unary(rng, size, num_labels):
  return rng.integers(0, 100, (size, size, num_labels)).astype(np.int32)


def colour_unary(size, num_labels):
  """-log of isotropic colour Gaussians (sigma 0.1) around num_labels colours of a real image,
  scaled by 10 and capped at 100, as int32."""
  cv2 = pytest.importorskip('cv2')
  root = reference_data.root_or_none()
  if root is not None:
    image = cv2.imread(os.path.join(root, 'voc-samples', '23_image.png'))[..., ::-1]
  else:
    image = pytest.importorskip('skimage.data').astronaut()
  image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) / 255.0
  pixels = image.reshape(-1, 3)
  order = np.argsort(pixels @ np.array([0.299, 0.587, 0.114]))
  centres = pixels[order[np.linspace(0, len(order) - 1, num_labels).astype(int)]]
  squared = ((image[:, :, None, :] - centres[None, None]) ** 2).sum(-1)
  return np.round(np.minimum(squared / (2 * 0.1**2), 10.0) * 10).astype(np.int32)


def _compare(unary, weight):
  num_labels = unary.shape[-1]
  reference_labels, _ = gco_expansion(unary, weight, potts_matrix(num_labels))
  labels, energy = alpha_expansion(unary, weight)
  reference_energy = ref.energy(reference_labels, unary, weight)
  assert int(energy) == ref.energy(labels, unary, weight)
  assert int(energy) <= 1.001 * reference_energy
  return int(energy), reference_energy


def test_small_random_potts_within_0_1_percent_of_gco():
  _compare(random_unary(np.random.default_rng(0), 48, 6), 40)


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['random', 'colour'])
def test_256x256_21_label_potts_matches_gco_and_a_lower_bound(kind):
  unary = (
    random_unary(np.random.default_rng(1), 256, 21) if kind == 'random' else colour_unary(256, 21)
  )
  weight = 40 if kind == 'random' else 20
  energy, _ = _compare(unary, weight)
  bound = ref.lower_bound(unary, weight, upper=energy, steps=30)
  assert bound <= energy <= 2 * bound
