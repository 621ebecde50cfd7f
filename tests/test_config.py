"""MAMTConfig: Table 3 defaults, keyword training(), and clear validation errors."""

import math

import pytest

from rllib_mamt import MAMTConfig
from rllib_mamt.algorithms.mamt.mamt import MAAC, MAMD
from rllib_mamt.config_validation import pinned_trust_region


def test_defaults_follow_table_3_of_the_paper():
    config = MAMTConfig()
    assert config.actor_lr == config.critic_lr == 1e-3
    assert config.adam_epsilon == 1e-7
    assert config.gamma == 0.99
    assert config.train_batch_size_per_learner == 1024
    assert config.replay_buffer_capacity == 1_000_000
    assert config.env_steps_per_update == 100
    assert config.num_updates_per_round == 4
    assert config.critic_attention_heads == 4
    assert config.reward_scale == 100
    assert config.actor_logit_regularization == 0.001
    assert config.actor_grad_clip == 0.5
    assert config.critic_grad_clip is None  # resolved to 10 * n_agents
    assert tuple(config.trust_region_bounds) == (0.01, 100.0)
    assert config.mirror_descent_lag == 100
    assert config.tsallis_q == 0.2
    assert config.evaluation_config == {"explore": False}
    assert config.evaluation_duration == 10


def test_training_sets_only_what_is_provided():
    config = MAMTConfig().training(tau=0.01, lr=0.5)
    assert config.tau == 0.01 and config.lr == 0.5
    assert config.actor_lr == 1e-3


def test_mode_defaults_of_the_registered_variants():
    assert MAMTConfig().trust_region_mode == "learned"
    assert MAMD.get_default_config().trust_region_mode == "equal"
    assert MAAC.get_default_config().trust_region_mode == "none"


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"actor_lr": -1e-3}, "actor_lr"),
        ({"critic_lr": 0.0}, "critic_lr"),
        ({"tau": 1.5}, "tau"),
        ({"tsallis_q": -0.1}, "tsallis_q"),
        ({"trust_region_mode": "bogus"}, "trust_region_mode"),
        ({"trust_region_step": "log"}, "trust_region_step"),
        ({"trust_region_update": "literal", "trust_region_step": "log_space"},
         "trust_region_step"),
        ({"trust_region_bounds": (100.0, 0.01)}, "trust_region_bounds"),
        ({"trust_region_bounds": (0.0, 1.0)}, "trust_region_bounds"),
        ({"trust_region_budget": -2.0}, "trust_region_budget"),
        ({"trust_region_mode": "manual"}, "trust_region_deltas"),
        ({"trust_region_mode": "manual", "trust_region_deltas": {"agent_0": 1e6}},
         "trust_region_deltas['agent_0']"),
        ({"trust_region_deltas": {"agent_0": 1.0}}, "trust_region_deltas"),
        ({"mirror_descent_lag": 0}, "mirror_descent_lag"),
        ({"num_updates_per_round": 2.5}, "num_updates_per_round"),
        ({"critic_attention_heads": 3}, "critic_attention_heads"),
        ({"actor_hidden_sizes": [64, 0]}, "actor_hidden_sizes"),
        ({"standardize_rewards": "yes"}, "standardize_rewards"),
        ({"reward_scale": math.inf}, "reward_scale"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(settings, key):
    config = MAMTConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert f"'{key}'" in message
    assert "allowed" in message


def test_manual_mode_rejects_unknown_agents():
    config = MAMTConfig().environment("spread").training(
        trust_region_mode="manual", trust_region_deltas={"agent_9": 1.0}
    )
    with pytest.raises(ValueError, match=r"unknown agent\(s\) \['agent_9'\]"):
        config.validate()


def test_validate_gives_every_agent_its_own_actor():
    config = MAMTConfig().environment("spread", env_config={"n_agents": 3})
    config.validate()
    assert config.agent_ids() == ["agent_0", "agent_1", "agent_2"]
    assert config.policy_mapping_fn("agent_2", None) == "agent_2"


@pytest.mark.parametrize(
    "mode, settings, expected",
    [
        ("none", {}, [math.inf, math.inf]),
        ("equal", {}, [1.0, 1.0]),
        ("equal", {"trust_region_budget": 1.0}, [0.5, 0.5]),
        ("manual", {"trust_region_deltas": {"agent_1": 0.3}}, [math.inf, 0.3]),
    ],
)
def test_trust_region_per_agent_for_each_mode(mode, settings, expected):
    config = MAMTConfig().environment("spread").training(trust_region_mode=mode, **settings)
    config.validate()
    assert config.resolved_trust_region_deltas() == pytest.approx(expected)


def test_unknown_env_config_key_is_named():
    config = MAMTConfig().environment("spread", env_config={"n_agentz": 2})
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['n_agentz'\\]"):
        config.validate()


@pytest.mark.parametrize(
    "mode, settings, held_at",
    [
        # Table 9's clip 1 on 2-agent Spread: the budget n = 2 on the equality
        # constraint puts both delta_i at the upper clip (the selected setting
        # of the first Spread search, which ran MAMT as MAMD with delta = 1).
        ("learned", {"trust_region_bounds": (0.01, 1.0)}, "1"),
        ("fixed_coef", {"trust_region_bounds": (0.01, 1.0)}, "1"),
        ("learned", {"trust_region_bounds": (0.01, 0.01)}, "0.01"),
        ("learned", {"trust_region_bounds": (0.01, 100.0), "trust_region_budget": 200.0}, "100"),
        ("learned", {"trust_region_bounds": (0.5, 100.0), "trust_region_budget": 1.0,
                     "trust_region_budget_constraint": "upper_bound"}, "0.5"),
    ],
)
def test_learned_deltas_that_cannot_move_are_rejected(mode, settings, held_at):
    config = MAMTConfig().environment("spread").training(trust_region_mode=mode, **settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith("MAMTConfig: 'trust_region_bounds' = ")
    assert f"every delta_i is held at {held_at} " in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "mode, settings",
    [
        ("learned", {}),
        ("learned", {"trust_region_bounds": (0.01, 1.0), "trust_region_budget": 1.5}),
        ("learned", {"trust_region_bounds": (0.01, 1.0),
                     "trust_region_budget_constraint": "upper_bound"}),
        ("equal", {"trust_region_bounds": (0.01, 1.0)}),
        ("none", {"trust_region_bounds": (0.01, 0.01)}),
    ],
)
def test_deltas_that_can_move_or_are_not_learned_pass(mode, settings):
    MAMTConfig().environment("spread").training(trust_region_mode=mode, **settings).validate()


def test_pinned_trust_region_follows_the_projection():
    """The values the projection (``project_log_deltas_``) would hold delta at."""
    import torch

    from rllib_mamt.algorithms.mamt.delta_allocation import project_log_deltas_

    for bounds, budget, constraint in [((0.01, 1.0), 2.0, "equality"),
                                       ((0.01, 1.0), 3.0, "equality"),
                                       ((0.2, 5.0), 0.4, "upper_bound"),
                                       ((0.2, 5.0), 0.4, "equality")]:
        pinned = pinned_trust_region(bounds, budget, 2, constraint)
        for start in ([-3.0, 1.5], [0.7, -0.2]):
            log_deltas = torch.tensor(start)
            project_log_deltas_(log_deltas, *bounds, budget, constraint)
            assert log_deltas.exp().tolist() == pytest.approx([pinned, pinned], rel=1e-4)
    assert pinned_trust_region((0.01, 1.0), 1.5, 2, "equality") is None
    assert pinned_trust_region((0.01, 1.0), 2.0, 2, "upper_bound") is None
