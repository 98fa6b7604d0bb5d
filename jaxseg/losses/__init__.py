"""Pure losses: classification, segmentation and saliency (re-exported here)."""

from jaxseg.losses.classification import classification_loss_with_aux, softmax_cross_entropy
