"""Compute-dtype handling shared by the layers."""

from __future__ import annotations

from typing import Any

from flax.linen.dtypes import promote_dtype


def cast_for_compute(*arrays: Any, dtype: Any) -> list[Any]:
  """Casts inputs and parameters to the compute `dtype` (None: their promoted dtype).

  Parameters are stored in `param_dtype` (float32); casting them here, inside the layer, is what
  makes `dtype=jnp.bfloat16` run the convolution in bfloat16 while the optimizer sees float32.
  """
  return promote_dtype(*arrays, dtype=dtype, inexact=True)
