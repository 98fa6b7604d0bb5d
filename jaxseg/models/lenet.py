"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998): CONV-POOL-CONV-POOL-FC-FC-FC, 32x32 input.

=======  ======================================  ============
layer    operation                                output
=======  ======================================  ============
conv1    6 x 5x5, stride 1 (C1)                   28 x 28 x 6
pool1    2x2 subsampling, stride 2 (S2)           14 x 14 x 6
conv2    16 x 5x5, stride 1 (C3)                  10 x 10 x 16
pool2    2x2 subsampling, stride 2 (S4)           5 x 5 x 16
fc1      120 (C5: a 5x5 convolution on a 5x5 map, i.e. fully connected)   120
fc2      84 (F6)                                  84
fc3      num_classes (output)                     10
=======  ======================================  ============

Simplifications of the paper, as usual today: C3 sees all 6 maps (not the paper's
connection table), subsampling is plain average (or max) pooling without the trainable
coefficient and bias, the squashing function is ``tanh`` (or ReLU) instead of
``1.7159 tanh(2x/3)``, and the output layer is linear instead of Euclidean RBF units.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.models.registry import register_model
from jaxseg.nn import AvgPool, Conv, Dense, MaxPool

# ops.relu: jax.nn.relu's values and derivative, keeping a population's layout (issue 16).
_ACTIVATIONS = {'tanh': jnp.tanh, 'relu': ops.relu}
_POOLS = {'avg': AvgPool, 'max': MaxPool}


class LeNet5(nn.Module):
  """LeNet-5.

  Attributes:
    num_classes: outputs of the last layer.
    activation: ``'tanh'`` (the paper's squashing) or ``'relu'``.
    pooling: ``'avg'`` (the paper's subsampling) or ``'max'``.
    include_top: if False, ``__call__`` returns the pool2 map.
    dtype: compute dtype.
  """

  num_classes: int = 10
  activation: str = 'tanh'
  pooling: str = 'avg'
  include_top: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, 32, 32, C)`` images (C = 1 for the paper's grey digits).
      train: unused (no dropout or batch norm); kept for the common model signature.

    Returns:
      ``(logits (N, num_classes), endpoints)`` with ``stride2`` (pool1), ``stride4`` (pool2)
      and ``features`` (pool2).
    """
    del train
    if self.activation not in _ACTIVATIONS:
      raise ValueError(
        f'LeNet5: activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}'
      )
    if self.pooling not in _POOLS:
      raise ValueError(f'LeNet5: pooling must be one of {sorted(_POOLS)}, got {self.pooling!r}')
    if x.ndim != 4:
      raise ValueError(f'LeNet5: x must be an NHWC batch (4-D), got shape {x.shape}')
    act = _ACTIVATIONS[self.activation]
    pool = functools.partial(_POOLS[self.pooling], 2, stride=2)
    endpoints = {}
    x = act(Conv(6, 5, dtype=self.dtype, name='conv1')(x))
    x = endpoints['stride2'] = pool(name='pool1')(x)
    x = act(Conv(16, 5, dtype=self.dtype, name='conv2')(x))
    x = endpoints['stride4'] = endpoints['features'] = pool(name='pool2')(x)
    if not self.include_top:
      return x, endpoints
    x = x.reshape(x.shape[0], -1)
    x = act(Dense(120, dtype=self.dtype, name='fc1')(x))
    x = act(Dense(84, dtype=self.dtype, name='fc2')(x))
    logits = Dense(self.num_classes, dtype=self.dtype, name='fc3')(x)
    return logits.astype('float32'), endpoints


lenet5 = register_model('lenet5')(LeNet5)
