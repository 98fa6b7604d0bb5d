"""``config.init_from``: start a run from another run's weights or from torchvision's.

Two kinds of source:

* **A jaxseg run**: its workdir, its ``checkpoints/`` directory (the newest step is used) or one
  step directory ``checkpoints/<step>``. Every ``params`` and ``batch_stats`` entry whose path and
  shape match the new model's is restored; the rest keep their fresh initialisation. FCN-16s from
  FCN-32s: the backbone, fc6, fc7 and ``score_fr`` are restored, the new ``score_pool4`` stays
  zero. Only the weights are taken: step, optimizer state and data position start afresh.
* **A torchvision state dict** (``.safetensors`` or ``.npz``, see ``tools/pth_to_safetensors.py``):
  imported with :func:`jaxseg.models.weights.import_torchvision` into the model itself when it is
  a torchvision architecture (ResNet, VGG, AlexNet/GoogLeNet ``torchvision_compatible``), or into
  the submodule named by ``config.init_from_subtree`` (``'backbone'`` for FCN and DeepLab, found
  automatically when the model has a ``backbone`` submodule). Tensors the subtree has no place for
  (the classifier of an ImageNet checkpoint) are reported as unused.

Both end in :func:`merge_variables`, which reports what was restored, what is new and what was
skipped for a shape mismatch; :func:`format_report` turns that into the table the loop logs.
"""

import dataclasses
import os
from typing import Any, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

COLLECTIONS = ('params', 'batch_stats')
TORCH_SUFFIXES = ('.safetensors', '.npz')


@dataclasses.dataclass(frozen=True)
class Entry:
  """One variable of the new model: ``status`` is ``'restored'``, ``'new'`` or ``'skipped'``."""

  path: str
  status: str
  shape: tuple[int, ...]
  source_shape: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Report:
  """What :func:`merge_variables` did, entry by entry, plus the source's unused entries."""

  source: str
  entries: tuple[Entry, ...]
  unused: tuple[str, ...]

  def count(self, status: str) -> int:
    return sum(e.status == status for e in self.entries)


def _flatten(variables: Mapping[str, Any]) -> dict[str, Any]:
  flat = {}
  for collection in COLLECTIONS:
    tree = variables.get(collection) or {}
    for path, leaf in flax.traverse_util.flatten_dict(dict(tree)).items():
      flat['/'.join((collection, *path))] = leaf
  return flat


def merge_variables(
  fresh: Mapping[str, Any], source: Mapping[str, Any], *, source_name: str = ''
) -> tuple[dict[str, Any], Report]:
  """Takes every ``params``/``batch_stats`` entry of ``source`` whose path and shape match.

  Args:
    fresh: the new model's variables ``{'params': ..., 'batch_stats': ...}`` (arrays with
      ``shape`` and ``dtype``); entries that stay new are passed through as the same objects.
    source: variables of the same structure from another run or an import (NumPy or jax arrays).
    source_name: where ``source`` came from, for the report and errors.

  Returns:
    ``(merged, report)``: ``merged`` has ``fresh``'s structure, shapes and dtypes, with the
    matching entries taken from ``source`` (as NumPy arrays); ``report`` lists every entry of
    ``fresh`` as
    ``restored``, ``new`` (absent from the source) or ``skipped`` (shape mismatch), and the
    source's entries the model has no place for.

  Raises:
    ValueError: if no entry matches (the wrong run, or a different architecture).

  Example:
    >>> merged, report = merge_variables({'params': {'w': np.zeros(2), 'b': np.zeros(3)}},
    ...                                  {'params': {'w': np.ones(2), 'b': np.ones(4)}})
    >>> [(e.path, e.status) for e in report.entries]
    [('params/w', 'restored'), ('params/b', 'skipped')]
  """
  fresh_flat, source_flat = _flatten(fresh), _flatten(source)
  merged, entries = {}, []
  for path, leaf in fresh_flat.items():
    shape = tuple(np.shape(leaf))
    if path not in source_flat:
      entries.append(Entry(path, 'new', shape))
      merged[path] = leaf
      continue
    source_shape = tuple(np.shape(source_flat[path]))
    if source_shape != shape:
      entries.append(Entry(path, 'skipped', shape, source_shape))
      merged[path] = leaf
    else:
      entries.append(Entry(path, 'restored', shape, source_shape))
      merged[path] = np.asarray(source_flat[path]).astype(leaf.dtype)
  report = Report(
    source_name, tuple(entries), tuple(sorted(p for p in source_flat if p not in fresh_flat))
  )
  if not report.count('restored'):
    some = ', '.join(sorted(source_flat)[:5])
    raise ValueError(
      f'init_from={source_name!r}: no parameter or batch statistic matches the model by path '
      f'and shape ({report.count("skipped")} same path but other shape; the source has '
      f'{len(source_flat)} entries, e.g. {some or "none"}). Is it a run of the same '
      'architecture and width?'
    )
  out = {}
  for collection in COLLECTIONS:
    prefix = collection + '/'
    flat = {
      tuple(p[len(prefix) :].split('/')): v for p, v in merged.items() if p.startswith(prefix)
    }
    out[collection] = flax.traverse_util.unflatten_dict(flat) if flat else {}
  return out, report


