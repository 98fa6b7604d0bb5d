"""Torchvision weight import: networks written here in PyTorch with torchvision's exact module
layout and parameter names, random weights and batch-norm statistics, give the same logits as
jaxseg after import. Full-size name and shape compatibility is checked on PyTorch's meta device
(nothing allocated). Skipped without PyTorch.
"""

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.models import get_model, import_torchvision, load_state_dict, torchvision_layout

torch = pytest.importorskip('torch')
tnn = torch.nn
F = torch.nn.functional

# ---- torchvision's layouts, written out -------------------------------------------------------


class BasicBlock(tnn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.relu = tnn.ReLU()
    self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(tnn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # v1.5
    self.bn2 = tnn.BatchNorm2d(planes)
    self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = tnn.BatchNorm2d(planes * 4)
    self.relu = tnn.ReLU()
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(tnn.Module):
  def __init__(self, block, layers, num_classes=1000):
    super().__init__()
    self.inplanes = 64
    self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = tnn.BatchNorm2d(64)
    self.relu = tnn.ReLU()
    self.maxpool = tnn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make_layer(block, 64, layers[0])
    self.layer2 = self._make_layer(block, 128, layers[1], 2)
    self.layer3 = self._make_layer(block, 256, layers[2], 2)
    self.layer4 = self._make_layer(block, 512, layers[3], 2)
    self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
    self.fc = tnn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, block, planes, blocks, stride=1):
    downsample = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      downsample = tnn.Sequential(
        tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
        tnn.BatchNorm2d(planes * block.expansion),
      )
    layers = [block(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
    return tnn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(tnn.Module):
  def __init__(self, cfg, batch_norm, fc=4096, num_classes=1000):
    super().__init__()
    layers, cin = [], 3
    for v in cfg:
      if v == 'M':
        layers.append(tnn.MaxPool2d(2, 2))
        continue
      layers.append(tnn.Conv2d(cin, v, 3, padding=1))
      if batch_norm:
        layers.append(tnn.BatchNorm2d(v))
      layers.append(tnn.ReLU())
      cin = v
    self.features = tnn.Sequential(*layers)
    self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
    self.classifier = tnn.Sequential(
      tnn.Linear(cin * 49, fc),
      tnn.ReLU(),
      tnn.Dropout(),
      tnn.Linear(fc, fc),
      tnn.ReLU(),
      tnn.Dropout(),
      tnn.Linear(fc, num_classes),
    )

  def forward(self, x):
    return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class AlexNet(tnn.Module):
  def __init__(self, widths=(64, 192, 384, 256, 256), fc=4096, num_classes=1000):
    super().__init__()
    a, b, c, d, e = widths
    self.features = tnn.Sequential(
      tnn.Conv2d(3, a, 11, 4, 2),
      tnn.ReLU(),
      tnn.MaxPool2d(3, 2),
      tnn.Conv2d(a, b, 5, padding=2),
      tnn.ReLU(),
      tnn.MaxPool2d(3, 2),
      tnn.Conv2d(b, c, 3, padding=1),
      tnn.ReLU(),
      tnn.Conv2d(c, d, 3, padding=1),
      tnn.ReLU(),
      tnn.Conv2d(d, e, 3, padding=1),
      tnn.ReLU(),
      tnn.MaxPool2d(3, 2),
    )
    self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
    self.classifier = tnn.Sequential(
      tnn.Dropout(),
      tnn.Linear(e * 36, fc),
      tnn.ReLU(),
      tnn.Dropout(),
      tnn.Linear(fc, fc),
      tnn.ReLU(),
      tnn.Linear(fc, num_classes),
    )

  def forward(self, x):
    return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicConv2d(tnn.Module):
  def __init__(self, cin, cout, **kwargs):
    super().__init__()
    self.conv = tnn.Conv2d(cin, cout, bias=False, **kwargs)
    self.bn = tnn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class Inception(tnn.Module):
  def __init__(self, cin, c1, c3r, c3, c5r, c5, cp):
    super().__init__()
    self.branch1 = BasicConv2d(cin, c1, kernel_size=1)
    self.branch2 = tnn.Sequential(
      BasicConv2d(cin, c3r, kernel_size=1), BasicConv2d(c3r, c3, kernel_size=3, padding=1)
    )
    self.branch3 = tnn.Sequential(
      BasicConv2d(cin, c5r, kernel_size=1), BasicConv2d(c5r, c5, kernel_size=3, padding=1)
    )
    self.branch4 = tnn.Sequential(
      tnn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, cp, kernel_size=1)
    )

  def forward(self, x):
    return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(tnn.Module):
  def __init__(self, cin, num_classes):
    super().__init__()
    self.conv = BasicConv2d(cin, 128, kernel_size=1)
    self.fc1 = tnn.Linear(2048, 1024)
    self.fc2 = tnn.Linear(1024, num_classes)

  def forward(self, x):
    x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
    x = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), 0.7, training=self.training)
    return self.fc2(x)


