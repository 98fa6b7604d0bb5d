r"""DeepLab v2 (ResNet-101, ASPP-L, multi-scale inputs) on PASCAL VOC 2012 + SBD.

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v2_voc.py \
      --workdir=/tmp/deeplab_v2_voc --config.init_from=/path/to/resnet101.safetensors

Hardware: one GPU with at least 16 GB (batch 10 of 321 x 321 crops, three input scales).
Expected time: not measured here.
Expected metric: mean IoU 76.35 on VOC 2012 val before the CRF, 77.69 with it, for
ResNet-101 + MSC + COCO + ASPP-L (Chen et al., TPAMI 2017, Table 4); without COCO
pre-training, 71.57 for ASPP-L alone on VGG16 (Table 3), so expect roughly 74-76 here.

Recipe (the paper's Sec. 4.1): "poly" rate from 2.5e-4 with power 0.9 (10x on the ASPP
classifiers), momentum 0.9, weight decay 5e-4, batch 10, 20k iterations, 321 x 321 crops of
images randomly rescaled by 0.5 to 1.5 and flipped. Multi-scale inputs (1, 0.75, 0.5) fused by
a pixel-wise max, with a loss on each scale and on the fused output (``loss.aux_weight=1``).

ImageNet weights: ``init_from`` takes torchvision's ResNet-101 state dict, converted once where
PyTorch is installed (jaxseg never unpickles)::

  wget https://download.pytorch.org/models/resnet101-63fe2227.pth
  python tools/pth_to_safetensors.py resnet101-63fe2227.pth /path/to/resnet101.safetensors

The engine imports it into the model's ``backbone`` (``config.init_from_subtree``; found
automatically) and logs which entries were restored; ``fc.*`` is reported unused.

Compute dtype (issue 16, benchmarks/README.md): ``--config.dtype=bfloat16`` on GPUs/TPUs; float32 on
CPUs (with issue 16's float32 lowerings, bfloat16 made ResNet-50's train step only 5% faster and
DeepLabV3's 3% slower on an AVX512-BF16 CPU).
"""

import ml_collections

from experiments.configs import _voc_segmentation


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab v2 VOC experiment."""
  config = _voc_segmentation.get_voc_segmentation_config(
    model='deeplab_v2',
    total_steps=20_000,
    batch_size=10,
    learning_rate=2.5e-4,
    weight_decay=5e-4,
    crop_size=321,
    scale_range=(0.5, 1.5),
  )
  config.model.output_stride = 8
  config.model.rates = (6, 12, 18, 24)  # ASPP-L
  config.model.input_scales = (1.0, 0.75, 0.5)
  config.loss.aux_weight = 1.0  # every scale's own loss, as the paper
  config.optimizer.lr_multipliers = (('^aspp/', 10.0),)
  # DeepLab v2's fully connected CRF: w2=3 fixed, w1, sigma_alpha, sigma_beta cross-validated
  # (Chen et al. 2017, Sec. 4.1); the released VOC values (as kazuto1011/deeplab-pytorch's
  # configs/voc12.yaml): bi 4/67/3, pos 3/1, 10 iterations. Evaluation logs crf/mean_iou beside
  # mean_iou when eval.crf is True (--config.eval.crf=True).
  config.crf = ml_collections.ConfigDict(
    {
      'iterations': 10,
      'pos_w': 3.0,
      'pos_xy_std': 1.0,
      'bi_w': 4.0,
      'bi_xy_std': 67.0,
      'bi_rgb_std': 3.0,
    }
  )
  config.eval = ml_collections.ConfigDict({'crf': False})
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes, a narrow ResNet-10 backbone."""
  # Two input scales keep the compile short.
  return _voc_segmentation.test_overrides(**{'model.input_scales': (1.0, 0.5)})
