"""Level-set active contours: Chan-Vese and its morphological approximation.

Both evolve a level set whose positive part is the segmented region, so that the region's mean
and the background's mean explain the grey values best, with a penalty on the contour's length.
``chan_vese`` integrates the PDE in scikit-image's semi-implicit discretisation (Getreuer's
IPOL scheme); ``morphological_chan_vese`` replaces the PDE by binary morphology (Marquez-Neila,
Baumela & Alvarez). Both keep fixed shapes, so they run under ``jit`` and ``vmap``, and take a
leading batch axis.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_INITS = ('checkerboard', 'disk', 'small disk')


def _float_image(image: Any, name: str = 'image') -> jax.Array:
  """Checks a grey `(H, W)` or `(N, H, W)` image; returns it as a floating JAX array."""
  if isinstance(image, (list, tuple)):
    image = np.asarray(image)
  if not hasattr(image, 'shape') or not hasattr(image, 'dtype'):
    raise TypeError(f'{name} must be an array, got {type(image).__name__}.')
  if image.ndim not in (2, 3):
    raise ValueError(
      f'{name} must be a grey image (H, W) or a batch (N, H, W), got shape '
      f'{tuple(image.shape)}; convert colour images to grey first '
      '(jaxseg.classic.rgb_to_gray).'
    )
  if min(image.shape[-2:]) < 2 or image.shape[0] < 1:
    raise ValueError(
      f'{name} must be at least 2x2 (and a non-empty batch), got shape {tuple(image.shape)}.'
    )
  dtype = np.dtype(image.dtype)
  if dtype == np.bool_ or not (np.issubdtype(dtype, np.number)):
    raise TypeError(f'{name} must be numeric, got dtype {dtype}.')
  if np.issubdtype(dtype, np.complexfloating):
    raise TypeError(f'{name} must be real, got dtype {dtype}.')
  # Floats keep their precision (float64 under x64); integers and float16 compute in float32.
  ftype = jax.dtypes.canonicalize_dtype(jnp.float64) if dtype == np.float64 else jnp.float32
  # A NumPy image is checked in NumPy: no device dispatch and wait (per-call overhead).
  if isinstance(image, np.ndarray):
    finite = not np.issubdtype(dtype, np.floating) or bool(np.isfinite(image).all())
    image = jnp.asarray(image).astype(ftype)
  else:
    image = jnp.asarray(image).astype(ftype)
    finite = isinstance(image, jax.core.Tracer) or bool(jnp.isfinite(image).all())
  if not finite:
    raise ValueError(f'{name} contains NaN or infinite values.')
  return image


def _check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise TypeError(f'{name} must be a real number, got {value!r}.')
  if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
    expected = 'finite and >= 0' if allow_zero else 'finite and > 0'
    raise ValueError(f'{name} must be {expected}, got {value!r}.')
  return float(value)


def _check_count(value: Any, name: str, *, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f'{name} must be an int, got {value!r}.')
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value!r}.')
  return int(value)


def _initial_level_set(
  init: Any, shape: tuple[int, ...], dtype: Any, *, morphological: bool
) -> jax.Array:
  """The starting level set, `(H, W)` (broadcast over a batch) or the given array's shape."""
  hw = shape[-2:]
  if isinstance(init, str):
    allowed = ('checkerboard', 'disk') if morphological else _INITS
    if init not in allowed:
      raise ValueError(f'init must be one of {allowed} or an array, got {init!r}.')
    rows = jnp.arange(hw[0], dtype=dtype)[:, None]
    cols = jnp.arange(hw[1], dtype=dtype)[None, :]
    if morphological:
      if init == 'checkerboard':  # skimage's checkerboard_level_set: 5x5 squares, 0/1
        ri = jnp.arange(hw[0])[:, None] // 5
        ci = jnp.arange(hw[1])[None, :] // 5
        return ((ri & 1) ^ (ci & 1)).astype(jnp.int32)
      # skimage's disk_level_set: centre (H // 2, W // 2), radius 3/8 of the smaller side.
      radius = min(hw) * 3.0 / 8.0
      dist = jnp.sqrt((rows - hw[0] // 2) ** 2 + (cols - hw[1] // 2) ** 2)
      return (radius - dist > 0).astype(jnp.int32)
    if init == 'checkerboard':  # sin(pi y / 5) sin(pi x / 5), as skimage's _cv_checkerboard
      scale = math.pi / 5
      return jnp.sin(rows * scale) * jnp.sin(cols * scale)
    # skimage's _cv_large_disk / _cv_small_disk: the distance to the centre pixel, rescaled.
    cy, cx = int((hw[0] - 1) / 2), int((hw[1] - 1) / 2)
    dist = jnp.sqrt((rows - cy) ** 2 + (cols - cx) ** 2)
    radius = float(min(cx, cy))
    if init == 'disk':
      return (radius - dist) / radius
    return (radius / 2.0 - dist) / (radius / 2.0 * 3)
  if isinstance(init, (list, tuple)):
    init = np.asarray(init)
  if not hasattr(init, 'shape'):
    raise TypeError(f'init must be a string or an array, got {type(init).__name__}.')
  if tuple(init.shape) not in (tuple(hw), tuple(shape)):
    raise ValueError(
      f'init must have the image shape {tuple(hw)} (or the batch shape '
      f'{tuple(shape)}), got {tuple(init.shape)}.'
    )
  init = jnp.asarray(init)
  if morphological:
    return (init > 0).astype(jnp.int32)
  init = init.astype(dtype)
  if not isinstance(init, jax.core.Tracer) and not bool(jnp.isfinite(init).all()):
    raise ValueError('init contains NaN or infinite values.')
  return init


# ----------------------------------------------------------------------------------------------
# Chan-Vese


def _arctan(x):
  """arctan; in float32 by Cephes' atanf (range reduction and a degree-9 odd polynomial, relative
  error < 3e-7), which XLA vectorises: its own arctan runs scalar on the CPU, 5x a whole step."""
  if x.dtype != jnp.float32:
    return jnp.arctan(x)
  a = jnp.abs(x)
  big = a > 2.414213562373095  # tan(3 pi / 8)
  mid = (a > 0.4142135623730950) & ~big  # tan(pi / 8)
  offset = jnp.where(big, math.pi / 2, jnp.where(mid, math.pi / 4, 0.0)).astype(x.dtype)
  t = jnp.where(big, -1.0 / jnp.where(big, a, 1.0), jnp.where(mid, (a - 1.0) / (a + 1.0), a))
  z = t * t
  poly = ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
  poly = (poly - 3.33329491539e-1) * z * t + t
  return jnp.sign(x) * (offset + poly)


def _heaviside(x):
  return 0.5 * (1.0 + (2.0 / math.pi) * _arctan(x))


def _delta(x):
  return 1.0 / (1.0 + x * x)


def _sum_hw(x):
  return jnp.sum(x, axis=(-2, -1), keepdims=True)


def _means(image, weight):
  """Weighted means inside and outside per image; a region that is empty keeps its (zero) sum.

  Two reductions, not four: the outside sums are the image's totals minus the inside ones."""
  inside = _sum_hw(weight)
  outside = image.shape[-1] * image.shape[-2] - inside
  c1 = _sum_hw(image * weight)
  c2 = _sum_hw(image) - c1
  c1 = jnp.where(inside != 0, c1 / jnp.where(inside != 0, inside, 1.0), c1)
  c2 = jnp.where(outside != 0, c2 / jnp.where(outside != 0, outside, 1.0), c2)
  return c1, c2


def _pad_edge(x):
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1)), mode='edge')


