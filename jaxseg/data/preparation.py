"""Preparing a dataset once: where prepared files live, a lock between hosts, and the cache.

:func:`prepared_builder` builds a dataset's tfds builder from its options and runs
``download_and_prepare`` under :func:`build_lock` the first time; later calls (and other hosts
sharing ``data_dir``) reuse the prepared files.
"""

from __future__ import annotations

import contextlib
import functools
import os

from jaxseg.data import registry

__all__ = ['DatasetUnavailableError', 'build_lock', 'prepared_builder', 'resolve_data_dir']


def resolve_data_dir(options: dict) -> str:
  """``data_dir`` with its fallbacks: ``$JAXSEG_DATA_DIR``, then ``~/jaxseg_data``."""
  data_dir = options['data_dir'] or os.environ.get('JAXSEG_DATA_DIR') or '~/jaxseg_data'
  return os.path.abspath(os.path.expanduser(data_dir))


class DatasetUnavailableError(RuntimeError):
  """A dataset is neither prepared in ``data_dir`` nor obtainable (no network, no manual files)."""


@contextlib.contextmanager
def build_lock(data_dir: str, name: str):
  """Holds an exclusive lock on ``<data_dir>/.<name>.lock`` while a dataset is built.

  Hosts (or processes) preparing the same dataset into a shared ``data_dir`` take turns: the
  first builds, the others wait, then find the finished files and reuse them. tfds already builds
  into a temporary folder renamed at the end, but a second builder that started before the rename
  would rebuild and then fail to rename onto the finished folder. The lock is a POSIX record lock
  (``fcntl.lockf``), which NFS honours across machines; it is released when the holder exits,
  even if it crashes. Without ``fcntl`` (Windows) no lock is taken.

  Args:
    data_dir: the shared folder of prepared datasets (created if missing).
    name: the dataset's registry name; one lock per name.

  Yields:
    None, with the lock held.
  """
  os.makedirs(data_dir, exist_ok=True)
  try:
    import fcntl  # pylint: disable=g-import-not-at-top
  except ImportError:  # not POSIX
    yield
    return
  with open(os.path.join(data_dir, f'.{name}.lock'), 'a+b') as handle:
    fcntl.lockf(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.lockf(handle, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=64)
def _prepared(name: str, frozen_options: tuple):
  spec = registry.get_spec(name)
  options = dict(frozen_options)
  options.pop('__content__', None)  # the fingerprint only keys the cache
  data_dir = resolve_data_dir(options)
  with build_lock(data_dir, name):
    # The builder is made under the lock: it decides at construction whether the files exist.
    return _prepare(spec, options, data_dir)


def _prepare(spec: registry.DatasetSpec, options: dict, data_dir: str):
  name = spec.name
  builder = spec.make_builder(options, data_dir)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxseg.data.builders import _common  # pylint: disable=g-import-not-at-top

  manual_dir = os.path.abspath(
    os.path.expanduser(options['manual_dir'] or os.path.join(data_dir, 'downloads', 'manual'))
  )
  try:
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
  except (_common.MissingFileError, _common.CorruptImageError, ValueError):
    raise  # our builders' own errors already name the file and the layout
  except Exception as e:  # download failures, tfds's manual-dir assertions, ...
    raise DatasetUnavailableError(
      f'Could not prepare dataset {name!r} in {builder.data_dir} '
      f'({type(e).__name__}: {e}).\n{spec.doc}\nManual files go in {manual_dir}; '
      f'docs/datasets.md (section {name!r}) says where to get them and how to build.'
    ) from e
  return builder


def _freeze(value):
  if isinstance(value, (list, tuple)):
    return tuple(_freeze(v) for v in value)
  if isinstance(value, dict):
    return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
  return value


def prepared_builder(spec: registry.DatasetSpec, options: dict):
  """The builder of ``options``, prepared in ``data_dir`` once (later calls reuse the files)."""
  key = _freeze(options)
  if spec.fingerprint is not None:
    key += (('__content__', spec.fingerprint(options)),)
  return _prepared(spec.name, key)