class GoogLeNet(tnn.Module):
  def __init__(self, num_classes=1000):
    super().__init__()
    self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
    self.maxpool1 = tnn.MaxPool2d(3, 2, ceil_mode=True)
    self.conv2 = BasicConv2d(64, 64, kernel_size=1)
    self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
    self.maxpool2 = tnn.MaxPool2d(3, 2, ceil_mode=True)
    self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
    self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
    self.maxpool3 = tnn.MaxPool2d(3, 2, ceil_mode=True)
    self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
    self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
    self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
    self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
    self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
    self.maxpool4 = tnn.MaxPool2d(2, 2, ceil_mode=True)
    self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
    self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
    self.aux1 = InceptionAux(512, num_classes)
    self.aux2 = InceptionAux(528, num_classes)
    self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
    self.dropout = tnn.Dropout(0.2)
    self.fc = tnn.Linear(1024, num_classes)

  def forward(self, x):
    x = self.maxpool1(self.conv1(x))
    x = self.maxpool2(self.conv3(self.conv2(x)))
    x = self.maxpool3(self.inception3b(self.inception3a(x)))
    x = self.inception4a(x)
    self.aux1_logits = self.aux1(x)
    x = self.inception4d(self.inception4c(self.inception4b(x)))
    self.aux2_logits = self.aux2(x)
    x = self.maxpool4(self.inception4e(x))
    x = self.inception5b(self.inception5a(x))
    return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# ---- helpers ----------------------------------------------------------------------------------


def _randomized(module, seed=0):
  """Random weights everywhere, random batch-norm affine parameters and running statistics."""
  torch.manual_seed(seed)
  with torch.no_grad():
    for m in module.modules():
      if isinstance(m, tnn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
  return module.eval()


def _numpy_state_dict(module):
  return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _compare(torch_model, jax_model, state_dict, size):
  x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype(np.float32)
  variables = import_torchvision(jax_model, state_dict)
  with torch.no_grad():
    expected = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  logits, endpoints = jax_model.apply(variables, jnp.asarray(x))
  scale = np.max(np.abs(expected))
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * scale)
  return endpoints


def _safetensors_path(tmp_path, state_dict):
  save_file = pytest.importorskip('safetensors.numpy').save_file
  path = tmp_path / 'weights.safetensors'
  save_file(state_dict, str(path))
  return path


# ---- same logits ------------------------------------------------------------------------------


def test_resnet18_from_a_pth_converted_by_the_tool(tmp_path):
  pytest.importorskip('safetensors')
  torch_model = _randomized(ResNet(BasicBlock, [2, 2, 2, 2]))
  torch.save(torch_model.state_dict(), tmp_path / 'resnet18.pth')
  tool = pathlib.Path(__file__).resolve().parents[1] / 'tools' / 'pth_to_safetensors.py'
  spec = importlib.util.spec_from_file_location('pth_to_safetensors', tool)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  module.main([str(tmp_path / 'resnet18.pth'), str(tmp_path / 'resnet18.safetensors')])
  _compare(torch_model, get_model('resnet18'), tmp_path / 'resnet18.safetensors', 64)


def test_resnet50_from_npz(tmp_path):
  torch_model = _randomized(ResNet(Bottleneck, [3, 4, 6, 3]), seed=1)
  np.savez(tmp_path / 'resnet50.npz', **_numpy_state_dict(torch_model))
  _compare(torch_model, get_model('resnet50'), tmp_path / 'resnet50.npz', 64)


VGG11_SMALL = [4, 'M', 8, 'M', 8, 8, 'M', 16, 16, 'M', 16, 16, 'M']
VGG11_SMALL_STAGES = ((4,), (8,), (8, 8), (16, 16), (16, 16))


@pytest.mark.parametrize('batch_norm', [False, True])
def test_vgg11_reduced_width(tmp_path, batch_norm):
  # 64x64: pool5 is 2x2, adaptively pooled to 7x7 with uneven cells, so fc6's flatten order
  # (PyTorch c,h,w vs jaxseg h,w,c) matters.
  torch_model = _randomized(VGG(VGG11_SMALL, batch_norm, fc=32, num_classes=10), seed=2)
  jax_model = get_model(
    'vgg11_bn' if batch_norm else 'vgg11',
    stage_features=VGG11_SMALL_STAGES,
    fc_features=32,
    num_classes=10,
  )
  path = _safetensors_path(tmp_path, _numpy_state_dict(torch_model))
  _compare(torch_model, jax_model, path, 64)


