r"""DeepLab v3+ (ResNet-101 encoder, decoder on stride 4) on PASCAL VOC 2012 + SBD.

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v3plus_voc.py \
      --workdir=/tmp/deeplab_v3plus_voc --config.init_from=/path/to/resnet101.safetensors

Hardware: one GPU with at least 24 GB (batch 16 of 513 x 513 crops), or several.
Expected time: not measured here.
Expected metric: mean IoU 78.85 on VOC 2012 val at output stride 16, single scale, for the
ResNet-101 encoder with the decoder (Chen et al., ECCV 2018, Table 3, "train OS 16, eval OS 16,
decoder"); 80.22 with output stride 8, multi-scale and flipped inputs at test time.

Recipe (the paper's Sec. 4): as DeepLab v3: poly rate from 7e-3, momentum 0.9, weight decay
1e-4, batch 16, 30k iterations, 513 x 513 crops rescaled by 0.5 to 2.0 and flipped.

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

from experiments.configs import deeplab_v3_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab v3+ VOC experiment."""
  config = deeplab_v3_voc.get_config()
  config.model.name = 'deeplab_v3plus'
  config.model.low_level_features = 48
  config.model.decoder_features = 256
  return config


get_test_overrides = deeplab_v3_voc.get_test_overrides
