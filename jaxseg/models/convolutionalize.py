"""Fully connected heads that can run as convolutions, and `convolutionalize`.

The lecture's key FCN idea: a fully connected layer reading a ``k x k x C`` map is a ``k x k``
convolution without padding, and the fully connected layers after it are ``1 x 1``
convolutions. Written as convolutions, a classifier runs on any image size and returns a map of
class scores, one per ``k x k`` window of its last feature map (stride 32 for VGG).

AlexNet and VGG build their head with :func:`classifier_head`, whose ``convolutional`` flag
picks one of the two forms; :func:`convolutionalize` flips the flag of a model and
:func:`convolutionalize_variables` reshapes its trained kernels, so both forms share weights.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from jaxseg.nn import Conv, Dense, Dropout

# The dense head pools with it; also re-exported here for code that imported it from models.
from jaxseg.ops import adaptive_avg_pool

# Modules of the head, in order; the first reads the spatial map.
HEAD_LAYERS = ('fc6', 'fc7', 'fc8')


def classifier_head(
  x: jax.Array,
  *,
  window: int,
  fc_features: int,
  num_classes: int,
  dropout_rate: float,
  convolutional: bool,
  dilation: int,
  train: bool,
  dtype: Any,
) -> jax.Array:
  """fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8, as dense or convolutional layers.

  Call it inside a compact ``__call__``; it creates the submodules ``fc6``, ``fc7`` and ``fc8``
  of the calling module.

  Dense form: the ``(N, H, W, C)`` map is adaptively average pooled to ``window x window``
  (the identity at the canonical input size, as torchvision does), flattened in ``(h, w, c)``
  order and fed to ``Dense`` layers; returns ``(N, num_classes)``.
  Convolutional form: fc6 is a ``window x window`` convolution without padding (dilated by
  `dilation` when the backbone runs at a finer output stride), fc7 and fc8 are ``1 x 1``
  convolutions; returns ``(N, H - window + 1, W - window + 1, num_classes)`` for
  ``dilation=1``. The fc6 kernel of the convolutional form is the dense kernel reshaped to
  ``(window, window, C, fc_features)``.

  Args:
    x: ``(N, H, W, C)`` last feature map.
    window: spatial size fc6 reads (7 for VGG, 6 for AlexNet).
    fc_features: width of fc6 and fc7.
    num_classes: width of fc8.
    dropout_rate: dropout after fc6 and fc7 (rng collection ``'dropout'``).
    convolutional: pick the convolutional form.
    dilation: dilation of the convolutional fc6.
    train: enable dropout.
    dtype: compute dtype.

  Returns:
    Logits ``(N, num_classes)`` or a score map ``(N, h, w, num_classes)``.

  Example (inside a module's compact ``__call__``)::

    logits = classifier_head(pool5, window=7, fc_features=4096, num_classes=1000,
                             dropout_rate=0.5, convolutional=False, dilation=1, train=train,
                             dtype=None)
  """
  if convolutional:
    x = Conv(fc_features, window, dilation=dilation, dtype=dtype, name='fc6')(x)
  else:
    x = adaptive_avg_pool(x, window)
    x = x.reshape(x.shape[0], -1)
    x = Dense(fc_features, dtype=dtype, name='fc6')(x)
  x = nn.relu(x)
  x = Dropout(dropout_rate, deterministic=not train)(x)

  def fully_connected(features: int, name: str) -> nn.Module:
    if convolutional:
      return Conv(features, 1, dtype=dtype, name=name)
    return Dense(features, dtype=dtype, name=name)

  x = fully_connected(fc_features, 'fc7')(x)
  x = nn.relu(x)
  x = Dropout(dropout_rate, deterministic=not train)(x)
  return fully_connected(num_classes, 'fc8')(x)


def _check_convolutionalizable(model: nn.Module, caller: str) -> None:
  if not isinstance(model, nn.Module) or 'convolutional' not in {
    f.name for f in dataclasses.fields(model)
  }:
    raise TypeError(
      f'{caller}: model must be a network with a fully connected head built by '
      f'classifier_head (AlexNet, VGG), got {type(model).__name__}'
    )
  if not getattr(model, 'include_top', True):
    raise ValueError(f'{caller}: model has include_top=False, so there is no head to convert')


def convolutionalize(model: nn.Module) -> nn.Module:
  """Returns `model` with its fully connected layers turned into convolutions.

  VGG's fc6 becomes a ``7 x 7`` convolution (AlexNet's a ``6 x 6`` one), fc7 and fc8
  ``1 x 1`` convolutions, so the network accepts any input of at least the canonical size and
  returns a score map ``(N, h, w, num_classes)``: ``h = (H / 32) - 7 + 1`` for VGG, so 1 at
  224 and 6 at 384. Convert trained weights with :func:`convolutionalize_variables`.

  Args:
    model: an AlexNet or VGG module with ``include_top=True``.

  Returns:
    The same module with ``convolutional=True``.

  Example::

    vgg = get_model('vgg16')
    fcn = convolutionalize(vgg)
    fcn_vars = convolutionalize_variables(vgg, vgg_vars)
    scores, _ = fcn.apply(fcn_vars, jnp.zeros((1, 384, 384, 3)))   # (1, 6, 6, 1000)
  """
  _check_convolutionalizable(model, 'convolutionalize')
  return model.clone(convolutional=True)


def convolutionalize_variables(model: nn.Module, variables: Any) -> Any:
  """Reshapes the dense head kernels of `model`'s `variables` into convolution kernels.

  ``fc6/kernel`` ``(k * k * C, F)``, flattened in ``(h, w, c)`` order, becomes
  ``(k, k, C, F)``; ``fc7`` and ``fc8`` kernels ``(I, O)`` become ``(1, 1, I, O)``. Biases and
  every other variable are unchanged.

  Args:
    model: the original (dense-head) AlexNet or VGG module.
    variables: its variables, e.g. from ``model.init``.

  Returns:
    Variables for ``convolutionalize(model)``.

  Example::

    conv_vars = convolutionalize_variables(vgg, vgg_vars)
    conv_vars['params']['fc6']['kernel'].shape   # (7, 7, 512, 4096)
  """
  _check_convolutionalizable(model, 'convolutionalize_variables')
  if model.convolutional:
    raise ValueError('convolutionalize_variables: model is already convolutional')
  window = type(model).head_window
  params = dict(variables['params'])
  for name in HEAD_LAYERS:
    layer = dict(params[name])
    kernel = layer['kernel']
    if name == HEAD_LAYERS[0]:
      in_features, out_features = kernel.shape
      if in_features % (window * window):
        raise ValueError(
          f'convolutionalize_variables: fc6 kernel {kernel.shape} does not read '
          f'a {window}x{window} map'
        )
      kernel = kernel.reshape(window, window, in_features // (window * window), out_features)
    else:
      kernel = kernel.reshape(1, 1, *kernel.shape)
    layer['kernel'] = kernel
    params[name] = layer
  return {**variables, 'params': params}