def test_vgg11_at_32_replicates_pool5():
  torch_model = _randomized(VGG(VGG11_SMALL, False, fc=32, num_classes=10), seed=3)
  jax_model = get_model('vgg11', stage_features=VGG11_SMALL_STAGES, fc_features=32, num_classes=10)
  endpoints = _compare(torch_model, jax_model, _numpy_state_dict(torch_model), 32)
  assert endpoints['pool5'].shape == (2, 1, 1, 16)


def test_alexnet_torchvision_reduced_width():
  # 127x127: pool5 is 3x3, adaptively pooled to 6x6, so the flatten order matters.
  widths = (8, 16, 16, 16, 16)
  torch_model = _randomized(AlexNet(widths, fc=32, num_classes=10), seed=4)
  jax_model = get_model('alexnet_torchvision', conv_features=widths, fc_features=32, num_classes=10)
  endpoints = _compare(torch_model, jax_model, _numpy_state_dict(torch_model), 127)
  assert endpoints['stride32'].shape == (2, 3, 3, 16)


@pytest.mark.slow  # ~8-11 s: keeps the default suite under 10 minutes on 2 cores
def test_googlenet_torchvision_logits_and_auxiliary_heads():
  torch_model = _randomized(GoogLeNet(num_classes=10), seed=5)
  jax_model = get_model('googlenet_torchvision', num_classes=10)
  endpoints = _compare(torch_model, jax_model, _numpy_state_dict(torch_model), 64)
  # The auxiliary heads read 4x4 maps here, so their fc1 flatten order matters too.
  for name in ('aux1', 'aux2'):
    expected = getattr(torch_model, f'{name}_logits').numpy()
    np.testing.assert_allclose(
      endpoints[name], expected, rtol=1e-4, atol=1e-4 * np.max(np.abs(expected))
    )


# ---- full-size layouts, on the meta device ----------------------------------------------------

VGG_CFGS = {
  'vgg11': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  'vgg16': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  'vgg19': [64, 64, 'M', 128, 128, 'M'] + ([256] * 4 + ['M']) + ([512] * 4 + ['M']) * 2,
}


@pytest.mark.parametrize(
  'name,build',
  [
    ('vgg11', lambda: VGG(VGG_CFGS['vgg11'], False)),
    ('vgg16_bn', lambda: VGG(VGG_CFGS['vgg16'], True)),
    ('vgg19', lambda: VGG(VGG_CFGS['vgg19'], False)),
    ('alexnet_torchvision', AlexNet),
    ('googlenet_torchvision', GoogLeNet),
    ('resnet34', lambda: ResNet(BasicBlock, [3, 4, 6, 3])),
    ('resnet101', lambda: ResNet(Bottleneck, [3, 4, 23, 3])),
    ('resnet152', lambda: ResNet(Bottleneck, [3, 8, 36, 3])),
  ],
)
def test_full_size_state_dict_names_and_shapes(name, build):
  with torch.device('meta'):
    expected = {
      k: tuple(v.shape)
      for k, v in build().state_dict().items()
      if not k.endswith('num_batches_tracked')
    }
  layout = torchvision_layout(get_model(name))
  assert {k: shape for k, (_, shape) in layout.items()} == expected


# ---- errors -----------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def resnet18_state():
  return _numpy_state_dict(_randomized(ResNet(BasicBlock, [2, 2, 2, 2])))


def test_missing_tensor_is_named(resnet18_state):
  state = dict(resnet18_state)
  del state['layer2.0.downsample.1.running_var']
  with pytest.raises(ValueError, match=r"'layer2\.0\.downsample\.1\.running_var'.*missing"):
    import_torchvision(get_model('resnet18'), state)


def test_wrong_shape_is_named(resnet18_state):
  with pytest.raises(ValueError, match=r"'fc\.bias' has shape \(1000,\), expected \(10,\)"):
    import_torchvision(get_model('resnet18', num_classes=10), resnet18_state)


def test_unexpected_tensor_is_named(resnet18_state):
  state = {**resnet18_state, 'extra.weight': np.zeros(3, np.float32)}
  with pytest.raises(ValueError, match=r"'extra\.weight'.*no place"):
    import_torchvision(get_model('resnet18'), state)


def test_first_misfit_is_reported(resnet18_state):
  state = dict(resnet18_state)
  state['conv1.weight'] = np.zeros((64, 3, 3, 3), np.float32)
  del state['fc.bias']
  with pytest.raises(ValueError, match=r"'conv1\.weight'"):
    import_torchvision(get_model('resnet18'), state)


def test_unsupported_models_are_rejected():
  with pytest.raises(TypeError, match='LeNet5'):
    import_torchvision(get_model('lenet5'), {})
  with pytest.raises(ValueError, match='torchvision_compatible'):
    import_torchvision(get_model('alexnet'), {})


