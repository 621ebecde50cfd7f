"""Checks of ``MAMTPPOConfig`` values: MA-PPO's checks, then MAMT's shared
checks of the trust-region decomposition keys; each error names the key, the
value and what is allowed."""

from rllib_mamt.algorithms.mappo.validation import validate_mappo_settings
from rllib_mamt.config_validation import (
    _number,
    _one_of,
    validate_trust_region_decomposition,
)


def validate_mamt_ppo_settings(config) -> None:
    """Raises ``ValueError`` for the first MAMT-PPO setting out of its allowed range."""
    from rllib_mamt.algorithms.mamt_ppo.mamt_ppo_config import (
        MAMT_PPO_TRUST_REGION_MODES,
        MAMT_PPO_TRUST_REGION_UPDATES,
    )

    validate_mappo_settings(config, clip_param_optional=True)
    _one_of(config, "trust_region_mode", MAMT_PPO_TRUST_REGION_MODES)
    _one_of(config, "trust_region_update", MAMT_PPO_TRUST_REGION_UPDATES)
    _number(config, "critic_regularization_coefficient", low=0)
    validate_trust_region_decomposition(config)
