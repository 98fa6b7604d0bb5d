"""Test configuration shared by the whole suite.

Eight host CPU devices are forced before JAX is imported, so sharding and multi-device code is
tested without accelerators. Grain reads absl flags, so they are marked parsed here.
"""

import os

os.environ.setdefault('XLA_FLAGS', '')
if 'xla_force_host_platform_device_count' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=8'
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

import jax  # noqa: E402  (after the device flags above)
import pytest  # noqa: E402

# Strict dtype promotion (jax_numpy_dtype_promotion='strict'): an implicit mix of dtypes (an
# int32 array plus a float32 one, a bool mask times a Python int) raises instead of silently
# promoting; and warnings are errors. On for the test modules below, checked under both; the
# others still run with JAX's standard promotion and warnings until they are checked too
# (JAXSEG_STRICT_PROMOTION=all runs every module strictly, to find what is left).
STRICT_MODULES = frozenset(
  {
    'test_data_transforms',
    'test_import_direction',
    'test_losses_classification',
    'test_losses_saliency',
    'test_losses_segmentation',
    'test_metrics_segmentation',
    'test_train_tasks',
    'test_viz',
  }
)


def pytest_collection_modifyitems(config, items):
  # The same modules turn every warning into an error (pyproject's filterwarnings names the
  # third-party ones ignored everywhere); JAXSEG_STRICT_PROMOTION=all extends this to all.
  del config
  everything = os.environ.get('JAXSEG_STRICT_PROMOTION') == 'all'
  for item in items:
    if everything or item.module.__name__.rsplit('.', 1)[-1] in STRICT_MODULES:
      item.add_marker(pytest.mark.filterwarnings('error'))


@pytest.fixture(autouse=True)
def _dtype_promotion(request):
  name = request.module.__name__.rsplit('.', 1)[-1]
  strict = name in STRICT_MODULES or os.environ.get('JAXSEG_STRICT_PROMOTION') == 'all'
  with jax.numpy_dtype_promotion('strict' if strict else 'standard'):
    yield
