r"""FCN-16s on PASCAL VOC: the second stage, initialised from a trained FCN-32s.

Command::

  python -m experiments.main --config=experiments/configs/fcn16s_voc.py \
      --workdir=/tmp/fcn16s_voc --config.init_from=/tmp/fcn32s_voc

Hardware: one GPU (the paper: one NVIDIA Tesla K40c).
Expected time: not measured here; about a day per stage in the paper.
Expected metric: mean IU 62.4 on the paper's VOC 2011 validation subset (Long et al. 2015,
Table 2, "FCN-16s"); here VOC 2012 + SBD for training and VOC 2012 val for evaluation.

As ``fcn32s_voc`` (SGD, momentum 0.99, weight decay 5e-4, biases 2x, unnormalised loss at
1e-10), plus the pool4 skip: ``score_pool4`` zero-initialised, every upsampling fixed to
bilinear as in the authors' released nets (the paper learns the 2x layer; its repository
notes that learning it made little difference; ``--config.model.learn_upsampling=True``
learns all of them from a bilinear start). Caffe crop offsets 5 and 27. ``init_from`` names the
FCN-32s workdir; parameters with matching names are restored, the new ones keep their
initialisation (``score_pool4`` stays zero); the log shows a table of restored and new entries.

Compute dtype (issue 16, benchmarks/README.md): float32 on CPUs (bfloat16 made the VGG16/FCN-8s
train steps slower even with AVX512-BF16); ``--config.dtype=bfloat16`` on GPUs/TPUs.
"""

import ml_collections

from experiments.configs import fcn32s_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the FCN-16s VOC experiment."""
  config = fcn32s_voc.get_config()
  config.init_from = '/tmp/fcn32s_voc'
  config.model.name = 'fcn16s'
  config.model.learn_upsampling = False
  return config


get_test_overrides = fcn32s_voc.get_test_overrides
