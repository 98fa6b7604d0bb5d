"""Import torchvision classification checkpoints (AlexNet, VGG, GoogLeNet, ResNet).

Into a classification network directly, or into the backbone of a segmentation network (FCN,
DeepLab): there the classification head is left out and, for FCN on VGG, fc6 and fc7 are filled
from VGG's classifier as the FCN authors did (fc6's ``25088 x 4096`` matrix reshaped into a
``7 x 7 x 512 x 4096`` convolution, fc7 into a ``1 x 1`` one).

jaxseg never unpickles: convert a ``.pth`` file once, where PyTorch is installed, with
``python tools/pth_to_safetensors.py resnet50.pth resnet50.safetensors``, then::

  model = get_model('resnet50')
  variables = import_torchvision(model, 'resnet50.safetensors')
  logits, _ = model.apply(variables, images)          # images NHWC, torchvision-normalised

Layouts: convolution weights ``OIHW`` become ``HWIO`` kernels, linear weights ``(out, in)``
become ``(in, out)`` kernels, and the first fully connected layer after a flatten (VGG's and
AlexNet's fc6, GoogLeNet's auxiliary fc1) has its input axis reordered from PyTorch's
``(c, h, w)`` flatten order to jaxseg's ``(h, w, c)``. Batch-norm ``weight``/``bias`` become
``scale``/``bias`` and ``running_mean``/``running_var`` go to the ``batch_stats`` collection.
"""

import os
import re
from typing import Any, Callable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.models.alexnet import AlexNet
from jaxseg.models.googlenet import GoogLeNet
from jaxseg.models.resnet import ResNet
from jaxseg.models.vgg import VGG

