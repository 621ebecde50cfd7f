"""Defaults of the trust-region decomposition's settings (paper Table 3; the
readings chosen in issue 10), shared by :class:`MAMTConfig` and
:class:`MAMTPPOConfig` so that both algorithms start from the same values,
and the joint budget those defaults imply. Each key is documented in
``MAMTConfig.training``."""

TRUST_REGION_DECOMPOSITION_DEFAULTS = {
    "trust_region_mode": "learned",
    "trust_region_update": "hypergradient",
    "trust_region_step": "mirror_descent",
    "trust_region_budget": None,
    "trust_region_bounds": (0.01, 100.0),
    "trust_region_budget_constraint": "equality",
    "coordination_threshold": 0.2,
    "coordination_normalization": "relative",
    "coordination_batch_size": 128,
    "non_stationarity_range": (0.0, 10.0),
    "opponent_model_lr": 1e-3,
    "opponent_model_logit_regularization": 1e-3,
    "opponent_model_grad_clip": 0.5,
    "trd_lr": 1e-3,
    "trd_grad_clip": None,
    "trd_hidden_dim": 64,
    "trd_message_passing_layers": 2,
    "trd_updates_per_delta_update": 2,
    "delta_lr": 1e-3,
}


def joint_trust_region_budget(trust_region_budget, n_agents: int) -> float:
    """The joint trust region δ of Eq. 1-2 that the δ_i share:
    ``trust_region_budget``, or n_agents when it is None (δ_i = 1 on average)."""
    if trust_region_budget is not None:
        return float(trust_region_budget)
    return float(n_agents)
