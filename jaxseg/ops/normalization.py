"""Local response normalization across channels (AlexNet, GoogLeNet)."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.ops import _validation as v


def local_response_norm(
  x: jax.Array, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> jax.Array:
  r"""Local response normalization across channels, with alpha divided by `size`.

  .. math::
    y_{n,h,w,c} = x_{n,h,w,c} \Big/ \Big(k + \frac{\alpha}{\text{size}}
      \sum_{c' = c - \lfloor \text{size}/2 \rfloor}^{c + \lfloor (\text{size}-1)/2 \rfloor}
      x_{n,h,w,c'}^2\Big)^{\beta}

  with out-of-range channels contributing zero. Agrees with PyTorch's
  `torch.nn.functional.local_response_norm` and Caffe's LRN layer (ACROSS_CHANNELS), which both
  divide alpha by the window size. AlexNet's paper writes the sum without that division, with
  `k=2, n=5, alpha=1e-4, beta=0.75`; express it as
  `local_response_norm(x, size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)`.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC), floating.
    size: number of neighbouring channels summed over, positive.
    alpha: scale of the sum of squares (divided by `size`).
    beta: exponent.
    k: additive constant.

  Returns:
    `y`, shape and dtype of `x`.

  Example:
    >>> x = jnp.full((1, 1, 1, 3), 2.0, jnp.float32)
    >>> y = local_response_norm(x, size=3, alpha=3.0, beta=1.0, k=1.0)  # 2 / (1 + sum x^2)
    >>> print(y[0, 0, 0])
    [0.2222... 0.1538... 0.2222...]
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
    raise ValueError(f'size must be a positive int, got {size!r}.')
  for name, value in (('alpha', alpha), ('beta', beta), ('k', k)):
    v.check_number(value, name)  # NaN or infinity would silently poison every activation
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.inexact):
    raise TypeError(f'local_response_norm needs a floating x, got dtype {x.dtype}.')
  size = int(size)
  squares_sum = lax.reduce_window(
    jnp.square(x),
    x.dtype.type(0),
    lax.add,  # host constant: grad under jit needs it
    (1, 1, 1, size),
    (1, 1, 1, 1),
    ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)),
  )
  return x / (k + (alpha / size) * squares_sum) ** beta
