"""YAML loading for tuned examples, with YAML 1.2 floats such as ``1e-3``.

PyYAML implements YAML 1.1, where a float needs a dot, so ``actor_lr: 1e-3``
would load as the string ``'1e-3'``. YAML 1.2 (and Python) read it as a number;
:class:`TunedExampleLoader` adds that float form to PyYAML's ``SafeLoader``.
"""

import re

import yaml

YAML_12_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
          |[0-9][0-9_]*[eE][-+]?[0-9]+
          |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?)$
      |^[-+]?\.(?:inf|Inf|INF)$
      |^\.(?:nan|NaN|NAN)$""",
    re.X,
)


class TunedExampleLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats (``1e-3``, ``5E+4``)."""


TunedExampleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", YAML_12_FLOAT, list("-+0123456789.")
)


def load_yaml(stream):
    """Parses one YAML document with :class:`TunedExampleLoader`."""
    return yaml.load(stream, Loader=TunedExampleLoader)
