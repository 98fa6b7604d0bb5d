"""Tests of the classification model zoo: counts, shapes, strides, dilation, gradients.

Parameter counts come from jax.eval_shape (nothing is materialised) and are checked against the
published torchvision numbers and against counts derived here layer by layer from the papers.
Numerical checks run on reduced-width variants at small inputs.
"""

import importlib
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import ops
from jaxseg.losses import classification_loss_with_aux
from jaxseg.models import (
  convolutionalize,
  convolutionalize_variables,
  get_model,
  list_models,
  register_model,
)
from jaxseg.models.convolutionalize import adaptive_avg_pool, classifier_head

KEY = jax.random.key(0)
RNGS = {'params': KEY, 'dropout': KEY}


def _abstract_variables(model, shape):
  return jax.eval_shape(lambda: model.init(RNGS, jnp.zeros(shape, jnp.float32)))


def _abstract_outputs(model, x, **kwargs):
  """``(output, endpoints)`` shapes, traced once (init and forward together)."""
  return jax.eval_shape(lambda: model.init_with_output(RNGS, x, **kwargs))[0]


def _numpy_variables(model, shape, seed=0):
  """Random variables of the right shapes, drawn with NumPy.

  Compiling ``model.init`` (threefry for every parameter) takes seconds per model on CPU; these
  are free. Kernels ~ He normal, biases and BN offsets ~ N(0, 0.1), BN scales ~ 1 + N(0, 0.1),
  running means ~ N(0, 0.1), running variances ~ U(0.5, 1.5).
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      value = rng.normal(size=leaf.shape) * np.sqrt(2.0 / math.prod(leaf.shape[:-1]))
    elif name == 'var':
      value = rng.uniform(0.5, 1.5, leaf.shape)
    elif name == 'scale':
      value = 1.0 + 0.1 * rng.normal(size=leaf.shape)
    else:  # bias, mean
      value = 0.1 * rng.normal(size=leaf.shape)
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, _abstract_variables(model, shape))


def _count(model, shape):
  params = _abstract_variables(model, shape)['params']
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


def _conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def _dense(cin, cout):
  return cin * cout + cout


# ---- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_classification_model():
  expected = {
    'lenet5',
    'alexnet',
    'alexnet_torchvision',
    'googlenet',
    'googlenet_torchvision',
    'resnet18',
    'resnet34',
    'resnet50',
    'resnet101',
    'resnet152',
  }
  expected |= {f'vgg{d}{bn}' for d in (11, 13, 16, 19) for bn in ('', '_bn')}
  assert expected <= set(list_models())


def test_get_model_unknown_name_lists_names():
  with pytest.raises(ValueError, match="'resnet18'"):
    get_model('resnet17')


def test_register_model_rejects_duplicates():
  with pytest.raises(ValueError, match='already registered'):
    register_model('resnet18')(lambda: None)


@pytest.mark.parametrize(
  'name,constructor', [('', lambda: None), (3, lambda: None), ('not_callable', 'resnet18')]
)
def test_register_model_rejects_bad_arguments(name, constructor):
  with pytest.raises(TypeError, match='register_model'):
    register_model(name)(constructor)


def test_get_model_forwards_kwargs():
  assert get_model('resnet50', num_classes=21, output_stride=8).output_stride == 8


# ---- parameter counts ---------------------------------------------------------------------------

PUBLISHED_COUNTS = [
  ('alexnet', {}, 227, 62_378_344),
  ('alexnet', {'groups': 2}, 227, 60_965_224),
  ('alexnet_torchvision', {}, 224, 61_100_840),
  ('vgg11', {}, 224, 132_863_336),
  ('vgg13', {}, 224, 133_047_848),
  ('vgg16', {}, 224, 138_357_544),
  ('vgg19', {}, 224, 143_667_240),
  ('googlenet_torchvision', {'aux_logits': False}, 224, 6_624_904),
  ('googlenet_torchvision', {}, 224, 13_004_888),
  ('resnet18', {}, 224, 11_689_512),
  ('resnet34', {}, 224, 21_797_672),
  ('resnet50', {}, 224, 25_557_032),
  ('resnet101', {}, 224, 44_549_160),
  ('resnet152', {}, 224, 60_192_808),
]


@pytest.mark.parametrize('name,kwargs,size,expected', PUBLISHED_COUNTS)
def test_published_parameter_counts(name, kwargs, size, expected):
  assert _count(get_model(name, **kwargs), (1, size, size, 3)) == expected


def test_alexnet_count_derived_from_the_lecture_table():
  convs = (
    _conv(11, 3, 96)
    + _conv(5, 96, 256)
    + _conv(3, 256, 384)
    + _conv(3, 384, 384)
    + _conv(3, 384, 256)
  )
  fcs = _dense(6 * 6 * 256, 4096) + _dense(4096, 4096) + _dense(4096, 1000)
  assert _count(get_model('alexnet'), (1, 227, 227, 3)) == convs + fcs
  # Two groups: conv2, conv4, conv5 read half their input channels.
  split = (
    convs
    - (_conv(5, 96, 256) - _conv(5, 48, 256))
    - (_conv(3, 384, 384) - _conv(3, 192, 384))
    - (_conv(3, 384, 256) - _conv(3, 192, 256))
  )
  assert _count(get_model('alexnet', groups=2), (1, 227, 227, 3)) == split + fcs


def test_lenet5_count_derived_from_layer_sizes():
  expected = (
    _conv(5, 1, 6) + _conv(5, 6, 16) + _dense(16 * 5 * 5, 120) + _dense(120, 84) + _dense(84, 10)
  )
  assert expected == 61_706
  assert _count(get_model('lenet5'), (1, 32, 32, 1)) == expected


@pytest.mark.parametrize(
  'depth,stages',
  [(11, (1, 1, 2, 2, 2)), (13, (2, 2, 2, 2, 2)), (16, (2, 2, 3, 3, 3)), (19, (2, 2, 4, 4, 4))],
)
def test_vgg_counts_derived_with_and_without_batch_norm(depth, stages):
  widths = (64, 128, 256, 512, 512)
  convs, cin, channels = 0, 3, 0
  for n, w in zip(stages, widths):
    for _ in range(n):
      convs, cin, channels = convs + _conv(3, cin, w), w, channels + w
  fcs = _dense(7 * 7 * 512, 4096) + _dense(4096, 4096) + _dense(4096, 1000)
  assert _count(get_model(f'vgg{depth}'), (1, 224, 224, 3)) == convs + fcs
  # Batch norm adds a scale and a bias per channel.
  assert _count(get_model(f'vgg{depth}_bn'), (1, 224, 224, 3)) == convs + fcs + 2 * channels


# Paper Table 1: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), written out independently.
_GOOGLENET_TABLE = [
  (64, 96, 128, 16, 32, 32),
  (128, 128, 192, 32, 96, 64),  # 3a, 3b
  (192, 96, 208, 16, 48, 64),
  (160, 112, 224, 24, 64, 64),
  (128, 128, 256, 24, 64, 64),
  (112, 144, 288, 32, 64, 64),
  (256, 160, 320, 32, 128, 128),  # 4a-4e
  (256, 160, 320, 32, 128, 128),
  (384, 192, 384, 48, 128, 128),  # 5a, 5b
]


def _googlenet_count(unit, large_kernel, aux):
  total = unit(7, 3, 64) + unit(1, 64, 64) + unit(3, 64, 192)
  cin, inputs = 192, []
  for c1, c3r, c3, c5r, c5, cp in _GOOGLENET_TABLE:
    inputs.append(cin)
    total += (
      unit(1, cin, c1)
      + unit(1, cin, c3r)
      + unit(3, c3r, c3)
      + unit(1, cin, c5r)
      + unit(large_kernel, c5r, c5)
      + unit(1, cin, cp)
    )
    cin = c1 + c3 + c5 + cp
  assert cin == 1024
  total += _dense(1024, 1000)
  if aux:  # on 4a (input of 4b) and 4d (input of 4e): 1x1 conv 128, fc 1024, fc 1000
    for channels in (inputs[3], inputs[6]):
      total += unit(1, channels, 128) + _dense(4 * 4 * 128, 1024) + _dense(1024, 1000)
  return total


@pytest.mark.parametrize('aux', [False, True])
def test_googlenet_paper_count_derived_layer_by_layer(aux):
  expected = _googlenet_count(_conv, 5, aux)
  assert _count(get_model('googlenet', aux_logits=aux), (1, 224, 224, 3)) == expected


def test_googlenet_torchvision_count_derived_layer_by_layer():
  conv_bn = lambda k, cin, cout: _conv(k, cin, cout, bias=False) + 2 * cout
  assert _googlenet_count(conv_bn, 3, aux=False) == 6_624_904
  assert _googlenet_count(conv_bn, 3, aux=True) == 13_004_888


# ---- shapes -----------------------------------------------------------------------------------

LECTURE_TABLE = [  # layer: output (H, W, C) at 227x227x3
  ('conv1', (55, 55, 96)),
  ('pool1', (27, 27, 96)),
  ('norm1', (27, 27, 96)),
  ('conv2', (27, 27, 256)),
  ('pool2', (13, 13, 256)),
  ('norm2', (13, 13, 256)),
  ('conv3', (13, 13, 384)),
  ('conv4', (13, 13, 384)),
  ('conv5', (13, 13, 256)),
  ('pool5', (6, 6, 256)),
  ('fc6', (4096,)),
  ('fc7', (4096,)),
  ('fc8', (1000,)),
]


@pytest.mark.parametrize('groups', [1, 2])
def test_alexnet_every_layer_matches_the_lecture_table(groups):
  model = get_model('alexnet', groups=groups)
  x = jnp.zeros((2, 227, 227, 3))
  _, state = jax.eval_shape(
    lambda: model.apply(
      model.init(RNGS, x), x, capture_intermediates=True, mutable=['intermediates']
    )
  )
  captured = state['intermediates']
  for layer, shape in LECTURE_TABLE:
    assert captured[layer]['__call__'][0].shape == (2, *shape), layer


def test_alexnet_normalisation_uses_the_papers_formula():
  # Krizhevsky et al. Sec. 3.3: b_c = a_c / (2 + 1e-4 * sum_{|c'-c|<=2} a_c'^2)^0.75.
  model = get_model('alexnet', conv_features=(8, 16, 16, 16, 16), fc_features=8)
  x = jax.random.normal(jax.random.key(9), (1, 67, 67, 3)) * 30.0  # large: LRN matters
  variables = _numpy_variables(model, x.shape)
  _, state = model.apply(variables, x, capture_intermediates=True, mutable=['intermediates'])
  a = np.asarray(state['intermediates']['pool1']['__call__'][0], np.float64)
  b = np.asarray(state['intermediates']['norm1']['__call__'][0])
  expected = np.empty_like(a)
  channels = a.shape[-1]
  for c in range(channels):
    window = a[..., max(0, c - 2) : min(channels, c + 3)]
    expected[..., c] = a[..., c] / (2.0 + 1e-4 * np.sum(window**2, axis=-1)) ** 0.75
  assert not np.allclose(expected, a / 2.0**0.75, rtol=1e-2)  # the sum term is not negligible
  np.testing.assert_allclose(b, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
  'name,size,kwargs,strides',
  [
    ('lenet5', 32, {}, {2: 14, 4: 5}),
    ('vgg16', 224, {}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 7}),
    (
      'vgg16',
      500,
      {'first_conv_padding': 100, 'ceil_mode': True},  # FCN's Caffe layout
      {2: 349, 4: 175, 8: 88, 16: 44, 32: 22},
    ),
    ('vgg16', 224, {'output_stride': 16}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 14}),
    ('vgg16', 224, {'output_stride': 8}, {2: 112, 4: 56, 8: 28, 16: 28, 32: 28}),
    ('alexnet', 227, {}, {4: 55, 8: 27, 16: 13, 32: 6}),
    ('googlenet', 224, {}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 7}),
    ('googlenet_torchvision', 224, {}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 7}),
    ('resnet18', 224, {}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 7}),
    ('resnet50', 224, {}, {2: 112, 4: 56, 8: 28, 16: 14, 32: 7}),
  ],
)
def test_logits_and_endpoint_sizes(name, size, kwargs, strides):
  channels = 1 if name == 'lenet5' else 3
  model = get_model(name, num_classes=7, **kwargs)
  x = jnp.zeros((2, size, size, channels))
  logits, endpoints = _abstract_outputs(model, x)
  assert logits.shape == (2, 7)
  for stride, spatial in strides.items():
    assert endpoints[f'stride{stride}'].shape[1:3] == (spatial, spatial), stride
  assert endpoints['features'].shape == endpoints[f'stride{max(strides)}'].shape
  if name.startswith('vgg'):
    for pool in (3, 4, 5):
      assert endpoints[f'pool{pool}'].shape == endpoints[f'stride{2**pool}'].shape
  if name.startswith('googlenet'):
    assert endpoints['aux1'].shape == endpoints['aux2'].shape == (2, 7)


@pytest.mark.parametrize('name', ['lenet5', 'alexnet', 'vgg11', 'googlenet', 'resnet34'])
def test_include_top_false_returns_the_last_feature_map(name):
  size, channels = {'lenet5': (32, 1), 'alexnet': (227, 3)}.get(name, (224, 3))
  x = jnp.zeros((1, size, size, channels))
  full = get_model(name)
  headless = get_model(name, include_top=False)
  _, endpoints = _abstract_outputs(full, x)
  features, _ = _abstract_outputs(headless, x)
  assert features.shape == endpoints['features'].shape
  headless_params = _abstract_variables(headless, x.shape)['params']
  assert not {'fc', 'fc3', 'fc8'} & set(headless_params)


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
@pytest.mark.parametrize('output_stride', [8, 16, 32])
def test_resnet_last_feature_map_is_input_over_output_stride(depth, output_stride):
  model = get_model(f'resnet{depth}', output_stride=output_stride, include_top=False)
  x = jnp.zeros((1, 224, 224, 3))
  features, endpoints = _abstract_outputs(model, x)
  expansion = 1 if depth < 50 else 4
  assert features.shape == (1, 224 // output_stride, 224 // output_stride, 512 * expansion)
  for stride in (4, 8, 16, 32):
    size = 224 // min(stride, output_stride)
    assert endpoints[f'stride{stride}'].shape[1:3] == (size, size)


def _small_resnet(depth, **kwargs):
  return get_model(f'resnet{depth}', num_filters=4, num_classes=5, **kwargs)


@pytest.mark.parametrize('depth', [18, pytest.param(50, marks=pytest.mark.slow)])  # 50: ~4 s
def test_resnet_dilation_computes_the_same_function_densely(depth):
  # Atrous algorithm: replacing strides by dilations samples the same responses densely, so the
  # output stride 8 or 16 map subsampled equals the output stride 32 map.
  x = jax.random.normal(jax.random.key(1), (1, 64, 64, 3))
  reference = _small_resnet(depth, include_top=False)
  variables = _numpy_variables(reference, x.shape)
  coarse, _ = reference.apply(variables, x)
  assert coarse.shape[1:3] == (2, 2)
  for output_stride in (8,) if depth == 18 else (16,):  # one each: eager runs are slow
    dense, _ = _small_resnet(depth, include_top=False, output_stride=output_stride).apply(
      variables, x
    )
    step = 32 // output_stride
    assert dense.shape[1:3] == (64 // output_stride,) * 2
    np.testing.assert_allclose(dense[:, ::step, ::step], coarse, rtol=1e-4, atol=1e-5)


def test_resnet_multi_grid_rates_of_the_last_stage():
  # At output stride 16 the last stage's blocks use rates (1, 2, 2) x multi_grid: the first
  # block keeps the previous rate. Recompute each conv2 from its captured input.
  model = _small_resnet(50, include_top=False, output_stride=16, multi_grid=(1, 2, 4))
  x = jax.random.normal(jax.random.key(2), (1, 64, 64, 3))
  variables = _numpy_variables(model, x.shape)
  _, state = model.apply(variables, x, capture_intermediates=True, mutable=['intermediates'])
  for index, rate in enumerate((1 * 1, 2 * 2, 2 * 4)):
    block = state['intermediates'][f'layer4_{index}']
    conv_input = nn.relu(block['bn1']['__call__'][0])
    kernel = variables['params'][f'layer4_{index}']['conv2']['kernel']
    expected = ops.conv2d(conv_input, kernel, padding=rate, dilation=rate)
    np.testing.assert_allclose(block['conv2']['__call__'][0], expected, rtol=1e-5, atol=1e-5)
    if rate > 1:  # the rate is observable: the undilated convolution differs
      assert not np.allclose(
        block['conv2']['__call__'][0], ops.conv2d(conv_input, kernel, padding=1), atol=1e-3
      )


@pytest.mark.parametrize(
  'kwargs,message',
  [
    ({'output_stride': 4}, 'output_stride'),
    ({'multi_grid': (1, 2)}, 'multi_grid'),
    ({'multi_grid': (0, 1, 1)}, 'multi_grid'),
  ],
)
def test_resnet_rejects_bad_arguments(kwargs, message):
  model = _small_resnet(50, **kwargs)
  with pytest.raises(ValueError, match=message):
    _abstract_variables(model, (1, 32, 32, 3))


def test_resnet18_accepts_default_multi_grid_and_dilates_basic_blocks():
  model = _small_resnet(18, output_stride=8, include_top=False)
  x = jnp.zeros((1, 64, 64, 3))
  features, _ = model.apply(_numpy_variables(model, x.shape), x)
  assert features.shape == (1, 8, 8, 32)


def _small_vgg(**kwargs):
  stages = ((4,), (8,), (8, 8), (16, 16), (16, 16))
  return get_model('vgg11', stage_features=stages, fc_features=16, num_classes=5, **kwargs)


def test_vgg_output_stride_8_dilates_conv5():
  model = _small_vgg(output_stride=8, include_top=False)
  x = jax.random.normal(jax.random.key(3), (1, 32, 32, 3))
  variables = _numpy_variables(model, x.shape)
  _, state = model.apply(variables, x, capture_intermediates=True, mutable=['intermediates'])
  captured = state['intermediates']
  pool4 = captured['pool4']['__call__'][0]
  assert pool4.shape[1:3] == (4, 4)  # stride 8
  layer = variables['params']['conv5_1']
  expected = ops.conv2d(pool4, layer['kernel'], layer['bias'], padding=2, dilation=2)
  np.testing.assert_allclose(captured['conv5_1']['__call__'][0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('bad', [{'output_stride': 12}, {'stage_features': ((4,),) * 4}])
def test_vgg_rejects_bad_arguments(bad):
  with pytest.raises(ValueError, match=next(iter(bad))):
    _abstract_variables(get_model('vgg11', **bad), (1, 32, 32, 3))


def test_alexnet_rejects_bad_groups():
  with pytest.raises(ValueError, match='groups'):
    _abstract_variables(get_model('alexnet', groups=3), (1, 227, 227, 3))


# ---- adaptive pooling -------------------------------------------------------------------------


@pytest.mark.parametrize('in_size,out_size', [(14, 7), (7, 7), (10, 7), (1, 7), (3, 7), (9, 4)])
def test_adaptive_avg_pool_matches_loops(in_size, out_size):
  x = np.random.default_rng(0).normal(size=(2, in_size, in_size + 1, 3)).astype(np.float32)
  expected = np.zeros((2, out_size, out_size, 3), np.float32)
  for i in range(out_size):
    h0, h1 = (i * in_size) // out_size, math.ceil((i + 1) * in_size / out_size)
    for j in range(out_size):
      w0, w1 = (j * (in_size + 1)) // out_size, math.ceil((j + 1) * (in_size + 1) / out_size)
      expected[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
  np.testing.assert_allclose(
    adaptive_avg_pool(jnp.asarray(x), out_size), expected, rtol=1e-5, atol=1e-6
  )


def test_adaptive_avg_pool_matches_torch():
  torch = pytest.importorskip('torch')
  x = np.random.default_rng(1).normal(size=(2, 11, 5, 3)).astype(np.float32)
  expected = (
    torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), (7, 7))
    .numpy()
    .transpose(0, 2, 3, 1)
  )
  np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(x), 7), expected, rtol=1e-5, atol=1e-6)


# ---- convolutionalize -------------------------------------------------------------------------


class _DenseHead(nn.Module):
  """VGG's dense fc6-fc8 alone, to score single 7x7 windows of pool5."""

  @nn.compact
  def __call__(self, x):
    return classifier_head(
      x,
      window=7,
      fc_features=16,
      num_classes=5,
      dropout_rate=0.5,
      convolutional=False,
      dilation=1,
      train=False,
      dtype=None,
    )


