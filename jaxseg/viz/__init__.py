"""Visualisation: palettes, label overlays, saliency heatmaps, image grids, figures and curves.

numpy and Pillow only, bar the training curves (matplotlib).
"""

from jaxseg.viz.curves import plot_curves, read_metrics
from jaxseg.viz.figures import labelled_segmentation_grid, legend
from jaxseg.viz.grids import make_grid, save_png, segmentation_grid
from jaxseg.viz.heatmaps import heatmap, heatmap_overlay, jet, saliency_grid
from jaxseg.viz.overlays import image_to_uint8, overlay
from jaxseg.viz.palettes import (
  CITYSCAPES_CLASSES,
  VOC_CLASSES,
  VOC_VOID_COLOR,
  colorize,
  colors_to_labels,
  cityscapes_palette,
  get_palette,
  voc_palette,
)

__all__ = [
  'labelled_segmentation_grid',
  'legend',
  'plot_curves',
  'read_metrics',
  'CITYSCAPES_CLASSES',
  'VOC_CLASSES',
  'VOC_VOID_COLOR',
  'cityscapes_palette',
  'colorize',
  'colors_to_labels',
  'get_palette',
  'heatmap',
  'heatmap_overlay',
  'image_to_uint8',
  'jet',
  'make_grid',
  'overlay',
  'save_png',
  'saliency_grid',
  'segmentation_grid',
  'voc_palette',
]
