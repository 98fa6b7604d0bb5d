"""jaxseg: a JAX research library for convolutional networks and image segmentation.

Layers, with imports flowing one way:
``ops -> nn -> models -> losses / metrics -> data -> train``.
"""

__version__ = "0.1.0"
