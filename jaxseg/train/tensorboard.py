"""TensorBoard event files written without TensorFlow.

An event file is a sequence of TFRecords, each ``uint64 length | uint32 masked_crc32c(length) |
data | uint32 masked_crc32c(data)`` (little endian), whose data is a serialised ``tensorflow.Event``
protocol buffer. We encode the few messages we need by hand (protobuf wire format): ``Event``
(wall_time=1 double, step=2 int64, file_version=3 string, summary=5) holding a ``Summary`` of
``Value``s (tag=1 string, simple_value=2 float, image=4 ``Image``: height=1, width=2,
colorspace=3, encoded_image_string=4 PNG bytes).
"""

import io
import os
import socket
import struct
import time

import numpy as np


def _make_crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
    table.append(crc)
  return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
  """Returns the CRC-32C (Castagnoli) checksum of ``data``.

  Example:
    >>> hex(crc32c(b'123456789'))  # the standard check value
    '0xe3069283'
  """
  crc = 0xFFFFFFFF
  table = _CRC32C_TABLE
  for byte in data:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """Returns TFRecord's masked CRC: ``rotate_right(crc, 15) + 0xa282ead8`` (mod 2**32)."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
  out = bytearray()
  value &= (1 << 64) - 1
  while True:
    bits = value & 0x7F
    value >>= 7
    if value:
      out.append(bits | 0x80)
    else:
      out.append(bits)
      return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
  return _varint((field << 3) | wire_type)


def _bytes_field(field: int, payload: bytes) -> bytes:
  return _key(field, 2) + _varint(len(payload)) + payload


def _int_field(field: int, value: int) -> bytes:
  return _key(field, 0) + _varint(int(value))


def _scalar_value(tag: str, value: float) -> bytes:
  return _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack('<f', float(value))


def _image_value(tag: str, image: np.ndarray) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top

  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  height, width, channels = image.shape
  buffer = io.BytesIO()
  Image.fromarray(image[..., 0] if channels == 1 else image).save(buffer, format='PNG')
  proto = (
    _int_field(1, height)
    + _int_field(2, width)
    + _int_field(3, channels)
    + _bytes_field(4, buffer.getvalue())
  )
  return _bytes_field(1, tag.encode()) + _bytes_field(4, proto)


def _event(
  *,
  step: int,
  wall_time: float,
  summary_values: list[bytes] | None = None,
  file_version: str | None = None,
) -> bytes:
  data = _key(1, 1) + struct.pack('<d', wall_time) + _int_field(2, step)
  if file_version is not None:
    data += _bytes_field(3, file_version.encode())
  if summary_values:
    data += _bytes_field(5, b''.join(_bytes_field(1, v) for v in summary_values))
  return data


class SummaryWriter:
  """Appends scalar and image summaries to a TensorBoard event file in ``logdir``.

  Args:
    logdir: directory for ``events.out.tfevents.<time>.<host>``; created if needed.

  Example:
    >>> import os, tempfile
    >>> writer = SummaryWriter(os.path.join(tempfile.mkdtemp(), 'tb', 'train'))
    >>> writer.scalars(10, {'loss': 0.5})
    >>> writer.close()
  """

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    name = f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}'
    self.path = os.path.join(logdir, name)
    self._file = open(self.path, 'ab')
    self._write(_event(step=0, wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, data: bytes) -> None:
    header = struct.pack('<Q', len(data))
    self._file.write(
      header
      + struct.pack('<I', masked_crc32c(header))
      + data
      + struct.pack('<I', masked_crc32c(data))
    )

  def scalars(self, step: int, values: dict[str, float]) -> None:
    """Writes one event holding a scalar per ``tag: value``."""
    self._write(
      _event(
        step=step,
        wall_time=time.time(),
        summary_values=[_scalar_value(t, v) for t, v in values.items()],
      )
    )
    self._file.flush()

  def image(self, step: int, tag: str, image: np.ndarray) -> None:
    """Writes an image ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``: uint8, or float in [0, 1]."""
    self._write(_event(step=step, wall_time=time.time(), summary_values=[_image_value(tag, image)]))
    self._file.flush()

  def close(self) -> None:
    self._file.close()
