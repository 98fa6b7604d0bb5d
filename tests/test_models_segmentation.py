"""Tests for the segmentation models: FCN-32s/16s/8s, DeepLab v1/v2/v3/v3+ and ASPP."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import ops
from jaxseg.models import aspp, deeplab, fcn  # noqa: F401  (registers the models)
from jaxseg.models.registry import get_model, list_models

ODD = (97, 131)
SEG_MODELS = (
  'fcn32s',
  'fcn16s',
  'fcn8s',
  'deeplab_v1',
  'deeplab_v2',
  'deeplab_v3',
  'deeplab_v3plus',
)
VGG16_CONVS = (
  (3, 64),
  (64, 64),
  (64, 128),
  (128, 128),
  (128, 256),
  (256, 256),
  (256, 256),
  (256, 512),
  (512, 512),
  (512, 512),
  (512, 512),
  (512, 512),
  (512, 512),
)
RESNET101_WITHOUT_FC = 44_549_160 - (2048 * 1000 + 1000)  # published ResNet-101 count - fc


def _count(tree):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def _abstract(model, shape=(1,) + ODD + (3,)):
  """(output, variables) shapes without computing anything."""
  return jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), jnp.ones(shape)))


def _conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def test_all_models_registered():
  assert set(SEG_MODELS) <= set(list_models())


# ---------------------------------------------------------------------------- parameter counts
def test_deeplab_v1_has_the_published_parameter_count():
  _, variables = _abstract(get_model('deeplab_v1', num_classes=21))
  assert _count(variables['params']) == 20_505_429


@pytest.mark.parametrize('learn_upsampling', [False, True])
def test_fcn32s_parameter_count_layer_by_layer(learn_upsampling):
  expected = sum(_conv(3, cin, cout) for cin, cout in VGG16_CONVS)  # conv1_1 ... conv5_3
  expected += _conv(7, 512, 4096)  # fc6
  expected += _conv(1, 4096, 4096)  # fc7
  expected += _conv(1, 4096, 21)  # score_fr
  if learn_upsampling:
    expected += 64 * 64 * 21 * 21  # upscore (no bias); frozen: no parameter at all
  _, variables = _abstract(get_model('fcn32s', learn_upsampling=learn_upsampling))
  assert _count(variables['params']) == expected
  assert expected == (134_346_581 + (1_806_336 if learn_upsampling else 0))


def test_fcn8s_adds_skip_scores_and_learned_upsampling():
  base = _count(_abstract(get_model('fcn32s'))[1]['params'])
  skips = _conv(1, 512, 21) + _conv(1, 256, 21)  # score_pool4, score_pool3
  upsampling = 2 * (4 * 4 * 21 * 21) + 16 * 16 * 21 * 21  # upscore2, upscore_pool4, upscore8
  _, variables = _abstract(get_model('fcn8s', learn_upsampling=True))
  assert _count(variables['params']) == base + skips + upsampling


def test_deeplab_v2_v3_v3plus_parameter_counts_from_resnet101():
  _, v2 = _abstract(get_model('deeplab_v2'))
  assert _count(v2['params']) == RESNET101_WITHOUT_FC + 4 * _conv(3, 2048, 21)
  aspp_v3 = (
    _conv(1, 2048, 256, False)
    + 3 * _conv(3, 2048, 256, False)
    + _conv(1, 2048, 256, False)
    + _conv(1, 5 * 256, 256, False)
    + 6 * 2 * 256
  )  # + 6 BN
  _, v3 = _abstract(get_model('deeplab_v3'))
  assert _count(v3['params']) == RESNET101_WITHOUT_FC + aspp_v3 + _conv(1, 256, 21)
  decoder = (
    _conv(1, 256, 48, False)
    + 2 * 48
    + _conv(3, 256 + 48, 256, False)
    + 2 * 256
    + _conv(3, 256, 256, False)
    + 2 * 256
  )
  _, v3plus = _abstract(get_model('deeplab_v3plus'))
  assert _count(v3plus['params']) == RESNET101_WITHOUT_FC + aspp_v3 + decoder + _conv(1, 256, 21)


# ---------------------------------------------------------------------------- output sizes
@pytest.mark.parametrize(
  'name,options',
  [
    ('fcn32s', {}),
    ('fcn16s', {}),
    ('fcn8s', {}),
    ('fcn32s', {'caffe_compat': True}),
    ('fcn16s', {'caffe_compat': True}),
    ('fcn8s', {'caffe_compat': True}),
    ('fcn8s', {'backbone': 'resnet50'}),
    ('deeplab_v1', {}),
    ('deeplab_v2', {}),
    ('deeplab_v2', {'input_scales': (1.0, 0.75, 0.5)}),
    ('deeplab_v3', {}),
    ('deeplab_v3', {'output_stride': 8}),
    ('deeplab_v3plus', {}),
  ],
)
def test_full_size_models_output_the_input_size(name, options):
  (logits, _), _ = _abstract(get_model(name, num_classes=21, **options))
  assert logits.shape == (1,) + ODD + (21,) and logits.dtype == jnp.float32


TINY = {
  'fcn32s': dict(width_divisor=16),
  'fcn16s': dict(width_divisor=16),
  'fcn8s': dict(width_divisor=16),
  'deeplab_v1': dict(width_divisor=16),
  'deeplab_v2': dict(backbone='resnet18', width_divisor=16, rates=(1, 2)),
  'deeplab_v3': dict(backbone='resnet18', width_divisor=32, multi_grid=(1, 2)),
  'deeplab_v3plus': dict(backbone='resnet18', width_divisor=32, multi_grid=(1, 2)),
}


def _tiny(name, **options):
  return get_model(name, num_classes=3, **{**TINY[name], **options})


def _fill(path, leaf, rng):
  """A random value for one variable: He-normal kernels, small biases, unit BN statistics."""
  name = path[-1].key
  if name == 'kernel':
    fan_in = int(np.prod(leaf.shape[:-1]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), leaf.shape).astype(np.float32)
  if name == 'var' or name == 'scale':
    return np.ones(leaf.shape, np.float32)
  if name == 'mean':
    return np.zeros(leaf.shape, np.float32)
  return rng.normal(0.0, 0.1, leaf.shape).astype(np.float32)


def _init(model, shape, seed=0):
  """Random variables of the right structure, filled on the host.

  Compiling `model.init` (one random kernel per shape) costs far more on CPU than the tests
  themselves; the properties tested here hold for any parameter values.
  """
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  abstract = jax.eval_shape(model.init, jax.random.key(0), x)
  return jax.tree_util.tree_map_with_path(lambda p, l: jnp.asarray(_fill(p, l, rng)), abstract), x


def _apply(model, variables, x, **kwargs):
  """One forward pass, op by op (cheaper than compiling a deep network on 2 CPU cores)."""
  return model.apply(variables, x, **kwargs)


@pytest.mark.parametrize('name', SEG_MODELS)
def test_tiny_models_keep_odd_and_one_pixel_sizes(name):
  # Shapes only, so traced abstractly: the values of these tiny models are checked by the
  # tests below (crop offsets, bilinear alignment, ASPP and decoder composed by hand).
  model = _tiny(name)
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  for size in [(33, 47), (1, 1)]:
    x = jax.ShapeDtypeStruct((2,) + size + (3,), jnp.float32)
    logits, _ = jax.eval_shape(model.apply, variables, x)
    assert logits.shape == (2,) + size + (3,) and logits.dtype == jnp.float32, name


# ---------------------------------------------------------------------------- FCN specifics
def test_fcn_score_layers_start_at_zero():
  model = _tiny('fcn8s')
  x = jnp.ones((1, 40, 40, 3))
  # A real init (the property is about the initialisers). An 'rbg' key: compiling threefry for
  # every kernel costs ~5x more on CPU than the network itself.
  variables = jax.jit(model.init)(jax.random.key(0, impl='rbg'), x)
  logits, _ = _apply(model, variables, x)
  np.testing.assert_array_equal(np.asarray(logits), 0.0)
  for name in ('score_fr', 'score_pool4', 'score_pool3'):
    assert not np.any(np.asarray(variables['params'][name]['kernel']))


def test_fcn32s_default_upsampling_is_aligned_bilinear_interpolation():
  model = _tiny('fcn32s')
  variables, x = _init(model, (1,) + ODD + (3,))
  logits, endpoints = _apply(model, variables, x)
  score = endpoints['score_fr']  # (1, 4, 5, 3): the input padded to 128 x 160
  assert score.shape[1:3] == (4, 5)
  reference = ops.resize(score, (128, 160))[:, : ODD[0], : ODD[1]]
  # Half-pixel-centred bilinear interpolation, exact wherever no border clamping is involved.
  np.testing.assert_allclose(
    np.asarray(logits)[:, 16:, 16:], np.asarray(reference)[:, 16:, 16:], rtol=1e-4, atol=1e-5
  )


def _caffe_offsets(variant):
  """Derives the crop offsets of the reference nets from layer geometry (FCN's coord_map).

  A map's pixel y sits at data coordinate a * y + b. Convolutions and pools (kernel k, stride s,
  pad p) compose x = s * y + (k - 1) / 2 - p; a transposed convolution inverts that. A crop of
  map A onto map R starts at (b_R - b_A) / a.
  """

  def forward(ab, k, s=1, p=0):
    a, b = ab
    return a * s, b + a * ((k - 1) / 2 - p)

  def deconv(ab, k, s):
    a, b = ab
    return a / s, b - (a / s) * (k - 1) / 2

  ab = forward((1.0, 0.0), 3, p=100)  # conv1_1
  maps = {}
  for stage, convs in enumerate((2, 2, 3, 3, 3), start=1):
    for _ in range(convs - (1 if stage == 1 else 0)):
      ab = forward(ab, 3, p=1)
    ab = forward(ab, 2, s=2)
    maps[f'pool{stage}'] = ab
  score_fr = forward(ab, 7)  # fc6; fc7 and score_fr are 1x1
  offsets = {}
  if variant == 32:
    up = deconv(score_fr, 64, 32)
    offsets['upscore'] = -up[1] / up[0]
    return offsets
  up2 = deconv(score_fr, 4, 2)
  offsets['score_pool4'] = (up2[1] - maps['pool4'][1]) / up2[0]
  if variant == 16:
    up = deconv(up2, 32, 16)
    offsets['upscore16'] = -up[1] / up[0]
    return offsets
  up4 = deconv(up2, 4, 2)
  offsets['score_pool3'] = (up4[1] - maps['pool3'][1]) / up4[0]
  up = deconv(up4, 16, 8)
  offsets['upscore8'] = -up[1] / up[0]
  return offsets


@pytest.mark.parametrize('variant', [32, 16, 8])
def test_caffe_offsets_follow_from_the_geometry(variant):
  assert _caffe_offsets(variant) == fcn.CAFFE_OFFSETS[variant]


@pytest.mark.parametrize('variant', [32, 16, 8])
def test_caffe_compat_crops_at_the_reference_offsets(variant):
  model = _tiny(f'fcn{variant}s', caffe_compat=True, learn_upsampling=True)
  variables, x = _init(model, (1, 45, 52, 3))
  (logits, endpoints), state = _apply(
    model, variables, x, capture_intermediates=True, mutable=['intermediates']
  )
  inter = state['intermediates']
  out = lambda name: np.asarray(inter[name]['__call__'][0])
  offsets = fcn.CAFFE_OFFSETS[variant]
  final = {32: 'upscore', 16: 'upscore16', 8: 'upscore8'}[variant]
  o = offsets[final]
  np.testing.assert_array_equal(np.asarray(logits), out(final)[:, o : o + 45, o : o + 52])
  if variant <= 16:
    up2 = out('upscore2')
    o = offsets['score_pool4']
    want = up2 + out('score_pool4')[:, o : o + up2.shape[1], o : o + up2.shape[2]]
    np.testing.assert_allclose(np.asarray(endpoints['fuse_pool4']), want, rtol=1e-6)
  if variant == 8:
    up4 = out('upscore_pool4')
    o = offsets['score_pool3']
    want = up4 + out('score_pool3')[:, o : o + up4.shape[1], o : o + up4.shape[2]]
    np.testing.assert_allclose(np.asarray(endpoints['fuse_pool3']), want, rtol=1e-6)


def test_at_once_scales_the_pool_skips():
  plain, at_once = _tiny('fcn8s'), _tiny('fcn8s', at_once=True)
  variables, x = _init(plain, (1, 64, 64, 3))
  params = dict(variables['params'])
  # Scaling the input of a linear 1x1 score layer = scaling its kernel.
  scaled = {
    **params,
    'score_pool4': {**params['score_pool4'], 'kernel': params['score_pool4']['kernel'] * 0.01},
    'score_pool3': {**params['score_pool3'], 'kernel': params['score_pool3']['kernel'] * 1e-4},
  }
  want, _ = _apply(plain, {'params': scaled}, x)
  got, _ = _apply(at_once, variables, x)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_fcn_dropout_needs_rng_and_changes_training_output():
  model = _tiny('fcn32s')
  variables, x = _init(model, (1, 32, 32, 3))
  a, _ = _apply(model, variables, x, train=True, rngs={'dropout': jax.random.key(0)})
  b, _ = _apply(model, variables, x, train=False)
  assert not np.allclose(np.asarray(a), np.asarray(b))


def test_fcn_on_resnet_uses_stride_endpoints():
  model = get_model('fcn8s', num_classes=3, backbone='resnet18', width_divisor=16)
  variables, x = _init(model, (1, 37, 29, 3))
  assert 'fc6' not in variables['params']
  assert variables['params']['score_pool3']['kernel'].shape == (1, 1, 8, 3)  # stride8: 2 * 4
  logits, _ = _apply(model, variables, x)
  assert logits.shape == (1, 37, 29, 3)


# ---------------------------------------------------------------------------- DeepLab specifics
def test_deeplab_outputs_are_bilinear_upsampled_scores():
  # v3+ is the v3 class (its decoder's scores are checked layer by layer below); v2's fusion
  # has its own test.
  for name in ('deeplab_v1', 'deeplab_v3'):
    model = _tiny(name)
    variables, x = _init(model, (1, 37, 45, 3))
    logits, endpoints = _apply(model, variables, x)
    np.testing.assert_allclose(
      np.asarray(logits),
      np.asarray(ops.resize(endpoints['scores'], (37, 45))),
      rtol=1e-6,
      err_msg=name,
    )


def test_deeplab_v1_geometry():
  model = _tiny('deeplab_v1')
  variables, x = _init(model, (1, 64, 64, 3))
  _, endpoints = _apply(model, variables, x)
  assert endpoints['scores'].shape[1:3] == (8, 8)  # output stride 8
  assert variables['params']['fc6']['kernel'].shape == (3, 3, 32, 64)  # 3x3, 1024 / 16


def test_deeplab_v2_multiscale_is_the_pixelwise_max():
  multi = _tiny('deeplab_v2', input_scales=(1.0, 0.75, 0.5))
  single = _tiny('deeplab_v2')
  variables, x = _init(multi, (1, 48, 40, 3))
  logits, endpoints = _apply(multi, variables, x)
  per_scale = [endpoints[f'aux_scale{p}'] for p in ('100', '075', '050')]
  assert [s.shape[1:3] for s in per_scale] == [(6, 5), (5, 4), (3, 3)]
  fused = functools.reduce(np.maximum, [np.asarray(ops.resize(s, (6, 5))) for s in per_scale])
  np.testing.assert_allclose(
    np.asarray(logits), np.asarray(ops.resize(fused, (48, 40))), rtol=1e-5, atol=1e-6
  )
  # The scale-1 branch is the plain network with the same (shared) weights.
  plain, single_endpoints = _apply(single, variables, x)
  np.testing.assert_allclose(
    np.asarray(single_endpoints['scores']), np.asarray(per_scale[0]), rtol=1e-5, atol=1e-6
  )
  assert plain.shape == logits.shape


def test_aspp_classifier_sums_one_branch_per_rate():
  head = aspp.ASPPClassifier(num_classes=3, rates=(1, 2, 3))
  x = jax.random.normal(jax.random.key(0), (1, 9, 11, 4))
  variables = head.init(jax.random.key(1), x)
  total = head.apply(variables, x)
  branches = 0
  for rate in (1, 2, 3):
    p = variables['params'][f'rate{rate}']
    branches = branches + ops.atrous_conv2d(x, p['kernel'], p['bias'], rate=rate)
  np.testing.assert_allclose(np.asarray(total), np.asarray(branches), rtol=1e-5, atol=1e-6)
  assert aspp.ASPP_L_RATES == (6, 12, 18, 24) and aspp.ASPP_S_RATES == (2, 4, 8, 12)


def test_aspp_v3_parameter_names():
  module = aspp.ASPP(features=4, rates=(2, 3, 4))
  _, variables = _abstract(module, shape=(2, 7, 9, 5))
  assert sorted(variables['params']) == sorted(
    [
      'conv1x1',
      'conv1x1_bn',
      'atrous2',
      'atrous2_bn',
      'atrous3',
      'atrous3_bn',
      'atrous4',
      'atrous4_bn',
      'pool',
      'pool_bn',
      'project',
      'project_bn',
    ]
  )
  assert variables['params']['project']['kernel'].shape == (1, 1, 5 * 4, 4)


def _random_bn_stats(variables, seed):
  """Batch-norm statistics and affine parameters away from the identity, so BN is visible."""
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name in ('var', 'scale'):
      return jnp.asarray(rng.uniform(0.5, 2.0, leaf.shape).astype(np.float32))
    if name in ('mean', 'bias') and any(getattr(k, 'key', '').endswith('_bn') for k in path):
      return jnp.asarray(rng.normal(0.0, 0.5, leaf.shape).astype(np.float32))
    return leaf

  return jax.tree_util.tree_map_with_path(fill, variables)


def _conv_bn_relu_ref(x, variables, name, *, rate=1):
  """conv (no bias, 'same' padding, dilation ``rate``) -> eval-mode BN -> ReLU, from the ops."""
  kernel = variables['params'][name]['kernel']
  pad = rate * (kernel.shape[0] // 2)
  y = np.asarray(ops.conv2d(x, kernel, padding=pad, dilation=rate), np.float64)
  bn, stats = variables['params'][f'{name}_bn'], variables['batch_stats'][f'{name}_bn']
  y = (y - np.asarray(stats['mean'])) / np.sqrt(np.asarray(stats['var']) + 1e-5)
  return np.maximum(y * np.asarray(bn['scale']) + np.asarray(bn['bias']), 0.0)


def test_aspp_v3_equals_its_branches_composed_by_hand():
  # DeepLab v3 (Sec. 3.3; the TF reference): every branch, the image-pooling one included, is
  # conv + BN + ReLU; the pooled branch is the global mean, 1x1 conv, BN, ReLU, broadcast back;
  # the concatenation [1x1, atrous rates..., pooling] is projected by 1x1 conv + BN + ReLU.
  module = aspp.ASPP(features=4, rates=(2, 3))
  x = jax.random.normal(jax.random.key(0), (2, 7, 9, 5))
  variables = _random_bn_stats(_init(module, x.shape)[0], seed=1)
  got = np.asarray(module.apply(variables, x))
  branches = [_conv_bn_relu_ref(x, variables, 'conv1x1')]
  branches += [_conv_bn_relu_ref(x, variables, f'atrous{r}', rate=r) for r in (2, 3)]
  pooled = np.asarray(x, np.float64).mean(axis=(1, 2), keepdims=True)
  pooled = _conv_bn_relu_ref(jnp.asarray(pooled, jnp.float32), variables, 'pool')
  branches.append(np.broadcast_to(pooled, (2, 7, 9, 4)))
  concat = jnp.asarray(np.concatenate(branches, -1), jnp.float32)
  want = _conv_bn_relu_ref(concat, variables, 'project')
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # The pooling branch has its own BN: with every other branch's kernel zeroed, the output is
  # constant over space and still differs between the two images.
  params = dict(variables['params'])
  for name in ('conv1x1', 'atrous2', 'atrous3'):
    params[name] = {'kernel': jnp.zeros_like(params[name]['kernel'])}
  y = np.asarray(module.apply({**variables, 'params': params}, x))
  np.testing.assert_allclose(y, np.broadcast_to(y[:, :1, :1], y.shape), rtol=1e-6)
  assert not np.allclose(y[0, 0, 0], y[1, 0, 0])


def test_deeplab_v3plus_decoder_equals_its_layers_composed_by_hand():
  # v3+ (Chen et al. 2018, Fig. 2): stride4 -> 1x1 conv (48) + BN + ReLU; the ASPP output
  # bilinearly upsampled to that size and concatenated [ASPP, low-level]; two 3x3 conv + BN +
  # ReLU; a 1x1 classifier with bias.
  model = _tiny('deeplab_v3plus')
  variables, x = _init(model, (1, 48, 40, 3))
  variables = _random_bn_stats(variables, seed=2)
  params = variables['params']
  # resnet18 / 32: stride4 has 2 channels -> 48 / 32 = 1; concat with 256 / 32 = 8 ASPP channels.
  assert params['decoder_project']['kernel'].shape == (1, 1, 2, 1)
  assert params['decoder_conv1']['kernel'].shape == (3, 3, 8 + 1, 8)
  _, endpoints = _apply(model, variables, x)
  assert endpoints['scores'].shape[1:3] == (12, 10)  # the decoder works at stride 4
  assert endpoints['aspp'].shape[1:3] == (3, 3)  # the encoder at output stride 16
  low = _conv_bn_relu_ref(endpoints['stride4'], variables, 'decoder_project')
  up = np.asarray(ops.resize(endpoints['aspp'], low.shape[1:3]))
  y = jnp.asarray(np.concatenate([up, low], -1), jnp.float32)
  y = _conv_bn_relu_ref(y, variables, 'decoder_conv1')
  y = _conv_bn_relu_ref(jnp.asarray(y, jnp.float32), variables, 'decoder_conv2')
  head = variables['params']['classifier']
  want = np.asarray(ops.conv2d(jnp.asarray(y, jnp.float32), head['kernel'], head['bias']))
  np.testing.assert_allclose(np.asarray(endpoints['scores']), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('output_stride,rates', [(16, (6, 12, 18)), (8, (12, 24, 36))])
def test_deeplab_v3_rates_follow_output_stride(output_stride, rates):
  _, variables = _abstract(
    get_model('deeplab_v3', output_stride=output_stride), shape=(1, 65, 65, 3)
  )
  names = {n for n in variables['params']['aspp'] if n.startswith('atrous') and 'bn' not in n}
  assert names == {f'atrous{r}' for r in rates}


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='variant'):
    _abstract(fcn.FCN(variant=4))
  with pytest.raises(ValueError, match='caffe_compat'):
    _abstract(get_model('fcn8s', backbone='resnet18', caffe_compat=True))
  with pytest.raises(ValueError, match='width_divisor'):
    _abstract(get_model('fcn8s', width_divisor=0))
  with pytest.raises(ValueError, match='output_stride'):
    _abstract(get_model('deeplab_v3', output_stride=32))
  with pytest.raises(ValueError, match='rates'):
    _abstract(get_model('deeplab_v2', rates=()))
  with pytest.raises(ValueError, match='input_scales'):
    _abstract(get_model('deeplab_v2', input_scales=(1.0, -0.5)))


def test_variants_document_their_model_not_functools_partial():
  import pydoc
  from jaxseg import models

  text = pydoc.render_doc(models.fcn8s, renderer=pydoc.plaintext)
  assert 'function fcn8s' in text and 'FCN-32s, -16s or -8s' in text and 'variant=8' in text
  assert 'partial(func' not in text
  assert models.get_model('fcn8s', num_classes=3).variant == 8
  assert 'ResNet' in pydoc.render_doc(models.resnet50, renderer=pydoc.plaintext)
