"""grain pipelines over tfds ArrayRecord: resume, sharding, padded eval, options, synthetic data."""

import hashlib
import json
import os

import numpy as np
import pytest

from jaxseg import data
from jaxseg.data import preparation, registry

_SHAPES = {
  'name': 'shapes_segmentation',
  'synthetic_size': 32,
  'num_train': 48,
  'num_test': 21,
  'read_threads': 2,
}
_SALIENCY = {
  'name': 'synthetic_saliency',
  'synthetic_size': 32,
  'num_train': 24,
  'num_test': 10,
  'read_threads': 2,
}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('jaxseg_data'))


def _cfg(base, data_dir, **kw):
  return dict(base, data_dir=data_dir, **kw)


def _digest(array):
  return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_digits_is_the_stratified_sklearn_split(data_dir):
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  cfg = {'name': 'digits', 'data_dir': data_dir}
  info = data.dataset_info(cfg)
  assert info.task == 'classification' and info.num_classes == 10
  assert info.splits == {'train': 1500, 'test': 297}
  assert info.image_shape == (32, 32, 3)
  batches = list(data.make_iterator(cfg, split='test', global_batch_size=100, seed=0, train=False))
  labels = np.concatenate([b['label'][b['valid']] for b in batches])
  target = load_digits().target
  _, expected = train_test_split(target, test_size=297, random_state=0, stratify=target)
  np.testing.assert_array_equal(
    np.bincount(labels, minlength=10), np.bincount(expected, minlength=10)
  )
  # Each image is its sklearn digit upsampled: shrunk back by 4x4 block means, its nearest
  # sklearn digit carries the same label.
  images = np.concatenate([b['image'][b['valid']] for b in batches])
  assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
  np.testing.assert_array_equal(images[..., 0], images[..., 2])  # gray in RGB
  small = images[..., 0].reshape(-1, 8, 4, 8, 4).mean((2, 4)) * 16
  digits = load_digits()
  distances = ((small[:, None] - digits.images[None]) ** 2).sum((2, 3))
  np.testing.assert_array_equal(digits.target[distances.argmin(1)], labels)
  # Close to its digit (bilinear blur only), far from the typical other digit.
  assert np.sqrt(distances.min(1)).max() < 0.5 * np.sqrt(np.median(distances))


def test_train_iterator_resumes_exactly_from_json_state(data_dir):
  cfg = _cfg(_SHAPES, data_dir)
  it = data.make_iterator(cfg, split='train', global_batch_size=8, seed=3, train=True)
  _take(it, 4)
  state = json.loads(json.dumps(it.get_state()))
  expected = _take(it, 9)  # crosses the epoch boundary (6 batches per epoch)
  resumed = data.make_iterator(cfg, split='train', global_batch_size=8, seed=3, train=True)
  resumed.set_state(state)
  for a, b in zip(expected, _take(resumed, 9)):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['mask'], b['mask'])
  with pytest.raises(TypeError, match='state'):
    resumed.set_state('not a state')


def test_train_iterator_resumes_with_worker_processes(data_dir):
  cfg = _cfg(_SHAPES, data_dir, num_workers=1)
  it = data.make_iterator(cfg, split='train', global_batch_size=4, seed=0, train=True)
  try:
    first = _take(it, 3)
    state = json.loads(json.dumps(it.get_state()))
    expected = _take(it, 3)
  finally:
    it.close()
  # Workers change where the work happens, not what is produced.
  plain = data.make_iterator(
    _cfg(_SHAPES, data_dir), split='train', global_batch_size=4, seed=0, train=True
  )
  for a, b in zip(first + expected, _take(plain, 6)):
    np.testing.assert_array_equal(a['image'], b['image'])
  resumed = data.make_iterator(cfg, split='train', global_batch_size=4, seed=0, train=True)
  try:
    resumed.set_state(state)
    for a, b in zip(expected, _take(resumed, 3)):
      np.testing.assert_array_equal(a['mask'], b['mask'])
  finally:
    resumed.close()


