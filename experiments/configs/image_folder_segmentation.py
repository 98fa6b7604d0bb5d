r"""Semantic segmentation of your own images: a folder of images and a folder of masks.

Command::

  python -m experiments.main --config=experiments/configs/image_folder_segmentation.py \
      --workdir=runs/mine --config.data.images_dir=my_data/images \
      --config.data.masks_dir=my_data/masks

Masks are PNGs named like their images (``a.jpg`` <-> ``a.png``): index PNGs whose pixel value
is the class (255 ignored), or colour PNGs with a ``classes.json`` in the masks folder
(``{"classes": [{"name": "background", "color": [0, 0, 0]}, ...]}``) that names the classes and
their colours. Without classes.json, give the names: ``--config.data.class_names="('background',
'cell')"``. 10% of the pairs are held out for validation (``data.eval_fraction``,
``data.split_seed``), or give ``data.train_list`` / ``data.eval_list`` files of stems.

Model: a narrow FCN-8s (VGG16 at 1/8 width) trained from scratch, as the demo: minutes on a
laptop CPU for a few hundred small images. For photographs, ImageNet weights help far more than
width: ``--config.model.width_divisor=1 --config.init_from=vgg16.safetensors`` (torchvision's
VGG16 converted with tools/pth_to_safetensors.py fills the backbone and fc6/fc7).
Hardware: a CPU for the default; a GPU for width_divisor=1.
Expected time and metric: they depend on your data; on the demo's synthetic shapes the same
network reaches mean IoU 0.93 in 4000 steps (fcn8s_shapes).
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the image-folder segmentation experiment."""
  config = base.get_base_config()
  config.task = 'segmentation'
  config.total_steps = 2000
  config.batch_size = 8
  config.eval_every = 500
  config.checkpoint_every = 500
  config.log_every = 50
  config.best_metric = 'mean_iou'
  config.best_mode = 'max'

  config.model.name = 'fcn8s'
  config.model.width_divisor = 8
  config.model.learn_upsampling = True

  config.data.name = 'image_folder'
  config.data.images_dir = ''
  config.data.masks_dir = ''
  config.data.class_names = ()
  config.data.palette = ()
  config.data.eval_fraction = 0.1
  config.data.split_seed = 0
  config.data.train_list = ''
  config.data.eval_list = ''
  config.data.crop_size = 320
  config.data.eval_size = 512
  config.data.scale_range = (0.5, 2.0)
  config.data.normalization = 'imagenet'

  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0
  config.schedule.name = 'warmup_cosine'
  config.schedule.warmup_steps = 50
  config.schedule.end_value = 0.0
  return config


def make_test_data(directory: str) -> dict:
  """Writes a tiny image/mask folder pair for tests/test_configs.py; returns the overrides."""
  import os  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  for folder in ('images', 'masks'):
    os.makedirs(os.path.join(directory, folder), exist_ok=True)
  for i in range(12):  # 11 train, 1 validation: a batch of 8 fits
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
      os.path.join(directory, 'images', f'{i}.jpg')
    )
    Image.fromarray(rng.integers(0, 2, (40, 48)).astype(np.uint8)).save(
      os.path.join(directory, 'masks', f'{i}.png')
    )
  return {
    'data.images_dir': os.path.join(directory, 'images'),
    'data.masks_dir': os.path.join(directory, 'masks'),
    'data.class_names': ('background', 'thing'),
    'data.crop_size': 32,
    'data.eval_size': 64,
    'model.width_divisor': 16,
  }
