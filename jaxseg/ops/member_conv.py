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
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

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
) -> Callable:
  """``conv(x, w)`` with the member-wise batching rule, forward and backward.

  Args:
    conv: a convolution of one member, ``(x, w) -> y``, static arguments bound.
    shared_input_conv: the same convolution in another formulation (same values), which the
      batching rule ``vmap``s instead of ``conv`` when the input is shared by the members and
      only the kernel is batched (the first layer of a population); None keeps ``conv``.

  Returns:
    The same function under ``jax.custom_vjp``, its forward and backward passes under
    ``jax.custom_batching.custom_vmap`` with :func:`_member_rule`.
  """
  shared_input_conv = shared_input_conv or conv
  forward = jax.custom_batching.custom_vmap(conv)
  forward.def_vmap(functools.partial(_member_rule, conv, shared_input_conv))

  def cotangents_of(fn):
    return lambda x, w, dy: jax.vjp(fn, x, w)[1](dy)

  cotangents = cotangents_of(conv)
  backward = jax.custom_batching.custom_vmap(cotangents)
  backward.def_vmap(functools.partial(_member_rule, cotangents, cotangents_of(shared_input_conv)))

  @jax.custom_vjp
  def member_conv(x, w):
    return forward(x, w)

  member_conv.defvjp(lambda x, w: (forward(x, w), (x, w)), lambda res, dy: backward(*res, dy))
  return member_conv


def _member_rule(
  fn: Callable, shared_input_fn: Callable, axis_size: int, in_batched: list[bool], *args: Any
):
  """``vmap`` of ``fn``: once per member when every operand is batched, else ``vmap``'s form
  (a shared operand folds the members into the other's channels or batch: no grouping), of
  ``shared_input_fn`` when the shared operand is the input (the first argument)."""
  if all(in_batched):
    outputs = [fn(*(a[i] for a in args)) for i in range(axis_size)]
    out = jax.tree.map(lambda *rows: jnp.stack(rows), *outputs)
  else:
    chosen = shared_input_fn if not in_batched[0] and all(in_batched[1:]) else fn
    out = jax.vmap(chosen, in_axes=tuple(0 if b else None for b in in_batched))(*args)
  return out, jax.tree.map(lambda _: True, out)
