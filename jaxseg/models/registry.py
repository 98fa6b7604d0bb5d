"""A name -> constructor registry for every network in jaxseg.

Model files register their variants at import time::

  register_model('resnet50')(functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), ...))

and experiment configs reach them by name::

  model = get_model(config.model.name, **config.model)   # everything but `name`
"""

import functools
import inspect
import numbers
from typing import Callable

import flax.linen as nn

ModelConstructor = Callable[..., nn.Module]

_MODELS: dict[str, ModelConstructor] = {}


def register_model(name: str) -> Callable[[ModelConstructor], ModelConstructor]:
  """Returns a decorator that registers a model constructor under `name`.

  Args:
    name: the registry key, e.g. ``'resnet50'``. Lower case, unique.

  Returns:
    A function that takes a constructor (a class, a function or a ``functools.partial``
    returning a ``flax.linen.Module``), registers it and returns it: unchanged, except that a
    ``functools.partial`` becomes a function named ``name`` whose docstring is the model class's
    own (with the fixed arguments stated), so ``help(jaxseg.models.fcn8s)`` documents FCN-8s and
    not ``functools.partial``.

  Raises:
    TypeError: `name` is not a non-empty string.
    ValueError: `name` is already registered.

  Example::

    @register_model('tiny')
    def tiny(**kwargs):
      return Tiny(**kwargs)
  """
  if not isinstance(name, str) or not name:
    raise TypeError(f'register_model: name must be a non-empty str, got {name!r}')

  def decorator(constructor: ModelConstructor) -> ModelConstructor:
    if not callable(constructor):
      raise TypeError(
        f'register_model({name!r}): constructor must be callable, got {constructor!r}'
      )
    if name in _MODELS:
      raise ValueError(f'register_model: a model named {name!r} is already registered')
    if isinstance(constructor, functools.partial):
      constructor = _documented_variant(name, constructor)
    _MODELS[name] = constructor
    return constructor

  return decorator


def _documented_variant(name: str, variant: functools.partial) -> ModelConstructor:
  """A function with ``variant``'s behaviour and signature and its model class's docstring."""
  base = variant
  while isinstance(base, functools.partial):  # partials of partials (vgg16_bn of vgg16)
    base = base.func
  fixed = ', '.join(f'{k}={v!r}' for k, v in variant.keywords.items())

  def constructor(*args, **kwargs):
    return variant(*args, **kwargs)

  constructor.__name__ = constructor.__qualname__ = name
  constructor.__module__ = getattr(base, '__module__', constructor.__module__)
  constructor.__doc__ = (
    f'``{name}``: :class:`{getattr(base, "__name__", base)}` with '
    f'{fixed}.\n\n{inspect.getdoc(base) or ""}'
  )
  constructor.__signature__ = inspect.signature(variant)
  constructor.func, constructor.keywords = variant.func, variant.keywords  # as a partial has
  return constructor


def get_model(name: str, **kwargs) -> nn.Module:
  """Builds the registered model `name` with keyword options `kwargs`.

  Args:
    name: a key of :func:`list_models`.
    **kwargs: options of the model's class (e.g. ``num_classes``, ``output_stride``, ``dtype``).

  Returns:
    An unbound ``flax.linen.Module``; ``module.apply(variables, x, train=...)`` returns
    ``(output, endpoints)``.

  Raises:
    ValueError: `name` is not registered (the message lists the registered names).

  Example::

    model = get_model('resnet18', num_classes=10)
  """
  if name not in _MODELS:
    raise ValueError(f'get_model: unknown model name {name!r}; expected one of {list_models()}')
  num_classes = kwargs.get('num_classes')
  # Checked by name here: a bool would pass as 1 class, 0 would fail deep inside an initialiser.
  if 'num_classes' in kwargs and (
    not isinstance(num_classes, numbers.Integral)
    or isinstance(num_classes, bool)
    or num_classes < 1
  ):
    raise ValueError(
      f'get_model({name!r}): num_classes must be a positive int, got {num_classes!r}'
    )
  return _MODELS[name](**kwargs)


def list_models() -> list[str]:
  """Returns the registered model names, sorted.

  Example::

    [name for name in list_models() if name.startswith('resnet')]
  """
  return sorted(_MODELS)
