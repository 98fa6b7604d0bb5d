"""jaxseg.ops.member_conv: a population's convolutions, one plain convolution per member."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import ops
from jaxseg.ops import conv as conv_module
from jaxseg.ops import member_conv

MEMBERS = 3


def _loss(params, images):
  """Two convolutions: the first on the shared images, the second on per-member activations."""
  h = jax.nn.relu(ops.conv2d(images, params['w1'], params['b1'], padding=1))
  h = ops.conv2d(h, params['w2'], stride=2, dilation=1)
  return jnp.mean(jnp.tanh(h) ** 2)


def _members_and_images():
  keys = jax.random.split(jax.random.key(0), 4)
  params = {
    'w1': jax.random.normal(keys[0], (MEMBERS, 3, 3, 2, 4)),
    'b1': jax.random.normal(keys[1], (MEMBERS, 4)),
    'w2': jax.random.normal(keys[2], (MEMBERS, 3, 3, 4, 5)) / 4,
  }
  return params, jax.random.normal(keys[3], (2, 9, 9, 2))


def _per_member_grads(loss):
  def member(p, x):
    with member_conv.per_member_convolutions():
      return jax.value_and_grad(loss)(p, x)

  return jax.jit(jax.vmap(member, in_axes=(0, None)))


def _assert_each_member_equals_alone(loss, params, images, losses, grads):
  """Member k's loss and gradients equal ``loss``'s on its own parameters, run alone."""
  for k in range(MEMBERS):
    alone = jax.tree.map(lambda a, k=k: a[k], params)
    value, grad = jax.value_and_grad(loss)(alone, images)
    np.testing.assert_allclose(losses[k], value, rtol=1e-6)
    jax.tree.map(
      lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-6), grads, grad
    )


def test_values_and_gradients_equal_each_member_alone():
  params, images = _members_and_images()
  losses, grads = _per_member_grads(_loss)(params, images)
  _assert_each_member_equals_alone(_loss, params, images, losses, grads)


def test_no_grouped_convolution_is_left_in_the_program():
  params, images = _members_and_images()
  grouped = f'feature_group_count = {MEMBERS}'
  plain = jax.jit(jax.vmap(jax.value_and_grad(_loss), in_axes=(0, None)))
  assert grouped in plain.lower(params, images).as_text()  # what vmap alone makes
  text = _per_member_grads(_loss).lower(params, images).as_text()
  assert 'convolution' in text and grouped not in text


def test_large_maps_keep_xla_kernel_gradient_in_a_population():
  # conv2d's kernel gradient by taps (112 x 112 maps, 128 outputs) is a custom JVP that cannot
  # hold a per-member convolution (reverse mode would transpose its custom VJP): a population
  # takes XLA's convolution there, with the same values.
  keys = jax.random.split(jax.random.key(1), 3)
  params = {
    'w1': jax.random.normal(keys[0], (2, 3, 3, 2, 4)) / 4,
    'w2': jax.random.normal(keys[1], (2, 3, 3, 4, 128)) / 8,
  }
  x = jax.random.normal(keys[2], (1, 112, 112, 2))

  def loss(p, x):
    h = ops.conv2d(x, p['w1'], padding=1)
    return jnp.mean(ops.conv2d(h, p['w2'], padding=1) ** 2)

  grads = _per_member_grads(loss)(params, x)[1]
  alone = jax.jit(jax.grad(loss))
  for k in range(2):
    jax.tree.map(
      lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-6),
      grads,
      alone(jax.tree.map(lambda a, k=k: a[k], params), x),
    )


def _spy_on_patches(monkeypatch):
  """Records the input shape of every patch-matmul convolution traced from now on, with
  conv.py's input gradient by patches (which traces them too) turned off."""
  monkeypatch.setattr(conv_module, '_input_gradient_by_patches_pays', lambda *args: False)
  shapes = []
  original = conv_module._conv_by_patches  # pylint: disable=protected-access

  def spy(x, w, *args, **kwargs):
    shapes.append(tuple(x.shape))
    return original(x, w, *args, **kwargs)

  monkeypatch.setattr(conv_module, '_conv_by_patches', spy)
  return shapes


