"""Helpers the jaxseg dataset builders share: Pillow encoding, checked image reads, layout errors.

tfds's ``Image`` feature encodes NumPy arrays with TensorFlow, but stores bytes as they are. Our
builders therefore hand it PNG or JPEG bytes made (or checked) with Pillow, so building a dataset
needs no TensorFlow; reading decodes with Pillow through ``tfds.data_source``.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import os

import numpy as np
from absl import logging
from etils import epath
from PIL import Image

__all__ = [
  'CorruptImageError',
  'GeneratedOffline',
  'MissingFileError',
  'SkipCounter',
  'check_list_id',
  'check_mask_values',
  'encode_png',
  'extract_archive',
  'intended_manual_dir',
  'iter_tar',
  'manual_dir_or_none',
  'read_gray_image',
  'read_list_ids',
  'read_mask_values',
  'read_rgb_image',
  'require_file',
]


class MissingFileError(FileNotFoundError):
  """A file a builder needs is absent; the message names it, the layout and where to get it."""


class CorruptImageError(ValueError):
  """An image file cannot be decoded; the message names it."""


def require_file(path: str, *, layout: str, source: str) -> str:
  """Returns ``path`` if it exists, else raises :class:`MissingFileError` explaining the layout.

  Args:
    path: the file or directory the builder needs.
    layout: the expected directory layout, shown to the user.
    source: where to get the data (URL and the archive to extract).
  """
  if not os.path.exists(path):
    raise MissingFileError(f'Missing {path}.\nExpected layout:\n{layout}\nGet it from: {source}')
  return path


def manual_dir_or_none(dl_manager) -> str | None:
  """The download manager's manual directory, or None when it is missing or empty.

  tfds asserts (with a generic message) when the manual directory is absent; builders call this
  instead so that they can name the exact file they expected, or download.
  """
  try:
    return os.fspath(dl_manager.manual_dir)
  except AssertionError:
    return None


def intended_manual_dir(dl_manager) -> str:
  """The configured manual directory's path (for messages), whether it exists or not."""
  return os.fspath(getattr(dl_manager, '_manual_dir', None) or '<manual_dir>')


def extract_archive(archive: str, destination: str | None = None) -> str:
  """Extracts a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive with Python's own modules.

  tfds's extractor writes through ``tf.io.gfile``, so builders extract with this instead. The
  result is cached: a second call finds the ``.done`` marker and returns at once.

  Args:
    archive: path of the archive.
    destination: directory to extract into; default ``<archive>.extracted``.

  Returns:
    The directory holding the archive's contents.
  """
  import tarfile  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top

  archive = os.fspath(archive)
  destination = destination or archive + '.extracted'
  marker = os.path.join(destination, '.done')
  if os.path.exists(marker):
    return destination
  os.makedirs(destination, exist_ok=True)
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
      z.extractall(destination)
  elif tarfile.is_tarfile(archive):
    with tarfile.open(archive) as t:
      t.extractall(destination, filter='data')
  else:
    raise CorruptImageError(f'{archive} is neither a tar nor a zip archive.')
  with open(marker, 'w') as f:
    f.write('ok')
  return destination


def iter_tar(archive):
  """Yields ``(member name, file object)`` for the files of a tar archive (path or file object),
  streaming, without TensorFlow (tfds's ``iter_archive`` opens paths with ``tf.io.gfile``)."""
  import tarfile  # pylint: disable=g-import-not-at-top

  if isinstance(archive, (str, os.PathLike)):
    with open(archive, 'rb') as f:
      yield from iter_tar(f)
    return
  with tarfile.open(fileobj=archive, mode='r|*') as tar:
    for member in tar:
      if member.isfile():
        yield member.name, tar.extractfile(member)


def encode_png(array: np.ndarray) -> bytes:
  """Losslessly encodes a uint8 ``(H, W)`` or ``(H, W, 3)`` array as PNG bytes with Pillow."""
  array = np.asarray(array)
  if array.dtype != np.uint8:
    raise TypeError(f'array must be uint8 to encode as PNG, got {array.dtype}.')
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return buffer.getvalue()


@dataclasses.dataclass
class SkipCounter:
  """Counts the corrupt images a build skipped (``data.skip_corrupt=True``) and logs them."""

  skip_corrupt: bool = False
  skipped: list = dataclasses.field(default_factory=list)

  def handle(self, error: CorruptImageError) -> None:
    """Re-raises ``error`` unless skipping is allowed, in which case it is counted and logged."""
    if not self.skip_corrupt:
      raise error
    self.skipped.append(str(error))
    logging.warning('Skipping corrupt image (%d so far): %s', len(self.skipped), error)

  def log_summary(self, what: str) -> None:
    if self.skipped:
      logging.warning('%s: skipped %d corrupt image(s).', what, len(self.skipped))


def read_rgb_image(path: str) -> tuple[bytes, tuple[int, int]]:
  """Reads an image file as encoded bytes that decode to RGB, and its ``(H, W)``.

  JPEG and PNG files already in RGB are stored as they are (no re-encoding loss); grayscale,
  CMYK or palette images are converted to RGB and stored as PNG.

  Raises:
    CorruptImageError: naming ``path`` when Pillow cannot decode the file.
  """
  try:
    with Image.open(path) as image:
      image.load()
      mode, fmt = image.mode, image.format
      if mode != 'RGB' or fmt not in ('JPEG', 'PNG'):
        return encode_png(np.asarray(image.convert('RGB'))), (image.height, image.width)
      size = (image.height, image.width)
  except FileNotFoundError:
    raise
  except Exception as e:  # Pillow raises many types for truncated or garbage files.
    raise CorruptImageError(f'Cannot decode image {path}: {type(e).__name__}: {e}') from e
  with open(path, 'rb') as f:
    return f.read(), size


