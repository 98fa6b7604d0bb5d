"""Test configuration shared by the whole suite.

Eight host CPU devices are forced before JAX is imported, so sharding and multi-device code is
tested without accelerators. Grain reads absl flags, so they are marked parsed here.
"""
import os

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()