def test_train_seed_controls_order_and_each_epoch_is_a_permutation(data_dir):
  cfg = _cfg(_SHAPES, data_dir, scale_range=(1.0, 1.0), flip=False)
  first = [
    _digest(x)
    for b in data.make_iterator(
      cfg, split='train', global_batch_size=8, seed=0, train=True, num_epochs=2
    )
    for x in b['mask']
  ]
  assert len(first) == 96
  again = [
    _digest(x)
    for b in _take(
      data.make_iterator(cfg, split='train', global_batch_size=8, seed=0, train=True), 12
    )
    for x in b['mask']
  ]
  other = [
    _digest(x)
    for b in _take(
      data.make_iterator(cfg, split='train', global_batch_size=8, seed=1, train=True), 12
    )
    for x in b['mask']
  ]
  assert first == again and first != other
  # Without augmentation each epoch holds every training example exactly once, reshuffled.
  epoch1, epoch2 = first[:48], first[48:]
  assert sorted(epoch1) == sorted(epoch2) and epoch1 != epoch2
  assert len(set(epoch1)) == 48


def test_train_shards_are_disjoint_and_cover_the_split(data_dir):
  cfg = _cfg(_SHAPES, data_dir, scale_range=(1.0, 1.0), flip=False)
  seen = []
  for p in range(3):
    batches = list(
      data.make_iterator(
        cfg,
        split='train',
        global_batch_size=12,
        seed=0,
        train=True,
        process_index=p,
        process_count=3,
        num_epochs=1,
      )
    )
    assert all(b['mask'].shape[0] == 4 for b in batches)  # the local slice
    seen.append({_digest(x) for b in batches for x in b['mask']})
  assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
  everything = {
    _digest(x)
    for b in data.make_iterator(
      cfg, split='train', global_batch_size=8, seed=0, train=True, num_epochs=1
    )
    for x in b['mask']
  }
  assert seen[0] | seen[1] | seen[2] == everything


def test_eval_pass_is_complete_ordered_and_padded_across_hosts(data_dir):
  cfg = _cfg(_SHAPES, data_dir)
  single = list(data.make_iterator(cfg, split='test', global_batch_size=8, seed=0, train=False))
  assert len(single) == 3  # ceil(21 / 8)
  valid = np.concatenate([b['valid'] for b in single])
  assert valid.dtype == bool and valid.sum() == 21 and valid[:21].all() and not valid[21:].any()
  order = [_digest(m) for b in single for m in b['mask']][:21]
  assert len(set(order)) == 21
  # Eval is deterministic: the same order every pass, no augmentation.
  again = [
    _digest(m)
    for b in data.make_iterator(cfg, split='test', global_batch_size=8, seed=9, train=False)
    for m in b['mask']
  ][:21]
  assert again == order
  # Two hosts: the same number of batches, and host slices interleave back into global order.
  hosts = [
    list(
      data.make_iterator(
        cfg,
        split='test',
        global_batch_size=8,
        seed=0,
        train=False,
        process_index=p,
        process_count=2,
      )
    )
    for p in range(2)
  ]
  assert len(hosts[0]) == len(hosts[1]) == 3
  merged_masks, merged_valid = [], []
  for b0, b1 in zip(*hosts):
    assert b0['mask'].shape == (4, 32, 32)
    merged_masks += [_digest(m) for m in np.concatenate([b0['mask'], b1['mask']])]
    merged_valid.append(np.concatenate([b0['valid'], b1['valid']]))
  np.testing.assert_array_equal(np.concatenate(merged_valid), valid)
  assert merged_masks[:21] == order


def test_segmentation_batches_follow_the_contract(data_dir):
  cfg = _cfg(
    _SHAPES,
    data_dir,
    crop_size=24,
    scale_range=(0.5, 2.0),
    normalization='imagenet',
    photometric=0.2,
  )
  info = data.dataset_info(cfg)
  assert (info.task, info.num_classes, info.ignore_label) == ('segmentation', 4, 255)
  assert info.image_shape == (24, 24, 3) and info.eval_image_shape == (32, 32, 3)
  batch = next(data.make_iterator(cfg, split='train', global_batch_size=6, seed=0, train=True))
  assert batch['image'].shape == (6, 24, 24, 3) and batch['image'].dtype == np.float32
  assert batch['mask'].shape == (6, 24, 24) and batch['mask'].dtype == np.int32
  assert set(np.unique(batch['mask'])) <= {0, 1, 2, 3, 255}
  assert 'valid' not in batch