def _cv_energy(image, phi, mu, lambda1, lambda2):
  """skimage's _cv_energy per image (N,): region fit with the smoothed Heaviside, plus length.

  The weights multiply the three sums, not every pixel: per pixel, XLA:CPU's reduction fusions
  (which take only array operands) made it write the broadcast weights, shared with the step,
  as full arrays every step (13-20% of a step at 512x512)."""
  h = _heaviside(phi)
  c1, c2 = _means(image, h)
  p = _pad_edge(phi)
  fy = (p[:, 2:, 1:-1] - p[:, :-2, 1:-1]) / 2.0
  fx = (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) / 2.0
  inside = jnp.sum((image - c1) ** 2 * h, axis=(-2, -1))
  outside = jnp.sum((image - c2) ** 2 * (1.0 - h), axis=(-2, -1))
  length = jnp.sum(_delta(phi) * jnp.sqrt(fx**2 + fy**2), axis=(-2, -1))
  return lambda1 * inside + lambda2 * outside + mu * length


def _cv_step(image, phi, mu, lambda1, lambda2, dt):
  """One semi-implicit step, Getreuer (2012) eq. (22) with Jacobi updates, as skimage."""
  eta = 1e-16
  p = _pad_edge(phi)
  centre = p[:, 1:-1, 1:-1]
  right, left, down, up = p[:, 1:-1, 2:], p[:, 1:-1, :-2], p[:, 2:, 1:-1], p[:, :-2, 1:-1]
  phixp, phixn, phix0 = right - centre, centre - left, (right - left) / 2.0
  phiyp, phiyn, phiy0 = down - centre, centre - up, (down - up) / 2.0
  c1 = lax.rsqrt(eta + phixp**2 + phiy0**2)
  c2 = lax.rsqrt(eta + phixn**2 + phiy0**2)
  c3 = lax.rsqrt(eta + phix0**2 + phiyp**2)
  c4 = lax.rsqrt(eta + phix0**2 + phiyn**2)
  curvature = right * c1 + left * c2 + down * c3 + up * c4
  mean_in, mean_out = _means(image, (phi > 0).astype(image.dtype))
  fit = -lambda1 * (image - mean_in) ** 2 + lambda2 * (image - mean_out) ** 2
  delta_dt = dt * _delta(phi)
  new_phi = phi + delta_dt * (mu * curvature + fit)
  return new_phi / (1.0 + mu * delta_dt * (c1 + c2 + c3 + c4))


