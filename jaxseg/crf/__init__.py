"""DeepLab's fully connected CRF (Krähenbühl & Koltun 2011): mean field, permutohedral lattice.

* ``mean_field``: ``dense_crf`` (lattice) and ``dense_crf_exact`` (all pairs, the oracle).
* ``permutohedral``: the lattice build (host, NumPy) and its splat/blur/slice filter (JAX).
* ``unary``: unaries from softmax outputs or label maps, and the labels of the marginals.
"""

from jaxseg.crf.mean_field import dense_crf, dense_crf_exact
from jaxseg.crf.unary import map_labels, unary_from_labels, unary_from_softmax

__all__ = ['dense_crf', 'dense_crf_exact', 'map_labels', 'unary_from_labels', 'unary_from_softmax']
