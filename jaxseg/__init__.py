"""jaxseg: a JAX research library for convolutional networks and image segmentation.

Three ways in: run an experiment (``python -m experiments.main --config=experiments/configs/
fcn8s_shapes.py --workdir=/tmp/run``), compose the pure functions in your own code, or sweep
configs. The layers, with imports flowing one way (``tests/test_import_direction.py``)::

  ops -> nn -> models -> losses / metrics / crf / classic -> inference / export -> data -> train

* :mod:`jaxseg.ops`: convolutions, pooling, LRN, resizing over ``jax.lax`` (NHWC, HWIO).
* :mod:`jaxseg.nn`: Flax Linen layers on the ops.
* :mod:`jaxseg.models`: LeNet-5 to ResNet, FCN, DeepLab, SalNet; ``get_model(name, **kw)``.
* :mod:`jaxseg.losses`, :mod:`jaxseg.metrics`: pure losses and split-wide metric sums.
* :mod:`jaxseg.crf`, :mod:`jaxseg.classic`: the dense CRF and classic segmentation methods.
* :mod:`jaxseg.inference`: whole-image, sliding-window and multi-scale prediction; the saliency
  evaluator.
* :mod:`jaxseg.data`: tfds builders without TensorFlow, grain pipelines, ``DatasetInfo``.
* :mod:`jaxseg.train`: the task bound to its dataset, the sharded steps, the loop, checkpoints.
* :mod:`jaxseg.viz`: palettes, overlays, heatmaps.

``docs/architecture.md`` draws how a training run flows through them.
"""

__version__ = '0.1.0'