def read_gray_image(path: str) -> np.ndarray:
  """Reads a single-channel image (a palette PNG's indices, or a grayscale map) as uint8 ``(H, W)``.

  Palette images keep their indices (VOC class ids), other images are converted to luminance.

  Raises:
    CorruptImageError: naming ``path`` when Pillow cannot decode the file.
  """
  try:
    with Image.open(path) as image:
      image.load()
      if image.mode not in ('P', 'L'):
        image = image.convert('L')
      return np.asarray(image, np.uint8)
  except FileNotFoundError:
    raise
  except Exception as e:  # Pillow raises many types for truncated or garbage files.
    raise CorruptImageError(f'Cannot decode image {path}: {type(e).__name__}: {e}') from e


def check_mask_values(mask: np.ndarray, *, num_classes: int, ignore_label: int, where: str) -> None:
  """Raises ValueError naming ``where`` if ``mask`` holds a value outside ``[0, num_classes)`` that
  is not ``ignore_label``: such labels would silently corrupt training and the confusion matrix."""
  values = np.unique(mask)
  bad = values[(values >= num_classes) & (values != ignore_label)]
  if bad.size:
    raise ValueError(
      f'Mask {where} has values {bad.tolist()} outside [0, {num_classes}) that are not the '
      f'ignore label {ignore_label}.'
    )


def check_list_id(image_id: str, *, list_path: str) -> str:
  """Returns ``image_id`` from a split list if it stays inside the dataset folder.

  An id is joined to dataset folders to make file names; an absolute path or a ``..`` component
  (``../../x/secret``) would make the builder read files outside the dataset, so it is refused.

  Raises:
    ValueError: naming the list file and the id.
  """
  parts = image_id.replace('\\', '/').split('/')
  if (
    os.path.isabs(image_id)
    or image_id.startswith(('/', '\\'))
    or '..' in parts
    or (len(image_id) > 1 and image_id[1] == ':')
  ):
    raise ValueError(
      f'Split list {list_path} has the id {image_id!r}, which leaves the dataset folder '
      "(absolute path or '..'); ids must be file names relative to the dataset."
    )
  return image_id


def read_list_ids(path: str, *, layout: str, source: str) -> list[str]:
  """The ids of a split list file (first word of each non-empty line), each checked with
  :func:`check_list_id`.

  Raises:
    MissingFileError: the list file is absent.
    ValueError: the list names no id, or an id leaves the dataset folder.
  """
  require_file(path, layout=layout, source=source)
  with open(path) as f:
    ids = [check_list_id(line.split()[0], list_path=path) for line in f if line.strip()]
  if not ids:
    raise ValueError(
      f'Split list {path} is empty: it must name at least one image id, one '
      f'per line.\nExpected layout:\n{layout}'
    )
  return ids


def read_mask_values(path: str) -> np.ndarray:
  """Reads a class-index mask PNG as its stored integer values ``(H, W)`` (no colour mapping).

  Palette (``P``), 8-bit (``L``) and 16/32-bit (``I;16``, ``I``) images keep their values, so a
  16-bit mask holding 300 reports 300, not a colour.

  Raises:
    CorruptImageError: naming ``path`` when Pillow cannot decode the file.
  """
  try:
    with Image.open(path) as image:
      image.load()
      return np.asarray(image)
  except FileNotFoundError:
    raise
  except Exception as e:  # Pillow raises many types for truncated or garbage files.
    raise CorruptImageError(f'Cannot decode mask {path}: {type(e).__name__}: {e}') from e


def tf_free(base: type, name: str, overrides: dict) -> type:
  """A subclass of tfds's builder ``base`` whose TensorFlow-calling methods are ``overrides``.

  tfds's class keeps its name, version, URLs, checksums, features and splits; the methods that
  would call TensorFlow (``tf.io.gfile`` reads, ``tf.image`` encoding) are replaced by the
  plain-Python and Pillow ones in ``overrides``.

  Args:
    base: the tfds builder class.
    name: its tfds name (``'mnist'``, ``'cityscapes'``, ...).
    overrides: ``{method name: function}``.

  Returns:
    The builder class, not registered with tfds.
  """
  return type(
    f'TfFree{base.__name__}',
    (base,),
    {
      'name': name,
      '__module__': base.__module__,
      # tfds finds the URLs' checksums next to the module defining the builder; its own lookup
      # needs the importlib_resources backport, so give the path directly.
      'code_path': epath.Path(inspect.getfile(base)),
      # Lets a user without network put the archives tfds would download in manual_dir.
      'MANUAL_DOWNLOAD_INSTRUCTIONS': base.MANUAL_DOWNLOAD_INSTRUCTIONS
      or (
        'Optional: to build offline, put the archives tfds downloads (see docs/datasets.md) '
        'in manual_dir.'
      ),
      **overrides,
    },
    skip_registration=True,
  )


class GeneratedOffline:
  """Mixin for builders that download nothing (synthetic sets, scikit-learn's digits).

  tfds prints "Downloading and preparing dataset ..." on stdout for every build; for these the
  build is one INFO log line instead, and stdout stays the user's.
  """

  def _log_download_bytes(self) -> None:
    logging.info('Generating %s in %s (offline, nothing to download).', self.name, self.data_dir)

  def _log_download_done(self) -> None:
    logging.info('Generated %s in %s.', self.name, self.data_dir)
