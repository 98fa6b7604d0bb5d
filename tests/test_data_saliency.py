"""SALICON, MIT1003 and MIT300 builders on fixture files in their official formats."""

import json
import os
import pathlib

import numpy as np
import pytest
import scipy.io
import scipy.ndimage
from PIL import Image

from jaxseg import data
from jaxseg.data.builders._common import MissingFileError
import reference_data


def _jpeg(path, hw, seed=0):
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, size=hw + (3,), dtype=np.uint8)).save(path, quality=95)


def _records(cfg, split):
  source = data.get_builder(cfg).as_data_source(split)
  return {r['image_id'].decode(): r for r in (source[i] for i in range(len(source)))}


def _cfg(tmp_path, name, **kw):
  cfg = dict(name=name, data_dir=str(tmp_path / 'data'), manual_dir=str(tmp_path / 'manual'))
  cfg.update(kw)
  return cfg


# SALICON fixations, [row, col] 1-based, per worker.
_SALICON = {
  'COCO_train2014_000000000009.jpg': [[[1, 1], [10, 20]], [[30, 5]]],
  'COCO_train2014_000000000025.jpg': [[[5, 7]], [[12, 12], [12, 13]]],
}


def _write_salicon_json(root, split='train'):
  os.makedirs(os.path.join(root, 'images', split), exist_ok=True)
  os.makedirs(os.path.join(root, 'fixations'), exist_ok=True)
  images, annotations = [], []
  for n, (file_name, workers) in enumerate(sorted(_SALICON.items())):
    _jpeg(os.path.join(root, 'images', split, file_name), (32, 40), seed=n)
    images.append({'id': 100 + n, 'file_name': file_name, 'height': 32, 'width': 40})
    for w, fixations in enumerate(workers):
      annotations.append(
        {'id': 10 * n + w, 'image_id': 100 + n, 'worker_id': w, 'fixations': fixations}
      )
  with open(os.path.join(root, 'fixations', f'fixations_{split}2014.json'), 'w') as f:
    json.dump({'images': images, 'annotations': annotations, 'type': 'fixations'}, f)


def _expected_density(fixations, sigma):
  # An independent oracle: scipy's Gaussian filter, scaled to a maximum of 255 and rounded.
  blurred = scipy.ndimage.gaussian_filter(
    fixations.astype(np.float64), sigma, mode='constant', truncate=4.0
  )
  return np.round(blurred / blurred.max() * 255)


def test_salicon_json_gives_fixations_points_and_blurred_density(tmp_path):
  root = str(tmp_path / 'manual' / 'salicon')
  _write_salicon_json(root, 'train')
  _write_salicon_json(root, 'val')
  cfg = _cfg(tmp_path, 'salicon', blur_sigma=3.0, image_size=(16, 20), map_size=(16, 20))
  info = data.dataset_info(cfg)
  assert info.splits == {'train': 2, 'validation': 2} and info.map_shape == (16, 20)
  records = _records(cfg, 'train')
  for file_name, workers in _SALICON.items():
    record = records[file_name]
    fixations = record['fixations'][..., 0]
    expected = np.zeros((32, 40), np.uint8)
    for row, col in (p for w in workers for p in w):
      expected[row - 1, col - 1] = 1
    np.testing.assert_array_equal(fixations, expected)
    np.testing.assert_array_equal(record['points'], np.argwhere(expected))
    np.testing.assert_allclose(record['density'][..., 0], _expected_density(expected, 3.0), atol=1)
  batch = next(
    data.make_iterator(cfg, split='validation', global_batch_size=2, seed=0, train=False)
  )
  assert batch['density'].shape == (2, 16, 20) and batch['fixations'].dtype == np.uint8
  assert (
    0
    < batch['fixations'].sum()
    <= sum(len({tuple(p) for w in workers for p in w}) for workers in _SALICON.values())
  )


def test_salicon_mat_files_use_x_y_order(tmp_path):
  root = tmp_path / 'manual' / 'salicon'
  for split in ('train', 'val'):
    os.makedirs(root / 'images' / split)
    os.makedirs(root / 'fixations' / split)
    _jpeg(str(root / 'images' / split / 'COCO_x.jpg'), (20, 30))
    gaze = np.zeros(
      (2,), dtype=[('location', object), ('timestamp', object), ('fixations', object)]
    )
    gaze[0] = (np.zeros((1, 2)), np.zeros(1), np.array([[3, 5]], np.float64))  # x=3, y=5
    gaze[1] = (np.zeros((1, 2)), np.zeros(1), np.array([[30, 20], [1, 1]], np.float64))
    scipy.io.savemat(str(root / 'fixations' / split / 'COCO_x.mat'), {'gaze': gaze})
  cfg = _cfg(tmp_path, 'salicon', blur_sigma=2.0)
  data.dataset_info(cfg)
  record = _records(cfg, 'train')['COCO_x.jpg']
  assert sorted(map(tuple, record['points'].tolist())) == [(0, 0), (4, 2), (19, 29)]


def test_salicon_missing_json_names_it(tmp_path):
  os.makedirs(tmp_path / 'manual' / 'salicon' / 'images')
  with pytest.raises(MissingFileError, match=r'fixations_train2014\.json[\s\S]*salicon\.net'):
    data.dataset_info(_cfg(tmp_path, 'salicon'))


