"""Metrics that span a split, as sums merged with ``+`` and finalised once."""

from jaxseg.metrics import classification, saliency, segmentation

__all__ = ['classification', 'saliency', 'segmentation']
