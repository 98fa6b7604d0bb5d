"""Pure losses: classification, segmentation and saliency (re-exported here)."""

from jaxseg.losses.classification import classification_loss_with_aux, softmax_cross_entropy
from jaxseg.losses.saliency import euclidean_loss, saliency_bce, saliency_kl
from jaxseg.losses.segmentation import (
  pixelwise_cross_entropy,
  segmentation_cross_entropy,
  segmentation_loss,
)

__all__ = [
  'classification_loss_with_aux',
  'euclidean_loss',
  'pixelwise_cross_entropy',
  'saliency_bce',
  'saliency_kl',
  'segmentation_cross_entropy',
  'segmentation_loss',
  'softmax_cross_entropy',
]
