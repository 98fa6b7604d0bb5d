"""JAX's persistent compilation cache for the experiment binaries, on by default.

A rerun, a resume, every trial of a sweep and a later evaluation compile the same XLA programs;
with the cache on they load them from disk instead (measured on the demo in README.md).

The directory is, in order: the binary's ``--compilation_cache_dir`` flag, the environment
variable ``JAXSEG_COMPILATION_CACHE``, then ``$XDG_CACHE_HOME/jaxseg/xla``
(``~/.cache/jaxseg/xla``).
The value ``off`` (or an empty string) disables it. Entries are keyed by the program, the JAX
and XLA versions, the compile options and the device kind, so one directory can serve many
runs, versions and machines; delete it to reclaim the space.
"""

from __future__ import annotations

import os

import jax

ENV_VAR = 'JAXSEG_COMPILATION_CACHE'
_OFF = ('', 'off', 'none', '0', 'false')


FLAG_HELP = (
  'Persistent XLA compilation cache (reruns, resumes and sweep trials load compiled '
  'programs instead of compiling). Default: $JAXSEG_COMPILATION_CACHE, else '
  '~/.cache/jaxseg/xla; "off" disables.'
)


def define_flag():
  """Defines the binaries' ``--compilation_cache_dir`` absl flag; returns its holder."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  return flags.DEFINE_string('compilation_cache_dir', None, FLAG_HELP)


def default_dir() -> str:
  """The cache directory when no flag is given (the environment variable, else XDG's cache)."""
  if ENV_VAR in os.environ:
    return os.environ[ENV_VAR]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'jaxseg', 'xla')


def enable(cache_dir: str | None = None) -> str | None:
  """Turns JAX's persistent compilation cache on for this process.

  Args:
    cache_dir: the directory; ``None`` means :func:`default_dir`; ``'off'`` disables.

  Returns:
    The directory in use, or ``None`` when disabled.

  Example:
    >>> import tempfile
    >>> enable(tempfile.mkdtemp()) is not None
    True
    >>> enable('off') is None
    True
  """
  cache_dir = default_dir() if cache_dir is None else cache_dir
  if cache_dir.strip().lower() in _OFF:
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', cache_dir)
  # JAX caches only programs that took >= 1 s to compile by default; a train step on a CPU
  # takes less, and loading any program is faster than compiling it.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return cache_dir