_LEAF_NAMES = {
  ('params', 'kernel'): 'weight',
  ('params', 'bias'): 'bias',
  ('params', 'scale'): 'weight',
  ('batch_stats', 'mean'): 'running_mean',
  ('batch_stats', 'var'): 'running_var',
}
# Buffers torchvision saves that jaxseg has no use for.
_IGNORED_SUFFIXES = ('num_batches_tracked',)


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a state dict saved as ``.safetensors`` or ``.npz`` into NumPy arrays.

  Args:
    path: a ``.safetensors`` file (needs the ``safetensors`` package) or an ``.npz`` archive
      whose keys are torchvision's parameter names.

  Returns:
    ``{name: array}`` in the file's layouts (PyTorch's ``OIHW`` etc.).

  Raises:
    ValueError: the extension is neither.
    ImportError: a ``.safetensors`` file without the ``safetensors`` package.

  Example::

    state = load_state_dict('resnet50.safetensors')
    state['conv1.weight'].shape   # (64, 3, 7, 7)
  """
  path = os.fspath(path)
  if path.endswith('.safetensors'):
    try:
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(
        f'load_state_dict: reading {path!r} needs the safetensors package '
        '(pip install safetensors), or save the state dict as .npz'
      ) from e
    return dict(load_file(path))
  if path.endswith('.npz'):
    with np.load(path, allow_pickle=False) as archive:
      return {name: archive[name] for name in archive.files}
  raise ValueError(
    f'load_state_dict: path must end in .safetensors or .npz, got {path!r} '
    '(convert a .pth with tools/pth_to_safetensors.py)'
  )


# ---- per-architecture module names: jaxseg module path -> torchvision module name ----------


def _resnet_module(model: ResNet, path: tuple[str, ...]) -> str:
  del model
  renamed = []
  for part in path:
    part = re.sub(r'^layer(\d+)_(\d+)$', r'layer\1.\2', part)
    part = {'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}.get(part, part)
    renamed.append(part)
  return '.'.join(renamed)


def _vgg_module(model: VGG, path: tuple[str, ...]) -> str:
  # torchvision's `features` is one Sequential: conv, [bn], relu per convolution, a pool per
  # stage; `classifier` is Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
  index, names = 0, {}
  for stage, features in enumerate(model.stage_features, start=1):
    for i in range(1, len(features) + 1):
      names[f'conv{stage}_{i}'] = f'features.{index}'
      index += 1
      if model.batch_norm:
        names[f'bn{stage}_{i}'] = f'features.{index}'
        index += 1
      index += 1  # ReLU
    index += 1  # max pool
  names.update(fc6='classifier.0', fc7='classifier.3', fc8='classifier.6')
  return '.'.join(names.get(part, part) for part in path)


_ALEXNET_NAMES = dict(
  conv1='features.0',
  conv2='features.3',
  conv3='features.6',
  conv4='features.8',
  conv5='features.10',
  fc6='classifier.1',
  fc7='classifier.4',
  fc8='classifier.6',
)


def _alexnet_module(model: AlexNet, path: tuple[str, ...]) -> str:
  del model
  return '.'.join(_ALEXNET_NAMES.get(part, part) for part in path)


_GOOGLENET_BRANCHES = dict(
  branch2_reduce='branch2.0',
  branch2='branch2.1',
  branch3_reduce='branch3.0',
  branch3='branch3.1',
  branch4='branch4.1',
)


def _googlenet_module(model: GoogLeNet, path: tuple[str, ...]) -> str:
  del model
  return '.'.join(_GOOGLENET_BRANCHES.get(part, part) for part in path)


# class -> (module-name function, {module path of an fc layer after a flatten: map size}).
_ARCHITECTURES: dict[type, tuple[Callable[..., str], dict[tuple[str, ...], int]]] = {
  ResNet: (_resnet_module, {}),
  VGG: (_vgg_module, {('fc6',): VGG.head_window}),
  AlexNet: (_alexnet_module, {('fc6',): AlexNet.head_window}),
  GoogLeNet: (_googlenet_module, {('aux1', 'fc1'): 4, ('aux2', 'fc1'): 4}),
}


def _check_model(model: nn.Module) -> None:
  if type(model) not in _ARCHITECTURES:
    raise TypeError(
      f'import_torchvision: model must be one of '
      f'{[c.__name__ for c in _ARCHITECTURES]} or a segmentation network with a '
      f'backbone (FCN, DeepLab), got {type(model).__name__}'
    )
  if isinstance(model, (AlexNet, GoogLeNet)) and not model.torchvision_compatible:
    raise ValueError(
      f"import_torchvision: {type(model).__name__} differs from torchvision's "
      'layout unless built with torchvision_compatible=True'
    )
  if getattr(model, 'convolutional', False):
    raise ValueError(
      'import_torchvision: import into the dense model, then call convolutionalize_variables'
    )


def _to_jax_layout(array: np.ndarray, leaf: str, flatten_size: int | None) -> np.ndarray:
  """PyTorch layout -> jaxseg layout for one tensor."""
  if leaf != 'kernel':
    return array
  if array.ndim == 4:  # (O, I, kh, kw) -> (kh, kw, I, O)
    return array.transpose(2, 3, 1, 0)
  if flatten_size:
    # Linear after a flatten: the input index is c*h*w in PyTorch, (h*w)*c in jaxseg.
    out_features, in_features = array.shape
    channels = in_features // flatten_size**2
    array = array.reshape(out_features, channels, flatten_size, flatten_size)
    return array.transpose(2, 3, 1, 0).reshape(in_features, out_features)
  return array.T  # (out, in) -> (in, out)


def _torch_shape(shape: tuple[int, ...], leaf: str) -> tuple[int, ...]:
  """jaxseg shape -> the PyTorch shape of the same tensor."""
  if leaf == 'kernel' and len(shape) == 4:
    return (shape[3], shape[2], shape[0], shape[1])
  if leaf == 'kernel' and len(shape) == 2:
    return (shape[1], shape[0])
  return tuple(shape)


def torchvision_layout(
  model: nn.Module, *, input_shape: tuple[int, int, int, int] = (1, 224, 224, 3)
) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
  """The torchvision state dict `model` expects: ``{torch name: (jaxseg path, torch shape)}``.

  Args:
    model: see :func:`import_torchvision`.
    input_shape: an input shape the model accepts, used only to trace its variable shapes.

  Returns:
    For each variable of `model`, in the order of jaxseg's variable tree: its torchvision name (e.g.
    ``'layer1.0.bn1.running_mean'``), its jaxseg path (e.g.
    ``('batch_stats', 'layer1_0', 'bn1', 'mean')``) and the shape PyTorch stores it with.
    Nothing is materialised.

  Example::

    names = torchvision_layout(get_model('resnet18'))
    names['fc.weight']   # (('params', 'fc', 'kernel'), (1000, 512))
  """
  _check_model(model)
  module_name, _ = _ARCHITECTURES[type(model)]
  key = jax.random.key(0)
  template = jax.eval_shape(
    lambda: model.init({'params': key, 'dropout': key}, jnp.zeros(input_shape, jnp.float32))
  )
  layout = {}
  for path, leaf in flax.traverse_util.flatten_dict(dict(template)).items():
    collection, *modules, name = path
    if (collection, name) not in _LEAF_NAMES:
      raise ValueError(f'torchvision_layout: no torchvision counterpart for {"/".join(path)}')
    torch_name = f'{module_name(model, tuple(modules))}.{_LEAF_NAMES[collection, name]}'
    layout[torch_name] = (path, _torch_shape(leaf.shape, name))
  return layout


def find_submodule(model: nn.Module, path: str, example: Any) -> nn.Module:
  """Returns the unbound submodule of ``model`` at ``path`` (``'backbone'``, ``'a/b'``).

  Submodules of a compact ``__call__`` exist only while it runs, so the model is traced once
  (shapes only) and the module called at ``path`` is captured.

  Args:
    model: a Flax module.
    path: ``/``-separated submodule names.
    example: an input ``model`` accepts (only its shape and dtype are used).

  Returns:
    The submodule, unbound (``parent=None``), with the configuration it has inside ``model``.

  Raises:
    ValueError: no submodule at ``path``.
  """
  target = tuple(p for p in path.split('/') if p)
  found = []

  def capture(next_fun, args, kwargs, context):
    module = context.module
    if not found and module.scope is not None and tuple(module.scope.path) == target:
      found.append(module)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(capture):
    jax.eval_shape(
      lambda x: model.init(
        {'params': jax.random.key(0), 'dropout': jax.random.key(0)}, x, train=False
      ),
      example,
    )
  if not found:
    raise ValueError(f'{type(model).__name__} has no submodule at {path!r}')
  return found[0].clone(parent=None, name=None)


def _classifier_fc_kernels(
  state_dict: Mapping[str, Any], template: Mapping[str, Any]
) -> dict[tuple[str, ...], np.ndarray]:
  """FCN's fc6/fc7 from VGG's ``classifier.0`` and ``classifier.3``, checked against the model."""
  converted = {}
  for layer, torch_layer in (('fc6', 'classifier.0'), ('fc7', 'classifier.3')):
    kernel_shape = tuple(template['params'][layer]['kernel'].shape)
    window = kernel_shape[0]
    for leaf, suffix in (('kernel', 'weight'), ('bias', 'bias')):
      name = f'{torch_layer}.{suffix}'
      if name not in state_dict:
        raise ValueError(
          f'import_torchvision: tensor {name!r} (for FCN {layer}) is missing from the state dict'
        )
      array = np.asarray(state_dict[name], np.float32)
      if leaf == 'kernel':
        expected = (kernel_shape[3], int(np.prod(kernel_shape[:3])))
        if array.shape != expected:
          raise ValueError(
            f'import_torchvision: tensor {name!r} has shape {array.shape}, '
            f'expected {expected} (for FCN {layer} of kernel shape {kernel_shape})'
          )
        # (out, c*h*w) -> (h*w*c, out) -> (kh, kw, c, out): the convolution that computes the
        # fully connected layer at every position (FCN paper, section 3.1).
        array = _to_jax_layout(array, 'kernel', window if window > 1 else None)
        array = array.reshape(kernel_shape)
      elif array.shape != (kernel_shape[3],):
        raise ValueError(
          f'import_torchvision: tensor {name!r} has shape {array.shape}, '
          f'expected {(kernel_shape[3],)} (for FCN {layer})'
        )
      converted[('params', layer, leaf)] = array
  return converted


def _import_into_backbone(
  model: nn.Module,
  state_dict: Mapping[str, Any],
  input_shape: tuple[int, int, int, int],
  key: jax.Array,
) -> dict:
  """``import_torchvision`` for FCN and DeepLab: the backbone (and FCN's fc6/fc7) imported,
  every other layer initialised as ``model.init`` does with ``key``."""
  from jaxseg.models.fcn import FCN  # pylint: disable=g-import-not-at-top (fcn imports registry)

  example = jnp.zeros(input_shape, jnp.float32)
  template = jax.eval_shape(lambda: model.init({'params': key, 'dropout': key}, example))
  if 'backbone' not in template.get('params', {}):
    _check_model(model)  # raises the TypeError naming what is supported
  backbone = find_submodule(model, 'backbone', example)
  _check_model(backbone)
  layout = torchvision_layout(backbone, input_shape=input_shape)
  # The classification head of the checkpoint has no place in the backbone (include_top=False):
  # those tensors are expected to be left over, anything else is an error below.
  head = set(
    torchvision_layout(
      backbone.clone(include_top=True, output_stride=32), input_shape=(1, 224, 224, 3)
    )
  ) - set(layout)
  used = {name: value for name, value in state_dict.items() if name in layout}
  for name in state_dict:
    if name not in layout and name not in head and not name.endswith(_IGNORED_SUFFIXES):
      raise ValueError(
        f'import_torchvision: tensor {name!r} of the state dict has no place in '
        f'the {type(backbone).__name__} backbone of {type(model).__name__}'
      )
  imported = import_torchvision(backbone, used, input_shape=input_shape)
  fresh = model.init({'params': key, 'dropout': key}, example)
  flat = flax.traverse_util.flatten_dict({c: dict(v) for c, v in fresh.items()})
  for (collection, *path), value in flax.traverse_util.flatten_dict(imported).items():
    flat[(collection, 'backbone', *path)] = value
  if isinstance(model, FCN) and 'fc6' in template['params']:
    for path, value in _classifier_fc_kernels(state_dict, template).items():
      flat[path] = jnp.asarray(value)
  return flax.traverse_util.unflatten_dict(flat)


def import_torchvision(
  model: nn.Module,
  state_dict: Mapping[str, Any] | str | os.PathLike,
  *,
  input_shape: tuple[int, int, int, int] = (1, 224, 224, 3),
  key: jax.Array | None = None,
) -> dict:
  """Builds jaxseg variables for `model` from a torchvision state dict.

  Every parameter and batch-norm statistic of `model` is looked up under its torchvision name
  (``layer1.0.conv1.weight``, ``features.0.weight`` ...), checked against the shape PyTorch
  stores it with, and converted to jaxseg's layout (see the module docstring).
  ``num_batches_tracked`` is ignored. For a segmentation network (FCN, DeepLab) the checkpoint
  fills its ``backbone`` (the classifier's tensors are left over without error) and, for FCN on
  VGG, fc6 and fc7 from ``classifier.0`` / ``classifier.3``; the other layers (ASPP, decoder,
  score layers) are initialised as ``model.init`` does with `key`.

  Args:
    model: a ``ResNet``, ``VGG`` (plain or batch-norm), or ``AlexNet``/``GoogLeNet`` built with
      ``torchvision_compatible=True`` (its ``num_classes`` must match the checkpoint); or an FCN
      or DeepLab model whose backbone is one of those.
    state_dict: ``{name: array}`` (NumPy or anything ``np.asarray`` takes), or a path to a
      ``.safetensors``/``.npz`` file (:func:`load_state_dict`).
    input_shape: an input shape the model accepts, used only to trace its variable shapes.
    key: PRNG key initialising the layers a segmentation network adds to its backbone (default
      ``jax.random.key(0)``); unused for classification networks.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` (``batch_stats`` only for networks with batch
    norm), float32.

  Raises:
    TypeError: unsupported model.
    ValueError: naming the first tensor that is missing, has the wrong shape, or is not used.

  Example::

    variables = import_torchvision(get_model('vgg16'), 'vgg16.safetensors')
    variables = import_torchvision(get_model('fcn32s', num_classes=21), 'vgg16.safetensors')
  """
  if not isinstance(state_dict, Mapping):
    state_dict = load_state_dict(state_dict)
  if type(model) not in _ARCHITECTURES:
    return _import_into_backbone(
      model, state_dict, input_shape, jax.random.key(0) if key is None else key
    )
  layout = torchvision_layout(model, input_shape=input_shape)
  _, flattened = _ARCHITECTURES[type(model)]
  converted = {}
  for torch_name, (path, torch_shape) in layout.items():
    jax_name = '/'.join(path)
    if torch_name not in state_dict:
      raise ValueError(
        f'import_torchvision: tensor {torch_name!r} (shape {torch_shape}, for '
        f'{jax_name}) is missing from the state dict'
      )
    array = np.asarray(state_dict[torch_name], np.float32)
    if array.shape != torch_shape:
      raise ValueError(
        f'import_torchvision: tensor {torch_name!r} has shape {array.shape}, '
        f'expected {torch_shape} (for {jax_name})'
      )
    _, *modules, leaf = path
    converted[path] = jnp.asarray(_to_jax_layout(array, leaf, flattened.get(tuple(modules))))
  for name in state_dict:
    if name not in layout and not name.endswith(_IGNORED_SUFFIXES):
      raise ValueError(
        f'import_torchvision: tensor {name!r} of the state dict has no place in '
        f'{type(model).__name__} (wrong variant or num_classes?)'
      )
  return flax.traverse_util.unflatten_dict(converted)
