"""Tests for the saliency networks (jaxseg.models.saliency) and memory_report.

Parameter counts and shapes use jax.eval_shape (nothing is allocated); forward passes run only on
narrow variants at small inputs.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.models import memory
from jaxseg.models import saliency as sal_models
from jaxseg.models.registry import get_model


def _param_count(model, input_shape):
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1,) + input_shape))
  return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes['params']))


def _param_shapes(model, input_shape):
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1,) + input_shape))
  return {
    name: {k: tuple(v.shape) for k, v in layer.items()} for name, layer in shapes['params'].items()
  }


def _conv_params(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def _caffe_ceil_pool(size, window, stride):
  return math.ceil((size - window) / stride) + 1


# --------------------------------------------------------------------------------- deep net.


def test_deep_parameter_count_layer_by_layer():
  # The deploy prototxt, layer by layer: (kernel, in, out).
  convs = [
    (7, 3, 96),
    (5, 96, 256),
    (3, 256, 512),
    (5, 512, 512),
    (5, 512, 512),
    (7, 512, 256),
    (11, 256, 128),
    (11, 128, 32),
    (13, 32, 1),
  ]
  expected = sum(_conv_params(k, i, o) for k, i, o in convs) + _conv_params(8, 1, 1, bias=False)
  assert expected == 25_806_209
  model = get_model('salnet_deep')
  assert _param_count(model, (240, 320, 3)) == expected
  shapes = _param_shapes(model, (240, 320, 3))
  for index, (k, i, o) in enumerate(convs):
    assert shapes[f'conv{index + 1}'] == {'kernel': (k, k, i, o), 'bias': (o,)}
  assert shapes['deconv1'] == {'kernel': (8, 8, 1, 1)}
  assert expected * 4 / 2**20 == pytest.approx(98.44, abs=0.005)  # the lecture's 98.44 MB


def test_deep_output_and_endpoint_shapes():
  # Caffe ceil pooling: 240 -> 120 -> 60, 320 -> 160 -> 80; the deconvolution gives
  # (60 - 1) * 4 - 2 * 2 + 8 = 240 and (80 - 1) * 4 - 4 + 8 = 320.
  assert (_caffe_ceil_pool(240, 3, 2), _caffe_ceil_pool(320, 3, 2)) == (120, 160)
  assert (_caffe_ceil_pool(120, 3, 2), _caffe_ceil_pool(160, 3, 2)) == (60, 80)
  model = sal_models.SalNetDeep()
  x = jnp.zeros((2, 240, 320, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  out, endpoints = jax.eval_shape(model.apply, variables, x)
  assert out.shape == (2, 240, 320, 1)
  assert endpoints['stride2'].shape == (2, 120, 160, 96)
  assert endpoints['stride4'].shape == (2, 60, 80, 256)
  assert endpoints['features'].shape == (2, 60, 80, 32)
  assert endpoints['coarse'].shape == (2, 60, 80, 1)


def test_deep_narrow_forward_matches_composed_ops():
  # A narrow variant at a small input runs for real; its output equals the layers composed by hand
  # from jaxseg.ops with the same parameters (the wiring: ReLU placement, LRN, ceil pools, deconv).
  from jaxseg import ops

  model = sal_models.SalNetDeep(features=(4, 4, 4, 4, 4, 4, 4, 4))
  x = jax.random.normal(jax.random.key(1), (1, 24, 32, 3))
  variables = jax.jit(model.init)(jax.random.key(2, impl='rbg'), x)  # rbg: cheap to compile
  out, _ = model.apply(variables, x)
  p = variables['params']
  conv = lambda h, name, pad: ops.conv2d(h, p[name]['kernel'], p[name]['bias'], padding=pad)
  h = jax.nn.relu(conv(x, 'conv1', 3))
  h = ops.local_response_norm(h, size=5, alpha=1e-4, beta=0.75)
  h = ops.max_pool(h, 3, stride=2, ceil_mode=True)
  h = ops.max_pool(jax.nn.relu(conv(h, 'conv2', 2)), 3, stride=2, ceil_mode=True)
  for name, pad in [
    ('conv3', 1),
    ('conv4', 2),
    ('conv5', 2),
    ('conv6', 3),
    ('conv7', 5),
    ('conv8', 5),
  ]:
    h = jax.nn.relu(conv(h, name, pad))
  h = conv(h, 'conv9', 6)
  h = ops.conv_transpose2d(h, p['deconv1']['kernel'], stride=4, padding=2)
  assert out.shape == (1, 24, 32, 1)
  np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ shallow net.


def test_shallow_parameter_count_layer_by_layer():
  # 96 -> conv5 92 -> pool2 46 -> conv3 44 -> ceil pool3/2 22 -> conv3 20 -> ceil pool3/2 10.
  size = 96 - 4
  size //= 2
  size -= 2
  size = _caffe_ceil_pool(size, 3, 2)
  assert size == 22
  size = _caffe_ceil_pool(size - 2, 3, 2)
  assert size == 10
  flat = size * size * 128
  expected = (
    _conv_params(5, 3, 32)
    + _conv_params(3, 32, 64)
    + _conv_params(3, 64, 128)
    + flat * 4608
    + 4608
    + 2304 * 2304
    + 2304
  )
  assert expected == 64_392_512
  model = get_model('salnet_shallow')
  assert _param_count(model, (96, 96, 3)) == expected
  shapes = _param_shapes(model, (96, 96, 3))
  assert shapes['fc1'] == {'kernel': (12800, 4608), 'bias': (4608,)}
  assert shapes['fc2'] == {'kernel': (2304, 2304), 'bias': (2304,)}
  assert expected * 4 / 2**20 == pytest.approx(245.64, abs=0.005)
  # Floor pooling would give 9 x 9 x 128 before fc1 (the docstring's alternative).
  floor_flat = (((92 // 2 - 2) - 3) // 2 + 1 - 2 - 3) // 2 + 1
  assert floor_flat == 9
  floor_total = expected - flat * 4608 + 9 * 9 * 128 * 4608
  assert floor_total == 53_185_856


def test_shallow_output_shape_and_narrow_forward():
  model = sal_models.SalNetShallow()
  x = jnp.zeros((3, 96, 96, 3))
  out, endpoints = jax.eval_shape(model.apply, jax.eval_shape(model.init, jax.random.key(0), x), x)
  assert out.shape == (3, 48, 48, 1)
  assert endpoints['features'].shape == (3, 10, 10, 128)
  assert endpoints['hidden'].shape == (3, 2304)
  # A narrow variant runs; its output is fc2(maxout(relu(fc1(features)))) reshaped.
  narrow = sal_models.SalNetShallow(features=(4, 4, 4), hidden=8, output_shape=(6, 5))
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  variables = jax.jit(narrow.init)(jax.random.key(1, impl='rbg'), x)  # rbg: cheap to compile
  out, endpoints = narrow.apply(variables, x)
  p = variables['params']
  flat = endpoints['features'].reshape(2, -1)
  hidden = np.maximum(flat @ p['fc1']['kernel'] + p['fc1']['bias'], 0.0)  # fc1 with ReLU
  hidden = np.maximum(hidden[:, 0::2], hidden[:, 1::2])
  expected = (hidden @ p['fc2']['kernel'] + p['fc2']['bias']).reshape(2, 6, 5, 1)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_maxout_against_numpy_loop():
  x = np.random.default_rng(0).normal(size=(2, 3, 12)).astype(np.float32)
  got = sal_models.Maxout(pieces=3).apply({}, jnp.asarray(x))
  expected = np.empty((2, 3, 4), np.float32)
  for idx in np.ndindex(2, 3, 4):
    a, b, j = idx
    expected[idx] = max(x[a, b, 3 * j + p] for p in range(3))
  np.testing.assert_array_equal(got, expected)
  with pytest.raises(ValueError, match='divisible by pieces=5'):
    sal_models.Maxout(pieces=5).apply({}, jnp.asarray(x))


def test_center_bias_closed_form():
  model = get_model('center_bias', sigma=(0.2, 0.3))
  variables = model.init(jax.random.key(0), jnp.zeros((1, 9, 12, 3)))
  np.testing.assert_allclose(np.exp(variables['params']['log_sigma']), [0.2, 0.3], rtol=1e-6)
  m, endpoints = model.apply(variables, jnp.zeros((2, 9, 12, 3)))
  assert m.shape == (2, 9, 12, 1) and endpoints == {}
  for y in range(9):
    for x in range(12):
      value = math.exp(-0.5 * (((y - 4) / (0.2 * 9)) ** 2 + ((x - 5.5) / (0.3 * 12)) ** 2))
      assert float(m[1, y, x, 0]) == pytest.approx(value, rel=1e-6)
  m, _ = sal_models.CenterBias(output_shape=(4, 6)).apply(variables, jnp.zeros((1, 9, 12, 3)))
  assert m.shape == (1, 4, 6, 1)
  # The width is learnable: the gradient of the map's sum w.r.t. log_sigma is positive.
  grad = jax.grad(lambda v: model.apply(v, jnp.zeros((1, 9, 12, 3)))[0].sum())(variables)
  assert np.all(np.asarray(grad['params']['log_sigma']) > 0)


# --------------------------------------------------------------------------- VGG-CNN-M init.


@pytest.mark.parametrize('fmt', ['npz', 'safetensors'])
def test_load_vgg_cnn_m_oihw_and_bgr(tmp_path, fmt):
  model = sal_models.SalNetDeep()
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 240, 320, 3)))['params']
  rng = np.random.default_rng(0)
  arrays, hwio = {}, {}
  for layer in ('conv1', 'conv2', 'conv3'):
    kh, kw, cin, cout = shapes[layer]['kernel'].shape
    oihw = rng.normal(size=(cout, cin, kh, kw)).astype(np.float32)
    arrays[f'{layer}.weight'] = oihw
    arrays[f'{layer}.bias'] = rng.normal(size=(cout,)).astype(np.float32)
    hwio[layer] = oihw.transpose(2, 3, 1, 0)
  path = str(tmp_path / f'vgg_cnn_m.{fmt}')
  if fmt == 'npz':
    np.savez(path, **arrays)
  else:
    safetensors_numpy = pytest.importorskip('safetensors.numpy')
    safetensors_numpy.save_file(arrays, path)
  # A stand-in params tree with the right shapes (zeros) for the layers loaded and one other.
  params = {
    name: {k: jnp.zeros(v.shape) for k, v in layer.items()}
    for name, layer in shapes.items()
    if name in ('conv1', 'conv2', 'conv3', 'conv9')
  }
  loaded = sal_models.load_vgg_cnn_m(params, path)
  # conv1 reads RGB: its input channels are the file's BGR channels reversed.
  np.testing.assert_array_equal(loaded['conv1']['kernel'][:, :, 0], hwio['conv1'][:, :, 2])
  np.testing.assert_array_equal(loaded['conv1']['kernel'][:, :, 2], hwio['conv1'][:, :, 0])
  np.testing.assert_array_equal(loaded['conv2']['kernel'], hwio['conv2'])
  np.testing.assert_array_equal(loaded['conv3']['bias'], arrays['conv3.bias'])
  assert loaded['conv9'] is params['conv9']
  keep = sal_models.load_vgg_cnn_m(params, path, bgr_to_rgb=False)
  np.testing.assert_array_equal(keep['conv1']['kernel'], hwio['conv1'])


def test_load_vgg_cnn_m_errors(tmp_path):
  params = {
    'conv1': {'kernel': jnp.zeros((7, 7, 3, 96)), 'bias': jnp.zeros(96)},
    'conv2': {'kernel': jnp.zeros((5, 5, 96, 256)), 'bias': jnp.zeros(256)},
    'conv3': {'kernel': jnp.zeros((3, 3, 256, 512)), 'bias': jnp.zeros(512)},
  }
  with pytest.raises(ValueError, match='existing .npz or .safetensors'):
    sal_models.load_vgg_cnn_m(params, str(tmp_path / 'missing.npz'))
  path = str(tmp_path / 'bad.npz')
  np.savez(
    path,
    **{'conv1/kernel': np.zeros((5, 5, 3, 96), np.float32), 'conv1/bias': np.zeros(96, np.float32)},
  )
  with pytest.raises(ValueError, match='conv1 kernel has shape'):
    sal_models.load_vgg_cnn_m(params, path)


# ----------------------------------------------------------------------------- memory_report.


def _deep_data_elements_by_hand():
  # input, conv1, norm1, pool1, conv2, pool2, conv3..conv9, deconv1 (ReLU in place, not counted).
  return (
    240 * 320 * 3
    + 2 * 240 * 320 * 96
    + 120 * 160 * 96
    + 120 * 160 * 256
    + 60 * 80 * 256
    + 3 * 60 * 80 * 512
    + 60 * 80 * (256 + 128 + 32 + 1)
    + 240 * 320
  )


def _shallow_data_elements_by_hand():
  # input, conv1, pool1, conv2, pool2, conv3, pool3, fc1, maxout, fc2.
  return (
    96 * 96 * 3
    + 92 * 92 * 32
    + 46 * 46 * 32
    + 44 * 44 * 64
    + 22 * 22 * 64
    + 20 * 20 * 128
    + 10 * 10 * 128
    + 4608
    + 2304
    + 2304
  )


DEEP_LAYERS = [
  'input',
  'conv1',
  'norm1',
  'pool1',
  'conv2',
  'pool2',
  'conv3',
  'conv4',
  'conv5',
  'conv6',
  'conv7',
  'conv8',
  'conv9',
  'deconv1',
]
SHALLOW_LAYERS = [
  'input',
  'conv1',
  'pool1',
  'conv2',
  'pool2',
  'conv3',
  'pool3',
  'fc1',
  'maxout',
  'fc2',
]


@pytest.mark.parametrize(
  'name, shape, by_hand, params, layers',
  [
    ('salnet_deep', (240, 320, 3), _deep_data_elements_by_hand(), 25_806_209, DEEP_LAYERS),
    ('salnet_shallow', (96, 96, 3), _shallow_data_elements_by_hand(), 64_392_512, SHALLOW_LAYERS),
  ],
)
def test_memory_report_against_hand_derivation(name, shape, by_hand, params, layers):
  model = get_model(name)
  batch = 3
  test = memory.memory_report(model, shape, batch, 'test')
  assert [layer for layer, _ in test.layers] == layers  # in execution order
  train = memory.memory_report(model, shape, batch, 'train')
  momentum = memory.memory_report(model, shape, batch, 'train', optimizer_slots=1)
  assert test.data_elements == batch * by_hand
  assert test.param_elements == params
  assert test.data_mb == pytest.approx(batch * by_hand * 4 / 2**20)
  assert test.params_mb == pytest.approx(params * 4 / 2**20)
  assert train.data_mb == pytest.approx(2 * test.data_mb)
  assert train.params_mb == pytest.approx(2 * test.params_mb)
  assert momentum.params_mb == pytest.approx(3 * test.params_mb)
  assert train.total_mb == pytest.approx(train.data_mb + train.params_mb)


def test_memory_table_and_errors():
  table = memory.memory_table(
    {
      'Shallow': (sal_models.SalNetShallow(), (96, 96, 3)),
      'Deep': (sal_models.SalNetDeep(), (240, 320, 3)),
    },
    batch=1,
  )
  rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
  assert rows['Deep'][1] == '98.44' and rows['Shallow'][1] == '245.64'
  assert float(rows['Deep'][0]) == pytest.approx(
    _deep_data_elements_by_hand() * 4 / 2**20, abs=0.005
  )
  with pytest.raises(ValueError, match='mode must be one of'):
    memory.memory_report(sal_models.SalNetShallow(), (96, 96, 3), 1, 'eval')
  with pytest.raises(ValueError, match='batch must be a positive int'):
    memory.memory_report(sal_models.SalNetShallow(), (96, 96, 3), 0, 'test')


def test_deep_pretrained_attribute_initialises_first_three_layers(tmp_path):
  # The model's `pretrained` file initialises conv1..conv3 (narrow conv4+ keeps the test small).
  features = (96, 256, 512, 4, 4, 4, 4, 4)
  rng = np.random.default_rng(1)
  arrays = {}
  for layer, shape in [
    ('conv1', (7, 7, 3, 96)),
    ('conv2', (5, 5, 96, 256)),
    ('conv3', (3, 3, 256, 512)),
  ]:
    arrays[f'{layer}/kernel'] = rng.normal(size=shape).astype(np.float32)
    arrays[f'{layer}/bias'] = rng.normal(size=shape[-1:]).astype(np.float32)
  path = str(tmp_path / 'w.npz')
  np.savez(path, **arrays)
  model = get_model('salnet_deep', features=features, pretrained=path, pretrained_bgr_to_rgb=False)
  params = jax.jit(model.init)(jax.random.key(0, impl='rbg'), jnp.zeros((1, 16, 16, 3)))['params']
  for layer in ('conv1', 'conv2', 'conv3'):
    np.testing.assert_array_equal(params[layer]['kernel'], arrays[f'{layer}/kernel'])
    np.testing.assert_array_equal(params[layer]['bias'], arrays[f'{layer}/bias'])
  assert float(jnp.abs(params['conv4']['kernel']).sum()) > 0  # random, not from the file
