"""jaxseg.export: models exported with symbolic batch, height and width, reloaded and run at any
size, equal to ``model.apply`` (the padding rule is the module docstring's)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import export
from jaxseg.inference.segmentation import predict_whole
from jaxseg.models import get_model

CASES = {
  'fcn8s': dict(num_classes=3, width_divisor=16),
  'deeplab_v3plus': dict(num_classes=4, backbone='resnet18', multi_grid=(1, 2), width_divisor=8),
  'salnet_deep': {},
}


class _Exported(dict):
  """name -> (model, variables, loaded export), each built on first use and kept for the module."""

  def __init__(self, tmp_path_factory):
    super().__init__()
    self._tmp = tmp_path_factory

  def __missing__(self, name):
    model = get_model(name, **CASES[name])
    variables = model.init(jax.random.key(1), jnp.zeros((1, 64, 64, 3)))
    path = self._tmp.mktemp(name) / 'model.jaxexport'
    export.save_exported(export.export_model(model, variables), path)
    self[name] = (model, variables, export.load_exported(path))
    return self[name]


@pytest.fixture(scope='module')
def exported_models(tmp_path_factory):
  return _Exported(tmp_path_factory)


def _random_images(batch, height, width, seed=0):
  return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype(np.float32)


# One odd size in the default suite; two more with the slow checks (each compiles afresh).
@pytest.mark.parametrize(
  'shape',
  [
    pytest.param((1, 64, 96), marks=pytest.mark.slow),
    (2, 45, 70),
    pytest.param((3, 33, 129), marks=pytest.mark.slow),
  ],
)
def test_fcn_exported_equals_apply_at_any_size(exported_models, shape):
  # FCN pads its input to a multiple of 32 with zeros itself, so the exported function (which
  # pads outside the same way) equals apply at every size.
  model, variables, loaded = exported_models['fcn8s']
  images = _random_images(*shape)
  expected, _ = model.apply(variables, images)
  np.testing.assert_allclose(loaded(images), expected, rtol=1e-5, atol=1e-5)


# DeepLab v3+ and the 25.8M-parameter saliency net take ~40 s of CPU to export and run at three
# sizes: CI runs them with the slow checks.
@pytest.mark.slow
@pytest.mark.parametrize('name', ['deeplab_v3plus', 'salnet_deep'])
@pytest.mark.parametrize('shape', [(1, 64, 64), (2, 32, 96), (1, 96, 128)])
def test_exported_equals_apply_at_multiples_of_32(exported_models, name, shape):
  model, variables, loaded = exported_models[name]
  images = _random_images(*shape, seed=1)
  expected, _ = model.apply(variables, images)
  # The exported resize computes its sample points in float32 (symbolic sizes cannot use the
  # host float64 table), so bilinear weights differ from apply's in the 7th digit.
  np.testing.assert_allclose(loaded(images), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_deeplab_other_sizes_equal_whole_image_inference(exported_models):
  # At a size that is not a multiple of 32 the exported DeepLab computes what whole-image
  # inference computes: the image padded bottom/right to the next multiple, logits cropped back.
  model, variables, loaded = exported_models['deeplab_v3plus']
  images = _random_images(2, 45, 70, seed=2)
  expected = predict_whole(lambda x: model.apply(variables, x)[0], images, bucket=32)
  np.testing.assert_allclose(loaded(images), expected, rtol=1e-4, atol=1e-5)


def test_exported_shapes_are_symbolic(exported_models):
  _, _, loaded = exported_models['fcn8s']
  assert [str(d) for d in loaded.exported.in_avals[0].shape] == ['b', '32*h', '32*w', '3']
  assert loaded.multiples == (32, 32)


@pytest.mark.parametrize(
  'kwargs, match',
  [
    (dict(input_shape=('b', 'h', 'w')), 'input_shape'),
    (dict(input_shape=('b', 'h', 0, 3)), 'input_shape width'),
    (dict(input_shape=('b', 'h', 'w', 3), spatial_multiple=0), 'spatial_multiple'),
    (dict(preprocess='normalize'), 'preprocess'),
  ],
)
def test_export_model_bad_arguments(kwargs, match):
  model = get_model('fcn32s', num_classes=2, width_divisor=32)
  with pytest.raises((ValueError, TypeError), match=match):
    export.export_model(model, {}, **kwargs)


def test_load_exported_rejects_other_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a file'):
    export.load_exported(tmp_path / 'missing.jaxexport')
  other = tmp_path / 'other.bin'
  other.write_bytes(b'not an export')
  with pytest.raises(ValueError, match='not a jaxseg export'):
    export.load_exported(other)
