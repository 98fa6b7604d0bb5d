"""Exporting a trained model as serialised StableHLO with symbolic batch, height and width.

A model exported here runs without jaxseg, Flax or the training code: ``load_exported(path)``
needs only JAX. The exported function is ``x -> model.apply(variables, preprocess(x))[0]`` with
the variables embedded as constants, so one file is the whole artifact.

Spatial sizes are exported as multiples of ``spatial_multiple`` (``h = 32 * k``): every stride-2
layer of the networks then divides its input exactly, so the shapes along the network are
polynomials in ``k`` that JAX can compare (with free ``h`` the pad-to-32 of FCN and the residual
additions of ResNet compare ``floor`` expressions that are equal but not provably so). The loaded
callable pads other sizes bottom/right with zeros to the next multiple and crops the output back,
which is what FCN does inside the model and what whole-image inference
(``jaxseg.inference.segmentation.predict_whole``, ``bucket=32``) does for every model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import jax
from jax import export as jax_export
import jax.numpy as jnp
import numpy as np

_MAGIC = b'jaxseg-export-v1\n'


def _check_input_shape(input_shape: Any) -> tuple[Any, ...]:
  if (
    not isinstance(input_shape, (tuple, list))
    or len(input_shape) != 4
    or not isinstance(input_shape[3], int)
    or input_shape[3] < 1
  ):
    raise ValueError(
      f'input_shape must be NHWC (batch, height, width, channels) with int channels, e.g. '
      f"('b', 'h', 'w', 3), got {input_shape!r}."
    )
  for name, size in zip(('batch', 'height', 'width'), input_shape[:3]):
    if not (
      (isinstance(size, str) and size.isidentifier())
      or (isinstance(size, int) and not isinstance(size, bool) and size > 0)
    ):
      raise ValueError(
        f'input_shape {name} must be a positive int or a symbol name such as '
        f"'b', got {size!r} in {input_shape!r}."
      )
  return tuple(input_shape)


def _symbolic_shape(input_shape: tuple[Any, ...], multiple: int) -> tuple[Any, ...]:
  spec = []
  for axis, size in enumerate(input_shape[:3]):
    if isinstance(size, int):
      spec.append(str(size))
    elif axis == 0 or multiple == 1:
      spec.append(size)
    else:
      spec.append(f'{multiple}*{size}')
  return (*jax_export.symbolic_shape(', '.join(spec)), input_shape[3])


def export_model(
  model: Any,
  variables: Any,
  *,
  input_shape: Any = ('b', 'h', 'w', 3),
  dtype: Any = jnp.float32,
  spatial_multiple: int = 32,
  preprocess: Callable[[jax.Array], jax.Array] | None = None,
  platforms: tuple[str, ...] | None = None,
) -> jax_export.Exported:
  """Exports ``x -> model.apply(variables, preprocess(x))[0]`` as StableHLO with symbolic shapes.

  Height and width are exported as ``spatial_multiple * h`` and ``spatial_multiple * w`` (see
  the module docstring for why); ``load_exported`` pads any other size to the next multiple.

  Args:
    model: a jaxseg model (a Flax module returning ``(output, endpoints)``).
    variables: its variables (``{'params': ..., 'batch_stats': ...}``); embedded as constants.
    input_shape: NHWC; each of batch, height, width a symbol name (symbolic) or a positive int.
    dtype: the input dtype the exported function takes (``float32``, or ``uint8`` for raw images
      together with a ``preprocess`` that normalises them).
    spatial_multiple: the multiple symbolic heights and widths are exported as; 32 suits every
      jaxseg network (its largest stride), 1 exports free sizes (only for models without
      strided layers that must divide exactly).
    preprocess: optional traceable function applied to the input first (a run's normalisation,
      as returned by ``jaxseg.train.load_for_inference``).
    platforms: platforms to lower for (default: the current backend), e.g. ``('cpu', 'cuda')``.

  Returns:
    A ``jax.export.Exported``; ``save_exported`` writes it, ``load_exported`` reads it back.

  Example:
    >>> from jaxseg.models import get_model
    >>> model = get_model('fcn32s', num_classes=3, width_divisor=32)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> exported = export_model(model, variables)
    >>> [str(d) for d in exported.in_avals[0].shape]
    ['b', '32*h', '32*w', '3']
  """
  input_shape = _check_input_shape(input_shape)
  if (
    not isinstance(spatial_multiple, int)
    or isinstance(spatial_multiple, bool)
    or spatial_multiple < 1
  ):
    raise ValueError(f'spatial_multiple must be a positive int, got {spatial_multiple!r}.')
  if preprocess is not None and not callable(preprocess):
    raise TypeError(f'preprocess must be callable or None, got {type(preprocess).__name__}.')
  dtype = jnp.dtype(dtype)
  variables = jax.tree.map(jnp.asarray, variables)

  def forward(x):
    x = preprocess(x) if preprocess is not None else x
    output, _ = model.apply(variables, x)
    return output

  spec = jax.ShapeDtypeStruct(_symbolic_shape(input_shape, spatial_multiple), dtype)
  return jax_export.export(jax.jit(forward), platforms=platforms)(spec)


def save_exported(
  exported: jax_export.Exported, path: str | os.PathLike, *, pad_value: Any = 0.0
) -> None:
  """Writes an exported model to ``path`` (a small header, then JAX's serialisation).

  Args:
    exported: from ``export_model``.
    path: the file to write; its folder must exist.
    pad_value: the input value (scalar or per channel) ``load_exported`` pads with up to the
      spatial multiple: 0 for a network input; for a model exported with a ``preprocess``, the
      pixel that it maps to 0 (so the padding equals the model's own zero padding).
  """
  if not isinstance(exported, jax_export.Exported):
    raise TypeError(
      f'exported must be a jax.export.Exported (from export_model), got {type(exported).__name__}.'
    )
  folder = os.path.dirname(os.fspath(path)) or '.'
  if not os.path.isdir(folder):
    raise ValueError(f'path {os.fspath(path)!r}: folder {folder!r} does not exist.')
  pad = np.broadcast_to(np.asarray(pad_value, np.float64), (exported.in_avals[0].shape[3],))
  if not np.all(np.isfinite(pad)):
    raise ValueError(f'pad_value must be finite, got {pad_value!r}.')
  header = json.dumps({'pad_value': pad.tolist()}).encode() + b'\n'
  with open(path, 'wb') as f:
    f.write(_MAGIC)
    f.write(header)
    f.write(exported.serialize())


def _spatial_multiple(size: Any) -> int:
  """The largest power of two (<= 1024) dividing a symbolic size (1 for a free one)."""
  if not jax_export.is_symbolic_dim(size):
    return 1
  multiple = 1
  while multiple < 1024 and isinstance(size % (2 * multiple), int) and size % (2 * multiple) == 0:
    multiple *= 2
  return multiple


@dataclasses.dataclass(frozen=True)
class ExportedModel:
  """A loaded exported model: call it on an NHWC batch of any batch size, height and width.

  Attributes:
    exported: the ``jax.export.Exported``.
    multiples: ``(height, width)`` multiples the exported function takes; inputs of other sizes
      are padded bottom/right with ``pad_value`` and the output cropped back to the input size.
    pad_value: ``(C,)`` the padding value per input channel.
  """

  exported: jax_export.Exported
  multiples: tuple[int, int]
  pad_value: tuple[float, ...] = (0.0, 0.0, 0.0)

  def __call__(self, x: Any) -> jax.Array:
    aval = self.exported.in_avals[0]
    x = jnp.asarray(x, aval.dtype)
    if x.ndim != 4 or x.shape[3] != aval.shape[3]:
      raise ValueError(f'x must be NHWC with {aval.shape[3]} channels, got shape {x.shape}.')
    height, width = x.shape[1:3]
    pad_h = -height % self.multiples[0]
    pad_w = -width % self.multiples[1]
    padded = x
    if pad_h or pad_w:
      fill = jnp.asarray(self.pad_value, x.dtype)
      padded = jnp.broadcast_to(fill, (x.shape[0], height + pad_h, width + pad_w, x.shape[3]))
      padded = padded.at[:, :height, :width].set(x)
    output = self.exported.call(padded)
    if output.ndim == 4 and output.shape[1:3] == padded.shape[1:3]:
      output = output[:, :height, :width]
    return output


def load_exported(path: str | os.PathLike) -> ExportedModel:
  """Reads a model written by ``save_exported``; the result runs on any input size.

  Args:
    path: a file written by ``save_exported`` (``python -m experiments.export`` writes one).

  Returns:
    An ``ExportedModel``: ``load_exported(path)(images)`` returns the model's output, shape
    ``(N, H, W, K)`` for segmentation at the input's ``H, W``.

  Example:
    >>> import tempfile
    >>> from jaxseg.models import get_model
    >>> model = get_model('fcn32s', num_classes=3, width_divisor=32)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> path = os.path.join(tempfile.mkdtemp(), 'fcn.jaxexport')
    >>> save_exported(export_model(model, variables), path)
    >>> load_exported(path)(np.zeros((2, 45, 70, 3), np.float32)).shape
    (2, 45, 70, 3)
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f'path {os.fspath(path)!r} is not a file (expected a model written '
      'by jaxseg.export.save_exported or python -m experiments.export).'
    )
  with open(path, 'rb') as f:
    data = f.read()
  if not data.startswith(_MAGIC):
    raise ValueError(f'{os.fspath(path)!r} is not a jaxseg export (its header is not {_MAGIC!r}).')
  header_end = data.index(b'\n', len(_MAGIC))
  header = json.loads(data[len(_MAGIC) : header_end])
  exported = jax_export.deserialize(bytearray(data[header_end + 1 :]))
  shape = exported.in_avals[0].shape
  return ExportedModel(
    exported, (_spatial_multiple(shape[1]), _spatial_multiple(shape[2])), tuple(header['pad_value'])
  )