def test_shapes_are_learnable_classes_with_distinct_colours(data_dir):
  cfg = _cfg(_SHAPES, data_dir)
  batches = list(
    data.make_iterator(cfg, split='train', global_batch_size=8, seed=0, train=True, num_epochs=1)
  )
  images = np.concatenate([b['image'] for b in batches])
  masks = np.concatenate([b['mask'] for b in batches])
  assert set(np.unique(masks)) == {0, 1, 2, 3}
  means = np.stack([images[masks == k].mean(0) for k in range(4)])
  # Class colours are far apart compared with the pixel noise.
  for i in range(4):
    for j in range(i + 1, 4):
      assert np.linalg.norm(means[i] - means[j]) > 0.15, (i, j, means)


def test_synthetic_datasets_are_deterministic_from_their_seed(tmp_path):
  cfg = dict(_SHAPES, num_train=8, num_test=4)
  digests = []
  for name in ('a', 'b'):
    batches = data.make_iterator(
      dict(cfg, data_dir=str(tmp_path / name)),
      split='test',
      global_batch_size=4,
      seed=0,
      train=False,
    )
    digests.append([_digest(b['image']) for b in batches])
  assert digests[0] == digests[1]
  other = data.make_iterator(
    dict(cfg, data_dir=str(tmp_path / 'a'), synthetic_seed=1),
    split='test',
    global_batch_size=4,
    seed=0,
    train=False,
  )
  assert [_digest(b['image']) for b in other] != digests[0]


def test_saliency_batches_and_fixations_come_from_the_density(data_dir):
  cfg = _cfg(_SALIENCY, data_dir, map_size=(16, 16))
  info = data.dataset_info(cfg)
  assert info.task == 'saliency' and info.map_shape == (16, 16)
  batch = next(data.make_iterator(cfg, split='train', global_batch_size=4, seed=0, train=True))
  assert batch['image'].shape == (4, 32, 32, 3) and batch['image'].dtype == np.float32
  assert batch['density'].shape == (4, 16, 16) and batch['density'].dtype == np.float32
  assert batch['fixations'].shape == (4, 16, 16) and batch['fixations'].dtype == np.uint8
  np.testing.assert_allclose(batch['density'].max((1, 2)), 1.0)
  full = _cfg(_SALIENCY, data_dir, map_size=(32, 32))
  b = next(data.make_iterator(full, split='test', global_batch_size=10, seed=0, train=False))
  d, f = b['density'], b['fixations'].astype(bool)
  assert set(np.unique(b['fixations'])) <= {0, 1} and f.sum() > 10 * 20
  # Fixations are drawn from the density: it is much higher at fixated pixels than on average.
  assert d[f].mean() > 2.5 * d.mean()


def test_saliency_flip_moves_maps_with_the_image(data_dir):
  cfg = _cfg(_SALIENCY, data_dir, flip=False)
  flipped = _cfg(_SALIENCY, data_dir, flip=True)
  a = _take(data.make_iterator(cfg, split='train', global_batch_size=8, seed=0, train=True), 3)
  b = _take(data.make_iterator(flipped, split='train', global_batch_size=8, seed=0, train=True), 3)
  n_flipped = 0
  for x, y in zip(a, b):
    for i in range(8):
      same = np.array_equal(x['image'][i], y['image'][i])
      mirrored = np.array_equal(x['image'][i][:, ::-1], y['image'][i])
      assert same or mirrored
      if mirrored and not same:
        n_flipped += 1
        np.testing.assert_array_equal(x['density'][i][:, ::-1], y['density'][i])
        np.testing.assert_array_equal(x['fixations'][i][:, ::-1], y['fixations'][i])
  assert 3 <= n_flipped <= 21


