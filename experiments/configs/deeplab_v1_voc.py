r"""DeepLab-LargeFOV (DeepLab v1) on PASCAL VOC 2012 + SBD, without the CRF.

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v1_voc.py \
      --workdir=/tmp/deeplab_v1_voc --config.init_from=/path/to/vgg16.safetensors

Hardware: one GPU (the paper: one NVIDIA K40; Caffe). Batch 20 of 321 x 321 crops.
Expected time: not measured here; the paper reports about 10 hours for 6000 iterations on a
K40 (Chen et al. 2015, Sec. 4.1).
Expected metric: mean IoU 62.25 on VOC 2012 val before the CRF, 67.64 with it
(Chen et al., ICLR 2015, Table 2 (b), "DeepLab-LargeFOV").

Recipe (the paper's Sec. 4.1): SGD, momentum 0.9, weight decay 5e-4, initial rate 1e-3 (10x on
the classifier fc8), divided by 10 every 2000 iterations, 6000 iterations, batch 20, dropout
0.5; VGG16 ImageNet weights from ``init_from`` (below).

ImageNet weights: ``init_from`` takes torchvision's VGG16 state dict, converted once where
PyTorch is installed (jaxseg never unpickles)::

  wget https://download.pytorch.org/models/vgg16-397923af.pth
  python tools/pth_to_safetensors.py vgg16-397923af.pth /path/to/vgg16.safetensors

The engine imports it into the model's ``backbone`` (``config.init_from_subtree``; found
automatically) and logs which entries were restored; torchvision's classifier (``classifier.*``)
is reported unused, so fc6 (3x3, rate 12, 1024 channels), fc7 and fc8 start from their own
initialisation.

Compute dtype (issue 16, benchmarks/README.md), a VGG backbone: float32 on CPUs (bfloat16 made
the VGG16/FCN-8s train steps slower even with AVX512-BF16); ``--config.dtype=bfloat16`` on
GPUs/TPUs.
"""

import ml_collections

from experiments.configs import _voc_segmentation


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab-LargeFOV VOC experiment."""
  config = _voc_segmentation.get_voc_segmentation_config(
    model='deeplab_v1',
    total_steps=6000,
    batch_size=20,
    learning_rate=1e-3,
    weight_decay=5e-4,
    crop_size=321,
    scale_range=(1.0, 1.0),
    backbone=None,  # VGG16 (torchvision weights, see the docstring)
    normalization='caffe_bgr',
    schedule='step',
  )
  config.checkpoint_every = 1000  # a resumable checkpoint halfway between evaluations
  config.model.fc6_rate = 12
  config.model.fc_features = 1024
  config.model.dropout_rate = 0.5
  config.optimizer.lr_multipliers = (('fc8/bias$', 20.0), ('fc8/kernel$', 10.0), ('bias$', 2.0))
  config.schedule.boundaries = (2000, 4000)
  config.schedule.decay_factor = 0.1
  # DeepLab's fully connected CRF with the paper's cross-validated LargeFOV values (w1=4,
  # sigma_alpha=121, sigma_beta=5, w2=3, sigma_gamma=3, 10 mean-field iterations; Chen et al.
  # 2015, Sec. 4.1). Evaluation logs crf/mean_iou beside mean_iou when eval.crf is True
  # (--config.eval.crf=True; it runs on the host, after each evaluation's forward pass).
  config.crf = ml_collections.ConfigDict(
    {
      'iterations': 10,
      'pos_w': 3.0,
      'pos_xy_std': 3.0,
      'bi_w': 4.0,
      'bi_xy_std': 121.0,
      'bi_rgb_std': 5.0,
    }
  )
  config.eval = ml_collections.ConfigDict({'crf': False})
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