def test_convolutionalize_vgg16_full_size_shapes():
  model = convolutionalize(get_model('vgg16'))
  for size, cells in ((224, 1), (384, 6)):
    x = jnp.zeros((1, size, size, 3))
    scores, _ = _abstract_outputs(model, x)
    assert scores.shape == (1, cells, cells, 1000)
  kernel = _abstract_variables(model, (1, 224, 224, 3))['params']['fc6']['kernel']
  assert kernel.shape == (7, 7, 512, 4096)


def test_convolutionalize_vgg16_gives_the_same_logits_and_a_score_map():
  stages = ((4, 4), (8, 8), (8, 8, 8), (16, 16, 16), (16, 16, 16))
  dense = get_model('vgg16', stage_features=stages, fc_features=16, num_classes=5)
  x224 = jax.random.normal(jax.random.key(4), (2, 224, 224, 3))
  variables = _numpy_variables(dense, x224.shape)
  conv = convolutionalize(dense)
  conv_variables = convolutionalize_variables(dense, variables)
  logits, _ = dense.apply(variables, x224)
  scores, _ = conv.apply(conv_variables, x224)
  assert scores.shape == (2, 1, 1, 5)
  np.testing.assert_allclose(scores[:, 0, 0], logits, rtol=1e-4, atol=1e-5)

  x384 = jax.random.normal(jax.random.key(5), (1, 384, 384, 3))
  scores, endpoints = conv.apply(conv_variables, x384)
  assert scores.shape == (1, 6, 6, 5)
  pool5 = endpoints['pool5']
  head = {k: variables['params'][k] for k in ('fc6', 'fc7', 'fc8')}
  for i, j in ((0, 0), (2, 3), (5, 5)):  # each cell scores one 7x7 window of pool5
    window_logits = _DenseHead().apply({'params': head}, pool5[:, i : i + 7, j : j + 7])
    np.testing.assert_allclose(scores[:, i, j], window_logits, rtol=1e-4, atol=1e-5)


