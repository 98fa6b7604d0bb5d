r"""DeepLab v3 (ResNet-101, output stride 16, ASPP with image pooling) on VOC 2012 + SBD.

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v3_voc.py \
      --workdir=/tmp/deeplab_v3_voc --config.init_from=/path/to/resnet101.safetensors

Hardware: one GPU with at least 24 GB (batch 16 of 513 x 513 crops with batch norm), or
several (the batch is global and sharded over ``mesh.data``).
Expected time: not measured here.
Expected metric: mean IoU 77.21 on VOC 2012 val at output stride 16, single scale
(Chen et al., "Rethinking Atrous Convolution", 2017, Table 5: multi-grid (1, 2, 4) + ASPP +
image pooling, trained at output stride 16 and evaluated at 16); 79.77 with output stride 8,
multi-scale and flipped inputs at test time.

Recipe (the paper's Sec. 4): poly rate from 7e-3 (power 0.9), momentum 0.9, weight decay 1e-4,
batch 16, 30k iterations, 513 x 513 crops of images rescaled by 0.5 to 2.0 and flipped, batch
norm trained (decay 0.9997 in the paper).

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
  """Returns the DeepLab v3 VOC experiment."""
  config = _voc_segmentation.get_voc_segmentation_config(
    model='deeplab_v3',
    total_steps=30_000,
    batch_size=16,
    learning_rate=7e-3,
    weight_decay=1e-4,
    crop_size=513,
    scale_range=(0.5, 2.0),
  )
  config.model.output_stride = 16
  config.model.multi_grid = (1, 2, 4)
  config.model.aspp_rates = (6, 12, 18)
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes, a narrow ResNet-10 backbone."""
  # Multi-grid needs one rate per block of the last stage (one block here).
  return _voc_segmentation.test_overrides(**{'model.multi_grid': (1,)})
