"""jaxseg.nn layers: outputs equal the ops' for the same parameters; shapes and inits pinned."""

import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpy_reference as ref
from jaxseg import nn, ops

TOL = 1e-5
KEY = jax.random.key(0)


def _x(shape=(2, 9, 8, 4), seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize(
  'layer, op_kwargs, kernel_shape',
  [
    (nn.Conv(6, 3, padding=1), dict(padding=1), (3, 3, 4, 6)),
    (
      nn.Conv(6, (3, 2), stride=2, padding='SAME', groups=2),
      dict(stride=2, padding='SAME', groups=2),
      (3, 2, 2, 6),
    ),
    (nn.Conv(8, 3, dilation=2, groups=4), dict(dilation=2, groups=4), (3, 3, 1, 8)),
    (nn.Conv(5, 1, stride=2), dict(stride=2), (1, 1, 4, 5)),
  ],
)
def test_conv_equals_op(layer, op_kwargs, kernel_shape):
  x = _x()
  y, variables = layer.init_with_output(KEY, x)
  params = variables['params']
  assert jax.tree.map(jnp.shape, params) == {'kernel': kernel_shape, 'bias': (kernel_shape[3],)}
  assert params['kernel'].dtype == jnp.float32
  bias = jax.random.normal(jax.random.key(1), params['bias'].shape)  # non-zero bias matters
  params = {'kernel': params['kernel'], 'bias': bias}
  y = layer.apply({'params': params}, x)
  expected = ops.conv2d(x, params['kernel'], bias, **op_kwargs)
  assert ref.relative_error(y, expected) < TOL


def test_conv_without_bias_and_custom_init():
  layer = nn.Conv(3, 2, use_bias=False, kernel_init=nn.constant(0.5))
  y, variables = layer.init_with_output(KEY, jnp.ones((1, 3, 3, 2)))
  assert set(variables['params']) == {'kernel'}
  np.testing.assert_allclose(y, np.full((1, 2, 2, 3), 2 * 2 * 2 * 0.5))


def test_conv_compute_dtype():
  """dtype=bfloat16 computes in bfloat16 while the parameters stay float32."""
  layer = nn.Conv(6, 3, padding=1, dtype=jnp.bfloat16)
  x = _x()
  y, variables = layer.init_with_output(KEY, x)
  assert y.dtype == jnp.bfloat16
  assert variables['params']['kernel'].dtype == jnp.float32
  p = variables['params']
  expected = ops.conv2d(
    x.astype(jnp.bfloat16),
    p['kernel'].astype(jnp.bfloat16),
    p['bias'].astype(jnp.bfloat16),
    padding=1,
  )
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(expected, np.float32))


def test_options_are_keyword_only():
  with pytest.raises(TypeError):
    nn.Conv(8, 3, 2)  # stride passed positionally
  with pytest.raises(TypeError):
    nn.MaxPool(2, 2)


def test_conv_bad_groups():
  with pytest.raises(
    ValueError,
    match=r'groups=3 must be a positive int dividing the input '
    r'channels 4',
  ):
    nn.Conv(6, 3, groups=3).init(KEY, _x())
  with pytest.raises(ValueError, match=r'Conv input x must have rank 4'):
    nn.Conv(6, 3).init(KEY, jnp.ones((9, 8, 4)))


def test_conv_transpose_equals_op():
  layer = nn.ConvTranspose(3, (4, 3), stride=2, padding=1, output_padding=1)
  x = _x((2, 3, 4, 4))
  y, variables = layer.init_with_output(KEY, x)
  params = variables['params']
  assert jax.tree.map(jnp.shape, params) == {'kernel': (4, 3, 4, 3), 'bias': (3,)}
  bias = jnp.arange(3.0)
  y = layer.apply({'params': {'kernel': params['kernel'], 'bias': bias}}, x)
  expected = ops.conv_transpose2d(x, params['kernel'], bias, stride=2, padding=1, output_padding=1)
  assert y.shape == (2, 7, 8, 3)
  assert ref.relative_error(y, expected) < TOL