def test_convolutionalize_rejects_models_without_a_dense_head():
  with pytest.raises(TypeError, match='ResNet'):
    convolutionalize(get_model('resnet18'))
  with pytest.raises(ValueError, match='include_top'):
    convolutionalize(get_model('vgg16', include_top=False))


# ---- jitted forward and backward of every model -------------------------------------------------

SMALL_MODELS = {
  'lenet5': ({}, (2, 32, 32, 1), 'fc3'),
  'alexnet': (
    {'conv_features': (8, 16, 16, 16, 16), 'fc_features': 16, 'groups': 2},
    (2, 67, 67, 3),
    'fc8',
  ),
  'alexnet_torchvision': (
    {'conv_features': (8, 16, 16, 16, 16), 'fc_features': 16},
    (2, 63, 63, 3),
    'fc8',
  ),
  'vgg11': (
    {'stage_features': ((4,), (8,), (8, 8), (8, 8), (8, 8)), 'fc_features': 16},
    (2, 32, 32, 3),
    'fc8',
  ),
  'vgg16_bn': (
    {'stage_features': ((4, 4), (8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8)), 'fc_features': 16},
    (2, 32, 32, 3),
    'fc8',
  ),
  # One block per stage: full depths compile for long; the traced test below covers them.
  'resnet18': ({'num_filters': 4, 'stage_sizes': (1, 1, 1, 1)}, (2, 32, 32, 3), 'fc'),
  'resnet50': (
    {'num_filters': 4, 'stage_sizes': (1, 1, 1, 1), 'output_stride': 16},
    (2, 32, 32, 3),
    'fc',
  ),
  'googlenet': ({}, (2, 96, 96, 3), 'fc'),
}


