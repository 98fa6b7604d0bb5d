"""Folder datasets: ``image_folder`` (a researcher's own images and masks) and ``camvid``.

Fixture folders are written here in the formats users have (JPEG/PNG images; index, palette and
colour masks; classes.json; list files); the CamVid tests read the real samples of
``../shared/reference-data/camvid-samples`` when present and a fixture copy of its layout
otherwise.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxseg import data
from jaxseg.data.builders import folder
import reference_data

COLORS = ((0, 0, 0), (200, 30, 30), (30, 200, 30))


def _write_pairs(root, count=6, *, size=(24, 32), mask_kind='index', seed=0):
  """Images whose red channel encodes the example index; masks with 3 classes and some 255."""
  rng = np.random.default_rng(seed)
  images, masks = root / 'images', root / 'masks'
  images.mkdir(parents=True, exist_ok=True)
  masks.mkdir(parents=True, exist_ok=True)
  truth = {}
  for i in range(count):
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    image[..., 0] = 10 * i  # which example this is
    mask = rng.integers(0, 3, size=size).astype(np.uint8)
    mask[0, :4] = 255
    Image.fromarray(image).save(images / f'img_{i:02d}.png')
    if mask_kind == 'index':
      Image.fromarray(mask).save(masks / f'img_{i:02d}.png')
    elif mask_kind == 'palette':
      p = Image.fromarray(mask, mode='P')
      p.putpalette([c for color in COLORS for c in color] + [255, 255, 255] * 253)
      p.save(masks / f'img_{i:02d}.png')
    else:  # colour masks; no ignore pixels (a colour per class)
      mask[mask == 255] = 0
      Image.fromarray(np.array(COLORS, np.uint8)[mask]).save(masks / f'img_{i:02d}.png')
    truth[i] = mask
  return truth


def _config(root, tmp_path, **options):
  return {
    'name': 'image_folder',
    'images_dir': str(root / 'images'),
    'masks_dir': str(root / 'masks'),
    'data_dir': str(tmp_path / 'cache'),
    'class_names': ('background', 'cell', 'nucleus'),
    'normalization': 'none',
    'eval_size': 32,
    'crop_size': 32,
    **options,
  }


def _examples(config, split):
  iterator = data.make_iterator(
    config, split=split, global_batch_size=1, seed=0, train=False, num_epochs=1
  )
  out = []
  for batch in iterator:
    image = np.round(batch['image'][0] * 255).astype(int)
    out.append((int(image[0, 0, 0]) // 10, batch['mask'][0]))
  return out


@pytest.mark.parametrize('mask_kind', ['index', 'palette', 'color'])
def test_masks_follow_their_images_through_the_pipeline(tmp_path, mask_kind):
  truth = _write_pairs(tmp_path / 'own', mask_kind=mask_kind)
  options = {'palette': COLORS} if mask_kind == 'color' else {}
  config = _config(tmp_path / 'own', tmp_path, **options)
  info = data.dataset_info(config)
  assert (info.num_classes, info.class_names) == (3, ('background', 'cell', 'nucleus'))
  assert info.splits == {'train': 5, 'validation': 1}
  seen = []
  for split in ('train', 'validation'):
    for index, mask in _examples(config, split):
      # Evaluation pads 24x32 to 32x32 with the ignore label.
      np.testing.assert_array_equal(mask[:24], truth[index])
      assert (mask[24:] == 255).all()
      seen.append(index)
  assert sorted(seen) == list(range(6))


def test_classes_json_and_list_file_splits(tmp_path):
  truth = _write_pairs(tmp_path / 'own', mask_kind='color', count=4)
  classes = {
    'classes': [{'name': n, 'color': list(c)} for n, c in zip(('bg', 'cell', 'nucleus'), COLORS)]
  }
  (tmp_path / 'own' / 'masks' / 'classes.json').write_text(json.dumps(classes))
  (tmp_path / 'train.txt').write_text('img_00\nimg_02\nimg_03\n')
  (tmp_path / 'val.txt').write_text('img_01\n')
  config = _config(
    tmp_path / 'own',
    tmp_path,
    class_names=(),
    train_list=str(tmp_path / 'train.txt'),
    eval_list=str(tmp_path / 'val.txt'),
  )
  info = data.dataset_info(config)
  assert info.class_names == ('bg', 'cell', 'nucleus')
  assert tuple(map(tuple, info.palette)) == COLORS
  assert info.splits == {'train': 3, 'validation': 1}
  [(index, mask)] = _examples(config, 'validation')
  assert index == 1
  np.testing.assert_array_equal(mask[:24], truth[1])


def test_editing_the_folder_builds_it_again(tmp_path):
  _write_pairs(tmp_path / 'own', count=4)
  config = _config(tmp_path / 'own', tmp_path)
  assert sum(data.dataset_info(config).splits.values()) == 4
  _write_pairs(tmp_path / 'own', count=6, seed=1)
  assert sum(data.dataset_info(config).splits.values()) == 6


@pytest.mark.parametrize(
  'damage, message',
  [
    ('mask_without_image', r'Mask .*orphan\.png has no image'),
    ('image_without_mask', r'Image .*lonely\.png has no mask'),
    ('size_mismatch', r'Mask .*img_00\.png is 10x10 but its image .* is 24x32'),
    ('value_outside_classes', r'values \[7\] outside the classes \[0, 3\)'),
    ('unknown_color', r'colours \[\(1, 2, 3\)\] that are not in the palette'),
    ('list_leaves_folder', r"lists '\.\./\.\./secret', which is not a plain file stem"),
    ('no_class_names', r'image_folder needs its classes'),
    ('ignore_inside_classes', r'data.ignore_label must be an int in \[3, 255\]'),
  ],
)
def test_clear_errors_name_the_file(tmp_path, damage, message):
  root = tmp_path / 'own'
  _write_pairs(root, count=3, mask_kind='color' if damage == 'unknown_color' else 'index')
  options = {}
  if damage == 'mask_without_image':
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(root / 'masks' / 'orphan.png')
  elif damage == 'image_without_mask':
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(root / 'images' / 'lonely.png')
  elif damage == 'size_mismatch':
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / 'masks' / 'img_00.png')
  elif damage == 'value_outside_classes':
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(root / 'masks' / 'img_01.png')
  elif damage == 'unknown_color':
    Image.fromarray(np.full((24, 32, 3), (1, 2, 3), np.uint8)).save(root / 'masks' / 'img_01.png')
    options['palette'] = COLORS
  elif damage == 'list_leaves_folder':
    (tmp_path / 'train.txt').write_text('img_00\n../../secret\n')
    (tmp_path / 'val.txt').write_text('img_01\n')
    options.update(train_list=str(tmp_path / 'train.txt'), eval_list=str(tmp_path / 'val.txt'))
  elif damage == 'no_class_names':
    options['class_names'] = ()
  elif damage == 'ignore_inside_classes':
    options['ignore_label'] = 1
  with pytest.raises(ValueError, match=message):
    data.dataset_info(_config(root, tmp_path, **options))


def test_decode_mask_16_bit_values_are_reported_as_values(tmp_path):
  path = tmp_path / 'deep.png'
  Image.fromarray(np.full((4, 4), 300, np.uint16)).save(path)
  with pytest.raises(ValueError, match=r'values \[300\] outside the classes'):
    folder.decode_mask(str(path), num_classes=3, ignore_label=255)


def _camvid_root(tmp_path):
  real = reference_data.path('camvid-samples')
  if os.path.isdir(real):
    return real, True
  root = tmp_path / 'camvid'
  rng = np.random.default_rng(0)
  for split, count in (('train', 3), ('test', 2)):
    (root / f'images_prepped_{split}').mkdir(parents=True)
    (root / f'annotations_prepped_{split}').mkdir(parents=True)
    for i in range(count):
      Image.fromarray(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)).save(
        root / f'images_prepped_{split}' / f'f{i}.png'
      )
      Image.fromarray(rng.integers(0, 12, (360, 480)).astype(np.uint8)).save(
        root / f'annotations_prepped_{split}' / f'f{i}.png'
      )
  return str(root), False


def test_camvid_builds_with_void_ignored(tmp_path):
  root, real = _camvid_root(tmp_path)
  config = {
    'name': 'camvid',
    'manual_dir': root,
    'data_dir': str(tmp_path / 'cache'),
    'eval_size': 480,
  }
  info = data.dataset_info(config)
  assert info.num_classes == 11 and info.class_names[:4] == ('sky', 'building', 'pole', 'road')
  assert set(info.splits) >= {'train', 'test'}
  batch = next(
    iter(
      data.make_iterator(
        config, split='test', global_batch_size=1, seed=0, train=False, num_epochs=1
      )
    )
  )
  mask = batch['mask'][0]
  first = sorted(os.listdir(os.path.join(root, 'annotations_prepped_test')))[0]
  raw = np.asarray(Image.open(os.path.join(root, 'annotations_prepped_test', first)))
  # 360x480 fits eval_size 480 unchanged; the 120 rows below are padding (ignored).
  np.testing.assert_array_equal(mask[:360], np.where(raw == 11, 255, raw))
  assert (mask[360:] == 255).all()
  if real:
    assert info.splits['train'] == 5 and info.splits['test'] == 3
