r"""FCN-16s on PASCAL VOC: the second stage, initialised from a trained FCN-32s.

Command::

  python -m experiments.main --config=experiments/configs/fcn16s_voc.py \
      --workdir=/tmp/fcn16s_voc --config.init_from=/tmp/fcn32s_voc

Hardware: one GPU (the paper: one NVIDIA Tesla K40c).
Expected time: not measured here; about a day per stage in the paper.
Expected metric: mean IU 62.4 on the paper's VOC 2011 validation subset (Long et al. 2015,
Table 2, "FCN-16s"); here VOC 2012 + SBD for training and VOC 2012 val for evaluation.

As ``fcn32s_voc`` (SGD, momentum 0.99, weight decay 5e-4, biases 2x, unnormalised loss at
1e-10), plus the pool4 skip: ``score_pool4`` zero-initialised, the 2x upsampling of
``score_fr`` bilinear-initialised and learned, the final 16x upsampling fixed. Caffe crop
offsets 5 and 27. ``init_from`` names the FCN-32s workdir; parameters with matching names are
restored, the new ones keep their initialisation (the training engine must load it).
"""
import ml_collections

from experiments.configs import fcn32s_voc


def get_config() -> ml_collections.ConfigDict:
  """Returns the FCN-16s VOC experiment."""
  config = fcn32s_voc.get_config()
  config.init_from = '/tmp/fcn32s_voc'
  config.model.name = 'fcn16s'
  # The reference net learns the 2x upsampling but keeps the last one bilinear; one flag
  # here covers all transposed convolutions, so the fixed variant is the closer choice for
  # the final 16x, and the 2x layer starts bilinear either way.
  config.model.learn_upsampling = False
  return config