def _chan_vese(image, phi, mu, lambda1, lambda2, tol, dt, *, max_iterations):
  """One image as a batch of one, (1, H, W): batches go through lax.map (see below), so the
  loop needs no per-image freezing and stops as scikit-image's does."""
  image = image - jnp.min(image, axis=(-2, -1), keepdims=True)
  top = jnp.max(image, axis=(-2, -1), keepdims=True)
  image = jnp.where(top != 0, image / jnp.where(top != 0, top, 1.0), image)
  dtype = image.dtype
  mu, lambda1, lambda2, tol, dt = (jnp.asarray(x, dtype) for x in (mu, lambda1, lambda2, tol, dt))

  def cond(state):
    i, _, phivar, _ = state
    return (phivar > tol) & (i < max_iterations)

  def body(state):
    i, phi, _, energies = state
    # skimage records the energy before each step; computed beside the step, the two share
    # their differences of phi in one fused pass.
    energy = _cv_energy(image, phi, mu, lambda1, lambda2)
    new_phi = _cv_step(image, phi, mu, lambda1, lambda2, dt)
    phivar = jnp.sqrt(jnp.mean((new_phi - phi) ** 2))
    energies = lax.dynamic_update_slice(energies, energy[:, None], (jnp.zeros_like(i), i))
    return i + 1, new_phi, phivar, energies

  energies = jnp.full((1, max_iterations), jnp.nan, dtype)
  _, phi, _, energies = lax.while_loop(cond, body, (jnp.int32(0), phi, tol + 1, energies))
  return phi > 0, phi, energies


