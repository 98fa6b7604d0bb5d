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

Compute dtype (issue 16, benchmarks/README.md): ``--config.dtype=bfloat16`` on GPUs/TPUs and on
CPUs with AVX512-BF16 (ResNet-50's and DeepLabV3's train steps
measured 22% and 13% faster there); float32 otherwise.
"""
import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab v3 VOC experiment."""
  config = base.get_base_config()
  config.task = 'segmentation'
  config.total_steps = 30_000
  config.batch_size = 16
  config.eval_every = 2000
  config.checkpoint_every = 2000
  config.log_every = 50
  config.best_metric = 'mean_iou'
  config.best_mode = 'max'
  config.init_from = ''  # torchvision ResNet-101 weights, .safetensors (see the docstring)

  config.model.name = 'deeplab_v3'
  config.model.num_classes = 21
  config.model.backbone = 'resnet101'
  config.model.output_stride = 16
  config.model.multi_grid = (1, 2, 4)
  config.model.aspp_rates = (6, 12, 18)
  config.model.width_divisor = 1
  config.model.backbone_options = None

  config.data.name = 'voc2012_sbd'
  config.data.normalization = 'imagenet'
  config.data.crop_size = 513
  config.data.eval_size = 513
  config.data.scale_range = (0.5, 2.0)
  config.data.flip = True

  config.loss.normalize = True

  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 7e-3
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = 'poly'
  config.schedule.power = 0.9
  config.schedule.end_value = 0.0
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes, a narrow ResNet-10 backbone."""
  return {
      'data.name': 'shapes_segmentation', 'data.crop_size': 32, 'data.eval_size': 32,
      'model.num_classes': 4, 'model.backbone': 'resnet18', 'model.width_divisor': 16,
      # One block per stage (a ResNet-10) keeps the compile short; multi-grid needs one
      # rate per block of the last stage.
      'model.backbone_options': {'stage_sizes': (1, 1, 1, 1)}, 'model.multi_grid': (1,),
  }