def format_report(report: Report) -> str:
  """The table the loop logs: one row per module and status, shape mismatches one by one.

  Example output::

    init_from /tmp/fcn32s_voc: 32 restored, 2 new, 0 skipped (shape mismatch), 0 unused
    status    entries  module
    restored        2  params/backbone/conv1_1
    ...
    new             2  params/score_pool4
  """
  lines = [
    f'init_from {report.source}: {report.count("restored")} restored, '
    f'{report.count("new")} new, {report.count("skipped")} skipped (shape mismatch), '
    f'{len(report.unused)} unused'
  ]
  rows: list[list[Any]] = []
  for entry in report.entries:
    module = entry.path.rsplit('/', 1)[0]
    if entry.status == 'skipped':
      rows.append(
        [entry.status, 1, f'{entry.path}  source {entry.source_shape} -> model {entry.shape}']
      )
    elif rows and rows[-1][0] == entry.status and rows[-1][2] == _group(module):
      rows[-1][1] += 1
    else:
      rows.append([entry.status, 1, _group(module)])
  lines.append(f'{"status":<9} {"entries":>7}  module')
  lines += [f'{status:<9} {count:>7}  {what}' for status, count, what in rows]
  if report.unused:
    shown = ', '.join(report.unused[:8]) + (' ...' if len(report.unused) > 8 else '')
    lines.append(f'unused in the source ({len(report.unused)}): {shown}')
  return '\n'.join(lines)


def _group(module_path: str) -> str:
  """Collection plus the first two module names: ``params/backbone/layer1_0``."""
  return '/'.join(module_path.split('/')[:3])


# ---- sources ----------------------------------------------------------------------------------


def _is_step_dir(path: str) -> bool:
  return (
    os.path.isdir(os.path.join(path, 'state'))
    and os.path.basename(os.path.normpath(path)).isdigit()
  )


def _steps(checkpoint_dir: str) -> list[int]:
  return sorted(
    int(name)
    for name in os.listdir(checkpoint_dir)
    if name.isdigit() and os.path.isdir(os.path.join(checkpoint_dir, name, 'state'))
  )