def test_second_build_reuses_the_prepared_files(tmp_path, monkeypatch):
  from jaxseg.data.builders import synthetic

  cfg = dict(_SHAPES, num_train=4, num_test=2, data_dir=str(tmp_path))
  data.dataset_info(cfg)
  preparation._prepared.cache_clear()

  def fail(*args, **kwargs):
    raise AssertionError('rebuilt')

  monkeypatch.setattr(synthetic.ShapesSegmentation, '_generate_examples', fail)
  assert data.dataset_info(cfg).splits == {'test': 2, 'train': 4}


def test_unknown_options_and_bad_arguments_are_named(data_dir):
  with pytest.raises(ValueError, match='crop_sise'):
    data.dataset_info(_cfg(_SHAPES, data_dir, crop_sise=3))
  with pytest.raises(ValueError, match='must be one of'):
    data.dataset_info({'name': 'imagenet2013'})
  with pytest.raises(ValueError, match='normalization'):
    data.dataset_info(_cfg(_SHAPES, data_dir, normalization='bgr'))
  with pytest.raises(ValueError, match='divisible'):
    data.make_iterator(
      _cfg(_SHAPES, data_dir),
      split='train',
      global_batch_size=7,
      seed=0,
      train=True,
      process_count=2,
    )
  with pytest.raises(ValueError, match='process_index'):
    data.make_iterator(
      _cfg(_SHAPES, data_dir),
      split='train',
      global_batch_size=8,
      seed=0,
      train=True,
      process_index=2,
      process_count=2,
    )
  with pytest.raises(ValueError, match='fewer than the local batch'):
    data.make_iterator(
      _cfg(_SHAPES, data_dir), split='train', global_batch_size=64, seed=0, train=True
    )


def test_every_dataset_documents_its_options():
  names = data.list_datasets()
  for expected in (
    'mnist',
    'cifar10',
    'cifar100',
    'imagenet2012',
    'digits',
    'voc2012_segmentation',
    'voc2012_sbd',
    'oxford_iiit_pet',
    'cityscapes',
    'scene_parse150',
    'salicon',
    'mit1003',
    'mit300',
    'shapes_segmentation',
    'synthetic_saliency',
  ):
    assert expected in names
  for name in names:
    text = data.describe(name)
    for option in registry.get_spec(name).all_options():
      assert f'  {option} = ' in text


def test_data_dir_falls_back_to_the_environment(monkeypatch, tmp_path):
  monkeypatch.setenv('JAXSEG_DATA_DIR', str(tmp_path))
  assert preparation.resolve_data_dir({'data_dir': ''}) == str(tmp_path)
  monkeypatch.delenv('JAXSEG_DATA_DIR')
  assert preparation.resolve_data_dir({'data_dir': ''}) == os.path.expanduser('~/jaxseg_data')


