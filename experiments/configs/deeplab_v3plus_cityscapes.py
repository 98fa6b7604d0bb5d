r"""DeepLab v3+ (ResNet-101) on Cityscapes fine annotations (19 classes).

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v3plus_cityscapes.py \
      --workdir=/tmp/deeplab_v3plus_cityscapes --config.init_from=/path/to/resnet101.safetensors

Hardware: several GPUs (batch 8 of 769 x 769 crops, sharded over ``mesh.data``), about 16 GB
each. Cityscapes needs a manual download (see ``jaxseg.data`` ``cityscapes``).
Expected time: not measured here.
Expected metric: mean IoU about 78-79 on Cityscapes val for ResNet-101 DeepLab v3+ at output
stride 16 with single-scale evaluation (the paper reports 79.55 for its Xception-65 encoder,
Chen et al., ECCV 2018, Table 7; MMSegmentation's ResNet-101 v3+ at 769 x 769 reaches 79.9).

Recipe: poly rate from 1e-2 (power 0.9), momentum 0.9, weight decay 1e-4, batch 8 of
769 x 769 crops of images rescaled by 0.5 to 2.0 and flipped, 90k iterations; evaluation on
whole 1024 x 2048 images.

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

from experiments.configs import deeplab_v3plus_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab v3+ Cityscapes experiment."""
  config = deeplab_v3plus_voc.get_config()
  config.total_steps = 90_000
  config.batch_size = 8
  config.eval_every = 5000
  config.checkpoint_every = 5000
  config.num_images = 2
  config.model.num_classes = 19
  config.data.name = 'cityscapes'
  config.data.crop_size = 769
  config.data.eval_size = 2048
  config.data.scale_range = (0.5, 2.0)
  config.optimizer.learning_rate = 1e-2
  return config


get_test_overrides = deeplab_v3plus_voc.get_test_overrides
