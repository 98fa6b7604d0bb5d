"""Colour conversions the classic methods share: luminance and CIE L*a*b*, as scikit-image.

Integer images are first scaled to [0, 1] by their dtype's maximum (`skimage.img_as_float`), so
a `uint8` image and the same image divided by 255 convert identically. Computation is float32
(scikit-image works in float64; the two agree to float32 rounding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.classic import _inputs

# skimage.color.rgb2gray's weights (those of ITU-R BT.709 luma, which scikit-image's docstring
# attributes to its own table; the 601-2 weights 0.299/0.587/0.114 are OpenCV's).
_GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
# sRGB (linear) -> XYZ, the matrix skimage.color uses.
_XYZ_FROM_RGB = np.array(
  [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
  np.float32,
)
# The D65 white under the 2-degree observer (skimage's default illuminant).
_D65 = (0.95047, 1.0, 1.08883)


def _colour(image, name='image'):
  image = _inputs.check_image(image, name, ranks=(1, 2, 3, 4, 5), layout='(..., 3)', channels=(3,))
  if image.shape[-1] != 3:
    raise ValueError(
      f'{name} must have 3 channels (RGB) in its last axis, got shape {tuple(image.shape)}.'
    )
  return _inputs.to_float(image)


def rgb_to_gray(image: jax.Array) -> jax.Array:
  r"""Luminance of an RGB image, as `skimage.color.rgb2gray`.

  .. math::
    Y = 0.2125 R + 0.7154 G + 0.0721 B

  on values in [0, 1] (integer images are divided by their dtype's maximum first).

  Args:
    image: RGB image(s), shape `(..., H, W, 3)` (HWC or NHWC), any real dtype.

  Returns:
    Luminance, shape `(..., H, W)`, float32 in [0, 1] for images in range.

  Example:
    >>> gray = rgb_to_gray(jnp.array([[[255, 255, 255], [255, 0, 0]]], jnp.uint8))
    >>> [round(float(v), 4) for v in gray[0]]  # white, red
    [1.0, 0.2125]
  """
  rgb = _colour(image)
  weights = jnp.asarray(_GRAY_WEIGHTS, rgb.dtype)
  # A weighted sum (not a matmul) keeps full float32 precision on every backend.
  return rgb[..., 0] * weights[0] + rgb[..., 1] * weights[1] + rgb[..., 2] * weights[2]


def rgb_to_lab(image: jax.Array) -> jax.Array:
  r"""CIE L*a*b* of an sRGB image (D65 white, 2-degree observer), as `skimage.color.rgb2lab`.

  sRGB is linearised (:math:`c \le 0.04045`: :math:`c / 12.92`, else
  :math:`((c + 0.055) / 1.055)^{2.4}`), mapped to XYZ by skimage's matrix, divided by the D65
  white :math:`(0.95047, 1, 1.08883)`, then

  .. math::
    L^* = 116 f(Y) - 16,\quad a^* = 500 (f(X) - f(Y)),\quad b^* = 200 (f(Y) - f(Z)),

  with :math:`f(t) = t^{1/3}` above 0.008856 and :math:`7.787 t + 16/116` below.

  Args:
    image: sRGB image(s), shape `(..., H, W, 3)` (HWC or NHWC), values in [0, 1] or an integer
      dtype.

  Returns:
    `(..., H, W, 3)` float32: L* in [0, 100], a* and b* roughly in [-128, 127].

  Example:
    >>> lab = rgb_to_lab(jnp.array([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]))
    >>> [[round(float(v)) for v in pixel] for pixel in lab[0]]  # white, red
    [[100, 0, 0], [53, 80, 67]]
  """
  rgb = _colour(image)
  linear = jnp.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  xyz = jnp.einsum(
    '...c,dc->...d', linear, jnp.asarray(_XYZ_FROM_RGB), precision=lax.Precision.HIGHEST
  )
  t = xyz / jnp.asarray(_D65, xyz.dtype)
  f = jnp.where(t > 0.008856, jnp.cbrt(t), 7.787 * t + 16.0 / 116.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)