def test_library_runs_where_absl_flags_were_never_parsed(data_dir):
  # Outside a binary and outside pytest nobody parses absl flags; grain reads them anyway
  # (its worker processes raise UnparsedFlagAccessError).
  import subprocess
  import sys

  data.dataset_info({'name': 'digits', 'data_dir': data_dir})  # build here, read there
  code = (
    'import sys\n'
    'from absl import flags\n'
    'from jaxseg import data\n'
    'assert not flags.FLAGS.is_parsed()\n'
    f"it = data.make_iterator({{'name': 'digits', 'data_dir': {data_dir!r}, 'num_workers': 1}},\n"
    "                         split='test',\n"
    '                         global_batch_size=100, seed=0, train=False)\n'
    "print(sum(int(b['valid'].sum()) for b in it))\n"
    "bad = [m for m in sys.modules if m.startswith(('jaxseg.models', 'jaxseg.train'))]\n"
    'assert not bad, bad\n'
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root)
  result = subprocess.run(
    [sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=root, timeout=120
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().splitlines()[-1] == '297'


def test_classification_crop_padding_is_a_random_translation():
  rows, cols = np.mgrid[0:16, 0:16]
  image = np.stack([rows * 10 + 5, cols * 10 + 5, np.full_like(rows, 250)], -1).astype(np.uint8)
  options = registry.resolve_options({'name': 'cifar10', 'image_size': 16, 'flip': False})[1]
  shifts = set()
  for seed in range(60):
    out = data.process_sample(
      {'image': image, 'label': np.int32(3)},
      task='classification',
      options=options,
      ignore_label=None,
      rng=np.random.default_rng(seed),
    )
    assert out['label'] == 3 and out['image'].shape == (16, 16, 3)
    pixels = np.round(out['image'] * 255).astype(int)
    real = pixels[..., 2] == 250
    top, left = np.argwhere(real)[0]
    dy, dx = (pixels[top, left, 0] - 5) // 10 - top, (pixels[top, left, 1] - 5) // 10 - left
    shifts.add((int(dy), int(dx)))
    # Every real pixel shows the source pixel shifted by the same (dy, dx); the rest is padding.
    r, c = np.nonzero(real)
    np.testing.assert_array_equal(pixels[r, c, 0], (r + dy) * 10 + 5)
    np.testing.assert_array_equal(pixels[r, c, 1], (c + dx) * 10 + 5)
    pad = np.broadcast_to([124, 116, 104], pixels[~real].shape)
    np.testing.assert_array_equal(pixels[~real], pad)
  assert all(abs(dy) <= 4 and abs(dx) <= 4 for dy, dx in shifts) and len(shifts) > 20


def test_cache_in_memory_yields_the_same_batches_and_resumes(data_dir):
  """The decoded split kept in memory changes nothing a run sees: the same training batches
  across an epoch boundary, the same evaluation pass, the same checkpointed positions."""

  def batches(cache, **kw):
    cfg = _cfg(_SHAPES, data_dir, cache_in_memory=cache)
    return data.make_iterator(cfg, split='train', global_batch_size=8, seed=3, train=True, **kw)

  cached, plain = batches(True), batches(False)
  for a, b in zip(_take(cached, 9), _take(plain, 9)):  # 6 batches an epoch
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['mask'], b['mask'])
  state = json.loads(json.dumps(cached.get_state()))
  assert state == plain.get_state()
  resumed = batches(True)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)['image'], next(plain)['image'])
  evals = [
    list(
      data.make_iterator(
        _cfg(_SHAPES, data_dir, cache_in_memory=cache),
        split='test',
        global_batch_size=8,
        seed=0,
        train=False,
      )
    )
    for cache in (True, False)
  ]
  for a, b in zip(*evals):
    for key in ('image', 'mask', 'valid'):
      np.testing.assert_array_equal(a[key], b[key])


def test_cached_examples_are_read_only(data_dir):
  """A transform writing into an example in place would change every later epoch: it raises."""
  from jaxseg.data import pipeline  # noqa: PLC0415 (the private helper under test)

  spec, options = registry.resolve_options(_cfg(_SHAPES, data_dir))
  examples = pipeline._in_memory(preparation.prepared_builder(spec, options).as_data_source('test'))
  assert len(examples) == 21
  image = examples[0]['image']
  assert isinstance(image, np.ndarray) and not image.flags.writeable
  with pytest.raises(ValueError, match='read-only'):
    image[0, 0, 0] = 1
  nested = {'objects': [np.zeros(2), (np.zeros(3),)], 'id': 'x'}  # tfds sequences, nested
  pipeline._freeze(nested)
  assert not nested['objects'][0].flags.writeable and not nested['objects'][1][0].flags.writeable


def test_cache_in_memory_option_is_checked_and_on_for_digits(data_dir):
  with pytest.raises(ValueError, match='cache_in_memory must be True or False'):
    data.dataset_info(_cfg(_SHAPES, data_dir, cache_in_memory='yes'))
  assert registry.resolve_options({'name': 'digits'})[1]['cache_in_memory'] is True
  assert registry.resolve_options(_cfg(_SHAPES, data_dir))[1]['cache_in_memory'] is False
