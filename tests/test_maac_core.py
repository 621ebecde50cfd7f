"""Details of the critic and actor updates that follow MAAC (Iqbal & Sha, 2019)."""

import numpy as np
import pytest
import torch
from ray.tune.registry import register_env

from rllib_mamt.algorithms.mamt.losses import attention_logit_penalty, critic_targets
from rllib_mamt.algorithms.mamt.mamt_learner import CRITIC_OPTIMIZER, POLICY_OPTIMIZER
from rllib_mamt.learner_seeding import learner_sampling_seed
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.conftest import tiny_spread_config


def test_attention_penalty_is_maacs_sum_over_agents_and_heads_of_raw_logits():
    torch.manual_seed(0)
    sizes, actions_per_agent, hidden, heads = [3, 4, 5], [2, 3, 4], 16, 4
    critic = AttentionCritic(sizes, actions_per_agent, hidden, heads)
    batch = 7
    observations = [torch.randn(batch, s) for s in sizes]
    actions = torch.stack([torch.randint(0, a, (batch,)) for a in actions_per_agent], -1)
    _, logits = critic(observations, actions)

    states = critic.encode_states(observations)
    state_actions = torch.stack([
        critic.encode_state_action(k, obs, torch.nn.functional.one_hot(actions[:, k], a).float())
        for k, (obs, a) in enumerate(zip(observations, actions_per_agent))
    ], 1)
    queries = critic.query_projection(states)
    keys = critic.key_projection(state_actions)
    width = hidden // heads
    expected = 0.0
    for i in range(len(sizes)):
        for h in range(heads):
            part = slice(h * width, (h + 1) * width)
            raw = torch.stack([(queries[:, i, part] * keys[:, j, part]).sum(-1)
                               for j in range(len(sizes)) if j != i], -1)
            expected = expected + 1e-3 * raw.pow(2).mean()
    torch.testing.assert_close(attention_logit_penalty(logits, width), expected)


def test_shared_gradient_scaling_covers_the_state_action_encoders():
    critic = AttentionCritic([3, 4], [2, 2], 8, 2)
    shared = {id(p) for p in critic.shared_parameters()}
    for module in (critic.key_projection, critic.query_projection, critic.value_projection,
                   critic.state_action_encoders):
        assert {id(p) for p in module.parameters()} <= shared
    assert not {id(p) for p in critic.state_encoders.parameters()} & shared
    assert not {id(p) for p in critic.q_heads.parameters()} & shared


def test_critic_targets_hand_computed():
    alpha, gamma = 0.5, 0.9
    rewards = torch.tensor([[1.0]])
    probs = [torch.tensor([[0.25, 0.75]])]
    q = [torch.tensor([[2.0, 4.0]])]
    current_log_probs = [torch.log(torch.tensor([[0.5, 0.5]]))]
    bootstrap = torch.tensor([[1.0]])
    expected_value = 0.25 * 2 + 0.75 * 4
    target_entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    maac = critic_targets(rewards, bootstrap, probs, q, None, alpha=alpha, gamma=gamma,
                          entropy_term="maac")
    assert maac.item() == pytest.approx(1 + gamma * expected_value + alpha * target_entropy)
    paper = critic_targets(rewards, bootstrap, probs, q, current_log_probs, alpha=alpha,
                           gamma=gamma, entropy_term="paper")
    assert paper.item() == pytest.approx(1 + gamma * (expected_value + alpha * np.log(2)))
    # At a terminal step MAAC keeps the entropy bonus; the paper's form drops it with gamma.
    terminal = critic_targets(rewards, torch.zeros(1, 1), probs, q, None, alpha=alpha,
                              gamma=gamma, entropy_term="maac")
    assert terminal.item() == pytest.approx(1 + alpha * target_entropy)


def _learner(algo):
    return algo.learner_group._learner


def test_critic_optimiser_has_maacs_weight_decay(ray_session):
    algo = tiny_spread_config().build_algo()
    try:
        learner = _learner(algo)
        critic = learner.get_optimizer(CENTRAL_MODULE_ID, CRITIC_OPTIMIZER)
        assert critic.param_groups[0]["weight_decay"] == pytest.approx(1e-3)
        actor = learner.get_optimizer("agent_0", POLICY_OPTIMIZER)
        assert actor.param_groups[0]["weight_decay"] == 0.0
    finally:
        algo.stop()


