"""Convolutions of a population: one plain convolution per member under ``jax.vmap``.

A population (:mod:`jaxseg.train.population`) trains ``K`` members of one model with a
``jax.vmap`` over their stacked parameters. ``vmap`` turns a convolution whose input and kernel
both carry the member axis into a grouped convolution (``feature_group_count = K``), which
XLA:CPU expands into a dense convolution with a block-diagonal kernel, ``K`` times the work:
measured on 2 CPU cores, the gradients of LeNet-5's second convolution for 8 members took 74 ms
vmapped against 21 ms as 8 plain convolutions. Inside :func:`per_member_convolutions`,
``jaxseg.ops.conv2d`` batches differently: with both operands batched it runs one plain
convolution per member (unrolled into the same program); with a shared input (the first layer
on the population's one batch) it keeps ``vmap``'s own form, a single convolution with the
members' filters side by side, which is cheaper per member than the member alone (6 output
channels per member become ``6 K``: 2.4 ms against 5.4 ms per member for LeNet-5's first layer).
Derivatives go through a custom VJP whose backward pass batches the same way (reverse mode only,
what training needs).

On CPUs, around such convolutions whose maps have few channels (the rule is in
``jaxseg/ops/conv.py``), :func:`members_beside_channels` keeps the member axis next to the
channels rather than in front, and :func:`add_bias` adds the bias without moving it back: the
first layer's patch matmul already writes its output in that order, and XLA:CPU's loops over
the maps after it (bias, activation, pooling and their derivatives) vectorise along the
contiguous members x channels instead of a few channels alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
from jax.extend import core as jex_core
from jax.interpreters import ad, batching, mlir

_ACTIVE = contextvars.ContextVar('jaxseg_per_member_convolutions', default=False)


@contextlib.contextmanager
def per_member_convolutions() -> Iterator[None]:
  """While tracing inside it, a vmapped ``conv2d`` runs one plain convolution per member.

  Applies to what is traced in the block (a jitted function traces at its first call, so the
  block belongs inside the traced function). Values are unchanged; only the batching rule
  differs (see the module docstring).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxseg import ops
    >>> def member(x, w):
    ...   with per_member_convolutions():
    ...     return ops.conv2d(x, w)
    >>> x, w = jnp.ones((3, 1, 6, 6, 2)), jnp.ones((3, 3, 3, 2, 4))
    >>> bool(jnp.allclose(jax.vmap(member)(x, w), jax.vmap(ops.conv2d)(x, w)))
    True
  """
  token = _ACTIVE.set(True)
  try:
    yield
  finally:
    _ACTIVE.reset(token)


def active() -> bool:
  """Whether :func:`per_member_convolutions` is on in this context."""
  return _ACTIVE.get()


def per_member(
  conv: Callable[[jax.Array, jax.Array], jax.Array],
  *,
  shared_input_conv: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
  maps_beside_channels: tuple[bool, bool] = (False, False),
) -> Callable:
  """``conv(x, w)`` with the member-wise batching rule, forward and backward.

  Args:
    conv: a convolution of one member, ``(x, w) -> y``, static arguments bound.
    shared_input_conv: the same convolution in another formulation (same values), which the
      batching rule ``vmap``s instead of ``conv`` when the input is shared by the members and
      only the kernel is batched (the first layer of a population); None keeps ``conv``.
    maps_beside_channels: ``(input, output)``: run once per member (both operands batched),
      stack the members' input cotangents and output maps, each where true, as
      ``(N, H, W, K, C)`` in memory, for a caller that puts the member axis there with
      :func:`members_beside_channels`.

  Returns:
    The same function under ``jax.custom_vjp``, its forward and backward passes under
    ``jax.custom_batching.custom_vmap`` with :func:`_member_rule`.
  """
  shared_input_conv = shared_input_conv or conv
  forward = jax.custom_batching.custom_vmap(conv)
  input_beside, output_beside = maps_beside_channels
  forward.def_vmap(functools.partial(_member_rule, conv, shared_input_conv, output_beside))

  def cotangents_of(fn):
    return lambda x, w, dy: jax.vjp(fn, x, w)[1](dy)

  cotangents = cotangents_of(conv)
  backward = jax.custom_batching.custom_vmap(cotangents)
  backward.def_vmap(
    functools.partial(
      _member_rule,
      cotangents,
      cotangents_of(shared_input_conv),
      (input_beside, False),  # (dx: a map, dw: a kernel)
    )
  )

  @jax.custom_vjp
  def member_conv(x, w):
    return forward(x, w)

  member_conv.defvjp(lambda x, w: (forward(x, w), (x, w)), lambda res, dy: backward(*res, dy))
  return member_conv


def _stack_members(beside_channels: bool, *rows: jax.Array) -> jax.Array:
  """The members' results stacked on a leading axis; a map's written ``(N, H, W, K, C)`` in
  memory when ``beside_channels`` (the transpose back to the front then cancels against
  :func:`members_beside_channels`'s, and no map is copied between the two layouts)."""
  if not beside_channels:
    return jnp.stack(rows)
  return jnp.moveaxis(jnp.stack(rows, axis=rows[0].ndim - 1), rows[0].ndim - 1, 0)


def _member_rule(
  fn: Callable,
  shared_input_fn: Callable,
  beside_channels: Any,
  axis_size: int,
  in_batched: list[bool],
  *args: Any,
):
  """``vmap`` of ``fn``: once per member when every operand is batched (``beside_channels``, a
  bool per output, says which are maps to stack beside their channels), else ``vmap``'s form
  (a shared operand folds the members into the other's channels or batch: no grouping), of
  ``shared_input_fn`` when the shared operand is the input (the first argument)."""
  if all(in_batched):
    outputs = [fn(*(a[i] for a in args)) for i in range(axis_size)]
    out = jax.tree.map(_stack_members, beside_channels, *outputs)
  else:
    chosen = shared_input_fn if not in_batched[0] and all(in_batched[1:]) else fn
    out = jax.vmap(chosen, in_axes=tuple(0 if b else None for b in in_batched))(*args)
  return out, jax.tree.map(lambda _: True, out)


# ---------------------------------------------------------------------------------------------
# The member axis beside the channels.

_beside_channels_p = jex_core.Primitive('members_beside_channels')
_beside_channels_p.def_impl(lambda x: x)
_beside_channels_p.def_abstract_eval(lambda x: x)
mlir.register_lowering(_beside_channels_p, lambda ctx, x: [x])


def _beside_channels_batch_rule(args, dims):
  (x,), (dim,) = args, dims
  if dim is None or x.ndim < 2:  # not mapped, or nothing to move
    return _beside_channels_p.bind(x), dim
  target = x.ndim - 2
  return _beside_channels_p.bind(jnp.moveaxis(x, dim, target)), target


batching.primitive_batchers[_beside_channels_p] = _beside_channels_batch_rule
# Linear, and its own transpose: a cotangent flowing back through it is moved beside the
# channels too, so the backward pass keeps the layout of the forward one.
ad.deflinear2(_beside_channels_p, lambda ct, x: [_beside_channels_p.bind(ct)])


def members_beside_channels(x: jax.Array) -> jax.Array:
  """The identity, whose ``vmap`` puts the mapped (member) axis just before the last one.

  ``vmap`` batches most operations with the mapped axis where their operands have it, and
  moves it to the front when they disagree; :func:`per_member`'s batching rule returns it in
  front. Applied to a population's convolution outputs (and inputs, for their cotangents) of
  few channels, this
  makes a member-stacked map ``(N, H, W, K, C)`` in memory instead of ``(K, N, H, W, C)``, the
  order the shared first layer's patch matmul writes (rows ``N H W``, columns ``K C``).
  Elementwise operations and windowed reductions along ``H`` and ``W`` after it then run on
  ``K C`` contiguous values (issue 16, LeNet-5's population of 8: bias, ReLU and 2x2 max pool
  over ``(8, 64, 28, 28, 6)``, forward and backward, 5.8 ms against 1.8 ms on ``K C = 48``
  contiguous channels). Values and derivatives are unchanged (it is linear: its transpose is
  itself, so cotangents flowing back through it move the same way).

  Args:
    x: any array of rank >= 1 (its last axis the channels).

  Returns:
    ``x``.

  Example:
    >>> x = jnp.zeros((8, 2, 5, 5, 6))   # 8 members' maps, each (N, H, W, C)
    >>> y = jax.vmap(members_beside_channels)(x)
    >>> y.shape, bool((y == x).all())
    ((8, 2, 5, 5, 6), True)
  """
  return _beside_channels_p.bind(x)


def add_bias(y: jax.Array, b: jax.Array | None) -> jax.Array:
  """``y + b`` over the last axis, keeping :func:`members_beside_channels`'s layout.

  A plain ``y + b`` broadcasts ``b`` first, a new array that ``vmap`` batches with the member
  axis in front; adding it to ``y`` would move ``y``'s member axis to the front as well.

  Args:
    y: ``(..., C)``.
    b: ``(C,)`` or None.

  Returns:
    ``y + b`` (``y`` when ``b`` is None), dtype of ``y``.

  Example:
    >>> y, b = jnp.zeros((8, 2, 3, 3, 4)), jnp.arange(32.0).reshape(8, 4)
    >>> out = jax.vmap(lambda y_, b_: add_bias(members_beside_channels(y_), b_))(y, b)
    >>> out[1, 0, 0, 0].tolist()
    [4.0, 5.0, 6.0, 7.0]
  """
  if b is None:
    return y
  return y + members_beside_channels(jnp.broadcast_to(jnp.asarray(b, y.dtype), y.shape))