def _write_mit1003(root, stems, hw=(24, 32)):
  os.makedirs(os.path.join(root, 'ALLSTIMULI'))
  os.makedirs(os.path.join(root, 'ALLFIXATIONMAPS'))
  truth = {}
  rng = np.random.default_rng(0)
  for n, stem in enumerate(stems):
    _jpeg(os.path.join(root, 'ALLSTIMULI', stem + '.jpeg'), hw, seed=n)
    points = np.zeros(hw, np.uint8)
    for r, c in rng.integers(1, min(hw) - 1, size=(5, 2)):
      points[r, c] = 255
    density = scipy.ndimage.gaussian_filter(points.astype(float), 3)
    density = np.round(density / density.max() * 255).astype(np.uint8)
    Image.fromarray(points).save(
      os.path.join(root, 'ALLFIXATIONMAPS', stem + '_fixPts.jpg'), quality=90
    )
    Image.fromarray(density).save(
      os.path.join(root, 'ALLFIXATIONMAPS', stem + '_fixMap.jpg'), quality=90
    )
    truth[stem] = (points > 0, density)
  return truth


def test_mit1003_layout_with_a_seeded_holdout(tmp_path):
  stems = ['i05june05_static_street_boston_p1010764', 'i1000', 'i210', 'istatic_3']
  truth = _write_mit1003(str(tmp_path / 'manual' / 'mit1003'), stems)
  cfg = _cfg(tmp_path, 'mit1003', num_validation=1, image_size=(12, 16), map_size=(24, 32))
  assert data.dataset_info(cfg).splits == {'train': 3, 'validation': 1}
  records = {**_records(cfg, 'train'), **_records(cfg, 'validation')}
  assert set(records) == set(stems)
  for stem, (points, density) in truth.items():
    # The single white pixels survive JPEG compression above the threshold.
    np.testing.assert_array_equal(records[stem]['fixations'][..., 0].astype(bool), points)
    # The fixation map is the benchmark's own (decoded JPEG), not recomputed.
    assert np.abs(records[stem]['density'][..., 0].astype(int) - density.astype(int)).max() < 12
  other = _cfg(
    tmp_path, 'mit1003', num_validation=1, split_seed=1, data_dir=str(tmp_path / 'data1')
  )
  data.dataset_info(other)
  held_out = [set(_records(c, 'validation')) for c in (cfg, other)]
  assert all(len(h) == 1 for h in held_out)


def test_mit1003_missing_fixation_map_names_the_file(tmp_path):
  _write_mit1003(str(tmp_path / 'manual' / 'mit1003'), ['a', 'b'])
  os.remove(tmp_path / 'manual' / 'mit1003' / 'ALLFIXATIONMAPS' / 'b_fixMap.jpg')
  with pytest.raises(MissingFileError, match=r'b_fixMap\.jpg[\s\S]*ALLFIXATIONMAPS'):
    data.dataset_info(_cfg(tmp_path, 'mit1003', num_validation=1))


def test_mit300_stimuli_only_for_prediction(tmp_path):
  directory = tmp_path / 'manual' / 'mit300' / 'BenchmarkIMAGES'
  os.makedirs(directory)
  for n in range(3):
    _jpeg(str(directory / f'i{n + 1}.jpg'), (20, 30), seed=n)
  cfg = _cfg(tmp_path, 'mit300', image_size=(10, 15), map_size=(10, 15))
  info = data.dataset_info(cfg)
  assert info.splits == {'test': 3}
  batches = list(data.make_iterator(cfg, split='test', global_batch_size=2, seed=0, train=False))
  assert [b['valid'].tolist() for b in batches] == [[True, True], [True, False]]
  assert batches[0]['image'].shape == (2, 10, 15, 3)
  assert all(b['density'].sum() == 0 for b in batches)


_reference_dir = reference_data.root_or_none


def test_real_mit1003_image_through_the_builder(tmp_path):
  reference = _reference_dir()
  if reference is None or not os.path.isdir(os.path.join(reference, 'mit1003-i210')):
    pytest.skip('reference data (../shared/reference-data/mit1003-i210) is absent')
  src = os.path.join(reference, 'mit1003-i210')
  root = tmp_path / 'manual' / 'mit1003'
  os.makedirs(root / 'ALLSTIMULI')
  os.makedirs(root / 'ALLFIXATIONMAPS')
  for name, target in (
    ('stimulus.jpg', 'ALLSTIMULI/i210.jpeg'),
    ('fixation_map.jpg', 'ALLFIXATIONMAPS/i210_fixMap.jpg'),
  ):
    (root / target).write_bytes(pathlib.Path(os.path.join(src, name)).read_bytes())
  locations = scipy.io.loadmat(os.path.join(src, 'fixation_locations.mat'))['fixations']
  # The benchmark's _fixPts.jpg is the binary location map saved as JPEG.
  Image.fromarray((locations > 0).astype(np.uint8) * 255).save(
    root / 'ALLFIXATIONMAPS' / 'i210_fixPts.jpg', quality=75
  )
  _jpeg(str(root / 'ALLSTIMULI' / 'other.jpeg'), locations.shape)
  Image.fromarray(np.zeros(locations.shape, np.uint8)).save(
    root / 'ALLFIXATIONMAPS' / 'other_fixMap.jpg'
  )
  Image.fromarray(np.zeros(locations.shape, np.uint8)).save(
    root / 'ALLFIXATIONMAPS' / 'other_fixPts.jpg'
  )
  cfg = _cfg(tmp_path, 'mit1003', num_validation=1)
  data.dataset_info(cfg)
  records = {**_records(cfg, 'train'), **_records(cfg, 'validation')}
  record = records['i210']
  recovered = record['fixations'][..., 0].astype(bool)
  truth = locations > 0
  assert record['image'].shape == truth.shape + (3,)
  # Thresholding the JPEG recovers the recorded fixations (JPEG may merge a few neighbours).
  assert np.sum(recovered & truth) >= 0.95 * truth.sum()
  assert np.sum(recovered & ~truth) <= 0.05 * truth.sum()
  # The stored density is the benchmark's map, peaking where fixations are dense.
  density = record['density'][..., 0].astype(float)
  assert density[truth].mean() > 3 * density.mean()