def _critic_seen_by_the_actor_losses(order):
    """Critic parameters at the actor losses' advantage pass, and before the update."""
    algo = tiny_spread_config(update_order=order).build_algo()
    try:
        learner = _learner(algo)
        critic = learner._central().critic
        seen = []
        original = type(critic).forward

        def recording_forward(module, *args, **kwargs):
            if not torch.is_grad_enabled():
                seen.append([p.detach().clone() for p in module.parameters()])
            return original(module, *args, **kwargs)

        algo.sample_into_buffer()
        algo.sample_into_buffer()
        before = [p.detach().clone() for p in critic.parameters()]
        critic.forward = recording_forward.__get__(critic)
        algo.update_from_buffer()
        return before, seen
    finally:
        algo.stop()


@pytest.mark.parametrize("order, sees_updated_critic", [("critic_first", True),
                                                          ("simultaneous", False)])
def test_update_order(ray_session, order, sees_updated_critic):
    before, seen = _critic_seen_by_the_actor_losses(order)
    assert seen, "the actor losses' advantage pass was not observed"
    first_update = seen[0]
    changed = any(not torch.equal(a, b) for a, b in zip(before, first_update))
    assert changed == sees_updated_critic


def test_learners_draw_from_independent_streams():
    seeds = {learner_sampling_seed(7, rank) for rank in range(4)}
    assert len(seeds) == 4
    assert learner_sampling_seed(7, 0) == learner_sampling_seed(7, 0)
    assert learner_sampling_seed(7, 0) != learner_sampling_seed(8, 0)


def test_mirror_descent_entropy_switch_changes_only_constrained_actors(ray_session):
    """With mirror_descent_entropy=False the MD actors' policy-gradient target
    has no alpha log pi term: with zero critic (advantage 0) their
    policy-gradient loss is exactly 0, while MAAC's keeps its entropy term."""
    for mode, entropy_on, expect_zero in [("equal", False, True), ("equal", True, False),
                                          ("none", False, False)]:
        algo = tiny_spread_config(
            mode, mirror_descent_entropy=entropy_on, update_order="simultaneous",
            num_updates_per_round=1,
        ).build_algo()
        try:
            central = _learner(algo)._central()
            with torch.no_grad():
                for head in central.critic.q_heads:
                    head[-1].weight.zero_()
                    head[-1].bias.zero_()
            algo.sample_into_buffer()
            algo.sample_into_buffer()
            algo.update_from_buffer()
            results = algo.metrics.peek(("learners", "agent_0", "policy_gradient_loss"))
            assert (abs(results) < 1e-9) == expect_zero, (mode, entropy_on, results)
        finally:
            algo.stop()


def test_vectorised_evaluation_keeps_a_fixed_share_of_episodes_per_env():
    """Each of 2 sub-envs runs exactly 2 of 4 episodes, whatever their lengths;
    keeping the first 4 to finish would favour the 2-step episodes."""
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from rllib_mamt.joint_env_runner import JointEnvRunner, episode_seed
    from tests.toy_envs import RandomLengthEnv

    register_env("random_length", lambda cfg: PettingZooMultiAgentEnv(RandomLengthEnv()))
    config = (tiny_spread_config().environment("random_length")
              .env_runners(num_envs_per_env_runner=2).debugging(seed=13))
    config.validate()
    runner = JointEnvRunner(config=config)
    try:
        # Seed 13: env 0 runs episodes of 2, 2, 2, 2 steps and env 1 of 12, 12, ...
        # The first four to finish would all be env 0's (mean return 4, not 14).
        assert runner._seed == 13
        returns = [[], []]
        for env_index in range(2):
            env = RandomLengthEnv()
            for episode in range(4):
                env.reset(seed=episode_seed(runner._seed, env_index, episode))
                returns[env_index].append(2 * env.max_cycles)
        assert returns[0] == [4, 4, 4, 4] and returns[1][:2] == [24, 24]
        expected = returns[0][:2] + returns[1][:2]
        runner.sample(num_episodes=4, explore=False)
        metrics = runner.get_metrics()
        assert float(metrics["num_episodes"].peek()) == 4
        assert float(metrics["episode_return_mean"].peek()) == pytest.approx(np.mean(expected))
    finally:
        runner.stop()
