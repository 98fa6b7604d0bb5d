"""Argument checks for the classic methods, run on concrete values before anything is traced.

Shapes, dtypes and static options are always checked. Value checks (NaN, seeds inside the image)
need the data: they run when the argument is a concrete array and are skipped for tracers (inside
`jit`/`vmap` the caller has already passed them, or owns the consequences).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
  """True when `x` holds values (not a tracer inside `jit`/`vmap`/`grad`)."""
  return not isinstance(x, jax.core.Tracer)


def as_array(x: Any, name: str) -> Any:
  """`x` unchanged if it is an array (NumPy or JAX), else `jnp.asarray(x)`.

  Raises TypeError if `x` is not numeric.
  """
  if not hasattr(x, 'shape') or not hasattr(x, 'dtype'):
    try:
      x = np.asarray(x)
    except Exception as error:
      raise TypeError(f'{name} must be an array, got {type(x).__name__}.') from error
  if not (jnp.issubdtype(x.dtype, jnp.number) or jnp.issubdtype(x.dtype, jnp.bool_)):
    raise TypeError(f'{name} must be a numeric array, got dtype {x.dtype}.')
  return x


def check_image(
  image: Any,
  name: str = 'image',
  *,
  ranks: tuple[int, ...] = (2, 3, 4),
  layout: str = '(H, W), (H, W, C) or (N, H, W, C)',
  channels: tuple[int, ...] | None = None,
) -> Any:
  """Checks rank, emptiness, channels and (when concrete) NaN; returns the array."""
  image = as_array(image, name)
  if image.ndim not in ranks:
    raise ValueError(
      f'{name} must have layout {layout} (rank in {ranks}), got shape '
      f'{tuple(image.shape)} of rank {image.ndim}.'
    )
  if image.size == 0:
    raise ValueError(f'{name} must not be empty, got shape {tuple(image.shape)}.')
  if channels is not None and image.ndim >= 3 and image.shape[-1] not in channels:
    raise ValueError(
      f'{name} must have {" or ".join(map(str, channels))} channels in its last '
      f'axis (layout {layout}), got shape {tuple(image.shape)}.'
    )
  check_finite(image, name)
  return image


def check_finite(x: Any, name: str) -> None:
  """ValueError if a concrete floating array holds NaN or infinity."""
  if (
    is_concrete(x)
    and jnp.issubdtype(x.dtype, jnp.floating)
    and not bool(np.all(np.isfinite(np.asarray(x))))
  ):
    raise ValueError(
      f'{name} must be finite, got NaN or infinity in an array of shape {tuple(x.shape)}.'
    )


def check_int(value: Any, name: str, *, minimum: int) -> int:
  """`value` as an int of at least `minimum`; TypeError/ValueError naming it otherwise."""
  if not isinstance(value, numbers.Integral) or isinstance(value, bool):
    raise TypeError(f'{name} must be an int, got {value!r}.')
  if value < minimum:
    raise ValueError(f'{name} must be at least {minimum}, got {value!r}.')
  return int(value)


def check_number(
  value: Any, name: str, *, minimum: float | None = None, positive: bool = False
) -> float:
  """`value` as a finite float (>= `minimum`, or > 0 with `positive`)."""
  if not isinstance(value, numbers.Real) or isinstance(value, bool):
    raise TypeError(f'{name} must be a real number, got {value!r}.')
  value = float(value)
  if not np.isfinite(value):
    raise ValueError(f'{name} must be finite, got {value!r}.')
  if positive and value <= 0:
    raise ValueError(f'{name} must be positive, got {value!r}.')
  if minimum is not None and value < minimum:
    raise ValueError(f'{name} must be at least {minimum}, got {value!r}.')
  return value


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
  if value not in choices:
    raise ValueError(f'{name} must be one of {choices}, got {value!r}.')
  return value


def to_float(image: Any) -> jax.Array:
  """Integer images scaled to [0, 1] by their dtype's maximum (as `skimage.img_as_float`)."""
  image = jnp.asarray(image)
  if jnp.issubdtype(image.dtype, jnp.bool_):
    return image.astype(jnp.float32)
  if jnp.issubdtype(image.dtype, jnp.integer):
    # Signed integers land in [-1, 1], as skimage's img_as_float.
    return image.astype(jnp.float32) / float(jnp.iinfo(image.dtype).max)
  if image.dtype == jnp.float64:
    return image  # only reachable with jax_enable_x64
  return image.astype(jnp.float32)
