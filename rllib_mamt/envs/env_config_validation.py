"""Checks of an environment's ``env_config`` with errors that name the key.

Every environment factory in :mod:`rllib_mamt.envs` declares the keys it accepts
as :class:`EnvKey` entries; :func:`validate_env_config` rejects unknown keys,
wrong types and out-of-range values with one message naming the environment,
the key, the value and what is allowed.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple


@dataclass(frozen=True)
class EnvKey:
    """One accepted ``env_config`` key.

    Attributes:
        default: Value used when the key is absent.
        types: Allowed Python types (``bool`` is never accepted as an ``int``).
        check: Optional predicate the value must satisfy.
        allowed: Human-readable description of the allowed values.
    """

    default: Any
    types: Tuple[type, ...]
    check: Optional[Callable[[Any], bool]] = None
    allowed: str = ""


def validate_env_config(
    env_name: str, env_config: Optional[Mapping[str, Any]], keys: Dict[str, EnvKey]
) -> Dict[str, Any]:
    """Returns ``env_config`` completed with defaults, or raises ``ValueError``.

    RLlib passes an ``EnvContext`` (a dict with extra attributes such as
    ``worker_index``); only its dict items are read.
    """
    given = dict(env_config or {})
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise ValueError(
            f"env_config for '{env_name}': unknown key(s) {unknown}; "
            f"allowed keys are {sorted(keys)}."
        )
    resolved = {}
    for name, spec in keys.items():
        value = given.get(name, spec.default)
        wrong_type = not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types
        )
        if wrong_type or (spec.check is not None and not spec.check(value)):
            raise ValueError(
                f"env_config for '{env_name}': key '{name}' has value {value!r}; "
                f"allowed: {spec.allowed or ' or '.join(t.__name__ for t in spec.types)}."
            )
        resolved[name] = value
    return resolved