def _loss(model, variables, x, labels, train):
  """Mean cross-entropy plus GoogLeNet's weighted auxiliary heads; returns (loss, logits)."""
  (logits, endpoints), _ = model.apply(
    variables, x, train=train, rngs={'dropout': jax.random.key(7)}, mutable=['batch_stats']
  )
  aux = [endpoints[name] for name in ('aux1', 'aux2') if name in endpoints]
  return classification_loss_with_aux(logits, aux, labels), logits


@pytest.mark.parametrize(
  'name',
  [
    pytest.param(name, marks=pytest.mark.slow) if name.startswith('googlenet') else name
    for name in sorted(SMALL_MODELS)
  ],
)
def test_jitted_forward_and_backward(name):
  # googlenet_torchvision is not here: its forward equals torchvision's after weight import
  # (test_weights.py) and its exact parameter count leaves no parameter unused, so a backward
  # pass (~20 s to compile on 2 cores) proves nothing the paper variant's does not.
  kwargs, shape, last_layer = SMALL_MODELS[name]
  model = get_model(name, num_classes=5, **kwargs)
  x = jax.random.normal(jax.random.key(6), shape)
  labels = jnp.array([1, 3])
  variables = _numpy_variables(model, x.shape)

  @jax.jit
  def step(params):
    return jax.value_and_grad(
      lambda p: _loss(model, {**variables, 'params': p}, x, labels, train=True), has_aux=True
    )(params)

  (loss, logits), grads = step(variables['params'])
  assert np.isfinite(loss)
  # Closed form: d mean(CE) / d bias of the last layer = mean(softmax(logits) - onehot(labels)).
  expected = np.mean(jax.nn.softmax(logits) - jax.nn.one_hot(labels, 5), axis=0)
  np.testing.assert_allclose(grads[last_layer]['bias'], expected, rtol=1e-4, atol=1e-6)
  # Every parameter is connected to the loss.
  for path, leaf in jax.tree.flatten_with_path(grads)[0]:
    assert np.all(np.isfinite(leaf)), path
    assert np.any(leaf != 0), jax.tree_util.keystr(path)


