"""The fields every jaxseg experiment config shares.

Every config under ``experiments/configs`` starts from :func:`get_base_config` and overrides what
its experiment needs, so a misspelt key in a config file or on the command line fails at start
(the dict is locked by ``config_flags.DEFINE_config_file(lock_config=True)``).

This file is not an experiment of its own; it has no ``get_config``.
"""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
  """Returns the shared fields with their defaults.

  Returns:
    A ``ConfigDict`` with ``seed``, ``task``, ``total_steps``, ``batch_size`` (global),
    ``eval_every``, ``checkpoint_every``, ``log_every``, ``keep_checkpoints``, ``best_metric``,
    ``best_mode``, ``write_images``, ``num_images``, ``init_from``, ``init_from_subtree``,
    ``mesh``, ``dtype``, ``optimizer``,
    ``schedule``, ``model``, ``data``, ``loss``.
  """
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = 'classification'  # 'classification' | 'segmentation' | 'saliency'
  config.total_steps = 1000
  config.batch_size = 32  # global, over all devices and hosts
  config.eval_every = 500
  config.eval_steps = -1  # -1: the whole validation split
  config.checkpoint_every = 500
  config.log_every = 50
  config.keep_checkpoints = 3
  config.best_metric = 'accuracy'
  config.best_mode = 'max'  # 'max' | 'min'
  config.dtype = 'float32'  # compute dtype: 'float32' | 'bfloat16'
  config.write_images = True
  config.num_images = 4  # example images per PNG written at each evaluation
  # Start from other weights (only when the workdir has no checkpoint of its own): a jaxseg
  # workdir / checkpoint directory (matching params and batch_stats are restored), or a
  # torchvision state dict (.safetensors/.npz) imported into `init_from_subtree` ('': the model
  # itself if it is a torchvision architecture, else its 'backbone'). See docs/training.md.
  config.init_from = ''
  config.init_from_subtree = ''

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # -1: every device not used by other axes
  config.mesh.model = 1
  config.mesh.fsdp_min_size = -1  # shard parameters with more elements than this; -1: replicate

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'sgd'  # 'sgd' | 'adam' | 'adamw'
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = False
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.weight_decay = 0.0
  config.optimizer.weight_decay_mask = 'kernels'  # 'all' | 'kernels' (no decay on biases, norms)
  # Per-parameter learning-rate multipliers: a tuple of (path regex, multiplier), first match wins.
  config.optimizer.lr_multipliers = ()
  config.optimizer.grad_clip_norm = 0.0  # 0: no clipping
  config.optimizer.accumulate_steps = 1

  config.schedule = ml_collections.ConfigDict()
  config.schedule.name = 'constant'  # constant | step | poly | warmup_cosine | plateau
  config.schedule.warmup_steps = 0
  config.schedule.decay_factor = 0.1  # step and plateau
  config.schedule.boundaries = ()  # step: steps at which the rate is multiplied by decay_factor
  config.schedule.power = 0.9  # poly
  config.schedule.end_value = 0.0  # poly, warmup_cosine
  config.schedule.patience = 5  # plateau: evaluations without improvement
  config.schedule.min_delta = 1e-4  # plateau: an improvement must exceed this (absolute, > 0)

  config.model = ml_collections.ConfigDict()
  config.model.name = ''

  config.data = ml_collections.ConfigDict()
  config.data.name = ''
  config.data.data_dir = ''  # '' -> $JAXSEG_DATA_DIR or ~/jaxseg_data
  config.data.manual_dir = ''  # downloaded archives/folders; '' -> <data_dir>/downloads/manual
  config.data.num_workers = 0
  config.data.prefetch = 2

  # Every loss option of every task (jaxseg.train.tasks.LOSS_DEFAULTS); a task reads its own and
  # rejects another task's set away from its default. The ignore label, class names, palette and
  # normalisation are the dataset's (DatasetInfo), never set here.
  config.loss = ml_collections.ConfigDict()
  config.loss.label_smoothing = 0.0  # classification
  config.loss.top_k = (1, 5)  # classification: the top-k errors reported
  config.loss.aux_weight = 0.3  # classification, segmentation: weight of each auxiliary head
  config.loss.normalize = True  # segmentation: mean over valid pixels (False: per-image sum)
  config.loss.class_weights = ()  # segmentation: () or one weight per class
  config.loss.name = 'euclidean'  # saliency: 'euclidean' | 'bce' | 'kl'
  config.loss.target = 'max'  # saliency: 'max' | 'sum' | 'centered'
  return config
