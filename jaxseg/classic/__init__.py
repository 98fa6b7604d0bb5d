"""Classic image segmentation, the methods a lecture teaches before the deep ones.

One module per family, each pure and ``jit``-compatible with fixed shapes, importing only
``jaxseg.ops``:

* ``thresholding``: Otsu and multi-Otsu thresholds (exact, by dynamic programming).
* ``clustering``: k-means with k-means++ seeding, and colour/position clustering of an image.
* ``region``: seeded region growing and Felzenszwalb-Huttenlocher bottom-up merging.
* ``level_sets``: Chan-Vese and morphological Chan-Vese active contours.
* ``graph_cut``: the exact s-t minimum cut of a grid graph; Boykov-Jolly binary segmentation.
* ``alpha_expansion``: multi-label Potts / truncated-linear MRFs by alpha-expansion moves.
* ``mrf``: MRF energies and MAP inference (ICM, mean field, TRW-S).
* ``normalized_cut``: Shi-Malik normalized cuts.
* ``grabcut``: GrabCut (Rother, Kolmogorov & Blake 2004).
"""

from jaxseg.classic.alpha_expansion import alpha_expansion
from jaxseg.classic.clustering import kmeans, kmeans_plusplus, kmeans_segment
from jaxseg.classic.color import rgb_to_gray, rgb_to_lab
from jaxseg.classic.grabcut import grabcut
from jaxseg.classic.graph_cut import binary_graph_cut, grid_min_cut
from jaxseg.classic.level_sets import chan_vese, morphological_chan_vese
from jaxseg.classic.mrf import mrf_energy, mrf_map, trws
from jaxseg.classic.normalized_cut import (
  ncut_spectrum,
  ncut_value,
  normalized_cut,
  partition_graph,
  pixel_affinity,
)
from jaxseg.classic.region import hierarchical_merge, region_grow
from jaxseg.classic.thresholding import (
  apply_thresholds,
  threshold_multiotsu,
  threshold_otsu,
)

__all__ = [
  'alpha_expansion',
  'apply_thresholds',
  'binary_graph_cut',
  'chan_vese',
  'grabcut',
  'grid_min_cut',
  'hierarchical_merge',
  'kmeans',
  'kmeans_plusplus',
  'kmeans_segment',
  'morphological_chan_vese',
  'mrf_energy',
  'mrf_map',
  'ncut_spectrum',
  'ncut_value',
  'normalized_cut',
  'partition_graph',
  'pixel_affinity',
  'region_grow',
  'rgb_to_gray',
  'rgb_to_lab',
  'threshold_multiotsu',
  'threshold_otsu',
  'trws',
]
