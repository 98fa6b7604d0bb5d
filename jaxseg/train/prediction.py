"""Applying a trained run to your own images: ``python -m experiments.predict`` as a library.

Per image, by the run's task:

* segmentation: ``<stem>.png``, a palette PNG of the labels at the input's size (the dataset's
  colours, readable by any image viewer and back to labels by its palette index), a colour
  overlay ``<stem>_overlay.png`` and, on request, the logits ``<stem>.npy`` ``(H, W, K)``;
* saliency: ``<stem>.png``, the map as grey levels at the input's size, and a heatmap overlay
  ``<stem>_heatmap.png``;
* classification: one row of ``predictions.csv`` with the top-5 classes and probabilities.

Images are preprocessed exactly as the run evaluated: segmentation normalises the full image
(whole-image inference, or the sliding-window / multi-scale recipe); classification and
saliency resize (and crop) as the run's eval pipeline does.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from jaxseg import viz
from jaxseg.train import evaluation
from jaxseg.train.inference import InferenceRun

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.gif')


def list_inputs(path: str) -> list[str]:
  """The image files ``path`` names: itself, or the images directly inside a folder (sorted).

  Raises:
    FileNotFoundError: naming ``--input`` when it does not exist or a folder holds no image.
  """
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise FileNotFoundError(f'--input {path!r} is neither a file nor a folder.')
  files = sorted(
    os.path.join(path, name)
    for name in os.listdir(path)
    if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith('.')
  )
  if not files:
    raise FileNotFoundError(
      f'--input folder {path!r} holds no image ({", ".join(IMAGE_SUFFIXES)}).'
    )
  return files


def read_image(path: str) -> tuple[np.ndarray, str | None]:
  """Reads any image Pillow opens as ``(H, W, 3)`` uint8 RGB, with a note when it converted.

  Grey images are repeated over the three channels, alpha is dropped (composited on black),
  16-bit and float images are scaled to 8 bits by their own maximum, palette images expanded.

  Raises:
    ValueError: naming the file when Pillow cannot decode it.
  """
  try:
    with Image.open(path) as image:
      image.load()
      mode = image.mode
      if mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
        array = np.asarray(image, np.float64)
        peak = array.max()
        array = np.round(array / peak * 255) if peak > 0 else np.zeros_like(array)
        rgb = np.repeat(array.astype(np.uint8)[..., None], 3, axis=-1)
        return rgb, f'{mode} image scaled to 8 bits by its maximum {peak:g}'
      rgb = np.asarray(image.convert('RGB'))
  except Exception as e:  # Pillow raises many types for truncated or garbage files.
    raise ValueError(f'cannot read image {path}: {type(e).__name__}: {e}') from e
  notes = {
    'L': 'grey image repeated over RGB',
    'LA': 'grey image with alpha: alpha dropped',
    'RGBA': 'alpha channel dropped',
    'P': 'palette image expanded to RGB',
    'CMYK': 'CMYK converted to RGB',
    '1': 'binary image converted to RGB',
  }
  return rgb, notes.get(mode)


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _palette_png(labels: np.ndarray, palette: Any, path: str) -> None:
  colors = viz.get_palette(palette)
  table = np.zeros((256, 3), np.uint8)
  table[: len(colors)] = colors[:256]
  image = Image.fromarray(labels.astype(np.uint8), mode='P')
  image.putpalette(table.reshape(-1).tolist())
  image.save(path)


def predict_segmentation(
  run: InferenceRun, image: np.ndarray, recipe: evaluation.Recipe
) -> np.ndarray:
  """Logits ``(H, W, K)`` for one uint8 RGB image at its own size."""
  inputs = np.asarray(run.preprocess(image[None]), np.float32)
  return evaluation.segmentation_logits(run, inputs, recipe, pixels=image[None])[0]


def write_segmentation(
  output_dir: str,
  stem: str,
  image: np.ndarray,
  logits: np.ndarray,
  run: InferenceRun,
  *,
  save_logits: bool,
) -> list[str]:
  """Writes the label PNG, the overlay and (``save_logits``) the logits; returns the paths."""
  labels = np.argmax(logits, axis=-1)
  palette = run.task.palette or 'voc'
  paths = [os.path.join(output_dir, f'{stem}.png'), os.path.join(output_dir, f'{stem}_overlay.png')]
  _palette_png(labels, palette, paths[0])
  viz.save_png(viz.overlay(image, labels, palette=palette, alpha=0.5), paths[1])
  if save_logits:
    paths.append(os.path.join(output_dir, f'{stem}.npy'))
    np.save(paths[-1], logits.astype(np.float32))
  return paths


def _eval_prepared(run: InferenceRun, image: np.ndarray) -> np.ndarray:
  """The image as the run's eval pipeline prepares it (resize, crop, normalise): (1, h, w, 3)."""
  from jaxseg.data import pipeline  # pylint: disable=g-import-not-at-top
  from jaxseg.data import registry  # pylint: disable=g-import-not-at-top

  _, options = registry.resolve_options(run.config.data)
  sample = {'image': image}
  if run.info.task == 'classification':
    sample['label'] = np.int32(0)
  else:
    sample['density'] = np.zeros(image.shape[:2], np.float32)
    sample['fixations'] = np.zeros(image.shape[:2], np.uint8)
  prepared = pipeline.process_sample(
    sample, task=run.info.task, options=options, ignore_label=run.info.ignore_label, rng=None
  )
  return prepared['image'][None]


