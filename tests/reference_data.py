"""Where the optional real samples live: ``shared/reference-data`` beside the checkout.

Tests that read them skip when the folder is absent (a user's fresh clone has no ``../shared``).
The samples are never copied into the project.
"""

import os

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CANDIDATES = (
  os.path.join(_REPO, '..', 'shared', 'reference-data'),
  os.path.join(_REPO, 'shared', 'reference-data'),
)

# The first candidate that exists, else the first (so paths below it simply do not exist).
ROOT = os.path.normpath(next((c for c in _CANDIDATES if os.path.isdir(c)), _CANDIDATES[0]))


def path(name: str) -> str:
  """The absolute path of ``name`` (e.g. ``'mit1003-i210'``) under the reference data."""
  return os.path.join(ROOT, name)


def root_or_none() -> str | None:
  """ROOT when the reference data is present, else None."""
  return ROOT if os.path.isdir(ROOT) else None
