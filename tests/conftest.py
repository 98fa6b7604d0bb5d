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

# Strict dtype promotion for the whole suite (collection, fixtures of every scope, tests): an
# implicit mix of dtypes (an int32 array plus a float32 one, a bool mask times a Python int) raises
# instead of silently promoting. The library casts explicitly; the one exemption is
# jaxseg.train.promotion (optax transformations that mix a float with their int32 step count).
# Warnings are errors too: pyproject.toml's filterwarnings ("error", plus named third-party ones).
jax.config.update('jax_numpy_dtype_promotion', 'strict')
