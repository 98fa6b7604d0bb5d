"""VOC 2012 and SBD builders on fixture files in the official formats, written here."""

import io
import logging
import os
import pathlib

import numpy as np
import pytest
import scipy.io
from PIL import Image

from jaxseg import data
from jaxseg.data.builders import voc
from jaxseg.data.builders._common import CorruptImageError, MissingFileError
import reference_data


def _jpeg(path, rng, hw):
  image = rng.integers(0, 256, size=hw + (3,), dtype=np.uint8)
  Image.fromarray(image).save(path, format='JPEG', quality=95)


def _palette_png(path, mask):
  image = Image.fromarray(mask.astype(np.uint8), mode='P')
  image.putpalette(voc.voc_palette().ravel().tolist())
  image.save(path, format='PNG')


def _mask(rng, hw, image_index):
  mask = np.zeros(hw, np.uint8)
  k = 1 + image_index % 20
  mask[2 : hw[0] // 2, 3 : hw[1] // 2] = k
  mask[hw[0] // 2 :, hw[1] // 2 :] = rng.integers(0, 21)
  mask[hw[0] // 2, :] = 255  # VOC's void outline
  return mask


def write_voc(
  root,
  *,
  train=('2007_000032', '2007_000039', '2008_000008'),
  val=('2007_000033', '2007_000042'),
  seed=0,
):
  """A VOCdevkit/VOC2012 tree; returns {id: mask}."""
  rng = np.random.default_rng(seed)
  base = os.path.join(root, 'VOCdevkit', 'VOC2012')
  for sub in ('JPEGImages', 'SegmentationClass', os.path.join('ImageSets', 'Segmentation')):
    os.makedirs(os.path.join(base, sub), exist_ok=True)
  masks = {}
  for n, image_id in enumerate(train + val):
    hw = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))
    _jpeg(os.path.join(base, 'JPEGImages', image_id + '.jpg'), rng, hw)
    masks[image_id] = _mask(rng, hw, n)
    _palette_png(os.path.join(base, 'SegmentationClass', image_id + '.png'), masks[image_id])
  for name, ids in (('train', train), ('val', val)):
    with open(os.path.join(base, 'ImageSets', 'Segmentation', name + '.txt'), 'w') as f:
      f.write('\n'.join(ids) + '\n')
  return masks


def _records(cfg, split):
  builder = data.get_builder(cfg)
  source = builder.as_data_source(split)
  return {r['image_id'].decode(): r for r in (source[i] for i in range(len(source)))}


def _cfg(tmp_path, name='voc2012_segmentation', **kw):
  cfg = dict(name=name, data_dir=str(tmp_path / 'data'), manual_dir=str(tmp_path / 'manual'))
  cfg.update(kw)
  return cfg


def test_voc_builds_from_the_official_layout(tmp_path):
  masks = write_voc(str(tmp_path / 'manual'))
  cfg = _cfg(tmp_path, eval_size=48, crop_size=24)
  info = data.dataset_info(cfg)
  assert info.splits == {'train': 3, 'validation': 2}
  assert (info.num_classes, info.ignore_label, info.eval_split) == (21, 255, 'validation')
  records = _records(cfg, 'validation')
  assert set(records) == {'2007_000033', '2007_000042'}
  for image_id, record in records.items():
    # Palette indices survive, void (255) included; the JPEG is stored as it was.
    np.testing.assert_array_equal(record['mask'][..., 0], masks[image_id])
  # Eval batches: the whole image padded to eval_size with 255, never resized.
  batches = list(
    data.make_iterator(cfg, split='validation', global_batch_size=4, seed=0, train=False)
  )
  assert len(batches) == 1 and batches[0]['valid'].tolist() == [True, True, False, False]
  seen = []
  for mask in batches[0]['mask'][:2]:
    matches = [
      i
      for i, m in masks.items()
      if np.array_equal(mask[: m.shape[0], : m.shape[1]], m)
      and np.all(mask[m.shape[0] :] == 255)
      and np.all(mask[:, m.shape[1] :] == 255)
    ]
    assert len(matches) == 1
    seen += matches
  assert sorted(seen) == sorted(records)
  train = next(data.make_iterator(cfg, split='train', global_batch_size=2, seed=0, train=True))
  assert train['image'].shape == (2, 24, 24, 3) and train['mask'].shape == (2, 24, 24)
  assert set(np.unique(train['mask'])) <= set(range(21)) | {255}


def test_voc_accepts_rgb_colour_masks(tmp_path):
  masks = write_voc(str(tmp_path / 'manual'), train=('a',), val=('b',))
  base = tmp_path / 'manual' / 'VOCdevkit' / 'VOC2012' / 'SegmentationClass'
  palette = voc.voc_palette()
  palette[255] = (224, 224, 192)
  Image.fromarray(palette[masks['a']]).save(base / 'a.png')
  data.dataset_info(_cfg(tmp_path))
  records = _records(_cfg(tmp_path), 'train')
  np.testing.assert_array_equal(records['a']['mask'][..., 0], masks['a'])


def test_voc_missing_files_name_the_file_layout_and_source(tmp_path):
  os.makedirs(tmp_path / 'manual')
  with pytest.raises(MissingFileError) as error:
    data.dataset_info(_cfg(tmp_path))
  message = str(error.value)
  assert 'VOCdevkit' in message and 'train.txt' in message and 'SegmentationClass' in message
  assert 'host.robots.ox.ac.uk' in message
  write_voc(str(tmp_path / 'manual'))
  os.remove(tmp_path / 'manual' / 'VOCdevkit' / 'VOC2012' / 'JPEGImages' / '2007_000039.jpg')
  with pytest.raises(MissingFileError, match='2007_000039.jpg'):
    data.dataset_info(_cfg(tmp_path, eval_size=100))


def test_voc_mask_values_out_of_range_fail_at_build(tmp_path):
  write_voc(str(tmp_path / 'manual'))
  bad = np.zeros((20, 20), np.uint8)
  bad[3, 3] = 42
  base = tmp_path / 'manual' / 'VOCdevkit' / 'VOC2012'
  _jpeg(base / 'JPEGImages' / '2007_000032.jpg', np.random.default_rng(0), (20, 20))
  _palette_png(base / 'SegmentationClass' / '2007_000032.png', bad)
  with pytest.raises(ValueError, match=r'2007_000032\.png.*\[42\].*255'):
    data.dataset_info(_cfg(tmp_path))


def test_voc_corrupt_images_raise_or_are_skipped_and_counted(tmp_path, caplog):
  write_voc(str(tmp_path / 'manual'))
  path = tmp_path / 'manual' / 'VOCdevkit' / 'VOC2012' / 'JPEGImages' / '2007_000039.jpg'
  path.write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
  with pytest.raises(CorruptImageError, match='2007_000039.jpg'):
    data.dataset_info(_cfg(tmp_path))
  with caplog.at_level(logging.WARNING):
    info = data.dataset_info(_cfg(tmp_path, data_dir=str(tmp_path / 'skip'), skip_corrupt=True))
  assert info.splits == {'train': 2, 'validation': 2}
  assert '2007_000039.jpg' in caplog.text and 'skipped 1 corrupt' in caplog.text


def _sbd_mat(path, mask):
  gt = {
    'Segmentation': mask.astype(np.uint8),
    'Boundaries': np.zeros((20,), object),
    'CategoriesPresent': np.unique(mask[mask > 0]).astype(np.uint8),
  }
  scipy.io.savemat(path, {'GTcls': gt})


def test_sbd_merges_with_voc_train_and_holds_out_voc_val(tmp_path):
  manual = str(tmp_path / 'manual')
  voc_masks = write_voc(manual, train=('t1', 't2'), val=('v1', 'v2'))
  root = os.path.join(manual, 'benchmark_RELEASE', 'dataset')
  os.makedirs(os.path.join(root, 'cls'))
  os.makedirs(os.path.join(root, 'img'))
  rng = np.random.default_rng(1)
  sbd_masks = {}
  # s1, s2 only in SBD; t1 in both (VOC's mask wins); v1 in SBD train but VOC val (held out).
  for image_id in ('s1', 's2', 't1', 'v1'):
    hw = voc_masks[image_id].shape if image_id in voc_masks else (24, 30)
    sbd_masks[image_id] = rng.integers(0, 21, size=hw).astype(np.uint8)
    _sbd_mat(os.path.join(root, 'cls', image_id + '.mat'), sbd_masks[image_id])
    _jpeg(os.path.join(root, 'img', image_id + '.jpg'), rng, hw)
  with open(os.path.join(root, 'train.txt'), 'w') as f:
    f.write('s1\nt1\nv1\n')
  with open(os.path.join(root, 'val.txt'), 'w') as f:
    f.write('s2\n')
  cfg = _cfg(tmp_path, name='voc2012_sbd')
  assert data.dataset_info(cfg).splits == {'train': 4, 'validation': 2}
  train = _records(cfg, 'train')
  assert set(train) == {'s1', 's2', 't1', 't2'}
  np.testing.assert_array_equal(train['s1']['mask'][..., 0], sbd_masks['s1'])
  np.testing.assert_array_equal(train['t1']['mask'][..., 0], voc_masks['t1'])
  assert set(_records(cfg, 'validation')) == {'v1', 'v2'}


def test_sbd_without_its_files_names_the_layout(tmp_path):
  write_voc(str(tmp_path / 'manual'))
  with pytest.raises(MissingFileError, match=r'benchmark_RELEASE.*cls[\s\S]*benchmark.tgz'):
    data.dataset_info(_cfg(tmp_path, name='voc2012_sbd'))


def test_voc_palette_matches_the_published_colours():
  palette = voc.voc_palette()
  # From the VOC devkit's VOClabelcolormap.m: background, aeroplane, bicycle, ..., person, void.
  assert palette[0].tolist() == [0, 0, 0]
  assert palette[1].tolist() == [128, 0, 0]
  assert palette[2].tolist() == [0, 128, 0]
  assert palette[15].tolist() == [192, 128, 128]
  assert palette[255].tolist() == [224, 224, 192]


_reference_dir = reference_data.root_or_none


def test_real_voc_image_and_label_through_the_builder(tmp_path):
  reference = _reference_dir()
  if reference is None or not os.path.isdir(os.path.join(reference, 'voc-fcn-demo')):
    pytest.skip('reference data (../shared/reference-data/voc-fcn-demo) is absent')
  demo = os.path.join(reference, 'voc-fcn-demo')
  base = tmp_path / 'manual' / 'VOCdevkit' / 'VOC2012'
  for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
    os.makedirs(base / sub)
  (base / 'JPEGImages' / '2007_000129.jpg').write_bytes(
    pathlib.Path(os.path.join(demo, 'image.jpg')).read_bytes()
  )
  (base / 'SegmentationClass' / '2007_000129.png').write_bytes(
    pathlib.Path(os.path.join(demo, 'label.png')).read_bytes()
  )
  (base / 'ImageSets/Segmentation/train.txt').write_text('2007_000129\n')
  (base / 'ImageSets/Segmentation/val.txt').write_text('2007_000129\n')
  cfg = _cfg(tmp_path)
  data.dataset_info(cfg)
  record = _records(cfg, 'validation')['2007_000129']
  label = np.asarray(Image.open(os.path.join(demo, 'label.png')))
  np.testing.assert_array_equal(record['mask'][..., 0], label)
  assert 255 in np.unique(label) and set(np.unique(label)) - {255} <= set(range(21))
  image = np.asarray(
    Image.open(io.BytesIO(pathlib.Path(os.path.join(demo, 'image.jpg')).read_bytes()))
  )
  np.testing.assert_array_equal(record['image'], image)
