"""tfds's own builders (mnist, cifar, imagenet2012, oxford_iiit_pet, cityscapes) and ADE20K, built
without TensorFlow. Only the downloads are mocked: they return fixture files in the real formats."""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg import data
from jaxseg.data import class_names, decoders, preparation
from jaxseg.data.builders import classification
from jaxseg.data.builders._common import MissingFileError


def _cfg(tmp_path, name, **kw):
  cfg = dict(name=name, data_dir=str(tmp_path / 'data'), manual_dir=str(tmp_path / 'manual'))
  cfg.update(kw)
  return cfg


def _all(source):
  return [source[i] for i in range(len(source))]


def test_cifar10_builds_without_tensorflow_from_the_binary_release(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  root = tmp_path / 'release'
  os.makedirs(root / 'cifar-10-batches-bin')
  names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
  (root / 'cifar-10-batches-bin' / 'batches.meta.txt').write_text('\n'.join(names) + '\n')
  expected = {}
  files = [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']
  for file_name in files:
    chunks = []
    for _ in range(2):
      label = int(rng.integers(10))
      image = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
      chunks.append(bytes([label]) + image.transpose(2, 0, 1).tobytes())  # R, G, B planes
      expected[image.tobytes()] = (label, 'test' if file_name.startswith('test') else 'train')
    (root / 'cifar-10-batches-bin' / file_name).write_bytes(b''.join(chunks))
  archive = tmp_path / 'cifar-10-binary.tar.gz'
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(root / 'cifar-10-batches-bin', arcname='cifar-10-batches-bin')
  calls = []

  def fake_download(self, url):
    calls.append(url)
    return str(archive)

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', fake_download)
  cfg = _cfg(tmp_path, 'cifar10')
  info = data.dataset_info(cfg)
  assert calls == ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz']
  assert info.splits == {'test': 2, 'train': 10} and info.num_classes == 10
  builder = data.get_builder(cfg)
  for split in ('train', 'test'):
    for record in _all(builder.as_data_source(split)):
      label, expected_split = expected[record['image'].tobytes()]  # lossless PNG round trip
      assert (int(record['label']), split) == (label, expected_split)
  batch = next(data.make_iterator(cfg, split='train', global_batch_size=4, seed=0, train=True))
  assert batch['image'].shape == (4, 32, 32, 3) and batch['label'].dtype == np.int32


def test_archives_in_manual_dir_are_used_without_downloading(tmp_path, monkeypatch):
  def offline(self, url):
    raise AssertionError('should not download')

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', offline)
  os.makedirs(tmp_path / 'manual')
  (tmp_path / 'manual' / 'cifar-10-binary.tar.gz').write_bytes(b'not an archive')
  with pytest.raises(Exception, match='neither a tar nor a zip'):
    data.dataset_info(_cfg(tmp_path, 'cifar10'))


def test_mnist_reader_parses_the_idx_format(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
  labels = np.array([7, 0, 9], np.uint8)
  (tmp_path / 'images').write_bytes(
    b'\x00\x00\x08\x03' + (3).to_bytes(4, 'big') + (28).to_bytes(4, 'big') * 2 + images.tobytes()
  )
  (tmp_path / 'labels').write_bytes(b'\x00\x00\x08\x01' + (3).to_bytes(4, 'big') + labels.tobytes())
  records = list(
    classification._mnist_generate_examples(
      None, 3, str(tmp_path / 'images'), str(tmp_path / 'labels')
    )
  )
  for (key, record), image, label in zip(records, images, labels):
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(record['image']))), image)
    assert record['label'] == label
  assert [k for k, _ in records] == [0, 1, 2]


def test_absent_downloads_raise_a_clear_error(tmp_path, monkeypatch):
  def offline(self, url):
    raise ConnectionError('no network')

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', offline)
  with pytest.raises(
    preparation.DatasetUnavailableError, match=r"'mnist'[\s\S]*no network[\s\S]*docs/datasets.md"
  ):
    data.dataset_info(_cfg(tmp_path, 'mnist'))
  with pytest.raises(preparation.DatasetUnavailableError, match="'oxford_iiit_pet'"):
    data.dataset_info(_cfg(tmp_path, 'oxford_iiit_pet'))


