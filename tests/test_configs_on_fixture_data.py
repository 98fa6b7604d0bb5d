"""The VOC and Cityscapes configs train one step on their real dataset builders.

``tests/test_configs.py`` trains every config on a synthetic stand-in. Here the segmentation
configs keep their own dataset (``voc2012_sbd``, ``cityscapes``) and read fixture files written in
the official layouts (VOCdevkit + SBD's ``cls/*.mat``; Cityscapes' two zip archives), so the
path from the manual files through the builder, the pipeline and the step is exercised as a user
runs it. Only the model is shrunk (the config's own test overrides) and the crops are small.
"""

import os
import zipfile

import numpy as np
import pytest
from PIL import Image

import test_configs as tc
from test_data_voc import _jpeg, _sbd_mat, write_voc


def _write_sbd(manual, ids, rng):
  root = os.path.join(manual, 'benchmark_RELEASE', 'dataset')
  os.makedirs(os.path.join(root, 'cls'))
  os.makedirs(os.path.join(root, 'img'))
  for image_id in ids:
    hw = (int(rng.integers(24, 40)), int(rng.integers(24, 40)))
    _sbd_mat(
      os.path.join(root, 'cls', image_id + '.mat'), rng.integers(0, 21, size=hw).astype(np.uint8)
    )
    _jpeg(os.path.join(root, 'img', image_id + '.jpg'), rng, hw)
  for name, part in (('train', ids[:-1]), ('val', ids[-1:])):
    with open(os.path.join(root, name + '.txt'), 'w') as f:
      f.write('\n'.join(part) + '\n')


def _png_bytes(array):
  import io  # pylint: disable=g-import-not-at-top

  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return buffer.getvalue()


def _write_cityscapes(manual, rng):
  """The two archives of Cityscapes' fine annotations, with labelIds PNGs (ids 0..33)."""
  os.makedirs(manual, exist_ok=True)
  with (
    zipfile.ZipFile(os.path.join(manual, 'leftImg8bit_trainvaltest.zip'), 'w') as left,
    zipfile.ZipFile(os.path.join(manual, 'gtFine_trainvaltest.zip'), 'w') as fine,
  ):
    for split, count in (('train', 8), ('val', 2), ('test', 1)):
      for i in range(count):
        image_id = f'aachen_{i:06d}_000019'
        image = rng.integers(0, 256, size=(32, 64, 3), dtype=np.uint8)
        label_ids = rng.integers(0, 34, size=(32, 64)).astype(np.uint8)
        left.writestr(f'leftImg8bit/{split}/aachen/{image_id}_leftImg8bit.png', _png_bytes(image))
        fine.writestr(
          f'gtFine/{split}/aachen/{image_id}_gtFine_labelIds.png', _png_bytes(label_ids)
        )


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  manual = str(tmp_path_factory.mktemp('manual'))
  rng = np.random.default_rng(0)
  write_voc(manual)  # train 2007_000032, 2007_000039, 2008_000008; val 2007_000033, 2007_000042
  # Enough training images for one global batch of 8; SBD's last id is VOC val, so held out.
  _write_sbd(manual, [f'2009_{i:06d}' for i in range(1, 7)] + ['2007_000033'], rng)
  _write_cityscapes(manual, rng)
  return manual


FIXTURE_CONFIGS = ('fcn8s_voc', 'deeplab_v3plus_voc', 'deeplab_v3plus_cityscapes')


@pytest.mark.slow
@pytest.mark.parametrize('name', FIXTURE_CONFIGS)
def test_segmentation_config_trains_one_step_on_fixture_files(name, manual_dir, tmp_path):
  from jaxseg import train  # pylint: disable=g-import-not-at-top

  module = tc._load(name)  # pylint: disable=protected-access
  config = module.get_config()
  config.lock()
  dataset, num_classes = config.data.name, config.model.num_classes
  assert dataset in ('voc2012_sbd', 'cityscapes')
  tc.apply_overrides(config, tc.ONE_STEP)
  tc.apply_overrides(config, module.get_test_overrides())
  # Back to the config's own dataset, read from the fixture files.
  tc.apply_overrides(
    config,
    {
      'data.name': dataset,
      'model.num_classes': num_classes,
      'data.manual_dir': manual_dir,
      'data.data_dir': str(tmp_path / 'data'),
      'batch_size': 8,
    },
  )
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['step'] == 1
  assert 0.0 <= result['mean_iou'] <= 1.0
  assert os.path.isdir(tmp_path / 'run' / 'checkpoints' / '1')


def test_model_with_fewer_classes_than_the_dataset_fails_before_training(tmp_path):
  """A 4-class head on 10-class digits would give a NaN loss at step 1; it must fail at start."""
  from jaxseg import train  # pylint: disable=g-import-not-at-top

  config = tc._load('lenet5_digits').get_config()  # pylint: disable=protected-access
  config.lock()
  tc.apply_overrides(config, tc.ONE_STEP)
  tc.apply_overrides(config, {'data.data_dir': str(tmp_path / 'data')})
  with config.unlocked():
    config.model.num_classes = 4
  with pytest.raises(ValueError, match=r"num_classes=4 but dataset 'digits' has 10 classes"):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
