r"""Pan et al.'s deep saliency ConvNet (SalNet) trained on SALICON.

Command::

  python -m experiments.main --config=experiments/configs/salnet_deep_salicon.py \
      --workdir=/tmp/salnet_deep_salicon \
      [--config.model.pretrained=/path/to/vgg_cnn_m.npz]

Hardware: one GPU (25.8M parameters but 240 x 320 activations through 5x5 to 13x13 kernels).
Needs SALICON prepared from its manual files (see ``docs/saliency.md``). ``model.pretrained``
initialises conv1..conv3 from VGG-CNN-M (``.npz``/``.safetensors``, see
``jaxseg.models.saliency.load_vgg_cnn_m``), as the authors did; without it they start at random.
Expected time: several hours on one current GPU (not measured here).
Expected metric: Pan et al., CVPR 2016, report for the deep ConvNet on MIT300 (after SALICON
training) SIM 0.52, CC 0.58, shuffled AUC 0.69, AUC-Borji 0.82, AUC-Judd 0.83 (the MIT benchmark's
SalNet row, as we recall it: check the paper before quoting); on SALICON's validation split expect
a CC near 0.6.

As the authors' inference code (``deep/__init__.py``) reads the network: BGR input, mean pixel
subtracted (here the data pipeline's ``caffe_bgr``: mean (104, 117, 123), range 0..255, where the
authors used (100, 110, 118) and scaled by 1/127.5), and an output ``p`` with saliency
``128 p + 127``: so the target is the 0..255 map centred and scaled, ``loss.target='centered'``.
Euclidean loss, SGD with momentum 0.9 and weight decay 5e-4. The learning rate is set for this
loss's scale (a sum over 76,800 pixels, averaged over the batch); it has not been validated by a
full run here.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the deep ConvNet on SALICON."""
  config = base.get_base_config()
  config.task = 'saliency'
  config.total_steps = 40_000
  config.batch_size = 8
  config.eval_every = 2000
  config.checkpoint_every = 2000
  config.log_every = 100
  config.best_metric = 'cc'
  config.best_mode = 'max'

  config.model.name = 'salnet_deep'
  config.model.features = (96, 256, 512, 512, 512, 256, 128, 32)  # conv1..conv8, the paper's
  config.model.pretrained = ''  # a VGG-CNN-M .npz/.safetensors file for conv1..conv3
  config.model.pretrained_bgr_to_rgb = False  # the data below is BGR already

  config.data.name = 'salicon'
  config.data.image_size = (240, 320)
  config.data.map_size = (480, 640)  # metrics at SALICON's resolution; the loss uses 240 x 320
  config.data.normalization = 'caffe_bgr'
  config.data.flip = True

  config.loss.name = 'euclidean'
  config.loss.target = 'centered'

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1e-7
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.schedule.name = 'step'
  config.schedule.boundaries = (20_000, 30_000)
  config.schedule.decay_factor = 0.1
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic saliency data and a narrow model."""
  return {
    'data.name': 'synthetic_saliency',
    'data.image_size': (64, 64),
    'data.map_size': (64, 64),
    'model.features': (4, 4, 4, 4, 4, 4, 4, 4),
  }
