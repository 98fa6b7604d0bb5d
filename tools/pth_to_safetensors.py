"""Converts a PyTorch ``.pth`` state dict into ``.safetensors`` (run where PyTorch is installed).

jaxseg never unpickles checkpoints; convert once, then import with
``jaxseg.models.import_torchvision``::

  python tools/pth_to_safetensors.py resnet50-11ad3fa6.pth resnet50.safetensors

The file may hold a bare state dict or a dict with a ``'state_dict'`` or ``'model'`` entry (as
training scripts save). It is read with ``torch.load(weights_only=True)``, so no code in it runs.
"""

import argparse
import sys


def convert(source: str, destination: str) -> int:
  """Writes the tensors of the state dict in `source` to `destination`; returns their count."""
  import torch  # pylint: disable=g-import-not-at-top
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top

  checkpoint = torch.load(source, map_location='cpu', weights_only=True)
  for key in ('state_dict', 'model'):
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
      checkpoint = checkpoint[key]
  if not isinstance(checkpoint, dict):
    raise ValueError(f'{source}: expected a state dict, got {type(checkpoint).__name__}')
  tensors = {
    name: value.detach().cpu().contiguous().numpy()
    for name, value in checkpoint.items()
    if isinstance(value, torch.Tensor)
  }
  save_file(tensors, destination)
  return len(tensors)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('source', help='a .pth / .pt file holding a state dict')
  parser.add_argument('destination', help='the .safetensors file to write')
  args = parser.parse_args(argv)
  count = convert(args.source, args.destination)
  print(f'wrote {count} tensors to {args.destination}', file=sys.stderr)


if __name__ == '__main__':
  main()