def test_conv_transpose_bilinear_init_and_frozen():
  x = _x((1, 3, 3, 5))
  learnable = nn.ConvTranspose(5, 4, stride=2, padding=1, kernel_init='bilinear')
  variables = learnable.init(KEY, x)
  np.testing.assert_array_equal(variables['params']['kernel'], ops.bilinear_kernel(4, 5))
  np.testing.assert_array_equal(variables['params']['bias'], np.zeros(5))
  frozen = nn.ConvTranspose(5, 4, stride=2, padding=1, kernel_init='bilinear', frozen=True)
  y, frozen_variables = frozen.init_with_output(KEY, x)
  assert frozen_variables == {}  # no parameter at all, not even a bias
  expected = ops.conv_transpose2d(x, ops.bilinear_kernel(4, 5), stride=2, padding=1)
  assert ref.relative_error(y, expected) < TOL
  # The initializer function works like the string.
  same = nn.ConvTranspose(5, 4, stride=2, padding=1, kernel_init=nn.bilinear, frozen=True)
  np.testing.assert_array_equal(same.apply({}, x), y)


@pytest.mark.parametrize(
  'layer, match',
  [
    (nn.ConvTranspose(5, 4, frozen=True), r"frozen=True needs kernel_init='bilinear'"),
    (nn.ConvTranspose(5, 4, kernel_init='nearest'), r"must be 'bilinear', got 'nearest'"),
    (
      nn.ConvTranspose(5, 4, kernel_init='bilinear', frozen=True, use_bias=True),
      r'frozen=True has no parameters',
    ),
    (nn.ConvTranspose(6, 4, kernel_init='bilinear'), r'\(k, k, C, C\) kernel .* \(4, 4, 5, 6\)'),
  ],
)
def test_conv_transpose_errors(layer, match):
  with pytest.raises(ValueError, match=match):
    layer.init(KEY, _x((1, 3, 3, 5)))


def test_atrous_conv_equals_op():
  layer = nn.AtrousConv(7, 3, rate=2)
  x = _x()
  y, variables = layer.init_with_output(KEY, x)
  p = variables['params']
  assert jax.tree.map(jnp.shape, p) == {'kernel': (3, 3, 4, 7), 'bias': (7,)}
  assert y.shape == (2, 9, 8, 7)
  assert ref.relative_error(y, ops.atrous_conv2d(x, p['kernel'], p['bias'], rate=2)) < TOL


def test_dense_equals_matmul():
  layer = nn.Dense(5)
  x = _x((3, 7))
  y, variables = layer.init_with_output(KEY, x)
  p = variables['params']
  assert jax.tree.map(jnp.shape, p) == {'kernel': (7, 5), 'bias': (5,)}
  bias = jnp.arange(5.0)
  y = layer.apply({'params': {'kernel': p['kernel'], 'bias': bias}}, x)
  expected = np.asarray(x, np.float64) @ np.asarray(p['kernel'], np.float64) + np.arange(5.0)
  assert ref.relative_error(y, expected) < TOL
  assert layer.apply(variables, _x((2, 4, 7))).shape == (2, 4, 5)  # leading batch axes


