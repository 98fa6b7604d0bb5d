"""tfds ``GeneratorBasedBuilder``s of jaxseg: built as ArrayRecord with Pillow, never TensorFlow.

Modules: ``classification`` (digits; TensorFlow-free mnist, cifar, imagenet2012), ``synthetic``
(shapes_segmentation, synthetic_saliency), ``voc`` (voc2012_segmentation, voc2012_sbd),
``saliency`` (salicon, mit1003, mit300). They are imported lazily by the registry.
"""
