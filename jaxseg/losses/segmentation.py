"""Per-pixel losses for semantic segmentation.

Every pixel is a classification problem. Pixels whose label is the ignore label (255 unless the
dataset says otherwise: VOC's object boundaries, Cityscapes' void) contribute nothing to the loss
or its gradient.

Layout: logits ``(N, H, W, C)`` (NHWC), labels ``(N, H, W)`` integer class indices.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.ops import _validation as v


def _check_logits_and_labels(logits: Any, labels: Any, name: str = 'logits') -> None:
  logits_shape = getattr(logits, 'shape', None)
  labels_shape = getattr(labels, 'shape', None)
  if logits_shape is None or len(logits_shape) != 4:
    raise ValueError(f'{name} must have shape (N, H, W, C) (NHWC), got {logits_shape}.')
  if labels_shape is None or len(labels_shape) != 3:
    raise ValueError(f'labels must have shape (N, H, W), got {labels_shape}.')
  if tuple(logits_shape[:3]) != tuple(labels_shape):
    raise ValueError(
      f'{name} (N, H, W) = {tuple(logits_shape[:3])} must match labels shape {tuple(labels_shape)}.'
    )
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f'labels must be an integer array, got dtype {labels.dtype}.')


def _check_class_weights(class_weights: Any, num_classes: int):
  if class_weights is None:
    return None
  weights = jnp.asarray(class_weights, jnp.float32)
  if weights.shape != (num_classes,):
    raise ValueError(
      f'class_weights must have shape ({num_classes},) (one weight per class), got {weights.shape}.'
    )
  v.check_finite(weights, 'class_weights')
  # A negative weight rewards the loss for being wrong on that class.
  v.check_range(weights, 'class_weights', low=0.0)
  return weights


def pixelwise_cross_entropy(
  logits: jax.Array, labels: jax.Array, *, ignore_label: int = 255
) -> tuple[jax.Array, jax.Array]:
  r"""Per-pixel softmax cross-entropy and the mask of pixels that count.

  .. math::
    \ell_{n,i,j} = -\log \operatorname{softmax}(z_{n,i,j})_{y_{n,i,j}}
    \quad\text{where } y_{n,i,j} \ne \text{ignore\_label}, \text{ else } 0.

  The log-softmax is computed in float32 whatever the logits' dtype. A label outside
  ``[0, C)`` that is not the ignore label raises ``ValueError`` when the labels are concrete
  and makes that pixel's loss NaN under ``jit`` (so the training loop's NaN guard stops).

  Args:
    logits: ``(N, H, W, C)`` unnormalised scores.
    labels: ``(N, H, W)`` integer class indices in ``[0, C)`` or ``ignore_label``.
    ignore_label: label of pixels that contribute nothing.

  Returns:
    ``(loss, valid)``: ``(N, H, W)`` float32 losses (0 at ignored pixels) and the ``(N, H, W)``
    boolean mask of pixels that are not ignored.

  Example:
    >>> logits = jnp.zeros((1, 2, 2, 4))
    >>> loss, valid = pixelwise_cross_entropy(logits, jnp.array([[[0, 1], [255, 3]]]))
    >>> np.round(np.asarray(loss, np.float64), 4).tolist(), valid.tolist()   # log 4 = 1.3863
    ([[[1.3863, 1.3863], [0.0, 1.3863]]], [[[True, True], [False, True]]])
  """
  _check_logits_and_labels(logits, labels)
  ignore_label = v.check_ignore_label(ignore_label)
  num_classes = logits.shape[-1]
  v.check_label_range(labels, num_classes, ignore_label=ignore_label)
  valid = labels != ignore_label
  in_range = (labels >= 0) & (labels < num_classes)
  safe_labels = jnp.where(valid & in_range, labels, 0)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
  # A wrong label under jit is loud (NaN), never silently clipped to a valid class.
  nll = jnp.where(valid & ~in_range, jnp.nan, nll)
  return jnp.where(valid, nll, 0.0), valid


def segmentation_cross_entropy(
  logits: jax.Array,
  labels: jax.Array,
  *,
  ignore_label: int = 255,
  class_weights: Any = None,
  normalize: bool = True,
) -> jax.Array:
  r"""Softmax cross-entropy averaged over the pixels that are not ignored.

  With class weights :math:`w` and valid pixels :math:`V`:

  .. math::
    L = \frac{\sum_{p \in V} w_{y_p}\, \ell_p}{\sum_{p \in V} w_{y_p}}
    \quad (\text{normalize=True}), \qquad
    L = \frac{1}{N} \sum_{p \in V} w_{y_p}\, \ell_p \quad (\text{normalize=False}),

  where :math:`\ell_p = -\log \operatorname{softmax}(z_p)_{y_p}`. ``normalize=True`` is
  PyTorch's ``F.cross_entropy(logits, labels, weight=w, ignore_index=ignore_label)``.
  ``normalize=False`` is Caffe's ``SoftmaxWithLoss`` with ``normalize: false`` (the FCN recipe):
  the sum over pixels divided by the batch size ``N`` only, so with FCN's batch of 1 it is the
  plain sum, and its gradient is about ``H * W`` times larger (hence FCN's learning rate 1e-10).
  A batch with no valid pixel gives 0 (normalised or not), not NaN.

  Args:
    logits: ``(N, H, W, C)`` unnormalised scores (NHWC).
    labels: ``(N, H, W)`` integer labels in ``[0, C)`` or ``ignore_label``.
    ignore_label: label of pixels that contribute nothing (255 by default).
    class_weights: optional ``(C,)`` per-class weights ``w``, finite and non-negative.
    normalize: divide by the (weighted) number of valid pixels, else by ``N``.

  Returns:
    A float32 scalar.

  Example:
    >>> logits = jnp.array([[[[2.0, 0.0]], [[0.0, 2.0]]]])   # (1, 2, 1, 2)
    >>> labels = jnp.array([[[0], [255]]])
    >>> round(float(segmentation_cross_entropy(logits, labels)), 5)   # -log softmax([2, 0])[0]
    0.12693
  """
  loss, valid = pixelwise_cross_entropy(logits, labels, ignore_label=ignore_label)
  if logits.shape[0] == 0:
    raise ValueError('logits is an empty batch (N = 0): there is no loss to average.')
  weights = _check_class_weights(class_weights, logits.shape[-1])
  if weights is None:
    pixel_weights = valid.astype(jnp.float32)
  else:
    safe_labels = jnp.where(valid, labels, 0)
    pixel_weights = jnp.where(valid, weights[jnp.clip(safe_labels, 0, weights.shape[0] - 1)], 0.0)
  total = jnp.sum(loss * pixel_weights)
  if normalize:
    denominator = jnp.sum(pixel_weights)
  else:
    denominator = jnp.asarray(logits.shape[0], jnp.float32)
  return jnp.where(denominator > 0, total / jnp.maximum(denominator, 1e-12), 0.0)


def resize_logits(logits: jax.Array, shape: tuple[int, int]) -> jax.Array:
  r"""Bilinearly resizes ``(N, h, w, C)`` logits to ``(N, H, W, C)`` (half-pixel centres).

  :func:`jaxseg.ops.resize`: output row :math:`i` reads the input at
  :math:`(i + \tfrac12) h / H - \tfrac12` (clamped), as PyTorch's
  ``F.interpolate(mode='bilinear', align_corners=False)``. Used for auxiliary heads that predict
  below the label resolution.

  Args:
    logits: ``(N, h, w, C)`` float logits (NHWC).
    shape: the label size ``(H, W)``.

  Returns:
    ``(N, H, W, C)`` logits (``logits`` itself at equal sizes).

  Example:
    >>> resize_logits(jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1), (1, 4))[0, 0, :, 0].tolist()
    [0.0, 0.25, 0.75, 1.0]
  """
  if tuple(logits.shape[1:3]) == tuple(shape):
    return logits
  return ops.resize(logits, shape)


def segmentation_loss(
  logits: jax.Array,
  labels: jax.Array,
  *,
  aux_logits: Any = None,
  aux_weight: float = 0.4,
  ignore_label: int = 255,
  class_weights: Any = None,
  normalize: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  r"""Main cross-entropy plus a weighted auxiliary-head cross-entropy.

  .. math:: L = L_{CE}(z, y) + \lambda\, L_{CE}(\operatorname{up}(z_{aux}), y)

  where ``up`` bilinearly resizes the auxiliary logits to the label size (PSPNet-style deep
  supervision). Both terms use :func:`segmentation_cross_entropy` with the same options.

  Args:
    logits: ``(N, H, W, C)`` main logits at the label size.
    labels: ``(N, H, W)`` integer labels.
    aux_logits: optional ``(N, h, w, C)`` auxiliary logits at any resolution.
    aux_weight: :math:`\lambda`, the weight of the auxiliary term.
    ignore_label: label of ignored pixels.
    class_weights: optional ``(C,)`` per-class weights.
    normalize: see :func:`segmentation_cross_entropy`.

  Returns:
    ``(total, parts)`` where parts holds ``'ce'`` and, with ``aux_logits``, ``'aux_ce'``.

  Example:
    >>> total, parts = segmentation_loss(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4), int),
    ...                                  aux_logits=jnp.zeros((1, 2, 2, 3)), aux_weight=0.5)
    >>> round(float(total), 4)    # 1.5 * log(3)
    1.6479
  """
  v.check_number(aux_weight, 'aux_weight', low=0.0)
  options = dict(ignore_label=ignore_label, class_weights=class_weights, normalize=normalize)
  main = segmentation_cross_entropy(logits, labels, **options)
  parts = {'ce': main}
  total = main
  if aux_logits is not None:
    if getattr(aux_logits, 'ndim', None) != 4 or aux_logits.shape[-1] != logits.shape[-1]:
      raise ValueError(
        f'aux_logits must have shape (N, h, w, {logits.shape[-1]}), '
        f'got {getattr(aux_logits, "shape", None)}.'
      )
    aux = segmentation_cross_entropy(
      resize_logits(aux_logits, labels.shape[1:3]), labels, **options
    )
    parts['aux_ce'] = aux
    total = total + aux_weight * aux
  return total, parts
