r"""Learning rate x seed sweep of LeNet-5 on digits (6 trials, each about a minute on a CPU).

Command::

  python -m experiments.sweep --sweep=experiments/sweeps/lenet5_digits_lr.py \
      --workdir=/tmp/sweep_lenet5_digits

Prints and writes ``/tmp/sweep_lenet5_digits/summary.csv`` (overrides, final and best accuracy).
"""

from experiments import sweep


def get_sweep() -> sweep.Sweep:
  """Returns the sweep: learning rates 0.01, 0.03, 0.1 crossed with seeds 0 and 1."""
  return sweep.Sweep(
    base_config='experiments/configs/lenet5_digits.py',
    trials=sweep.product({'optimizer.learning_rate': [0.01, 0.03, 0.1]}, {'seed': [0, 1]}),
  )
