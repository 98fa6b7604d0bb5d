"""TensorBoard event files (read back by tensorboard itself), progress line, parameter table."""

import io
import pathlib
import struct

import numpy as np
import pytest

from jaxseg.train import logging as run_logging
from jaxseg.train import tensorboard


def test_crc32c_known_values():
  # RFC 3720 (iSCSI) appendix B.4 test vectors and the standard check value.
  assert tensorboard.crc32c(b'123456789') == 0xE3069283
  assert tensorboard.crc32c(bytes(32)) == 0x8A9136AA
  assert tensorboard.crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
  assert tensorboard.crc32c(bytes(range(32))) == 0x46DD794E


def test_records_are_framed_with_masked_crcs(tmp_path):
  writer = tensorboard.SummaryWriter(str(tmp_path))
  writer.scalars(3, {'loss': 0.25})
  writer.close()
  data = pathlib.Path(writer.path).read_bytes()
  offset, records = 0, []
  while offset < len(data):
    header = data[offset : offset + 8]
    (length,) = struct.unpack('<Q', header)
    (header_crc,) = struct.unpack('<I', data[offset + 8 : offset + 12])
    payload = data[offset + 12 : offset + 12 + length]
    (payload_crc,) = struct.unpack('<I', data[offset + 12 + length : offset + 16 + length])
    assert header_crc == tensorboard.masked_crc32c(header)
    assert payload_crc == tensorboard.masked_crc32c(payload)
    records.append(payload)
    offset += 16 + length
  assert len(records) == 2  # file_version event + one summary


def test_tensorboard_reads_back_scalars_and_images(tmp_path):
  pytest.importorskip('tensorboard')
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=all
  from PIL import Image  # pylint: disable=g-import-not-at-top

  writer = tensorboard.SummaryWriter(str(tmp_path))
  for step, loss in [(1, 2.5), (2, 1.25), (300, 0.125)]:
    writer.scalars(step, {'loss': loss, 'accuracy': 1.0 / step})
  image = np.zeros((4, 6, 3), np.uint8)
  image[1, 2] = (255, 10, 20)
  writer.image(300, 'example', image)
  writer.close()

  acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={'images': 10})
  acc.Reload()
  assert sorted(acc.Tags()['scalars']) == ['accuracy', 'loss']
  assert [(e.step, e.value) for e in acc.Scalars('loss')] == [(1, 2.5), (2, 1.25), (300, 0.125)]
  np.testing.assert_allclose(
    [e.value for e in acc.Scalars('accuracy')], [1.0, 0.5, 1 / 300], rtol=1e-7
  )
  (event,) = acc.Images('example')
  assert (event.step, event.height, event.width) == (300, 4, 6)
  np.testing.assert_array_equal(
    np.asarray(Image.open(io.BytesIO(event.encoded_image_string))), image
  )


def test_parameter_table_counts_per_module():
  params = {
    'backbone': {
      'conv1': {'kernel': np.zeros((3, 3, 3, 8)), 'bias': np.zeros(8)},
      'conv2': {'kernel': np.zeros((1, 1, 8, 4))},
    },
    'head': {'kernel': np.zeros((4, 10)), 'bias': np.zeros(10)},
  }
  table, total = run_logging.parameter_table(params)
  assert total == 216 + 8 + 32 + 40 + 10
  rows = {line.split()[0]: int(line.split()[1].replace(',', '')) for line in table.splitlines()[1:]}
  assert rows == {'backbone/conv1': 224, 'backbone/conv2': 32, 'head': 50, 'total': 306}


def test_progress_line_reports_rate_and_eta():
  stream = io.StringIO()
  line = run_logging.ProgressLine(1000, stream=stream).update(
    100, steps_per_sec=2.0, images_per_sec=64.0, scalars={'loss': 0.5}
  )
  assert line == ('step 100/1000 (10%) | loss 0.5 | 2.00 steps/s | 64.0 img/s | ETA 7m30s')
  assert stream.getvalue().strip() == line


@pytest.mark.parametrize(
  'seconds, text',
  [
    (0.0, '0m00s'),
    (59.9, '0m59s'),
    (61.0, '1m01s'),
    (3599.0, '59m59s'),
    (3600.0, '1h00m'),
    (7 * 3600 + 5 * 60 + 59, '7h05m'),
    (float('inf'), '?'),
    (float('nan'), '?'),
  ],
)
def test_format_eta(seconds, text):
  assert run_logging.format_eta(seconds) == text


def test_format_progress_bar_and_fields():
  text = run_logging.format_progress(
    250,
    1000,
    steps_per_sec=5.0,
    images_per_sec=40.0,
    scalars={'loss': 0.123456, 'accuracy': 0.5},
    bar_width=8,
  )
  # 250/1000 of 8 cells = 2 filled; ETA = 750 steps / 5 steps/s = 150 s.
  assert text == (
    '[##......] step 250/1000 (25%) | loss 0.1235 | accuracy 0.5 | 5.00 steps/s | '
    '40.0 img/s | ETA 2m30s'
  )
  done = run_logging.format_progress(
    7, 7, steps_per_sec=1.0, images_per_sec=8.0, scalars={}, bar_width=4
  )
  assert done == '[####] step 7/7 (100%) | 1.00 steps/s | 8.0 img/s | ETA 0m00s'
  unknown = run_logging.format_progress(
    1, 3, steps_per_sec=0.0, images_per_sec=0.0, scalars={'loss': 1.0}
  )
  assert unknown.endswith('ETA ?') and not unknown.startswith('[')


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_redraws_in_place_on_a_terminal_only():
  terminal = _Terminal()
  progress = run_logging.ProgressLine(4, stream=terminal, bar_width=4)
  assert progress.redraw
  for step in (1, 2):
    progress.update(step, steps_per_sec=1.0, images_per_sec=2.0, scalars={})
  progress.break_line()  # another message comes: the bar's line is ended once
  progress.break_line()
  progress.update(4, steps_per_sec=1.0, images_per_sec=2.0, scalars={})
  assert terminal.getvalue() == (
    '\r[#...] step 1/4 (25%) | 1.00 steps/s | 2.0 img/s | ETA 0m03s\x1b[K'
    '\r[##..] step 2/4 (50%) | 1.00 steps/s | 2.0 img/s | ETA 0m02s\x1b[K\n'
    '\r[####] step 4/4 (100%) | 1.00 steps/s | 2.0 img/s | ETA 0m00s\x1b[K\n'
  )
  pipe = io.StringIO()
  progress = run_logging.ProgressLine(4, stream=pipe)
  assert not progress.redraw
  progress.update(1, steps_per_sec=1.0, images_per_sec=2.0, scalars={})
  progress.break_line()
  progress.update(2, steps_per_sec=1.0, images_per_sec=2.0, scalars={})
  assert pipe.getvalue() == (
    'step 1/4 (25%) | 1.00 steps/s | 2.0 img/s | ETA 0m03s\n'
    'step 2/4 (50%) | 1.00 steps/s | 2.0 img/s | ETA 0m02s\n'
  )