@functools.partial(jax.jit, static_argnames=('max_iterations', 'init'))
def _chan_vese_run(image, phi, params, *, max_iterations, init):
  """The whole call in one dispatch: the initial level set (`phi`, or built from the `init`
  name when `phi` is None), the loop, and the outputs without their batch axis of one; a batch
  `(N, H, W)` runs image by image (a 512x512 image's arrays stay in cache, a batch's do not: on
  the CPU the batched loop measured 325 ms per step for 8 images, this sequential map 35 ms)."""
  if phi is None:
    phi = _initial_level_set(init, image.shape, image.dtype, morphological=False)
  mu, lambda1, lambda2, tol, dt = (params[n] for n in range(5))

  def one(args):
    out = _chan_vese(
      args[0][None], args[1][None], mu, lambda1, lambda2, tol, dt, max_iterations=max_iterations
    )
    return tuple(x[0] for x in out)

  if image.ndim == 2:
    return one((image, phi))
  return lax.map(one, (image, jnp.broadcast_to(phi, image.shape)))


def chan_vese(
  image: Any,
  *,
  mu: float = 0.25,
  lambda1: float = 1.0,
  lambda2: float = 1.0,
  tol: float = 1e-3,
  max_iterations: int = 500,
  dt: float = 0.5,
  init: Any = 'checkerboard',
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""Chan-Vese segmentation: active contours without edges, by a level set.

  Minimises the Chan & Vese (2001) energy of a level set :math:`\phi` over the image
  :math:`f` rescaled to `[0, 1]`:

  .. math::
    E(\phi) = \mu \int \delta(\phi) |\nabla \phi|
      + \lambda_1 \int (f - c_1)^2 H(\phi) + \lambda_2 \int (f - c_2)^2 (1 - H(\phi)),

  where :math:`c_1, c_2` are the means of :math:`f` inside (:math:`\phi > 0`) and outside,
  :math:`H(x) = \tfrac12 (1 + \tfrac2\pi \arctan x)` and :math:`\delta(x) = 1 / (1 + x^2)`.
  Each iteration is one semi-implicit gradient step of Getreuer's IPOL discretisation
  (eq. 22, curvature coefficients :math:`C_1..C_4` from one-sided and central differences,
  edge-replicated borders), updating every pixel from the previous level set at once, exactly as
  scikit-image's ``chan_vese``. The loop stops when the RMS change of :math:`\phi` is at most
  `tol` or after `max_iterations`; each step is fused by XLA, and a batch runs image by image
  (``lax.map``, which keeps each image's arrays in cache).

  Args:
    image: grey image, shape `(H, W)`, or a batch `(N, H, W)`; H, W >= 2; any real dtype
      (float64 is kept when x64 is enabled, everything else computes in float32).
    mu: weight of the contour length, >= 0.
    lambda1: weight of the fit inside (the `True` region), >= 0.
    lambda2: weight of the fit outside, >= 0.
    tol: stop when :math:`\sqrt{\mathrm{mean}((\phi_{k+1} - \phi_k)^2)} \le` `tol`, >= 0
      (0 runs all `max_iterations`).
    max_iterations: the most steps, >= 1 (static: it sizes `energies`).
    dt: the time step, > 0.
    init: the starting level set: `'checkerboard'` (:math:`\sin(\pi y/5)\sin(\pi x/5)`),
      `'disk'`, `'small disk'` (as scikit-image), or an array of shape `(H, W)` or `(N, H, W)`.

  Returns:
    `(segmentation, level_set, energies)`: the bool mask :math:`\phi > 0` and the final level
    set :math:`\phi` (image dtype), shape `(H, W)` (or `(N, H, W)`), and the energy before each
    step, shape `(max_iterations,)` (or `(N, max_iterations)`), NaN after the step that met
    `tol` (so ``jnp.isfinite(energies).sum()`` counts the steps), as scikit-image's list.

  Example (a bright square on a dark background):
    >>> image = jnp.zeros((32, 32)).at[8:24, 8:24].set(1.0)
    >>> segmentation, level_set, energies = chan_vese(image, max_iterations=50)
    >>> bool(segmentation[16, 16]), bool(segmentation[2, 2]), int(segmentation.sum())
    (True, False, 256)
    >>> bool(energies[-1] < energies[0])
    True

  Agrees with scikit-image's ``skimage.segmentation.chan_vese(..., extended_output=True)``
  (same segmentation on >= 99.9% of pixels in float64 after the same steps). References: Chan &
  Vese, "An active contour model without edges", Scale-Space 1999 / IEEE TIP 2001; Getreuer,
  "Chan-Vese segmentation", IPOL 2012.
  """
  image = _float_image(image)
  mu = _check_positive(mu, 'mu', allow_zero=True)
  lambda1 = _check_positive(lambda1, 'lambda1', allow_zero=True)
  lambda2 = _check_positive(lambda2, 'lambda2', allow_zero=True)
  tol = _check_positive(tol, 'tol', allow_zero=True)
  dt = _check_positive(dt, 'dt')
  max_iterations = _check_count(max_iterations, 'max_iterations', minimum=1)
  if isinstance(init, str):
    if init not in _INITS:
      raise ValueError(f'init must be one of {_INITS} or an array, got {init!r}.')
    phi = None  # built inside the jitted call
  else:
    phi, init = _initial_level_set(init, image.shape, image.dtype, morphological=False), None
  # One host array for the five scalars: one transfer per call instead of five.
  params = np.array([mu, lambda1, lambda2, tol, dt], np.dtype(image.dtype))
  return _chan_vese_run(image, phi, params, max_iterations=max_iterations, init=init)


# ----------------------------------------------------------------------------------------------
# Morphological Chan-Vese

# The four lines through the centre of a 3x3 window (skimage's _P2): each line is the centre and
# the two offsets +-(dr, dc).
_LINES = ((1, 1), (1, 0), (1, -1), (0, 1))


def _shift(u, dr, dc):
  """u shifted so that out[r, c] = u[r + dr, c + dc], with 0 outside the image."""
  h, w = u.shape
  p = jnp.pad(u, 1)
  return lax.dynamic_slice(p, (1 + dr, 1 + dc), (h, w))


def _sup_inf(u):
  """SI: the max over the four lines of the erosion by that line (border 0), as skimage."""
  return functools.reduce(
    jnp.maximum, [u & _shift(u, dr, dc) & _shift(u, -dr, -dc) for dr, dc in _LINES]
  )


def _inf_sup(u):
  """IS: the min over the four lines of the dilation by that line (border 0), as skimage."""
  return functools.reduce(
    jnp.minimum, [u | _shift(u, dr, dc) | _shift(u, -dr, -dc) for dr, dc in _LINES]
  )


def _gradient_l1(u):
  """|du/dy| + |du/dx| of np.gradient: central inside, one-sided at the borders."""
  u = u.astype(jnp.float32)

  def along(x, axis):
    x = jnp.moveaxis(x, axis, 0)
    g = jnp.concatenate([x[1:2] - x[0:1], (x[2:] - x[:-2]) / 2.0, x[-1:] - x[-2:-1]], axis=0)
    return jnp.moveaxis(g, 0, axis)

  return jnp.abs(along(u, 0)) + jnp.abs(along(u, 1))


@functools.partial(jax.jit, static_argnames=('iterations', 'smoothing'))
def _morph_chan_vese(image, u, lambda1, lambda2, *, iterations, smoothing):
  dtype = image.dtype
  lambda1, lambda2 = jnp.asarray(lambda1, dtype), jnp.asarray(lambda2, dtype)

  def smooth(k, u):
    # skimage cycles SI o IS, IS o SI over every application, counting across iterations.
    return lax.cond(k % 2 == 0, lambda v: _sup_inf(_inf_sup(v)), lambda v: _inf_sup(_sup_inf(v)), u)

  def body(it, u):
    uf = u.astype(dtype)
    c0 = jnp.sum(image * (1 - uf)) / (jnp.sum(1 - uf) + 1e-8)
    c1 = jnp.sum(image * uf) / (jnp.sum(uf) + 1e-8)
    aux = _gradient_l1(u).astype(dtype) * (
      lambda1 * (image - c1) ** 2 - lambda2 * (image - c0) ** 2
    )
    u = jnp.where(aux < 0, 1, jnp.where(aux > 0, 0, u))
    for s in range(smoothing):
      u = smooth(it * smoothing + s, u)
    return u

  return lax.fori_loop(0, iterations, body, u)


def morphological_chan_vese(
  image: Any,
  iterations: int,
  *,
  init: Any = 'checkerboard',
  smoothing: int = 1,
  lambda1: float = 1.0,
  lambda2: float = 1.0,
) -> jax.Array:
  r"""Morphological active contours without edges (MorphACWE), a binary level set.

  Marquez-Neila, Baumela & Alvarez (2014) replace the Chan-Vese PDE by morphology on a 0/1
  level set :math:`u`. Each iteration: (1) with :math:`c_0, c_1` the means of the image outside
  and inside, where :math:`|\nabla u|_1 > 0` (np.gradient's differences) set :math:`u = 1` if
  :math:`\lambda_1 (f - c_1)^2 < \lambda_2 (f - c_0)^2` and :math:`u = 0` if greater (the image
  attachment); (2) apply the curvature operator `smoothing` times, alternating
  :math:`SI \circ IS` and :math:`IS \circ SI`, where :math:`SI` is the maximum of the erosions
  and :math:`IS` the minimum of the dilations by the four 3-pixel lines through the centre
  (horizontal, vertical, both diagonals; pixels outside the image count as 0).

  Args:
    image: grey image, shape `(H, W)`, or a batch `(N, H, W)`; H, W >= 2; not rescaled.
    iterations: number of iterations, >= 0 (static).
    init: `'checkerboard'` (5x5 squares, as scikit-image's ``checkerboard_level_set``),
      `'disk'` (``disk_level_set``), or an array of shape `(H, W)` or `(N, H, W)` binarised
      by `> 0`.
    smoothing: curvature operator applications per iteration, >= 0 (static).
    lambda1: weight of the fit inside, >= 0.
    lambda2: weight of the fit outside, >= 0.

  Returns:
    The final level set, int32 0/1, shape `(H, W)` (or `(N, H, W)`).

  Example (a bright square on a dark background):
    >>> image = jnp.zeros((32, 32)).at[8:24, 8:24].set(1.0)
    >>> u = morphological_chan_vese(image, 10, init='disk')
    >>> int(u[16, 16]), int(u[2, 2])
    (1, 0)

  Agrees with scikit-image's ``skimage.segmentation.morphological_chan_vese`` (>= 99.9% of
  pixels, float64, after the same iterations; scikit-image keeps the SI/IS alternation in a
  module-level cycle, so its result depends on earlier calls in the process; this function
  always starts with :math:`SI \circ IS`, as a fresh process of scikit-image does). Reference:
  Marquez-Neila, Baumela & Alvarez, "A morphological approach to curvature-based evolution of
  curves and surfaces", IEEE TPAMI 2014.
  """
  image = _float_image(image)
  iterations = _check_count(iterations, 'iterations', minimum=0)
  smoothing = _check_count(smoothing, 'smoothing', minimum=0)
  lambda1 = _check_positive(lambda1, 'lambda1', allow_zero=True)
  lambda2 = _check_positive(lambda2, 'lambda2', allow_zero=True)
  u = _initial_level_set(init, image.shape, image.dtype, morphological=True)
  run = functools.partial(_morph_chan_vese, iterations=iterations, smoothing=smoothing)
  if image.ndim == 3:  # vmap measured faster here than lax.map (unlike chan_vese)
    u = jnp.broadcast_to(u, image.shape)
    return jax.vmap(run, in_axes=(0, 0, None, None))(image, u, lambda1, lambda2)
  return run(image, u, lambda1, lambda2)
