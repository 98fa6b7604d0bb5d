"""Every public op and layer has a docstring with the promised parts, and its example runs."""

import doctest
import importlib
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import nn, ops

OPS = [getattr(ops, name) for name in ops.__all__]
HOST_MAPS = (ops.fixation_density, ops.mit_gaussian_sigma)  # NumPy, one (H, W) map
LAYERS = [
  nn.Conv,
  nn.ConvTranspose,
  nn.AtrousConv,
  nn.Dense,
  nn.MaxPool,
  nn.AvgPool,
  nn.LocalResponseNorm,
  nn.BatchNorm,
]
INITIALIZERS = [nn.he_normal, nn.he_uniform, nn.lecun_normal, nn.normal, nn.constant, nn.bilinear]
GLOBS = {
  'jax': jax,
  'jnp': jnp,
  'np': np,
  **{name: getattr(ops, name) for name in ops.__all__},
  **{name: getattr(nn, name) for name in nn.__all__},
}


def _name(obj):
  return obj.__name__


@pytest.mark.parametrize('obj', OPS + INITIALIZERS, ids=_name)
def test_function_docstring_has_formula_args_returns_example(obj):
  doc = inspect.getdoc(obj)
  assert doc and len(doc.splitlines()[0]) > 10, 'one-line summary'
  for section in ('Args:' if inspect.signature(obj).parameters else '', 'Returns:', 'Example'):
    assert section in doc, (obj.__name__, section)


@pytest.mark.parametrize('obj', OPS, ids=_name)
def test_op_docstring_names_layout_and_reference(obj):
  doc = inspect.getdoc(obj)
  assert '.. math::' in doc or ':math:' in doc, 'formula'
  if obj in HOST_MAPS:
    assert '(H, W)' in doc  # single host-side maps, not NHWC batches
  elif obj not in (ops.bilinear_kernel,):
    assert 'NHWC' in doc or 'HWC' in doc
  references = (
    'PyTorch',
    'torch.',
    'Caffe',
    'jax.vjp',
    'TensorFlow',
    'scipy.',
    'antonioGaussian.m',
  )
  assert any(r in doc for r in references), f'{obj.__name__} names no reference implementation'


@pytest.mark.parametrize('obj', LAYERS, ids=_name)
def test_layer_docstring(obj):
  doc = inspect.getdoc(obj)
  assert 'Example' in doc and ('Attributes:' in doc or obj is nn.BatchNorm)
  assert 'torch' in doc or 'Caffe' in doc


@pytest.mark.parametrize('obj', OPS + LAYERS + INITIALIZERS, ids=_name)
def test_docstring_example_runs(obj):
  finder = doctest.DocTestFinder(recurse=False)
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  tests = finder.find(obj, obj.__name__, globs=dict(GLOBS))
  examples = sum(len(t.examples) for t in tests)
  assert examples > 0, f'{obj.__name__} has no runnable example'
  for test in tests:
    runner.run(test)
  result = runner.summarize(verbose=False)
  assert result.failed == 0, f'{obj.__name__}: {result.failed} example(s) failed (see stdout)'


DOCTESTED_MODULES = [
  'jaxseg.losses.classification',
  'jaxseg.losses.segmentation',
  'jaxseg.losses.saliency',
  'jaxseg.metrics.classification',
  'jaxseg.metrics.segmentation',
  'jaxseg.metrics.saliency',
  'jaxseg.inference.segmentation',
  'jaxseg.viz.palettes',
  'jaxseg.viz.overlays',
  'jaxseg.viz.heatmaps',
  'jaxseg.viz.grids',
  'jaxseg.models.aspp',
  'jaxseg.models.memory',
  'jaxseg.models.fcn',
  'jaxseg.models.deeplab',
  'jaxseg.train.state',
  'jaxseg.train.tasks.saliency',
  'jaxseg.train.tasks.classification',
  'jaxseg.train.tasks.segmentation',
  'jaxseg.inference.saliency',
  'jaxseg.data.transforms',
]


@pytest.mark.parametrize('module_name', DOCTESTED_MODULES)
def test_module_examples_run(module_name):
  # The examples of the losses, metrics, inference and viz docstrings are part of their
  # documentation: they must stay true (the ops and layers are checked one by one above).
  module = importlib.import_module(module_name)
  result = doctest.testmod(
    module,
    extraglobs={'jax': jax, 'jnp': jnp, 'np': np},
    optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
  )
  assert result.attempted > 0, f'{module_name} has no examples'
  assert result.failed == 0, f'{module_name}: {result.failed} example(s) failed (see stdout)'
