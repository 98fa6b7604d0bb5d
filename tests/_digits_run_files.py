"""Config and sweep files for the tests that launch the binaries on LeNet-5 and digits.

Not a test module. The subprocess tests (sweeps, signals, populations, several processes) write
a config file that a child process loads with ``--config=FILE``; one writer here keeps those
files alike, and builds the digits dataset once in the parent so children only read it.
"""

import os
import pathlib
import textwrap
from typing import Any, Mapping

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_digits(data_dir: pathlib.Path) -> Any:
  """Builds the digits dataset under ``data_dir`` (ArrayRecord) and returns its DatasetInfo."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxseg import data  # pylint: disable=g-import-not-at-top

  return data.dataset_info(ml_collections.ConfigDict({'name': 'digits', 'data_dir': str(data_dir)}))


def write_config(
  path: pathlib.Path, data_dir: pathlib.Path, fields: Mapping[str, Any], *, base: str = 'lenet5'
) -> pathlib.Path:
  """Writes a config file: ``base`` with ``data.data_dir`` and each dotted field set.

  Args:
    path: the file to write.
    data_dir: where the digits dataset is (see ``build_digits``).
    fields: dotted config field -> value (``repr`` must round-trip it), in order.
    base: ``'lenet5'`` for ``experiments/configs/lenet5_digits.py``, or ``'base'`` for the bare
      base config with the model and dataset named (its optimizer and schedule defaults).

  Returns:
    ``path``.
  """
  if base == 'lenet5':
    head = 'from experiments.configs import lenet5_digits as source\n'
    make = 'config = source.get_config()'
  elif base == 'base':
    head = 'from experiments.configs import base as source\n'
    make = "config = source.get_base_config()\n  config.model.name = 'lenet5'\n"
    make += "  config.data.name = 'digits'"
  else:
    raise ValueError(f"base must be 'lenet5' or 'base', got {base!r}")
  lines = [f'config.data.data_dir = {str(data_dir)!r}']
  lines += [f'config.{name} = {value!r}' for name, value in fields.items()]
  body = '\n'.join(f'  {line}' for line in lines)
  path.write_text(f'{head}\n\ndef get_config():\n  {make}\n{body}\n  return config\n')
  return path


def write_sweep(path: pathlib.Path, config_path: pathlib.Path, trials: str) -> pathlib.Path:
  """Writes a sweep file over ``config_path``; ``trials`` is a Python expression using ``sweep``.

  Example: ``write_sweep(p, c, "sweep.product({'optimizer.learning_rate': [0.01, 0.1]})")``.
  """
  path.write_text(
    textwrap.dedent(f"""\
      from experiments import sweep


      def get_sweep():
        return sweep.Sweep(base_config={str(config_path)!r}, trials={trials})
      """)
  )
  return path
