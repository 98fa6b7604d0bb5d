r"""Mean-field inference in the fully connected CRF (Krähenbühl & Koltun, NIPS 2011).

The energy of a labelling ``x`` of the pixels is

.. math::
  E(x) = \sum_i \psi_u(x_i) + \sum_{i<j} \mu(x_i, x_j) \big[
    w_p\, e^{-\frac{|p_i - p_j|^2}{2\theta_\gamma^2}}
    + w_b\, e^{-\frac{|p_i - p_j|^2}{2\theta_\alpha^2} - \frac{|I_i - I_j|^2}{2\theta_\beta^2}}
  \big]

and mean field updates the marginals ``Q`` (initialised to ``softmax(-unary)``) by

.. math::
  Q_i(l) \propto \exp\Big(-\psi_u(l) - \sum_{l'} \mu(l, l') \sum_m w_m
    \sum_j \bar k_m(i, j)\, Q_j(l')\Big).

As in Krähenbühl's densecrf (version 2, the code pydensecrf wraps, with its default
``NORMALIZE_SYMMETRIC``), each kernel enters *normalised*:
:math:`\bar k(i, j) = k(i, j) / \sqrt{d_i d_j}` with :math:`d_i = \sum_j k(i, j)`, and the sum
over ``j`` includes ``j = i`` (the lattice filter of the reference returns every point's own
value too; measured against pydensecrf on a 40x40 crop, excluding the self-term triples the
error). The Potts model (``compat=None``) is :math:`\mu(l, l') = [l \ne l']`, computed as the
reward :math:`+\sum_m w_m \bar k_m Q(l)` that differs from it by a per-pixel constant.

``dense_crf`` filters with a separable truncated Gaussian (the positional kernel) and a
permutohedral lattice (the bilateral kernel); ``dense_crf_exact`` sums the exact Gaussians over
all pairs of pixels (``O(N^2)``, blockwise), the readable reference.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.crf import permutohedral

__all__ = ['dense_crf', 'dense_crf_exact']

_TRUNCATE = 4.0  # the positional Gaussian is cut at 4 standard deviations (scipy's default)


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _check_std(value, name):
  if (
    isinstance(value, bool)
    or not isinstance(value, numbers.Real)
    or not math.isfinite(value)
    or value <= 0
  ):
    raise ValueError(f'{name} must be a positive finite number, got {value!r}.')
  return float(value)


def _check_weight(value, name):
  if isinstance(value, bool):
    raise TypeError(f'{name} must be a real number or a float scalar array, got {value!r}.')
  if isinstance(value, numbers.Real):
    if not math.isfinite(value):
      raise ValueError(f'{name} must be finite, got {value!r}.')
    return jnp.float32(value)
  if hasattr(value, 'shape') and value.shape == () and jnp.issubdtype(value.dtype, jnp.floating):
    if _is_concrete(value) and not np.isfinite(np.asarray(value)):
      raise ValueError(f'{name} must be finite, got {value!r}.')
    return jnp.asarray(value, jnp.float32)
  raise TypeError(f'{name} must be a real number or a float scalar array, got {value!r}.')


def _validate(
  unary, image, iterations, pos_w, pos_xy_std, bi_w, bi_xy_std, bi_rgb_std, compat, valid
):
  """Checks the arguments before anything is traced; returns them batched."""
  if not hasattr(unary, 'shape') or not hasattr(unary, 'dtype'):
    raise TypeError(
      f'unary must be an array (H, W, L) or (N, H, W, L), got {type(unary).__name__}.'
    )
  if len(unary.shape) not in (3, 4):
    raise ValueError(f'unary must have shape (H, W, L) or (N, H, W, L), got {unary.shape}.')
  if not jnp.issubdtype(unary.dtype, jnp.floating):
    raise TypeError(f'unary must be a float array, got dtype {unary.dtype}.')
  if min(unary.shape) < 1:
    raise ValueError(f'unary must be non-empty, got shape {unary.shape}.')
  if _is_concrete(unary) and not np.all(np.isfinite(np.asarray(unary))):
    raise ValueError(
      'unary must be finite (no NaN or inf); clip the probabilities, e.g. with '
      'unary_from_softmax(probs, clip=1e-5).'
    )
  batched = len(unary.shape) == 4
  if not hasattr(image, 'shape') or not hasattr(image, 'dtype'):
    raise TypeError(f'image must be an array, got {type(image).__name__}.')
  expected = unary.shape[:-1] + (3,)
  if tuple(image.shape) != expected:
    raise ValueError(
      f'image must have shape {expected} (the unary {unary.shape} with 3 colour '
      f'channels), got {tuple(image.shape)}.'
    )
  if image.dtype != jnp.uint8 and not jnp.issubdtype(image.dtype, jnp.floating):
    raise TypeError(f'image must be uint8 or float in [0, 255], got dtype {image.dtype}.')
  if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 0:
    raise ValueError(f'iterations must be a non-negative int, got {iterations!r}.')
  stds = (
    _check_std(pos_xy_std, 'pos_xy_std'),
    _check_std(bi_xy_std, 'bi_xy_std'),
    _check_std(bi_rgb_std, 'bi_rgb_std'),
  )
  weights = (_check_weight(pos_w, 'pos_w'), _check_weight(bi_w, 'bi_w'))
  num_labels = unary.shape[-1]
  if compat is not None:
    if not hasattr(compat, 'shape') or tuple(compat.shape) != (num_labels, num_labels):
      raise ValueError(
        f'compat must be None (Potts) or an ({num_labels}, {num_labels}) matrix, '
        f'got {getattr(compat, "shape", compat)!r}.'
      )
    compat = jnp.asarray(compat, jnp.float32)
  if valid is not None:
    if not hasattr(valid, 'shape') or tuple(valid.shape) != unary.shape[:-1]:
      raise ValueError(
        f'valid must be None or a bool array of shape {unary.shape[:-1]}, got '
        f'{getattr(valid, "shape", valid)!r}.'
      )
    if valid.dtype != jnp.bool_:
      raise TypeError(f'valid must be a bool array, got dtype {valid.dtype}.')
  else:
    valid = np.ones(unary.shape[:-1], bool)
  if not batched:
    unary, image, valid = unary[None], image[None], valid[None]
  return batched, unary, image, valid, int(iterations), stds, weights, compat


def _softmax(logits):
  # exp(x - logsumexp(x)): jax.nn.softmax's fused max/sum/divide became an XLA:CPU fusion that
  # absorbed the positional filter's taps and ran ~5x slower than the whole filter.
  return jnp.exp(logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True))


def _mean_field(unary, valid, filters, weights, compat, iterations):
  """The mean-field loop; ``filters`` apply the normalised kernels to (B, H, W, L) arrays."""
  unary = unary.astype(jnp.float32)
  mask = valid[..., None].astype(jnp.float32)
  q0 = _softmax(-unary)

  def step(_, q):
    # Barriers keep XLA from fusing the previous softmax (and the lattice slice) into every tap
    # of the positional filter, which recomputed them dozens of times per iteration.
    q = jax.lax.optimization_barrier(q * mask)
    message = sum(jax.lax.optimization_barrier(w * f(q)) for w, f in zip(weights, filters))
    if compat is None:
      return _softmax(message - unary)
    return _softmax(-unary - jnp.einsum('bhwk,lk->bhwl', message, compat))

  q = jax.lax.fori_loop(0, iterations, step, q0)
  # Pixels outside `valid` receive no messages: they keep softmax(-unary).
  return jnp.where(mask > 0, q, q0)


def _normalised(apply, mask):
  """x -> n * K(n * x), n = 1 / sqrt(K 1 + 1e-20) on valid pixels (densecrf's symmetric norm)."""
  # Barriers materialise the filter inputs: fused into the taps of a filter they were
  # recomputed per tap.
  norm = jax.lax.optimization_barrier(jnp.where(mask > 0, jax.lax.rsqrt(apply(mask) + 1e-20), 0.0))
  return lambda x: norm * apply(jax.lax.optimization_barrier(norm * x))


def _gaussian_1d(x, axis, std):
  """Zero-padded Gaussian blur along ``axis`` by symmetric shifted adds (no convolution op)."""
  size = x.shape[axis]
  radius = min(math.ceil(_TRUNCATE * std), size - 1)
  taps = np.exp(-0.5 * (np.arange(radius + 1) / std) ** 2).astype(np.float32)
  pad = [(0, 0)] * x.ndim
  pad[axis] = (radius, radius)
  # Materialised once: a pad fused into every tap became a bounds check per element and tap.
  xp = jax.lax.optimization_barrier(jnp.pad(x, pad))

  def shifted(t):
    return jax.lax.slice_in_dim(xp, radius + t, radius + t + size, axis=axis)

  out = taps[0] * x
  for t in range(1, radius + 1):
    out = out + taps[t] * (shifted(t) + shifted(-t))
  return out


@functools.partial(jax.jit, static_argnames=('iterations', 'pos_xy_std'))
def _lattice_mean_field(unary, valid, pos_w, bi_w, compat, lattice, *, iterations, pos_xy_std):
  b, h, w, _num_labels = unary.shape
  mask = valid[..., None].astype(jnp.float32)

  def positional(x):
    return _gaussian_1d(_gaussian_1d(x, 1, pos_xy_std), 2, pos_xy_std)

  def bilateral(x):
    flat = permutohedral.lattice_filter(x.reshape(b * h * w, x.shape[-1]), lattice)
    return flat.reshape(x.shape)

  filters = (_normalised(positional, mask), _normalised(bilateral, mask))
  return _mean_field(unary, valid, filters, (pos_w, bi_w), compat, iterations)


def dense_crf(
  unary,
  image,
  *,
  iterations: int = 10,
  pos_w=3.0,
  pos_xy_std: float = 3.0,
  bi_w=4.0,
  bi_xy_std: float = 121.0,
  bi_rgb_std: float = 5.0,
  compat=None,
  valid=None,
):
  r"""Mean-field marginals of DeepLab's fully connected CRF (permutohedral lattice).

  .. math::
    Q_i(l) \propto \exp\Big(-\psi_u(l) - \sum_{l'} \mu(l, l') \sum_{m \in \{p, b\}} w_m
      \sum_j \bar k_m(i, j)\, Q_j(l')\Big)

  Krähenbühl & Koltun (2011), with each kernel symmetrically normalised as in densecrf (see the
  module docstring). The positional kernel
  ``exp(-|p_i - p_j|^2 / (2 pos_xy_std^2))`` is a separable Gaussian truncated at 4 standard
  deviations (exact up to ~1e-4 of its mass); the bilateral kernel
  ``exp(-|p_i - p_j|^2 / (2 bi_xy_std^2) - |I_i - I_j|^2 / (2 bi_rgb_std^2))`` is filtered by
  the permutohedral lattice (Adams, Baek & Davis 2010), built once per image on the host
  (NumPy, or ``jax.pure_callback`` when ``image`` is traced). The iterations are one jitted
  function of fixed shapes; gradients flow to ``unary``, ``pos_w``, ``bi_w`` and ``compat``
  (the standard deviations shape the lattice and are static Python numbers).

  The keywords are DeepLab's densecrf options (defaults: its VOC LargeFOV values). In
  pydensecrf terms: ``addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)`` and
  ``addPairwiseBilateral(sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=image, compat=bi_w)``, both
  with ``DIAG_KERNEL`` and ``NORMALIZE_SYMMETRIC`` (the defaults), then ``inference(iterations)``.
  A ``compat`` matrix here is the energy :math:`\mu(l, l')` (``None`` is Potts, the same as
  ``1 - eye(L)``); pydensecrf's matrix ``compat`` is a reward, i.e. :math:`-\mu`.

  Args:
    unary: ``(H, W, L)`` or ``(N, H, W, L)`` float negative log-probabilities.
    image: ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB, uint8 or float in ``[0, 255]``.
    iterations: mean-field iterations.
    pos_w: weight of the positional (smoothness) kernel.
    pos_xy_std: its standard deviation in pixels.
    bi_w: weight of the bilateral (appearance) kernel.
    bi_xy_std: its positional standard deviation in pixels.
    bi_rgb_std: its colour standard deviation (0..255 units).
    compat: ``None`` (Potts) or an ``(L, L)`` label compatibility energy.
    valid: ``None`` or ``(H, W)`` / ``(N, H, W)`` bool: pixels outside (the padding of images of
      different sizes in one batch) take no part and keep ``softmax(-unary)``.

  Returns:
    ``Q``: float32 marginals of the shape of ``unary``, summing to 1 over the last axis.

  Example:
    >>> import numpy as np
    >>> image = np.zeros((8, 8, 3), np.uint8); image[:, 4:] = 255
    >>> unary = unary_from_labels(jnp.asarray(image[..., 0] // 255 + 1), 2, gt_prob=0.6)
    >>> q = dense_crf(unary, image, iterations=5)
    >>> map_labels(q)[0].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]

  Agrees with pydensecrf2 (``pydensecrf.densecrf.DenseCRF2D``) on at least 99.8% of the labels
  of its examples and of a 513x513 VOC image (tests/test_crf.py).
  """
  batched, unary, image, valid, iterations, stds, weights, compat = _validate(
    unary, image, iterations, pos_w, pos_xy_std, bi_w, bi_xy_std, bi_rgb_std, compat, valid
  )
  pos_xy_std, bi_xy_std, bi_rgb_std = stds
  if _is_concrete(image) and _is_concrete(valid):
    lattice = permutohedral.build_lattice(
      np.asarray(image), np.asarray(valid), xy_std=bi_xy_std, rgb_std=bi_rgb_std
    )
  else:
    lattice = permutohedral.build_lattice_traced(
      image, jnp.asarray(valid), xy_std=bi_xy_std, rgb_std=bi_rgb_std
    )
  q = _lattice_mean_field(
    jnp.asarray(unary),
    jnp.asarray(valid),
    weights[0],
    weights[1],
    compat,
    lattice,
    iterations=iterations,
    pos_xy_std=pos_xy_std,
  )
  return q if batched else q[0]


def _exact_kernel_apply(features, x, block):
  """sum_j exp(-|f_i - f_j|^2 / 2) x_j for all i, ``block`` rows at a time (B, N, d)."""
  b, n, _ = features.shape
  pad = -n % block
  rows = jnp.pad(features, ((0, 0), (0, pad), (0, 0))).reshape(b, -1, block, features.shape[-1])

  def one_block(fb):  # (B, block, d) -> (B, block, C)
    sq = sum((fb[:, :, None, k] - features[:, None, :, k]) ** 2 for k in range(fb.shape[-1]))
    return jnp.einsum('bij,bjc->bic', jnp.exp(-0.5 * sq), x, precision=jax.lax.Precision.HIGHEST)

  out = jax.lax.map(one_block, jnp.moveaxis(rows, 1, 0))  # (blocks, B, block, C)
  return jnp.moveaxis(out, 0, 1).reshape(b, n + pad, x.shape[-1])[:, :n]


@functools.partial(jax.jit, static_argnames=('iterations', 'stds'))
def _exact_mean_field(unary, image, valid, pos_w, bi_w, compat, *, iterations, stds):
  pos_xy_std, bi_xy_std, bi_rgb_std = stds
  b, h, w, _ = unary.shape
  y, x = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing='ij'
  )
  xy = jnp.broadcast_to(jnp.stack([x, y], -1).reshape(1, h * w, 2), (b, h * w, 2))
  rgb = image.astype(jnp.float32).reshape(b, h * w, 3)
  pos_features = xy / pos_xy_std
  bi_features = jnp.concatenate([xy / bi_xy_std, rgb / bi_rgb_std], -1)
  block = max(1, min(h * w, (1 << 22) // (h * w)))
  mask = valid[..., None].astype(jnp.float32)

  def kernel(features):
    def apply(v):
      flat = _exact_kernel_apply(features, v.reshape(b, h * w, v.shape[-1]), block)
      return flat.reshape(v.shape)

    return _normalised(apply, mask)

  filters = (kernel(pos_features), kernel(bi_features))
  return _mean_field(unary, valid, filters, (pos_w, bi_w), compat, iterations)


def dense_crf_exact(
  unary,
  image,
  *,
  iterations: int = 10,
  pos_w=3.0,
  pos_xy_std: float = 3.0,
  bi_w=4.0,
  bi_xy_std: float = 121.0,
  bi_rgb_std: float = 5.0,
  compat=None,
  valid=None,
):
  r"""``dense_crf`` with the pairwise sums computed exactly, over all pairs (the oracle).

  .. math::
    \sum_j \bar k(i, j) Q_j(l), \quad
    \bar k(i, j) = \frac{k(i, j)}{\sqrt{\sum_{j'} k(i, j') \sum_{j'} k(j, j')}}

  with both Gaussian kernels evaluated in float32 for every pair of valid pixels, ``block``
  rows of the ``N x N`` kernel at a time (so a 64x64 image needs 16 MiB, not 64 MiB; the cost
  is ``O(N^2)``). Same arguments, semantics and result as ``dense_crf``, which approximates it.

  Args:
    unary: ``(H, W, L)`` or ``(N, H, W, L)`` float negative log-probabilities.
    image: ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB, uint8 or float in ``[0, 255]``.
    iterations: mean-field iterations.
    pos_w: weight of the positional kernel.
    pos_xy_std: its standard deviation in pixels.
    bi_w: weight of the bilateral kernel.
    bi_xy_std: its positional standard deviation in pixels.
    bi_rgb_std: its colour standard deviation.
    compat: ``None`` (Potts) or an ``(L, L)`` compatibility energy.
    valid: ``None`` or a bool mask of the image's shape without channels.

  Returns:
    ``Q``: float32 marginals of the shape of ``unary``.

  Example:
    >>> import numpy as np
    >>> image = np.zeros((6, 6, 3), np.uint8); image[:, 3:] = 255
    >>> unary = unary_from_labels(jnp.asarray(image[..., 0] // 255 + 1), 2, gt_prob=0.6)
    >>> map_labels(dense_crf_exact(unary, image, iterations=5))[0].tolist()
    [0, 0, 0, 1, 1, 1]

  Agrees with a NumPy double loop over the pixels written from Krähenbühl & Koltun's update
  equations to 1e-5 (tests/test_crf.py).
  """
  batched, unary, image, valid, iterations, stds, weights, compat = _validate(
    unary, image, iterations, pos_w, pos_xy_std, bi_w, bi_xy_std, bi_rgb_std, compat, valid
  )
  q = _exact_mean_field(
    jnp.asarray(unary),
    jnp.asarray(image),
    jnp.asarray(valid),
    weights[0],
    weights[1],
    compat,
    iterations=iterations,
    stds=stds,
  )
  return q if batched else q[0]
