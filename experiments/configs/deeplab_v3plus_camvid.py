r"""DeepLab v3+ (ResNet-50 encoder, decoder on stride 4) on CamVid as SegNet prepared it.

Command::

  python -m experiments.main --config=experiments/configs/deeplab_v3plus_camvid.py \
      --workdir=/tmp/deeplab_v3plus_camvid --config.data.manual_dir=/path/to/CamVid \
      --config.init_from=/path/to/resnet50.safetensors

``/path/to/CamVid`` holds ``images_prepped_{train,val,test}/`` and
``annotations_prepped_{train,val,test}/`` (docs/datasets.md, section ``camvid``): 367 training,
101 validation and 233 test frames of 360 x 480, 11 classes, void (11) ignored.

Hardware: one GPU with 16 GB (batch 8 of 352 x 352 crops).
Expected time: not measured here (no accelerator was lent; about 2 hours on one recent GPU is
an estimate from the step cost of DeepLab v3+ on Cityscapes crops).
Expected metric: not measured here. For scale, SegNet reports 60.1 mean IoU on the same 11-class
test split (Badrinarayanan et al., TPAMI 2017); DeepLab v3+ with an ImageNet ResNet-50 should
exceed it clearly.

Recipe: poly rate from 0.01, momentum 0.9, weight decay 1e-4, batch 8, 20k iterations, crops
rescaled by 0.5 to 2.0 and flipped; evaluation on the whole 360 x 480 frames (padded to 480).
"""

import ml_collections

from experiments.configs import deeplab_v3plus_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the DeepLab v3+ CamVid experiment."""
  config = deeplab_v3plus_voc.get_config()
  config.total_steps = 20_000
  config.batch_size = 8
  config.eval_every = 1000
  config.checkpoint_every = 1000
  config.model.num_classes = 11
  config.model.backbone = 'resnet50'
  config.data.name = 'camvid'
  config.data.crop_size = 352
  config.data.eval_size = 480
  config.optimizer.learning_rate = 0.01
  return config


def get_test_overrides() -> dict:
  """Tiny settings for tests/test_configs.py: synthetic shapes, a narrow ResNet-10 backbone."""
  return deeplab_v3plus_voc.get_test_overrides()
