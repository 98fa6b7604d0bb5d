r"""FCN-32s on PASCAL VOC: the first stage of Long, Shelhamer & Darrell's recipe (CVPR 2015).

Command::

  python -m experiments.main --config=experiments/configs/fcn32s_voc.py \
      --workdir=/tmp/fcn32s_voc --config.init_from=/path/to/vgg16.safetensors

Hardware: one GPU (the paper: one NVIDIA Tesla K40c). Batch 1, whole images up to 500 x 500.
Expected time: not measured here; the paper trains each stage for about a day on a K40c.
Expected metric: mean IU 59.4 on the paper's VOC 2011 validation subset (Long et al. 2015,
Table 2, "FCN-32s"); training data here is VOC 2012 + SBD (``voc2012_sbd``) evaluated on VOC 2012
val, so expect the same range, not the same digit.

Recipe (the paper, Sec. 4.3, and the reference ``solve.py``): SGD with momentum 0.99, weight
decay 5e-4 on weights only, biases at twice the learning rate, the unnormalised (summed)
per-pixel loss at a fixed learning rate 1e-10 (equivalently about 1e-4 on the normalised loss
for 500 x 500 images), dropout 0.5, score layer zero-initialised, the 32x upsampling fixed to
bilinear, ``caffe_compat`` geometry (conv1_1 padded by 100, crop offset 19). ``init_from``
names ImageNet VGG16 weights (below).

ImageNet weights: ``init_from`` takes torchvision's VGG16 state dict, converted once where
PyTorch is installed (jaxseg never unpickles)::

  wget https://download.pytorch.org/models/vgg16-397923af.pth
  python tools/pth_to_safetensors.py vgg16-397923af.pth /path/to/vgg16.safetensors

The engine imports it into the model's ``backbone`` (``config.init_from_subtree``; found
automatically) and logs which entries were restored; torchvision's classifier (``classifier.*``)
is reported unused, so fc6 and fc7 (the paper copies VGG's fully connected layers into them as
convolutions; not done here yet) and the score layer start from their own initialisation.

Compute dtype (issue 16, benchmarks/README.md): float32 on CPUs (bfloat16 made the VGG16/FCN-8s
train steps slower even with AVX512-BF16); ``--config.dtype=bfloat16`` on GPUs/TPUs.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the FCN-32s VOC experiment."""
  config = base.get_base_config()
  config.task = 'segmentation'
  config.total_steps = 100_000
  config.batch_size = 1
  config.eval_every = 4000
  config.checkpoint_every = 4000
  config.log_every = 100
  config.best_metric = 'mean_iou'
  config.best_mode = 'max'
  config.num_images = 1
  config.init_from = ''  # torchvision VGG16 weights, .safetensors (see the docstring)

  config.model.name = 'fcn32s'
  config.model.num_classes = 21
  config.model.caffe_compat = True
  config.model.learn_upsampling = False
  config.model.dropout_rate = 0.5
  config.model.width_divisor = 1

  config.data.name = 'voc2012_sbd'
  config.data.normalization = 'caffe_bgr'  # Caffe VGG16: BGR, mean subtracted, 0..255
  config.data.crop_size = 500  # VOC images are at most 500 x 500: whole images
  config.data.eval_size = 512
  config.data.scale_range = (1.0, 1.0)  # no augmentation in the paper
  config.data.flip = False

  config.loss.normalize = False  # Caffe SoftmaxWithLoss, normalize: false

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1e-10
  config.optimizer.momentum = 0.99
  config.optimizer.weight_decay = 5e-4
  config.optimizer.weight_decay_mask = 'kernels'
  config.optimizer.lr_multipliers = (('bias$', 2.0),)
  config.schedule.name = 'constant'
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes instead of VOC, a narrow net."""
  return {
    'data.name': 'shapes_segmentation',
    'data.crop_size': 32,
    'data.eval_size': 32,
    'model.num_classes': 4,
    'model.width_divisor': 16,
  }