@pytest.mark.parametrize(
  'name,size',
  [
    # ResNet-18 and -50 run in full in test_weights.py; -101 and -152 repeat -50's blocks.
    pytest.param('resnet18', 64, marks=pytest.mark.slow),
    ('resnet34', 64),
    pytest.param('resnet50', 64, marks=pytest.mark.slow),
    pytest.param('resnet101', 64, marks=pytest.mark.slow),
    pytest.param('resnet152', 64, marks=pytest.mark.slow),
    ('googlenet', 96),
    ('googlenet_torchvision', 64),
  ],
)
def test_deep_models_trace_jitted_forward_and_backward(name, size):
  # Compiling these takes minutes on two CPU cores (the compiled runs of GoogLeNet are marked
  # slow above); tracing the jitted gradient checks that every parameter gets one.
  model = get_model(name, num_classes=5)
  x = jnp.zeros((2, size, size, 3))
  labels = jnp.array([1, 3])
  variables = _abstract_variables(model, x.shape)

  def grad_fn(variables):
    return jax.grad(lambda p: _loss(model, {**variables, 'params': p}, x, labels, True)[0])(
      variables['params']
    )

  grads = jax.eval_shape(jax.jit(grad_fn), variables)
  shapes = lambda tree: jax.tree.map(lambda leaf: leaf.shape, tree)
  assert shapes(grads) == shapes(variables['params'])