def test_load_state_dict_rejects_unknown_extensions(tmp_path):
  with pytest.raises(ValueError, match=r'\.safetensors or \.npz'):
    load_state_dict(tmp_path / 'resnet.pth')


def test_safetensors_without_the_package_says_how_to_fix_it(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'safetensors', None)
  monkeypatch.setitem(sys.modules, 'safetensors.numpy', None)
  with pytest.raises(ImportError, match='pip install safetensors'):
    load_state_dict(tmp_path / 'resnet.safetensors')


# ---- segmentation networks: the backbone (and FCN's fc6/fc7) from a classification checkpoint --

VGG16_SIXTEENTH = [4, 4, 'M', 8, 8, 'M', 16, 16, 16, 'M', 32, 32, 32, 'M', 32, 32, 32, 'M']


def test_fcn32s_backbone_and_fc6_fc7_from_vgg16_classifier():
  # VGG16 at 1/16 width, as FCN(width_divisor=16) builds it: fc6 is Linear(32*7*7, 256).
  torch_model = _randomized(VGG(VGG16_SIXTEENTH, False, fc=256, num_classes=10), seed=4)
  model = get_model('fcn32s', num_classes=5, width_divisor=16)
  variables = import_torchvision(model, _numpy_state_dict(torch_model))
  # score_fr is zero-initialised; give it weights so its output exposes fc7 at every position.
  rng = np.random.default_rng(5)
  params = dict(variables['params'])
  score_kernel = rng.normal(size=(1, 1, 256, 5)).astype(np.float32)
  params['score_fr'] = {'kernel': jnp.asarray(score_kernel), 'bias': jnp.zeros(5)}
  x = rng.normal(size=(2, 224, 224, 3)).astype(np.float32)
  _, endpoints = model.apply({'params': params}, jnp.asarray(x))
  with torch.no_grad():
    features = torch_model.features(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    # classifier[:5]: fc6, ReLU, dropout, fc7, ReLU.
    fc7 = torch_model.classifier[:5](torch.flatten(features, 1)).numpy()
  np.testing.assert_allclose(
    endpoints['pool5'], features.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4
  )
  # At 224 pool5 is 7x7 and fc6 (7x7, padding 3) at the centre sees exactly the whole map: the
  # fully connected layer the classifier computes (FCN paper, section 3.1).
  np.testing.assert_allclose(
    endpoints['score_fr'][:, 3, 3],
    fc7 @ score_kernel[0, 0],
    rtol=1e-4,
    atol=1e-4 * np.abs(fc7 @ score_kernel[0, 0]).max(),
  )


@pytest.mark.slow  # ~8-11 s: keeps the default suite under 10 minutes on 2 cores
def test_deeplab_v3_resnet18_backbone_from_torchvision():
  torch_model = _randomized(ResNet(BasicBlock, [2, 2, 2, 2]), seed=6)
  model = get_model(
    'deeplab_v3', num_classes=3, backbone='resnet18', multi_grid=(1, 2), output_stride=16
  )
  variables = import_torchvision(model, _numpy_state_dict(torch_model), input_shape=(1, 64, 64, 3))
  assert 'aspp' in str(jax.tree_util.tree_structure(variables['params'])).lower()
  x = np.random.default_rng(7).normal(size=(1, 64, 64, 3)).astype(np.float32)
  _, endpoints = model.apply(variables, jnp.asarray(x))
  t = torch.from_numpy(x.transpose(0, 3, 1, 2))
  with torch.no_grad():
    t = torch_model.maxpool(torch_model.relu(torch_model.bn1(torch_model.conv1(t))))
    expected = {}
    for stride, layer in ((4, 'layer1'), (8, 'layer2'), (16, 'layer3')):
      t = getattr(torch_model, layer)(t)
      expected[stride] = t.numpy().transpose(0, 2, 3, 1)
  # Output stride 16 dilates only layer4, so layers 1-3 are torchvision's own.
  for stride, value in expected.items():
    np.testing.assert_allclose(
      endpoints[f'stride{stride}'], value, rtol=1e-4, atol=1e-4 * np.abs(value).max()
    )


def test_segmentation_import_names_foreign_tensors():
  torch_model = VGG(VGG16_SIXTEENTH, False, fc=256, num_classes=10)
  state = _numpy_state_dict(torch_model)
  state['decoder.weight'] = np.zeros(3, np.float32)
  with pytest.raises(ValueError, match=r"'decoder\.weight'"):
    import_torchvision(get_model('fcn8s', num_classes=5, width_divisor=16), state)
  del state['decoder.weight'], state['classifier.3.weight']
  with pytest.raises(ValueError, match=r"'classifier\.3\.weight'.*fc7"):
    import_torchvision(get_model('fcn8s', num_classes=5, width_divisor=16), state)
