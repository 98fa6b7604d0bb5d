r"""FCN-8s on PASCAL VOC: the third stage, initialised from a trained FCN-16s.

Command::

  python -m experiments.main --config=experiments/configs/fcn8s_voc.py \
      --workdir=/tmp/fcn8s_voc --config.init_from=/tmp/fcn16s_voc

Hardware: one GPU (the paper: one NVIDIA Tesla K40c).
Expected time: not measured here; about a day per stage in the paper.
Expected metric: mean IU 62.7 on the paper's VOC 2011 validation subset (Long et al. 2015,
Table 2, "FCN-8s"); 62.2 on VOC 2012 test (Table 3). Here VOC 2012 + SBD for training and
VOC 2012 val for evaluation.

As ``fcn16s_voc`` plus the pool3 skip (``score_pool3`` zero-initialised, Caffe crop offsets 5,
9 and 31). For the "at-once" variant of the journal version (all streams trained together
from VGG16, pool4 scaled by 0.01 and pool3 by 1e-4), use ``--config.model.at_once=True`` with
``--config.init_from=/path/to/vgg16.safetensors`` (torchvision's VGG16, converted as
``fcn32s_voc`` describes).

Compute dtype (issue 16, benchmarks/README.md): float32 on CPUs (bfloat16 made the VGG16/FCN-8s
train steps slower even with AVX512-BF16); ``--config.dtype=bfloat16`` on GPUs/TPUs.
"""

import ml_collections

from experiments.configs import fcn16s_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the FCN-8s VOC experiment."""
  config = fcn16s_voc.get_config()
  config.init_from = '/tmp/fcn16s_voc'
  config.model.name = 'fcn8s'
  config.model.at_once = False
  return config


get_test_overrides = fcn16s_voc.get_test_overrides