def _jpeg_bytes(rng, hw=(12, 16)):
  buffer = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, size=hw + (3,), dtype=np.uint8)).save(buffer, 'JPEG')
  return buffer.getvalue()


def _add(tar, name, content):
  info = tarfile.TarInfo(name)
  info.size = len(content)
  tar.addfile(info, io.BytesIO(content))


def test_imagenet2012_from_the_manual_tars(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  with tarfile.open(manual / 'ILSVRC2012_img_val.tar', 'w') as tar:
    for i in (1, 2):
      _add(tar, f'ILSVRC2012_val_{i:08d}.JPEG', _jpeg_bytes(rng))
  inner = io.BytesIO()
  with tarfile.open(fileobj=inner, mode='w') as tar:
    _add(tar, 'n01440764_10026.JPEG', _jpeg_bytes(rng))
  with tarfile.open(manual / 'ILSVRC2012_img_train.tar', 'w') as tar:
    _add(tar, 'n01440764.tar', inner.getvalue())
  cfg = _cfg(tmp_path, 'imagenet2012', image_size=8)
  info = data.dataset_info(cfg)
  assert info.splits == {'train': 1, 'validation': 2} and info.num_classes == 1000
  builder = data.get_builder(cfg)
  # tfds's validation_labels.txt: the first two validation images are n01751748 and n09193705.
  names = builder.info.features['label'].names
  labels = {
    r['file_name'].decode(): names[int(r['label'])]
    for r in _all(builder.as_data_source('validation'))
  }
  assert labels == {
    'ILSVRC2012_val_00000001.JPEG': 'n01751748',
    'ILSVRC2012_val_00000002.JPEG': 'n09193705',
  }
  (train,) = _all(builder.as_data_source('train'))
  assert names[int(train['label'])] == 'n01440764'
  assert info.class_names == tuple(names)  # the registry's names are tfds's, in label order
  batch = next(
    data.make_iterator(cfg, split='validation', global_batch_size=2, seed=0, train=False)
  )
  assert batch['image'].shape == (2, 8, 8, 3)


def test_imagenet2012_without_tars_names_them(tmp_path):
  os.makedirs(tmp_path / 'manual')
  (tmp_path / 'manual' / 'README').write_text('empty')
  with pytest.raises(MissingFileError, match=r'ILSVRC2012_img_train\.tar[\s\S]*image-net.org'):
    data.dataset_info(_cfg(tmp_path, 'imagenet2012'))


def test_oxford_iiit_pet_trimaps_as_binary_or_three_classes(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  images = tmp_path / 'dl_images' / 'images'
  annotations = tmp_path / 'dl_annotations' / 'annotations'
  os.makedirs(images)
  os.makedirs(annotations / 'trimaps')
  os.makedirs(annotations / 'xmls')
  trimaps = {}
  for name in ('Abyssinian_1', 'beagle_2'):
    (images / f'{name}.jpg').write_bytes(_jpeg_bytes(rng, (10, 14)))
    trimap = rng.integers(1, 4, size=(10, 14)).astype(np.uint8)
    Image.fromarray(trimap).save(annotations / 'trimaps' / f'{name}.png')
    trimaps[name] = trimap
  (annotations / 'trainval.txt').write_text('Abyssinian_1 1 1 1\n')
  (annotations / 'test.txt').write_text('beagle_2 13 2 1\n')

  archives = {}
  for folder in (images, annotations):
    archives[folder.name] = tmp_path / f'{folder.name}.tar.gz'
    with tarfile.open(archives[folder.name], 'w:gz') as tar:
      tar.add(folder, arcname=folder.name)

  def fake_download(self, url):
    assert url.startswith('https://thor.robots.ox.ac.uk/~vgg/data/pets/'), url
    return str(archives[os.path.basename(url).split('.')[0]])

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', fake_download)
  for pet_mask, expected in (('binary', {1: 1, 2: 0, 3: 255}), ('trimap', {1: 0, 2: 1, 3: 2})):
    cfg = _cfg(tmp_path, 'oxford_iiit_pet', pet_mask=pet_mask, eval_size=16)
    info = data.dataset_info(cfg)
    assert info.num_classes == (2 if pet_mask == 'binary' else 3)
    assert info.splits == {'test': 1, 'train': 1}
    batch = next(data.make_iterator(cfg, split='test', global_batch_size=1, seed=0, train=False))
    mapped = np.vectorize(expected.get)(trimaps['beagle_2'])
    np.testing.assert_array_equal(batch['mask'][0, :10, :14], mapped)
    assert np.all(batch['mask'][0, 10:] == 255)


def test_cityscapes_requires_its_archives_and_maps_train_ids(tmp_path):
  os.makedirs(tmp_path / 'manual')
  (tmp_path / 'manual' / 'other.txt').write_text('x')
  with pytest.raises(MissingFileError, match=r'leftImg8bit_trainvaltest\.zip[\s\S]*cityscapes'):
    data.dataset_info(_cfg(tmp_path, 'cityscapes'))
  # cityscapesScripts' labels.py: road 7 -> 0, sidewalk 8 -> 1, car 26 -> 13, bicycle 33 -> 18;
  # unlabeled 0, ego vehicle 1, rectification border 2, license plate -1 (255) -> ignored.
  label_ids = np.array([[7, 8, 26, 33, 0, 1, 2, 255]], np.uint8)
  record = {'image_left': np.zeros((1, 8, 3), np.uint8), 'segmentation_label': label_ids[..., None]}
  mask = decoders.cityscapes(record, {})['mask']
  np.testing.assert_array_equal(mask, [[0, 1, 13, 18, 255, 255, 255, 255]])
  assert sorted(set(decoders.CITYSCAPES_LUT.tolist()) - {255}) == list(range(19))


@pytest.mark.parametrize('name', [n for n in data.list_datasets() if n != 'image_folder'])
def test_every_dataset_names_its_classes(name):
  # One published name per class, in label order, none of them the class_<k> fallback.
  spec, options = data.resolve_options({'name': name})
  names = spec.names(options)
  assert len(names) == spec.num_classes(options) and len(set(names)) == len(names)
  assert not any(n.startswith('class_') for n in names)


def test_published_class_names_follow_their_release_files():
  # CIFAR-100's meta lists fine labels alphabetically; ADE20K's objectInfo150 rows 1, 13, 150.
  assert class_names.CIFAR100 == tuple(sorted(class_names.CIFAR100))
  assert class_names.CIFAR100[:2] == ('apple', 'aquarium_fish') and len(class_names.CIFAR100) == 100
  ade = class_names.ADE20K
  assert (ade[0], ade[12], ade[149], len(ade)) == ('wall', 'person', 'flag', 150)


def test_ade20k_semantic_release(tmp_path):
  rng = np.random.default_rng(0)
  root = tmp_path / 'manual' / 'ADEChallengeData2016'
  annotations = {}
  for folder, stem in (('training', 'ADE_train_00000001'), ('validation', 'ADE_val_00000001')):
    os.makedirs(root / 'images' / folder)
    os.makedirs(root / 'annotations' / folder)
    (root / 'images' / folder / f'{stem}.jpg').write_bytes(_jpeg_bytes(rng, (9, 11)))
    annotation = rng.integers(0, 151, size=(9, 11)).astype(np.uint8)
    Image.fromarray(annotation).save(root / 'annotations' / folder / f'{stem}.png')
    annotations[folder] = annotation
  cfg = _cfg(tmp_path, 'scene_parse150', eval_size=12)
  info = data.dataset_info(cfg)
  assert info.splits == {'train': 1, 'validation': 1} and info.num_classes == 150
  batch = next(
    data.make_iterator(cfg, split='validation', global_batch_size=1, seed=0, train=False)
  )
  truth = annotations['validation'].astype(np.int32)
  np.testing.assert_array_equal(batch['mask'][0, :9, :11], np.where(truth == 0, 255, truth - 1))
