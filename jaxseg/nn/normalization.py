"""Normalization layers (Flax Linen): LocalResponseNorm, and BatchNorm with PyTorch's defaults."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from jaxseg import ops
from jaxseg.ops import _validation as v


class LocalResponseNorm(nn.Module):
  r"""Local response normalization across channels: `jaxseg.ops.local_response_norm`.

  :math:`y_c = x_c / (k + \frac{\alpha}{n} \sum_{c' \in \text{window}(c)} x_{c'}^2)^{\beta}`,
  alpha divided by the window size `n` as in Caffe's LRN and `torch.nn.LocalResponseNorm`.
  AlexNet's paper form is `LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)`.

  Attributes:
    size: number of neighbouring channels `n`.
    alpha: scale of the sum of squares, divided by `size`.
    beta: exponent.
    k: additive constant.

  Example:
    >>> LocalResponseNorm(size=5, alpha=1e-4, beta=0.75).apply({}, jnp.ones((1, 4, 4, 96))).shape
    (1, 4, 4, 96)
  """

  _: dataclasses.KW_ONLY
  size: int = 5
  alpha: float = 1e-4
  beta: float = 0.75
  k: float = 1.0

  def __call__(self, x: jax.Array) -> jax.Array:
    """Normalizes `x` of shape `(N, H, W, C)` across `C`."""
    return ops.local_response_norm(x, size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)


class BatchNorm(nn.BatchNorm):
  r"""`flax.linen.BatchNorm` with PyTorch's defaults: `momentum=0.9`, `epsilon=1e-5`.

  :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`, statistics over all axes
  but the last. Running statistics update as `ra = momentum * ra + (1 - momentum) * batch`, so
  `momentum=0.9` here is `momentum=0.1` in `torch.nn.BatchNorm2d`. Unlike PyTorch, the running
  variance uses the biased batch variance. Parameters `scale`, `bias`; statistics `mean`, `var`
  in the `batch_stats` collection.

  Example:
    >>> bn = BatchNorm(use_running_average=False)
    >>> y, state = bn.init_with_output(jax.random.key(0), jnp.ones((8, 4, 4, 16)))
    >>> sorted(state)
    ['batch_stats', 'params']
  """

  momentum: float = 0.9
  epsilon: float = 1e-5

  def __call__(self, x, use_running_average=None, *, mask=None):
    # flax 0.12.8 reduces in float32 and normalises a bfloat16 input with float32 statistics by
    # implicit promotion (`jnp.promote_types(dtype, float32)`, `x - mean`), which strict dtype
    # promotion rejects although the result is the intended one. A named third-party exemption,
    # scoped to flax's BatchNorm (as jaxseg.train.promotion is to optax's transformations).
    with jax.numpy_dtype_promotion('standard'):
      return super().__call__(x, use_running_average, mask=mask)


class Dropout(nn.Dropout):
  r"""`flax.linen.Dropout` (rng collection `'dropout'`) whose `rate` is checked when built.

  In training each element is zeroed with probability `rate` and the rest scaled by
  :math:`1 / (1 - \text{rate})`, as `torch.nn.Dropout(p=rate)`; a rate outside ``[0, 1]`` (or
  NaN) raises instead of silently scaling by a negative or NaN factor.

  Attributes:
    rate: drop probability in ``[0, 1]``.

  Example:
    >>> Dropout(0.5).apply({}, jnp.ones((1, 4)), deterministic=True).tolist()
    [[1.0, 1.0, 1.0, 1.0]]
  """

  def __post_init__(self):
    v.check_number(self.rate, 'Dropout rate', low=0.0, high=1.0)
    super().__post_init__()