def test_bfloat16_compute_keeps_float32_params_and_logits():
  model = get_model('lenet5', dtype=jnp.bfloat16)
  x = jnp.ones((1, 32, 32, 1))
  variables = _numpy_variables(model, x.shape)
  logits, endpoints = model.apply(variables, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))
  assert endpoints['features'].dtype == jnp.bfloat16
  assert logits.dtype == jnp.float32
  reference, _ = get_model('lenet5').apply(variables, x)
  np.testing.assert_allclose(logits, reference, rtol=0.05, atol=0.05)


def test_train_mode_updates_batch_stats_and_dropout_needs_rng():
  model = _small_vgg(batch_norm=True)
  x = jax.random.normal(jax.random.key(8), (2, 32, 32, 3))
  variables = _numpy_variables(model, x.shape)
  _, updates = model.apply(variables, x, train=True, rngs={'dropout': KEY}, mutable=['batch_stats'])
  before = variables['batch_stats']['bn1_1']['mean']
  assert not np.allclose(updates['batch_stats']['bn1_1']['mean'], before)
  a, _ = model.apply(
    variables, x, train=True, rngs={'dropout': jax.random.key(1)}, mutable=['batch_stats']
  )
  b, _ = model.apply(
    variables, x, train=True, rngs={'dropout': jax.random.key(2)}, mutable=['batch_stats']
  )
  assert not np.allclose(a[0], b[0])  # dropout is on in training
  c, _ = model.apply(variables, x)
  d, _ = model.apply(variables, x)
  np.testing.assert_array_equal(c, d)  # and off in eval


