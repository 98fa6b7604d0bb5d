"""Bad dataset files are answered with errors naming the file (issue 14, item 10).

Truncated masks name their file and are skipped with ``skip_corrupt``; a 16-bit mask value is
reported as that value; an empty split list is named; list ids that leave the dataset folder
are refused by every builder that reads list files.
"""

import logging
import os

import numpy as np
import pytest
from PIL import Image

from jaxseg import data
from jaxseg.data.builders import _common
from jaxseg.data.builders._common import CorruptImageError
from test_data_voc import _cfg, write_voc

BASE = ('manual', 'VOCdevkit', 'VOC2012')


def _base(tmp_path):
  return tmp_path.joinpath(*BASE)


def test_truncated_mask_names_its_file_and_is_skipped(tmp_path, caplog):
  write_voc(str(tmp_path / 'manual'))
  mask = _base(tmp_path) / 'SegmentationClass' / '2007_000039.png'
  mask.write_bytes(mask.read_bytes()[:60])
  with pytest.raises(CorruptImageError, match='2007_000039.png'):
    data.dataset_info(_cfg(tmp_path))
  with caplog.at_level(logging.WARNING):
    info = data.dataset_info(_cfg(tmp_path, data_dir=str(tmp_path / 'skip'), skip_corrupt=True))
  assert info.splits == {'train': 2, 'validation': 2}
  assert '2007_000039.png' in caplog.text and 'skipped 1 corrupt' in caplog.text


def test_rgb_mask_that_is_garbage_names_its_file(tmp_path):
  write_voc(str(tmp_path / 'manual'))
  (_base(tmp_path) / 'SegmentationClass' / '2007_000032.png').write_bytes(b'\x89PNG garbage')
  with pytest.raises(CorruptImageError, match='2007_000032.png'):
    data.dataset_info(_cfg(tmp_path))


def test_sixteen_bit_mask_value_is_reported_as_a_value(tmp_path):
  masks = write_voc(str(tmp_path / 'manual'))
  mask = masks['2007_000032'].astype(np.uint16)
  mask[1, 1] = 300
  Image.fromarray(mask).save(_base(tmp_path) / 'SegmentationClass' / '2007_000032.png')
  with pytest.raises(ValueError, match=r'2007_000032\.png has values \[300\]') as error:
    data.dataset_info(_cfg(tmp_path))
  assert 'colour' not in str(error.value)


def test_empty_split_list_is_named(tmp_path):
  write_voc(str(tmp_path / 'manual'))
  val = _base(tmp_path) / 'ImageSets' / 'Segmentation' / 'val.txt'
  val.write_text('\n')
  with pytest.raises(ValueError, match=r'Split list .*val\.txt is empty'):
    data.dataset_info(_cfg(tmp_path))


@pytest.mark.parametrize('bad_id', ['../../x/secret', '/etc/passwd', 'a/../../b', '..\\x'])
def test_voc_list_ids_that_leave_the_dataset_are_refused(tmp_path, bad_id):
  write_voc(str(tmp_path / 'manual'))
  # A file the id would reach, outside the dataset: never read.
  (tmp_path / 'x').mkdir()
  train = _base(tmp_path) / 'ImageSets' / 'Segmentation' / 'train.txt'
  train.write_text(train.read_text() + bad_id + '\n')
  with pytest.raises(ValueError, match='leaves the dataset folder') as error:
    data.dataset_info(_cfg(tmp_path))
  assert repr(bad_id) in str(error.value) and 'train.txt' in str(error.value)


def test_sbd_lists_are_checked_too(tmp_path):
  write_voc(str(tmp_path / 'manual'))
  sbd = tmp_path / 'manual' / 'benchmark_RELEASE' / 'dataset'
  (sbd / 'cls').mkdir(parents=True)
  (sbd / 'img').mkdir()
  (sbd / 'train.txt').write_text('2007_000032\n../../../etc/passwd\n')
  (sbd / 'val.txt').write_text('2007_000039\n')
  with pytest.raises(ValueError, match='leaves the dataset folder'):
    data.dataset_info(_cfg(tmp_path, name='voc2012_sbd'))


def test_list_id_check_accepts_relative_subfolders():
  assert _common.check_list_id('a/b_1', list_path='l.txt') == 'a/b_1'
  for bad in ('..', '../a', 'C:\\x', '\\\\server\\x'):
    with pytest.raises(ValueError, match='l.txt'):
      _common.check_list_id(bad, list_path='l.txt')


def test_read_mask_values_keeps_sixteen_bit_values(tmp_path):
  path = str(tmp_path / 'm.png')
  Image.fromarray(np.array([[0, 300]], np.uint16)).save(path)
  assert _common.read_mask_values(path).tolist() == [[0, 300]]
  assert os.path.getsize(path) > 0
