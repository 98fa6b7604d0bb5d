"""What a binary runs on, said once at start: the platform, the devices and the processes.

A user with a GPU who installed the CPU ``jaxlib`` (the default of ``requirements.txt``) would
otherwise train on the CPU without noticing; :func:`platform_warning` catches that case.
"""

from __future__ import annotations

import os
import shutil

import jax

_NVIDIA_DRIVER = '/proc/driver/nvidia/version'
_ACCELERATOR_INSTALL = (
  'pip install -e ".[cuda12]" (NVIDIA GPUs) or pip install -e ".[tpu]" '
  '(Cloud TPU); see the README section "Accelerators"'
)


def describe_platform() -> str:
  """One line naming the backend, its devices and (multi-host) the process count.

  Example:
    >>> describe_platform().startswith('jaxseg: running on')
    True
  """
  devices = jax.devices()
  kinds = sorted({d.device_kind for d in devices})
  line = (
    f'jaxseg: running on {jax.default_backend()} with {len(devices)} device'
    f'{"s" if len(devices) != 1 else ""} ({", ".join(kinds)})'
  )
  if jax.process_count() > 1:
    line += (
      f', process {jax.process_index()} of {jax.process_count()} '
      f'({jax.local_device_count()} local devices)'
    )
  return line


def nvidia_gpu_present() -> bool:
  """Whether this machine has an NVIDIA driver loaded (whatever JAX uses)."""
  return os.path.exists(_NVIDIA_DRIVER) or shutil.which('nvidia-smi') is not None


def platform_warning() -> str | None:
  """A warning when an NVIDIA GPU is present but JAX runs on the CPU, else None.

  Example:
    >>> platform_warning() is None or 'GPU' in platform_warning()
    True
  """
  if (
    jax.default_backend() == 'cpu'
    and nvidia_gpu_present()
    and os.environ.get('JAX_PLATFORMS', '') in ('', 'cuda', 'gpu')
  ):
    return (
      'WARNING: this machine has an NVIDIA GPU but JAX runs on the CPU (the CPU jaxlib is '
      f'installed). For the GPU: {_ACCELERATOR_INSTALL}.'
    )
  return None


def announce_platform(print_fn=print) -> None:
  """Prints :func:`describe_platform` and, when it applies, :func:`platform_warning`.

  Only process 0 prints in a multi-host run, so the log has one line, not one per host.
  """
  if jax.process_index() != 0:
    return
  print_fn(describe_platform())
  warning = platform_warning()
  if warning:
    print_fn(warning)