# ---- experiment configs -----------------------------------------------------------------------

CONFIGS = [
  'lenet5_mnist',
  'lenet5_digits',
  'alexnet_imagenet',
  'vgg16_imagenet',
  'googlenet_imagenet',
  'resnet50_imagenet',
  'resnet18_cifar10',
]


@pytest.mark.parametrize('config_name', CONFIGS)
def test_experiment_configs_name_buildable_models(config_name):
  module = importlib.import_module(f'experiments.configs.{config_name}')
  config = module.get_config()
  assert config.task == 'classification'
  for needed in ('Command', 'Hardware', 'Expected time', 'Expected metric'):
    assert needed in module.__doc__, needed
  assert f'--config=experiments/configs/{config_name}.py' in module.__doc__
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != 'name'}
  model = get_model(config.model.name, num_classes=10, **kwargs)
  size = config.data.image_size
  logits, _ = _abstract_outputs(model, jnp.zeros((1, size, size, 3)))
  assert logits.shape == (1, 10)


# ---- the paper's GoogLeNet against a PyTorch transcription --------------------------------------


def _torch_googlenet_paper(torch, num_classes):
  """Caffe's bvlc_googlenet in PyTorch, with jaxseg's module names."""
  tnn = torch.nn

  class Unit(tnn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0):
      super().__init__()
      self.conv = tnn.Conv2d(cin, cout, k, stride, padding)

    def forward(self, x):
      return torch.relu(self.conv(x))

  class Inception(tnn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, cp):
      super().__init__()
      self.branch1 = Unit(cin, c1, 1)
      self.branch2_reduce, self.branch2 = Unit(cin, c3r, 1), Unit(c3r, c3, 3, padding=1)
      self.branch3_reduce, self.branch3 = Unit(cin, c5r, 1), Unit(c5r, c5, 5, padding=2)
      self.pool = tnn.MaxPool2d(3, 1, 1, ceil_mode=True)
      self.branch4 = Unit(cin, cp, 1)

    def forward(self, x):
      return torch.cat(
        [
          self.branch1(x),
          self.branch2(self.branch2_reduce(x)),
          self.branch3(self.branch3_reduce(x)),
          self.branch4(self.pool(x)),
        ],
        1,
      )

  class Aux(tnn.Module):
    def __init__(self, cin):
      super().__init__()
      self.conv = Unit(cin, 128, 1)
      self.fc1 = tnn.Linear(2048, 1024)
      self.fc2 = tnn.Linear(1024, num_classes)

    def forward(self, x):
      x = self.conv(tnn.functional.avg_pool2d(x, 5, 3))
      # jaxseg flattens (h, w, c); PyTorch (c, h, w).
      x = x.permute(0, 2, 3, 1).flatten(1)
      return self.fc2(torch.relu(self.fc1(x)))

  class Net(tnn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = Unit(3, 64, 7, 2, 3)
      self.conv2 = Unit(64, 64, 1)
      self.conv3 = Unit(64, 192, 3, padding=1)
      self.pool = tnn.MaxPool2d(3, 2, ceil_mode=True)
      self.norm = tnn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
      cin = 192
      for name, cfg in zip(
        ('3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'), _GOOGLENET_TABLE
      ):
        setattr(self, f'inception{name}', Inception(cin, *cfg))
        cin = cfg[0] + cfg[2] + cfg[4] + cfg[5]
      self.aux1, self.aux2 = Aux(512), Aux(528)
      self.fc = tnn.Linear(1024, num_classes)

    def forward(self, x):
      x = self.norm(self.pool(self.conv1(x)))
      x = self.pool(self.norm(self.conv3(self.conv2(x))))
      x = self.pool(self.inception3b(self.inception3a(x)))
      x = self.inception4a(x)
      aux1 = self.aux1(x)
      x = self.inception4d(self.inception4c(self.inception4b(x)))
      aux2 = self.aux2(x)
      x = self.pool(self.inception4e(x))
      x = self.inception5b(self.inception5a(x))
      return self.fc(x.mean(dim=(2, 3))), aux1, aux2

  return Net()


@pytest.mark.slow  # ~9 s; the torchvision GoogLeNet weight check is slow too
def test_googlenet_paper_matches_a_pytorch_transcription():
  torch = pytest.importorskip('torch')
  net = _torch_googlenet_paper(torch, num_classes=10).eval()
  state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
  model = get_model('googlenet', num_classes=10)
  x = np.random.default_rng(3).normal(size=(1, 224, 224, 3)).astype(np.float32)  # aux: 14 -> 4
  template = _abstract_variables(model, x.shape)

  def from_torch(path, leaf):
    names = [p.key for p in path][1:]
    weight = state['.'.join(names[:-1] + ['weight' if names[-1] == 'kernel' else 'bias'])]
    weight = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
    assert weight.shape == leaf.shape, names
    return jnp.asarray(weight)

  variables = jax.tree_util.tree_map_with_path(from_torch, template)
  logits, endpoints = model.apply(variables, jnp.asarray(x))
  with torch.no_grad():
    expected = [t.numpy() for t in net(torch.from_numpy(x.transpose(0, 3, 1, 2)))]
  for ours, theirs in zip((logits, endpoints['aux1'], endpoints['aux2']), expected):
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