def checkpoint_state_dir(path: str) -> str:
  """Resolves a workdir, a ``checkpoints/`` directory or a step directory to ``<step>/state``.

  Raises:
    FileNotFoundError: the path does not exist or holds no complete checkpoint.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'init_from={path!r} does not exist (expected a jaxseg workdir, its '
      f'checkpoints/ directory, or a {"/".join(TORCH_SUFFIXES)} file)'
    )
  if _is_step_dir(path):
    return os.path.join(path, 'state')
  for directory in (os.path.join(path, 'checkpoints'), path):
    if os.path.isdir(directory):
      steps = _steps(directory)
      if steps:
        return os.path.join(directory, str(steps[-1]), 'state')
  raise FileNotFoundError(
    f'init_from={path!r} holds no complete checkpoint (looked for '
    f'<step>/state in {os.path.join(path, "checkpoints")} and in {path})'
  )


def load_checkpoint_variables(path: str) -> dict[str, Any]:
  """Reads ``params`` and ``batch_stats`` of a jaxseg checkpoint as host NumPy arrays.

  Only those two collections are read (the optimizer state is not), on every process, whatever
  mesh wrote them.

  Args:
    path: a workdir, its ``checkpoints/`` directory or a step directory.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` of NumPy arrays.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  state_dir = checkpoint_state_dir(path)
  checkpointer = ocp.PyTreeCheckpointer()
  try:
    metadata = checkpointer.metadata(state_dir)
    tree = getattr(metadata, 'item_metadata', metadata)
    wanted = {c: tree[c] for c in COLLECTIONS if c in tree and tree[c]}
    if 'params' not in wanted:
      raise ValueError(f'init_from={path!r}: the checkpoint at {state_dir} has no params')
    target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), wanted)
    restore_args = jax.tree.map(lambda m: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
    restored = checkpointer.restore(
      state_dir,
      args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True),
    )
  finally:
    # An unclosed checkpointer's thread pool prints "cannot schedule new futures after
    # interpreter shutdown" at exit when an error follows (issue 14, item 3).
    checkpointer.close()
  return {c: restored.get(c, {}) for c in COLLECTIONS}


def find_submodule(model: nn.Module, path: str, example: jax.Array) -> nn.Module:
  """Returns the unbound submodule of ``model`` at ``path`` (see ``weights.find_submodule``).

  Raises:
    ValueError: no submodule at ``path``, naming ``config.init_from_subtree``.
  """
  from jaxseg.models import weights  # pylint: disable=g-import-not-at-top

  try:
    return weights.find_submodule(model, path, example)
  except ValueError:
    raise ValueError(
      f'init_from_subtree={path!r}: {type(model).__name__} has no submodule there'
    ) from None


def load_torchvision_variables(
  model: nn.Module, path: str, *, subtree: str, input_shape: tuple[int, int, int]
) -> tuple[dict[str, Any], tuple[str, ...]]:
  """Imports a torchvision state dict into ``model`` or its submodule ``subtree``.

  Args:
    model: the model being trained.
    path: a ``.safetensors`` or ``.npz`` state dict with torchvision's names.
    subtree: ``''``: automatic (the model itself when it is a torchvision architecture, else its
      ``backbone`` submodule); or a ``/``-separated submodule path.
    input_shape: ``(H, W, C)`` the model is trained on (for tracing shapes only).

  Returns:
    ``(variables, unused)``: ``{'params': ..., 'batch_stats': ...}`` placed at ``subtree``'s
    path in ``model``'s tree, and the state dict's tensor names that found no place.

  Raises:
    FileNotFoundError, TypeError, ValueError: with what is missing or does not fit.
  """
  from jaxseg.models import weights  # pylint: disable=g-import-not-at-top

  if not os.path.isfile(path):
    raise FileNotFoundError(f'init_from={path!r} does not exist')
  example = jnp.zeros((1, *input_shape), jnp.float32)
  if not subtree:
    supported = tuple(weights._ARCHITECTURES)  # pylint: disable=protected-access
    if isinstance(model, supported):
      subtree = ''
    else:
      abstract = jax.eval_shape(
        lambda x: model.init(
          {'params': jax.random.key(0), 'dropout': jax.random.key(0)}, x, train=False
        ),
        example,
      )
      if 'backbone' not in abstract.get('params', {}):
        raise ValueError(
          f'init_from={path!r}: {type(model).__name__} is not a torchvision architecture and '
          'has no "backbone" submodule; set config.init_from_subtree to the submodule path '
          'the weights belong to'
        )
      subtree = 'backbone'
  module = find_submodule(model, subtree, example) if subtree else model
  layout = weights.torchvision_layout(module, input_shape=(1, *input_shape))
  state = weights.load_state_dict(path)
  used = {name: value for name, value in state.items() if name in layout}
  unused = tuple(
    sorted(
      name for name in state if name not in layout and not name.endswith('num_batches_tracked')
    )
  )
  if not used:
    raise ValueError(
      f'init_from={path!r}: none of its {len(state)} tensors has a torchvision '
      f'name of {type(module).__name__} (e.g. {next(iter(layout), "")!r})'
    )
  imported = weights.import_torchvision(module, used, input_shape=(1, *input_shape))
  prefix = tuple(p for p in subtree.split('/') if p)
  variables = {}
  for collection in COLLECTIONS:
    tree = imported.get(collection, {})
    for name in reversed(prefix):
      tree = {name: tree}
    variables[collection] = tree if imported.get(collection) else {}
  return variables, unused


def init_variables_from(
  source: str,
  fresh: Mapping[str, Any],
  *,
  model: nn.Module,
  subtree: str = '',
  input_shape: tuple[int, int, int],
) -> tuple[dict[str, Any], Report]:
  """Loads ``source`` (a run or a torchvision file) and merges it into ``fresh``.

  Args:
    source: ``config.init_from``.
    fresh: the freshly initialised ``{'params': ..., 'batch_stats': ...}``.
    model: the model (torchvision import only).
    subtree: ``config.init_from_subtree`` (torchvision import only).
    input_shape: ``(H, W, C)`` of one training image.

  Returns:
    ``(variables, report)`` as :func:`merge_variables`.
  """
  if source.endswith(TORCH_SUFFIXES):
    variables, unused = load_torchvision_variables(
      model, source, subtree=subtree, input_shape=input_shape
    )
  else:
    variables, unused = load_checkpoint_variables(source), ()
  merged, report = merge_variables(fresh, variables, source_name=source)
  return merged, dataclasses.replace(report, unused=tuple(sorted(set(report.unused) | set(unused))))
