"""Test-time prediction for dense models (imports flow models -> inference; nothing imports it
back except train and experiments)."""

from jaxseg.inference.saliency import SaliencyEvaluator, format_table
from jaxseg.inference.segmentation import (
  SegmentationPredictor,
  bucketed_size,
  predict_augmented,
  predict_sliding,
  predict_whole,
  resize_bilinear,
  window_starts,
)

__all__ = [
  'SaliencyEvaluator',
  'SegmentationPredictor',
  'bucketed_size',
  'format_table',
  'predict_augmented',
  'predict_sliding',
  'predict_whole',
  'resize_bilinear',
  'window_starts',
]
