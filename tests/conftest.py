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

# At most this many pytest-xdist workers for `-n auto` (pyproject.toml's addopts): each holds JAX,
# 8 forced devices and its compiled programs.
MAX_AUTO_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
  """``-n auto``: one worker per core this process may run on, at most ``MAX_AUTO_WORKERS``.

  The cores are the CPU affinity bounded by a cgroup (v2) CPU quota: a container limited to 2 CPUs
  on a large host sees the host's CPUs in its affinity, and one worker per host CPU would swamp
  it. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides this (xdist's own rule).
  """
  del config
  if os.environ.get('PYTEST_XDIST_AUTO_NUM_WORKERS'):
    return None  # xdist reads it
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return max(1, min(cores or 1, _cgroup_cpu_quota(), MAX_AUTO_WORKERS))


def _cgroup_cpu_quota(path: str = '/sys/fs/cgroup/cpu.max') -> int:
  """CPUs allowed by a cgroup v2 quota (``"<quota> <period>"``, rounded up), or a large number."""
  try:
    with open(path) as f:
      quota, period = f.read().split()[:2]
    return -(-int(quota) // int(period))
  except (OSError, ValueError):  # no cgroup v2 file, or 'max' (no quota)
    return 1 << 30
