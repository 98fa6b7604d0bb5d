"""The test-time recipe flags shared by ``experiments.evaluate`` and ``experiments.predict``."""

from absl import flags

from jaxseg.train import evaluation


class RecipeFlags:
  """``--sliding_window``, ``--scales``, ``--flip`` and ``--crf``, and the recipe they give."""

  def __init__(self):
    self.sliding_window = flags.DEFINE_string(
      'sliding_window', '', "'CROP,STRIDE' sliding-window inference."
    )
    self.scales = flags.DEFINE_string('scales', '', "Test-time scales, e.g. '1,0.75,0.5'.")
    self.flip = flags.DEFINE_boolean('flip', False, 'Add horizontally flipped predictions.')
    self.crf = flags.DEFINE_boolean('crf', False, 'Refine segmentation with the dense CRF.')

  def recipe(self) -> evaluation.Recipe:
    """The recipe the flags name (ValueError naming a malformed flag)."""
    return evaluation.Recipe(
      sliding_window=evaluation.parse_sliding_window(self.sliding_window.value),
      scales=evaluation.parse_scales(self.scales.value),
      flip=self.flip.value,
      crf=self.crf.value,
    )


def define_flags() -> RecipeFlags:
  """Defines the recipe flags (call once, at a binary's import)."""
  return RecipeFlags()