def predict_saliency(run: InferenceRun, image: np.ndarray) -> np.ndarray:
  """The saliency map ``(H, W)`` in ``[0, 1]`` (divided by its maximum) at the input's size."""
  from jaxseg import ops  # pylint: disable=g-import-not-at-top

  output, _ = run.model.apply(run.variables, _eval_prepared(run, image), train=False)
  resized = ops.resize(np.asarray(output, np.float32), image.shape[:2])
  saliency = np.maximum(np.asarray(resized)[0, ..., 0], 0.0)
  peak = saliency.max()
  return saliency / peak if peak > 0 else saliency


def write_saliency(
  output_dir: str, stem: str, image: np.ndarray, saliency: np.ndarray
) -> list[str]:
  """Writes the grey map and the heatmap overlay; returns the paths."""
  paths = [os.path.join(output_dir, f'{stem}.png'), os.path.join(output_dir, f'{stem}_heatmap.png')]
  viz.save_png(np.round(saliency * 255).astype(np.uint8), paths[0])
  viz.save_png(viz.heatmap_overlay(image, saliency), paths[1])
  return paths


def predict_classification(run: InferenceRun, image: np.ndarray) -> np.ndarray:
  """Class probabilities ``(K,)`` (softmax of the logits)."""
  logits, _ = run.model.apply(run.variables, _eval_prepared(run, image), train=False)
  logits = np.asarray(logits, np.float64)[0]
  logits = logits - logits.max()
  return np.exp(logits) / np.exp(logits).sum()


class ClassificationCsv:
  """``predictions.csv``: file, then (class, probability) for the top-5 classes."""

  def __init__(self, path: str, class_names: Sequence[str], *, top: int = 5):
    self.path = path
    self._names = tuple(class_names)
    self._top = top
    self._file = open(path, 'w', newline='')
    self._writer = csv.writer(self._file)
    header = ['file']
    for rank in range(1, top + 1):
      header += [f'class_{rank}', f'probability_{rank}']
    self._writer.writerow(header)

  def add(self, file: str, probabilities: np.ndarray) -> None:
    order = np.argsort(-probabilities)[: self._top]
    row = [file]
    for index in order:
      name = self._names[index] if index < len(self._names) else f'class_{index}'
      row += [name, f'{probabilities[index]:.6f}']
    self._writer.writerow(row)

  def close(self) -> None:
    self._file.close()