def test_shared_input_patch_matmul_equals_each_member_alone(monkeypatch):
  # 5x5 over 3 channels (75 patch columns), strided and padded: the shared images take the
  # patch matmul, the second layer (batched input, 5x5x4 = 100 columns) one convolution per member.
  shapes = _spy_on_patches(monkeypatch)
  keys = jax.random.split(jax.random.key(2), 4)
  params = {
    'w1': jax.random.normal(keys[0], (MEMBERS, 5, 5, 3, 4)) / 4,
    'b1': jax.random.normal(keys[1], (MEMBERS, 4)),
    'w2': jax.random.normal(keys[2], (MEMBERS, 5, 5, 4, 3)) / 8,
  }
  images = jax.random.normal(keys[3], (2, 11, 11, 3))

  def loss(p, x):
    h = jax.nn.relu(ops.conv2d(x, p['w1'], p['b1'], stride=2, padding=((2, 1), (1, 2))))
    return jnp.mean(jnp.tanh(ops.conv2d(h, p['w2'], padding=2)) ** 2)

  losses, grads = _per_member_grads(loss)(params, images)
  assert shapes and set(shapes) == {images.shape}  # only the shared input, forward and backward
  shapes.clear()
  _assert_each_member_equals_alone(loss, params, images, losses, grads)
  assert not shapes  # a single run keeps XLA's convolution there


@pytest.mark.parametrize(
  'window, channels, routed',
  [
    (5, 3, True),
    (8, 1, True),
    (4, 4, True),
    (3, 7, False),
    (7, 1, False),
    (3, 56, True),
    (3, 57, False),
    (5, 2, False),
  ],
)
def test_shared_input_patch_rule_takes_64_to_512_columns(monkeypatch, window, channels, routed):
  # 8x8 = 64 and 3x3x56 = 504 columns in; 3x3x7 = 63, 7x7 = 49, 5x5x2 = 50 and 3x3x57 = 513 out.
  shapes = _spy_on_patches(monkeypatch)
  w = jnp.ones((MEMBERS, window, window, channels, 2))
  x = jnp.ones((1, 9, 9, channels))
  _per_member_grads(lambda w, x: jnp.sum(ops.conv2d(x, w)))(w, x)
  assert bool(shapes) == routed


def test_shared_input_patch_rule_is_for_cpus_and_plain_convolutions(monkeypatch):
  shapes = _spy_on_patches(monkeypatch)
  x = jnp.ones((1, 9, 9, 6))
  grouped = lambda w, x: jnp.sum(ops.conv2d(x, w, groups=2))  # noqa: E731
  _per_member_grads(grouped)(jnp.ones((MEMBERS, 5, 5, 3, 4)), x)
  assert not shapes  # 75 columns, but two groups: XLA's grouped convolution
  _per_member_grads(lambda w, x: jnp.sum(ops.conv2d(x, w)))(jnp.ones((MEMBERS, 5, 5, 6, 2)), x)
  assert shapes  # the same columns without groups
  shapes.clear()
  monkeypatch.setattr(conv_module, '_traced_for_cpu', lambda: False)
  _per_member_grads(lambda w, x: jnp.sum(ops.conv2d(x, w)))(jnp.ones((MEMBERS, 5, 5, 6, 2)), x)
  assert not shapes  # accelerators keep XLA's (grouped) convolution


def test_a_shared_kernel_over_members_inputs_keeps_xla_convolution(monkeypatch):
  # The rule is for the members' one batch: a kernel shared over per-member inputs (a fixed
  # filter in each member's network) stays vmap's convolution, even at 75 patch columns.
  shapes = _spy_on_patches(monkeypatch)

  def member(x, w):
    with member_conv.per_member_convolutions():
      return jax.grad(lambda x: jnp.sum(ops.conv2d(x, w) ** 2))(x)

  x, w = jnp.ones((MEMBERS, 1, 9, 9, 3)), jnp.ones((5, 5, 3, 2))
  grads = jax.jit(jax.vmap(member, in_axes=(0, None)))(x, w)
  assert not shapes
  np.testing.assert_allclose(grads[0], jax.grad(lambda x: jnp.sum(ops.conv2d(x, w) ** 2))(x[0]))


