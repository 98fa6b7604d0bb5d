"""benchmarks/gpu/run.sh: its refusals, and a whole run with a stand-in wheel and run_all.py."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SH = os.path.join(REPO, 'benchmarks', 'gpu', 'run.sh')
PYTHON_VERSION = '%d.%d' % sys.version_info[:2]

# Stands in for benchmarks/run_all.py: writes what it was given and what it could import.
STAND_IN_RUN_ALL = """
import json, sys
import carried_marker
out = [a.split('=', 1)[1] for a in sys.argv[1:] if a.startswith('--out=')][0]
json.dump({'argv': sys.argv[1:], 'marker': carried_marker.VALUE}, open(out, 'w'))
sys.exit(int(carried_marker.EXIT_STATUS))
"""


def _checkout(tmp_path, python_version=PYTHON_VERSION):
  """A directory laid out like the repository root, with ``.whl/python_version``."""
  root = tmp_path / 'repo'
  (root / 'benchmarks' / 'gpu').mkdir(parents=True)
  shutil.copy(RUN_SH, root / 'benchmarks' / 'gpu' / 'run.sh')
  (root / 'benchmarks' / 'run_all.py').write_text(STAND_IN_RUN_ALL)
  if python_version is not None:
    (root / '.whl' / 'sdist').mkdir(parents=True)
    (root / '.whl' / 'python_version').write_text(python_version + '\n')
  return root


def _run(root, *args, out=None):
  # python3 on PATH is this interpreter, as the image's python3 is there.
  bin_dir = root.parent / 'bin'
  bin_dir.mkdir(exist_ok=True)
  wrapper = bin_dir / 'python3'
  if not wrapper.exists():  # a script, not a link: a linked venv python loses its venv
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
  env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  env.pop('PYTHONPATH', None)
  env['JAXSEG_GPU_SCRATCH'] = str(root.parent / 'scratch')
  if out is not None:
    env['OUT'] = str(out)
  return subprocess.run(
    ['bash', 'benchmarks/gpu/run.sh', *args],
    cwd=root,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )


def test_without_wheels_it_says_how_to_get_them(tmp_path):
  process = _run(_checkout(tmp_path, python_version=None))
  assert process.returncode == 2
  assert '.whl/ is missing' in process.stderr and 'fetch_wheels.sh' in process.stderr


def test_wheels_for_another_python_are_refused(tmp_path):
  process = _run(_checkout(tmp_path, python_version='2.7'))
  assert process.returncode == 2
  assert f'wheels for Python 2.7, this python3 is {PYTHON_VERSION}' in process.stderr
  assert f'fetch_wheels.sh {PYTHON_VERSION}' in process.stderr


def _marker_wheel(wheel_dir, exit_status):
  """Writes a one-module wheel ``carried_marker`` into ``wheel_dir`` (PEP 427's layout, by hand:
  building one needs setuptools with ``wheel``, which a fresh venv of Python 3.11 lacks)."""
  files = {
    'carried_marker.py': f'VALUE = "carried"\nEXIT_STATUS = {exit_status}\n',
    'carried_marker-1.0.dist-info/METADATA': (
      'Metadata-Version: 2.1\nName: carried-marker\nVersion: 1.0\n'
    ),
    'carried_marker-1.0.dist-info/WHEEL': (
      'Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
    ),
  }
  record = []
  for name, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=')
    record.append(f'{name},sha256={digest.decode()},{len(text.encode())}')
  files['carried_marker-1.0.dist-info/RECORD'] = (
    '\n'.join(record + ['carried_marker-1.0.dist-info/RECORD,,']) + '\n'
  )
  with zipfile.ZipFile(wheel_dir / 'carried_marker-1.0-py3-none-any.whl', 'w') as wheel:
    for name, text in files.items():
      wheel.writestr(name, text)


@pytest.mark.parametrize('exit_status', [0, 1])
def test_installs_the_wheels_and_passes_arguments_and_status_on(tmp_path, exit_status):
  root = _checkout(tmp_path)
  _marker_wheel(root / '.whl', exit_status)
  out = tmp_path / 'out'
  process = _run(root, '--only=metrics', out=out)
  assert process.returncode == exit_status, process.stdout + process.stderr
  (result,) = out.glob('*.json')  # named after the GPU nvidia-smi finds, cpu.json without one
  report = json.loads(result.read_text())
  assert report['marker'] == 'carried'  # the carried wheel was importable
  assert report['argv'] == [f'--out={result}', '--budget_s=480', '--only=metrics']
  assert (out / 'run_all.log').exists() and (out / 'sdist_builds.log').exists()
