"""Unary potentials for the dense CRF, and the labels of its marginals.

The helpers pydensecrf's users know (``pydensecrf.utils.unary_from_softmax`` and
``unary_from_labels``), but channels-last: a unary is ``(..., H, W, L)``, the negative
log-probability of each of ``L`` labels at each pixel.
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np

__all__ = ['map_labels', 'unary_from_labels', 'unary_from_softmax']


def _check_array(x, name: str, min_rank: int, layout: str):
  if not hasattr(x, 'shape') or not hasattr(x, 'dtype'):
    raise TypeError(f'{name} must be an array with layout {layout}, got {type(x).__name__}.')
  if len(x.shape) < min_rank:
    raise ValueError(f'{name} must have layout {layout}, got shape {tuple(x.shape)}.')


def unary_from_softmax(probs, *, clip: float | None = 1e-5):
  r"""The negative log-probability of softmax outputs, the dense CRF's unary.

  .. math:: \psi_u(x_i = l) = -\log \max(p_i(l), c)

  Args:
    probs: ``(..., H, W, L)`` float probabilities (a softmax over the last axis).
    clip: the smallest probability ``c`` kept (``log 0`` is infinite); ``None`` keeps all.

  Returns:
    ``(..., H, W, L)`` float32 unary energies.

  Example:
    >>> import numpy as np
    >>> p = jnp.array([[[0.5, 0.5], [1.0, 0.0]]])
    >>> print(np.round(np.asarray(unary_from_softmax(p), np.float64), 3).tolist())
    [[[0.693, 0.693], [-0.0, 11.513]]]

  Agrees with ``pydensecrf.utils.unary_from_softmax(probs_chw, clip=clip)`` transposed to
  channels-last (pydensecrf's ``scale`` option is not offered).
  """
  _check_array(probs, 'probs', 3, '(..., H, W, L)')
  if not jnp.issubdtype(probs.dtype, jnp.floating):
    raise TypeError(f'probs must be a float array, got dtype {probs.dtype}.')
  if clip is not None and not (isinstance(clip, numbers.Real) and 0.0 < clip < 1.0):
    raise ValueError(f'clip must be None or in (0, 1), got {clip!r}.')
  probs = jnp.asarray(probs, jnp.float32)
  if clip is not None:
    probs = jnp.clip(probs, clip, 1.0)
  return -jnp.log(probs)


def unary_from_labels(labels, num_labels: int, *, gt_prob: float, zero_unsure: bool = True):
  r"""A unary from a label map that is ``gt_prob`` certain of each label.

  .. math::
    \psi_u(x_i = l) = \begin{cases} -\log g & l = y_i \\
    -\log \frac{1 - g}{L - 1} & l \ne y_i \\ -\log \frac{1}{L} & y_i \text{ unknown}\end{cases}

  With ``zero_unsure`` (pydensecrf's convention, used by its examples), label 0 means
  "unknown" and labels ``1..L`` are the classes ``0..L-1``; otherwise labels ``0..L-1`` are the
  classes and none is unknown.

  Args:
    labels: ``(..., H, W)`` integer label map.
    num_labels: ``L``, the number of classes (not counting the unknown 0).
    gt_prob: ``g`` in ``(0, 1)``, the probability given to the annotated label.
    zero_unsure: whether 0 means unknown.

  Returns:
    ``(..., H, W, L)`` float32 unary energies.

  Example:
    >>> import numpy as np
    >>> u = unary_from_labels(jnp.array([[0, 1, 2]]), 2, gt_prob=0.7)
    >>> print(np.round(np.exp(-np.asarray(u, np.float64)), 2).tolist())
    [[[0.5, 0.5], [0.7, 0.3], [0.3, 0.7]]]

  Agrees with ``pydensecrf.utils.unary_from_labels(labels, num_labels, gt_prob, zero_unsure)``
  transposed to channels-last.
  """
  _check_array(labels, 'labels', 2, '(..., H, W)')
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f'labels must be an integer array, got dtype {labels.dtype}.')
  if not isinstance(num_labels, numbers.Integral) or isinstance(num_labels, bool) or num_labels < 2:
    raise ValueError(f'num_labels must be an int >= 2, got {num_labels!r}.')
  if not (isinstance(gt_prob, numbers.Real) and 0.0 < gt_prob < 1.0):
    raise ValueError(f'gt_prob must be in (0, 1), got {gt_prob!r}.')
  labels = jnp.asarray(labels, jnp.int32)
  classes = labels - 1 if zero_unsure else labels
  n_energy = -np.log((1.0 - gt_prob) / (num_labels - 1))
  p_energy = -np.log(gt_prob)
  onehot = classes[..., None] == jnp.arange(num_labels, dtype=jnp.int32)
  unary = jnp.where(onehot, np.float32(p_energy), np.float32(n_energy))
  if zero_unsure:
    unary = jnp.where((labels == 0)[..., None], np.float32(np.log(num_labels)), unary)
  return unary.astype(jnp.float32)


def map_labels(q):
  r"""The most probable label at each pixel of the marginals ``Q``.

  .. math:: x_i^\ast = \arg\max_l Q_i(l)

  Args:
    q: ``(..., H, W, L)`` marginals (or any scores).

  Returns:
    ``(..., H, W)`` int32 labels (the first maximum on ties, as ``numpy.argmax``).

  Example:
    >>> map_labels(jnp.array([[[0.2, 0.8], [0.6, 0.4]]])).tolist()
    [[1, 0]]

  Agrees with ``numpy.argmax(Q, axis=0)`` of pydensecrf's ``(L, H*W)`` result, reshaped.
  """
  _check_array(q, 'q', 3, '(..., H, W, L)')
  return jnp.argmax(q, axis=-1).astype(jnp.int32)
