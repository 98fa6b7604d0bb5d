"""Synthetic images with known targets, deterministic from a seed.

* :func:`shapes_example`: circles, rectangles and triangles of ``num_shape_classes`` classes on a
  textured background, with the class mask (0 = background, ``k`` = shape class ``k``).
* :func:`saliency_example`: a textured background with a few bright objects, the known fixation
  density (a mixture of Gaussians on the objects plus a centre bias) and fixations sampled from it.

The dataset builders (``jaxseg.data.builders.synthetic``) store these through the same tfds path
as the real datasets. Each example is drawn from its own generator, seeded by ``(seed, split,
index)``, so an example never depends on how many were drawn before it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
  'SHAPE_KINDS',
  'example_rng',
  'saliency_example',
  'shapes_example',
  'textured_background',
]

SHAPE_KINDS = ('circle', 'rectangle', 'triangle')
# Well separated hues for the shape classes (RGB); class k uses _CLASS_COLOURS[(k-1) % len].
_CLASS_COLOURS = np.array(
  [
    [220, 40, 40],
    [40, 200, 60],
    [50, 80, 230],
    [230, 200, 40],
    [200, 60, 210],
    [40, 210, 210],
    [240, 130, 30],
    [130, 90, 40],
  ],
  np.float32,
)


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator of example ``index`` of ``split``: independent of every other example."""
  split_id = int.from_bytes(split.encode(), 'little') % (2**32)
  return np.random.default_rng([int(seed), split_id, int(index)])


def textured_background(
  rng: np.random.Generator, size: int, *, base_range=(60, 160), noise: float = 12.0
) -> np.ndarray:
  """A dull random colour with low-frequency blotches and pixel noise, float32 ``(size, size, 3)``.

  The blotches are a coarse random grid upsampled bilinearly, so the background is textured but
  never forms edges as sharp as the shapes'.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  base = rng.uniform(*base_range, size=3).astype(np.float32)
  coarse = rng.normal(0.0, 25.0, size=(4, 4, 3)).astype(np.float32)
  blotches = np.stack(
    [
      np.asarray(Image.fromarray(coarse[..., c]).resize((size, size), Image.BILINEAR))
      for c in range(3)
    ],
    -1,
  )
  return base + blotches + rng.normal(0.0, noise, size=(size, size, 3)).astype(np.float32)


def _shape_mask(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
  lo, hi = 0.12 * size, 0.3 * size
  cy, cx = rng.uniform(lo, size - lo, size=2)
  if kind == 'circle':
    r = rng.uniform(lo * 0.8, hi * 0.8)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
  if kind == 'rectangle':
    hh, hw = rng.uniform(lo * 0.7, hi * 0.8, size=2)
    return (np.abs(yy - cy) <= hh) & (np.abs(xx - cx) <= hw)
  # Triangle: three vertices at random angles around the centre, filled by half-plane tests.
  r = rng.uniform(lo, hi)
  angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, 3)
  vy, vx = cy + r * np.sin(angles), cx + r * np.cos(angles)
  inside = np.ones((size, size), bool)
  sign = np.sign((vx[1] - vx[0]) * (vy[2] - vy[0]) - (vy[1] - vy[0]) * (vx[2] - vx[0]))
  for i in range(3):
    j = (i + 1) % 3
    cross = (vx[j] - vx[i]) * (yy - vy[i]) - (vy[j] - vy[i]) * (xx - vx[i])
    inside &= sign * cross >= 0
  return inside


def shapes_example(
  rng: np.random.Generator, *, image_size: int = 64, num_shape_classes: int = 3, max_shapes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
  """One image of 1 to ``max_shapes`` shapes and its class mask.

  Class ``k`` in ``1..num_shape_classes`` is drawn as shape kind ``SHAPE_KINDS[(k-1) % 3]`` in
  colour ``k`` with per-shape colour noise and per-pixel noise; later shapes occlude earlier ones
  and the mask records what is visible.

  Args:
    rng: the example's generator (see :func:`example_rng`).
    image_size: side of the square image.
    num_shape_classes: number of foreground classes ``K`` (the dataset has ``K + 1`` classes).
    max_shapes: the most shapes in one image.

  Returns:
    ``(image, mask)``: uint8 ``(S, S, 3)`` and uint8 ``(S, S)`` with values in ``[0, K]``.
  """
  image = textured_background(rng, image_size)
  mask = np.zeros((image_size, image_size), np.uint8)
  for _ in range(int(rng.integers(1, max_shapes + 1))):
    k = int(rng.integers(1, num_shape_classes + 1))
    region = _shape_mask(SHAPE_KINDS[(k - 1) % len(SHAPE_KINDS)], rng, image_size)
    colour = _CLASS_COLOURS[(k - 1) % len(_CLASS_COLOURS)] + rng.normal(0, 15, 3)
    texture = rng.normal(0, 10, size=(image_size, image_size, 3))
    image[region] = (colour + texture)[region]
    mask[region] = k
  return np.clip(image, 0, 255).astype(np.uint8), mask


def _gaussian(size: int, cy: float, cx: float, sigma: float) -> np.ndarray:
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
  return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma * sigma))


def saliency_example(
  rng: np.random.Generator,
  *,
  image_size: int = 64,
  max_objects: int = 3,
  num_fixations: int = 40,
  center_bias: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """An image with salient objects, its fixation density and fixations sampled from it.

  The density is ``(1 - c) * sum_i w_i N(mu_i, s_i) / Z + c * N(centre, S / 4)`` over the objects
  ``i`` (bright saturated discs with weight ``w_i`` growing with their contrast) plus a centre bias
  of weight ``c = center_bias``; it is normalised to sum to 1. Fixations are ``num_fixations``
  pixels drawn from it.

  Args:
    rng: the example's generator.
    image_size: side of the square image.
    max_objects: the most salient objects (at least 1).
    num_fixations: fixations drawn from the density.
    center_bias: weight of the centre Gaussian, in ``[0, 1)``.

  Returns:
    ``(image, density, fixations)``: uint8 ``(S, S, 3)``, float64 ``(S, S)`` summing to 1, uint8
    ``(S, S)`` binary.
  """
  size = image_size
  image = textured_background(rng, size, base_range=(70, 130), noise=8.0)
  gray = image.mean(-1, keepdims=True)
  image = gray + 0.3 * (image - gray)  # a desaturated background makes colour salient
  objects = np.zeros((size, size), np.float64)
  for _ in range(int(rng.integers(1, max_objects + 1))):
    cy, cx = rng.uniform(0.15 * size, 0.85 * size, size=2)
    radius = rng.uniform(0.05, 0.12) * size
    strength = rng.uniform(0.5, 1.0)
    colour = _CLASS_COLOURS[int(rng.integers(len(_CLASS_COLOURS)))]
    disc = _gaussian(size, cy, cx, radius) > 0.5
    image[disc] = (1 - strength) * image[disc] + strength * colour
    objects += strength * _gaussian(size, cy, cx, 1.2 * radius)
  centre = _gaussian(size, size / 2, size / 2, size / 4)
  density = (1 - center_bias) * objects / objects.sum() + center_bias * centre / centre.sum()
  density /= density.sum()
  flat = rng.choice(size * size, size=num_fixations, p=density.ravel())
  fixations = np.zeros(size * size, np.uint8)
  fixations[flat] = 1
  return (np.clip(image, 0, 255).astype(np.uint8), density, fixations.reshape(size, size))