# The member axis beside the channels (members_beside_channels, add_bias, ops.relu, max_pool).


def _first_block_then_conv(params, images):
  """LeNet-5's first block (conv on the shared images + bias, ReLU, 2x2 max pool), then a
  per-member convolution."""
  h = ops.max_pool(ops.relu(ops.conv2d(images, params['w1'], params['b1'])), 2)
  h = ops.conv2d(h, params['w2'], stride=2)
  return jnp.mean(jnp.tanh(h) ** 2)


def _equations(jaxpr):
  """Every equation of ``jaxpr`` and of the jaxprs inside its equations (jit, custom rules)."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (list, tuple)) else (value,):
        sub = getattr(sub, 'jaxpr', sub)  # a ClosedJaxpr's Jaxpr
        if hasattr(sub, 'eqns'):
          yield from _equations(sub)


def _rank5_shapes(jaxpr, primitive: str) -> list[tuple[int, ...]]:
  """Output shapes of the rank-5 (member-stacked map) equations named ``primitive``."""
  return [
    v.aval.shape
    for eqn in _equations(jaxpr)
    if eqn.primitive.name == primitive
    for v in eqn.outvars
    if len(v.aval.shape) == 5
  ]


def test_members_beside_channels_is_the_identity_and_moves_the_mapped_axis():
  x = jax.random.normal(jax.random.key(1), (MEMBERS, 2, 5, 5, 4))
  np.testing.assert_array_equal(member_conv.members_beside_channels(x), x)
  np.testing.assert_array_equal(jax.jit(jax.vmap(member_conv.members_beside_channels))(x), x)
  # Batched, the member axis lands just before the channels: one transpose there, and none
  # back when the caller takes the result with its member axis there.
  beside = jax.vmap(member_conv.members_beside_channels, out_axes=3)
  np.testing.assert_array_equal(beside(x), np.moveaxis(x, 0, 3))
  jaxpr = jax.make_jaxpr(beside)(x).jaxpr
  assert [e.params['permutation'] for e in jaxpr.eqns if e.primitive.name == 'transpose'] == [
    (1, 2, 3, 0, 4)
  ]
  # Linear and its own transpose: gradients and tangents pass unchanged, also vmapped.
  ct = jax.random.normal(jax.random.key(2), x.shape)
  _, vjp = jax.vjp(jax.vmap(member_conv.members_beside_channels), x)
  np.testing.assert_array_equal(vjp(ct)[0], ct)
  _, tangent = jax.jvp(jax.vmap(member_conv.members_beside_channels), (x,), (ct,))
  np.testing.assert_array_equal(tangent, ct)


def test_add_bias_keeps_the_layout_and_adds_per_member():
  y = jax.random.normal(jax.random.key(3), (MEMBERS, 2, 3, 3, 4))
  b = jax.random.normal(jax.random.key(4), (MEMBERS, 4))

  def member(y_, b_):
    return member_conv.add_bias(member_conv.members_beside_channels(y_), b_)

  np.testing.assert_array_equal(jax.vmap(member)(y, b), y + b[:, None, None, None, :])
  np.testing.assert_array_equal(member_conv.add_bias(y[0], None), y[0])
  jaxpr = jax.make_jaxpr(jax.vmap(member))(y, b).jaxpr
  assert _rank5_shapes(jaxpr, 'add') == [(2, 3, 3, MEMBERS, 4)]


def test_a_population_block_runs_with_members_beside_channels_both_ways():
  """Bias, ReLU and max pool, forward and backward, on (N, H, W, K, C): no map of the first
  convolution's size is moved to (K, N, H, W, C) on the way (see member_conv)."""
  params, images = _members_and_images()
  grads = _per_member_grads(_first_block_then_conv)
  jaxpr = jax.make_jaxpr(grads)(params, images).jaxpr
  n, c, size = images.shape[0], params['w1'].shape[-1], images.shape[1] - 2
  beside = {}  # primitive -> does each of its first-layer-sized maps have (N, ., ., K, C)?
  for eqn in _equations(jaxpr):
    for v in eqn.outvars:
      shape = v.aval.shape
      if len(shape) == 5 and shape[-1] == c and size in shape[1:4]:
        ok = shape[0] == n and shape[3] == MEMBERS
        beside.setdefault(eqn.primitive.name, set()).add(ok)
  # Computed beside the channels, forward and backward: the bias, ReLU, pool and their masks.
  for primitive in ('add', 'max', 'reduce_window_max', 'pad', 'mul'):
    assert beside.get(primitive) == {True}, (primitive, beside.get(primitive))
  # In front only where a map enters or leaves a convolution's rule, and the bias's broadcast.
  moved_to_front = {name for name, ok in beside.items() if False in ok}
  assert moved_to_front <= {'transpose', 'broadcast_in_dim'}, moved_to_front

  def first_maps(primitive):
    return [s for s in _rank5_shapes(jaxpr, primitive) if s[-1] == c and size in s[1:4]]

  assert (n, size, size, MEMBERS, c) in first_maps('max')  # the ReLU, on the whole map
  # The second convolution's members' input gradients are stacked beside the channels, so no
  # map is copied from one layout into the other (per_member's maps_beside_channels).
  pooled = size // 2
  assert [s for s in _rank5_shapes(jaxpr, 'stack') if s[-1] == c] == [
    (n, pooled, pooled, MEMBERS, c)
  ]
  losses, member_grads = grads(params, images)
  _assert_each_member_equals_alone(_first_block_then_conv, params, images, losses, member_grads)


