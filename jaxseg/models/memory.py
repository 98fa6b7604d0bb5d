"""How much memory a network needs: the lecture's Table 1 (data, parameters, totals).

Everything is counted from shapes with ``jax.eval_shape``: no parameter or activation is
allocated, so a 100M-parameter network is reported in milliseconds.

What is counted, exactly (float32, 4 bytes per element, 1 MB = 2**20 bytes as in the lecture's
"Deep: Parameters 98.44 MB"):

* **data**: ``batch`` times the elements of the input plus the output of every layer that
  creates a new array (convolutions, transposed convolutions, dense layers, pooling, local
  response normalisation, maxout). ReLU and dropout are not counted: Caffe, where these networks
  were defined, runs them in place on the previous layer's blob. Reshapes are views.
* **parameters**: every element of the ``params`` collection (not the batch-size dependent).
* **training** doubles both: each blob also holds its gradient (Caffe's ``diff``), and so does
  each parameter; ``optimizer_slots`` adds that many more copies of the parameters (1 for SGD with
  momentum, 2 for Adam). **testing** holds values only.
* **total** = data + parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['MemoryReport', 'memory_report', 'memory_table', 'COUNTED_LAYERS']

MB = 2**20
# Layer classes whose outputs are new blobs (by class name, so any jaxseg.nn layer qualifies).
COUNTED_LAYERS = (
  'Conv',
  'ConvTranspose',
  'AtrousConv',
  'Dense',
  'MaxPool',
  'AvgPool',
  'LocalResponseNorm',
  'Maxout',
  'BatchNorm',
)
_MODES = ('train', 'test')


@dataclasses.dataclass(frozen=True)
class MemoryReport:
  """The memory of one network at one batch size, in one mode.

  Attributes:
    mode: ``'train'`` or ``'test'``.
    batch: the batch size.
    layers: ``(name, shape)`` of the input and every counted layer output, per example, in the
      order the network computes them.
    data_elements: ``batch * sum(prod(shape))`` over ``layers`` (values only).
    param_elements: number of parameters.
    data_mb: data memory in MB (doubled in training).
    params_mb: parameter memory in MB (doubled, plus optimizer slots, in training).
    total_mb: ``data_mb + params_mb``.
  """

  mode: str
  batch: int
  layers: tuple[tuple[str, tuple[int, ...]], ...]
  data_elements: int
  param_elements: int
  data_mb: float
  params_mb: float
  total_mb: float


def _layer_outputs(model: nn.Module, input_shape: tuple[int, ...]):
  example = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
  traced_order = []  # filled while tracing: eval_shape's output dicts come back key-sorted

  def run(x):
    variables = model.init(jax.random.key(0), x)
    _, state = model.apply(
      variables, x, capture_intermediates=_is_counted, mutable=['intermediates']
    )
    traced_order.extend(_walk(state.get('intermediates', {}), ()))
    return variables.get('params', {})

  params = jax.eval_shape(run, example)
  layers = [('input', tuple(input_shape))] + traced_order
  n_params = int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))
  return layers, n_params


def _walk(tree, path):
  """Yields ``(name, per-example shape)`` of captured outputs in the order they were computed."""
  if isinstance(tree, Mapping):
    for key, value in tree.items():  # at trace time dicts keep insertion (execution) order
      yield from _walk(value, path if key == '__call__' else path + (str(key),))
  elif isinstance(tree, (tuple, list)):
    for value in tree:
      yield from _walk(value, path)
  else:
    yield '/'.join(path), tuple(tree.shape[1:])


def _is_counted(module: nn.Module, method_name: str) -> bool:
  return method_name == '__call__' and type(module).__name__ in COUNTED_LAYERS


def memory_report(
  model: nn.Module,
  input_shape: Sequence[int],
  batch: int,
  mode: str,
  *,
  optimizer_slots: int = 0,
  bytes_per_element: int = 4,
) -> MemoryReport:
  """Counts a network's data and parameter memory, as the lecture's Table 1.

  ``data = s * b * (|input| + sum_layers |output|)``,
  ``params = (s + optimizer_slots) * |params|`` (``optimizer_slots`` only in training), with
  ``s = 2`` in training (values and gradients) and ``1`` in testing, ``b`` the batch, all times
  ``bytes_per_element / 2**20``. See the module docstring for which layers count.

  Args:
    model: a Flax module taking ``(N, *input_shape)`` and called as ``model(x, train=...)``.
    input_shape: one example's shape, e.g. ``(240, 320, 3)``.
    batch: examples per batch, positive.
    mode: ``'train'`` or ``'test'``.
    optimizer_slots: extra copies of the parameters kept by the optimizer in training.
    bytes_per_element: 4 for float32, 2 for bfloat16.

  Returns:
    A :class:`MemoryReport`.

  Example:
    >>> from jaxseg.models.saliency import SalNetDeep
    >>> round(memory_report(SalNetDeep(), (240, 320, 3), 1, 'test').params_mb, 2)
    98.44
  """
  if mode not in _MODES:
    raise ValueError(f'mode must be one of {_MODES}, got {mode!r}.')
  if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
    raise ValueError(f'batch must be a positive int, got {batch!r}.')
  if (
    not isinstance(input_shape, Sequence)
    or not input_shape
    or not all(isinstance(d, int) and d > 0 for d in input_shape)
  ):
    raise ValueError(
      f'input_shape must be a sequence of positive ints (H, W, C), got {input_shape!r}.'
    )
  if not isinstance(optimizer_slots, int) or optimizer_slots < 0:
    raise ValueError(f'optimizer_slots must be a non-negative int, got {optimizer_slots!r}.')
  layers, n_params = _layer_outputs(model, tuple(input_shape))
  data_elements = batch * int(sum(np.prod(shape) for _, shape in layers))
  copies = 2 if mode == 'train' else 1
  param_copies = copies + (optimizer_slots if mode == 'train' else 0)
  data_mb = copies * data_elements * bytes_per_element / MB
  params_mb = param_copies * n_params * bytes_per_element / MB
  return MemoryReport(
    mode=mode,
    batch=batch,
    layers=tuple(layers),
    data_elements=data_elements,
    param_elements=n_params,
    data_mb=data_mb,
    params_mb=params_mb,
    total_mb=data_mb + params_mb,
  )


def memory_table(
  models: Mapping[str, tuple[nn.Module, Sequence[int]]], batch: int, *, optimizer_slots: int = 0
) -> str:
  """The lecture's Table 1 for several networks: data, parameters, training and testing totals.

  Args:
    models: row name -> ``(model, input_shape)``.
    batch: examples per batch.
    optimizer_slots: as :func:`memory_report` (training totals only).

  Returns:
    A plain-text table in MB: ``Data`` and ``Parameters`` (testing: values only),
    ``Total training`` and ``Total testing``.

  Example::

    print(memory_table({'Shallow': (SalNetShallow(), (96, 96, 3)),
                        'Deep': (SalNetDeep(), (240, 320, 3))}, batch=1))
  """
  header = (
    f'{"Model":<10} {"Data MB":>10} {"Parameters MB":>14} {"Total train MB":>15} '
    f'{"Total test MB":>14}'
  )
  lines = [header, '-' * len(header)]
  for name, (model, shape) in models.items():
    test = memory_report(model, shape, batch, 'test')
    train = memory_report(model, shape, batch, 'train', optimizer_slots=optimizer_slots)
    lines.append(
      f'{name:<10} {test.data_mb:>10.2f} {test.params_mb:>14.2f} '
      f'{train.total_mb:>15.2f} {test.total_mb:>14.2f}'
    )
  return '\n'.join(lines)