def test_parameter_free_layers_equal_ops():
  x = _x()
  cases = [
    (
      nn.MaxPool(3, stride=2, padding=1, ceil_mode=True),
      ops.max_pool(x, 3, stride=2, padding=1, ceil_mode=True),
    ),
    (
      nn.AvgPool(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
      ops.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ),
    (
      nn.LocalResponseNorm(size=3, alpha=0.5, beta=0.75, k=2.0),
      ops.local_response_norm(x, size=3, alpha=0.5, beta=0.75, k=2.0),
    ),
  ]
  for layer, expected in cases:
    y, variables = layer.init_with_output(KEY, x)
    assert variables == {}
    np.testing.assert_array_equal(y, expected)


def _std(sample):
  return float(np.std(np.asarray(sample, np.float64)))


def test_initializer_statistics():
  shape = (3, 3, 64, 256)  # fan_in 576, fan_out 2304; 147k samples: std known to ~0.2%
  fan_in, fan_out = 3 * 3 * 64, 3 * 3 * 256
  w = nn.he_normal()(KEY, shape)
  assert w.shape == shape and w.dtype == jnp.float32
  assert _std(w) == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
  assert np.abs(w).max() > 4 * np.sqrt(2 / fan_in)  # untruncated Gaussian (He et al., Caffe)
  assert _std(nn.he_normal(mode='fan_out')(KEY, shape)) == pytest.approx(
    np.sqrt(2 / fan_out), rel=0.02
  )
  bound = np.sqrt(6 / fan_in)
  u = np.asarray(nn.he_uniform()(KEY, shape))
  assert u.max() <= bound and u.max() > 0.99 * bound and u.min() >= -bound
  assert _std(nn.lecun_normal()(KEY, shape)) == pytest.approx(np.sqrt(1 / fan_in), rel=0.02)
  assert _std(nn.normal(0.01)(KEY, shape)) == pytest.approx(0.01, rel=0.02)
  np.testing.assert_array_equal(nn.constant(0.1)(KEY, (3,)), np.full(3, 0.1, np.float32))
  np.testing.assert_array_equal(nn.zeros(KEY, (2, 2)), np.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"mode must be one of .* got 'fan_mid'"):
    nn.he_normal(mode='fan_mid')


def test_default_inits():
  """Conv defaults to He normal (fan-in), Dense to LeCun normal; biases to zero."""
  conv = nn.Conv(256, 3).init(KEY, jnp.ones((1, 3, 3, 64)))['params']
  assert _std(conv['kernel']) == pytest.approx(np.sqrt(2 / 576), rel=0.02)
  assert not np.asarray(conv['bias']).any()
  dense = nn.Dense(512).init(KEY, jnp.ones((1, 1024)))['params']
  assert _std(dense['kernel']) == pytest.approx(np.sqrt(1 / 1024), rel=0.02)


def test_batch_norm_defaults_match_pytorch():
  bn = nn.BatchNorm(use_running_average=False)
  assert isinstance(bn, flax_nn.BatchNorm)
  assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)
  x = _x((8, 3, 3, 4)) * 3 + 1
  y, state = bn.init_with_output(KEY, x)
  y, updates = bn.apply(state, x, mutable=['batch_stats'])
  x64 = np.asarray(x, np.float64)
  mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
  assert ref.relative_error(y, (x64 - mean) / np.sqrt(var + 1e-5)) < 1e-4
  np.testing.assert_allclose(updates['batch_stats']['mean'], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'], 0.9 + 0.1 * var, rtol=1e-5)
  torch = pytest.importorskip('torch')
  torch_bn = torch.nn.BatchNorm2d(4)  # momentum 0.1 == flax 0.9; eps 1e-5
  torch_bn(torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy()))
  np.testing.assert_allclose(
    updates['batch_stats']['mean'], torch_bn.running_mean.numpy(), rtol=1e-5
  )


def test_batch_norm_takes_bfloat16_inputs_under_strict_promotion():
  # flax's BatchNorm mixes a bfloat16 input with its float32 statistics implicitly; jaxseg's runs
  # it under standard promotion, with flax's own numbers (checked against flax run standard).
  x = (_x((8, 3, 3, 4)) * 3 + 1).astype(jnp.bfloat16)
  flax_bn = flax_nn.BatchNorm(use_running_average=False, momentum=0.9, dtype=jnp.bfloat16)
  with jax.numpy_dtype_promotion('standard'):
    variables = flax_bn.init(KEY, x)
    expected, expected_stats = flax_bn.apply(variables, x, mutable=['batch_stats'])
  with jax.numpy_dtype_promotion('strict'):
    with pytest.raises(jax.dtypes.TypePromotionError):
      flax_bn.apply(variables, x, mutable=['batch_stats'])
    bn = nn.BatchNorm(use_running_average=False, dtype=jnp.bfloat16)
    y, stats = bn.apply(variables, x, mutable=['batch_stats'])
  assert y.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(expected, np.float32))
  jax.tree.map(np.testing.assert_array_equal, stats, expected_stats)


def test_dropout_is_flax():
  # flax's Dropout with its rate checked when built (issue 14).
  assert issubclass(nn.Dropout, flax_nn.Dropout)


def test_layers_under_jit_and_grad():
  """d sum(conv(x)) / d bias = number of output pixels, per channel (closed form)."""
  layer = nn.Conv(3, 3, stride=2, padding=1)
  x = _x()
  params = layer.init(KEY, x)['params']
  grads = jax.jit(jax.grad(lambda p: layer.apply({'params': p}, x).sum()))(params)
  np.testing.assert_allclose(grads['bias'], np.full(3, 2 * 5 * 4), rtol=1e-6)