def test_the_layout_is_for_cpus(monkeypatch):
  params, images = _members_and_images()
  on_cpu = jax.make_jaxpr(_per_member_grads(_loss))(params, images).jaxpr
  assert any(e.primitive.name == 'members_beside_channels' for e in _equations(on_cpu))
  monkeypatch.setattr(conv_module, '_traced_for_cpu', lambda: False)
  elsewhere = jax.make_jaxpr(_per_member_grads(_loss))(params, images).jaxpr
  assert not any(e.primitive.name == 'members_beside_channels' for e in _equations(elsewhere))


@pytest.mark.parametrize('features, beside', [(7, True), (8, False)])
def test_maps_of_fewer_than_8_channels_go_beside_them(features, beside):
  """The rule (conv.py, _FEW_CHANNELS_TO_VECTORISE): 7 output channels are laid out
  (N, H, W, K, C), 8 keep vmap's (K, N, H, W, C) with nothing moved."""
  params, images = _members_and_images()
  params = {
    'w1': jax.random.normal(jax.random.key(5), (MEMBERS, 3, 3, 2, features)),
    'b1': jnp.zeros((MEMBERS, features)),
    'w2': jax.random.normal(jax.random.key(6), (MEMBERS, 3, 3, features, 8)) / 4,  # not moved
  }
  jaxpr = jax.make_jaxpr(_per_member_grads(_first_block_then_conv))(params, images).jaxpr
  n, size = images.shape[0], images.shape[1] - 2
  expected = (n, size, size, MEMBERS, features) if beside else (MEMBERS, n, size, size, features)
  assert [s for s in _rank5_shapes(jaxpr, 'max') if s[-1] == features] == [expected]
  moved = [  # the shared images (rank 4) may pass a marker, which leaves them alone
    e
    for e in _equations(jaxpr)
    if e.primitive.name == 'members_beside_channels'
    if len(e.outvars[0].aval.shape) == 5
  ]
  assert bool(moved) == beside
  losses, grads = _per_member_grads(_first_block_then_conv)(params, images)
  _assert_each_member_equals_alone(_first_block_then_conv, params, images, losses, grads)
