"""MA-PPO: registration, Table 6 defaults, training and exact checkpoints,
GAE against RLlib's, the clipped objective and Huber loss by hand, reward
scaling, the runner's trajectory columns, the config checks, and the Gaussian
policy for Box actions (continuous Multi-Walker)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets
from ray.tune.registry import TRAINABLE_CLASS, _global_registry, register_env

import rllib_mamt
from rllib_mamt import MAPPOConfig
from rllib_mamt.algorithms.mappo.losses import (
    clipped_surrogate_loss,
    generalized_advantages,
    huber_value_loss,
)
from rllib_mamt.algorithms.mappo.mappo_learner import (
    OLD_LOG_PROBS,
    agent_actions,
    policy_log_probs_and_entropy,
)
from rllib_mamt.algorithms.mappo.modules import AttentionValueCritic, MAPPOGaussianActorModule
from rllib_mamt.algorithms.mappo.reward_normalization import ReturnScaler
from rllib_mamt.algorithms.mappo.trajectories import (
    CONTINUES,
    sort_by_sub_env,
    trajectory_rows,
)
from rllib_mamt.joint_replay_buffer import REWARDS, next_obs_key, obs_key
from rllib_mamt.joint_transitions import ENV_INDICES, EPISODE_ENDS
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.envs import PettingZooMultiAgentEnv
from tests.state_helpers import numeric_differences
from tests.toy_envs import BoxActionEnv


def tiny_spread_mappo(**training):
    """A MAPPOConfig on Spread sized to finish an iteration in well under a second."""
    settings = dict(
        train_batch_size_per_learner=100,
        minibatch_size=50,
        num_epochs=2,
        actor_hidden_sizes=[16],
        critic_hidden_dim=16,
    )
    settings.update(training)
    return (
        MAPPOConfig()
        .environment("spread")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(**settings)
        .debugging(seed=0)
    )


def test_registered_by_name_and_exported():
    assert _global_registry.get(TRAINABLE_CLASS, "MAPPO") is rllib_mamt.MAPPO
    assert rllib_mamt.ALGORITHMS["MAPPO"] is rllib_mamt.MAPPO
    assert isinstance(rllib_mamt.MAPPO.get_default_config(), rllib_mamt.MAPPOConfig)


def test_defaults_follow_table_6():
    config = MAPPOConfig()
    assert (config.train_batch_size_per_learner, config.critic_attention_heads) == (4096, 4)
    assert (config.huber_delta, config.lambda_, config.gamma) == (10.0, 0.95, 0.99)
    assert (config.actor_lr, config.critic_lr, config.adam_epsilon) == (1e-3, 1e-3, 1e-7)
    assert (config.actor_grad_clip, config.critic_grad_clip) == (10.0, 10.0)
    assert config.normalize_rewards and config.feature_normalization


def _assert_first_ratios_are_one(learner, batch):
    """The old log-probs equal those of the actors' training-mode forward on
    the same rows: the feature normalisation does not depend on the batch, so
    the PPO ratio starts at exactly 1."""
    targets = learner.with_ppo_targets(batch).policy_batches[CENTRAL_MODULE_ID]
    for k, agent in enumerate(learner.agent_ids):
        actor = learner.module[agent].unwrapped()
        actor.train()
        try:
            log_probs, _ = policy_log_probs_and_entropy(
                actor, torch.as_tensor(targets[obs_key(k)]),
                agent_actions(actor, torch.as_tensor(targets["actions"]), k),
            )
        finally:
            actor.eval()
        np.testing.assert_allclose(log_probs.detach().numpy(),
                                   targets[OLD_LOG_PROBS][:, k], rtol=1e-6, atol=1e-6)


def test_trains_two_iterations_and_restores_exactly(ray_session, tmp_path):
    _train_two_iterations_and_restore_exactly(tiny_spread_mappo(), tmp_path)


def _train_two_iterations_and_restore_exactly(config, tmp_path):
    """Trains 2 iterations, checks the first PPO ratios of a fresh batch are
    1, and that a restored checkpoint has the same learner state and takes the
    same update on that batch as the uninterrupted run."""
    steps = config.train_batch_size_per_learner
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        assert result["num_env_steps_sampled_lifetime"] == 2 * steps
        for agent in algo.config.agent_ids():
            for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
                assert np.isfinite(result["learners"][agent][key]), key
        algo.save(str(tmp_path))
        saved_learner = algo.learner_group.get_state()
        saved_scaler = algo.return_scaler.get_state()
        batch = algo.sample_train_batch()
        _assert_first_ratios_are_one(algo.learner_group._learner, batch)
        update = dict(minibatch_size=steps // 2, num_epochs=2, shuffle_batch_per_epoch=False)
        algo.learner_group.update(batch=batch, **update)
        uninterrupted = algo.learner_group.get_state()
    finally:
        algo.stop()

    learned = ("rl_module", "optimizer")
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        differing, compared = numeric_differences(
            {k: saved_learner["learner"][k] for k in learned},
            {k: restored.learner_group.get_state()["learner"][k] for k in learned},
        )
        assert compared > 20 and differing == []
        assert restored.return_scaler.statistics.n == 2 * steps
        differing, compared = numeric_differences(saved_scaler,
                                                  restored.return_scaler.get_state())
        assert compared > 2 and differing == []
        restored.learner_group.update(batch=batch, **update)
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: restored.learner_group.get_state()["learner"][k] for k in learned},
        )
        assert compared > 20 and differing == []
        assert restored.train()["training_iteration"] == 3
    finally:
        restored.stop()


def test_runner_rows_tell_sub_envs_and_episode_ends_apart(ray_session):
    """Spread episodes last 25 steps: with 2 sub-envs the rows alternate
    between them and each sub-env's 25th row ends its episode, after which
    its next row starts from a reset observation."""
    algo = tiny_spread_mappo().build_algo()
    try:
        rows = algo.env_runner.sample(num_timesteps=60, explore=True)[0].rows
    finally:
        algo.stop()
    np.testing.assert_array_equal(rows[ENV_INDICES], np.tile([0, 1], 30))
    ends = np.flatnonzero(rows[EPISODE_ENDS])
    np.testing.assert_array_equal(ends, [48, 49])
    layout = trajectory_rows([sort_by_sub_env(rows)])
    assert layout[CONTINUES].sum() == 60 - 4  # 2 episode ends, 2 chunk ends
    observation, next_observation = layout[obs_key(0)], layout[next_obs_key(0)]
    continuing = layout[CONTINUES][:-1] > 0.5
    np.testing.assert_array_equal(observation[1:][continuing],
                                  next_observation[:-1][continuing])
    assert (np.abs(observation[1:] - next_observation[:-1]).max(1)[~continuing] > 0).all()


def _rllib_targets(rewards, values, next_values, terminated, continues):
    """Value targets of one agent from RLlib's ``compute_value_targets``, one
    call per trajectory piece, each lengthened by its bootstrap step V(o') as
    RLlib's AddOneTsToEpisodesAndTruncate connector does."""
    targets, start = [], 0
    for end in np.flatnonzero(continues < 0.5):
        piece = slice(start, end + 1)
        length = end + 1 - start
        piece_terminated = np.zeros(length + 1)
        piece_terminated[length - 1] = terminated[end]
        piece_truncated = np.zeros(length + 1)
        piece_truncated[length - 1:] = 1.0 - terminated[end]
        piece_truncated[length] = 1.0
        targets.append(compute_value_targets(
            np.append(values[piece], next_values[end]),
            np.append(rewards[piece], 0.0),
            piece_terminated, piece_truncated, gamma=0.9, lambda_=0.8,
        )[:length])
        start = end + 1
    return np.concatenate(targets)


def test_gae_matches_rllibs_value_targets():
    rng = np.random.default_rng(0)
    steps, num_envs, n = 9, 2, 2
    rows = {
        REWARDS: rng.normal(size=(steps * num_envs, n)).astype(np.float32),
        ENV_INDICES: np.tile(np.arange(num_envs), steps),
        EPISODE_ENDS: np.zeros(steps * num_envs, np.float32),
    }
    # Sub-env 0 is truncated after its 4th step, sub-env 1 terminates after its 6th.
    rows[EPISODE_ENDS][[3 * num_envs, 5 * num_envs + 1]] = 1.0
    terminated = np.zeros(steps * num_envs)
    terminated[5 * num_envs + 1] = 1.0
    rows["terminateds"] = terminated
    rows["values"] = rng.normal(size=(steps * num_envs, n))
    rows["next_values"] = rng.normal(size=(steps * num_envs, n))  # V(o') != 0 everywhere
    layout = trajectory_rows([sort_by_sub_env(rows)])
    assert layout[CONTINUES].sum() == steps * num_envs - 4
    # Within an episode o'_t is o_(t+1): the same value. RLlib reads V(o') from
    # the next step; this learner from the row (needed where the episode ends).
    continuing = layout[CONTINUES][:-1] > 0.5
    layout["next_values"][:-1][continuing] = layout["values"][1:][continuing]

    bootstrap = np.repeat(1.0 - layout["terminateds"][:, None], n, axis=1)
    advantages = generalized_advantages(
        layout[REWARDS].astype(np.float64), layout["values"], layout["next_values"],
        bootstrap, layout[CONTINUES], gamma=0.9, lambda_=0.8,
    )
    for agent in range(n):
        expected = _rllib_targets(
            layout[REWARDS][:, agent].astype(np.float64), layout["values"][:, agent],
            layout["next_values"][:, agent], layout["terminateds"], layout[CONTINUES],
        )
        np.testing.assert_allclose(advantages[:, agent] + layout["values"][:, agent],
                                   expected, rtol=1e-5, atol=1e-5)


def test_clipped_surrogate_matches_a_hand_computation():
    old = torch.log(torch.tensor([[0.5, 0.2], [0.4, 0.5], [0.1, 0.3], [0.3, 0.3]]))
    new_probabilities = torch.tensor([[0.6, 0.3], [0.2, 0.5], [0.1, 0.2], [0.36, 0.1]])
    log_probs = torch.log(new_probabilities).requires_grad_(True)
    advantages = torch.tensor([[1.0, -2.0], [-1.0, 0.5], [2.0, 1.0], [-0.5, 3.0]])
    clips = torch.tensor([0.1, 0.3])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])

    expected = []
    for agent in range(2):
        terms = []
        for row in range(4):
            if mask[row, agent] == 0:
                continue
            ratio = float(new_probabilities[row, agent] / old[row, agent].exp())
            clipped = min(max(ratio, 1 - float(clips[agent])), 1 + float(clips[agent]))
            advantage = float(advantages[row, agent])
            terms.append(min(ratio * advantage, clipped * advantage))
        expected.append(-sum(terms) / len(terms))
    loss = clipped_surrogate_loss(log_probs, old, advantages, clips, mask)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6)
    # Rows whose clipped term is the minimum pass no gradient: agent 0's first
    # row (ratio 1.2 > 1.1 with A > 0) and agent 1's first (0.3/0.2 = 1.5 > 1.3,
    # but A < 0 so the unclipped term is the minimum and keeps its gradient).
    loss.sum().backward()
    assert log_probs.grad[0, 0] == 0.0 and log_probs.grad[0, 1] != 0.0
    assert log_probs.grad[2, 1] == 0.0  # masked


def test_huber_value_loss_is_quadratic_within_delta_and_linear_beyond():
    values = torch.tensor([[0.0, 1.0], [3.0, -20.0]])
    targets = torch.tensor([[2.0, 1.5], [-12.0, 0.0]])
    delta = 10.0
    # |errors| = 2, 0.5, 15, 20.
    expected = [(0.5 * 2.0**2 + delta * (15.0 - 0.5 * delta)) / 2,
                (0.5 * 0.5**2 + delta * (20.0 - 0.5 * delta)) / 2]
    np.testing.assert_allclose(huber_value_loss(values, targets, delta).numpy(), expected)


def test_rewards_are_scaled_by_the_running_std_of_discounted_returns():
    scaler = ReturnScaler(num_agents=2, gamma=0.5)
    rows = {
        REWARDS: np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0], [1.0, 3.0]], np.float32),
        ENV_INDICES: np.array([0, 0, 0, 1]),
        EPISODE_ENDS: np.array([0.0, 1.0, 0.0, 0.0], np.float32),
    }
    scaled = scaler.scale(rows, chunk_position=0)
    # Sub-env 0: returns 1, 2.5, then a new episode: 4; sub-env 1: 1 (agent 0).
    returns = np.array([[1.0, 0.0], [2.5, 1.0], [4.0, 1.0], [1.0, 3.0]])
    std = returns.std(axis=0, ddof=1)
    np.testing.assert_allclose(scaled[REWARDS], rows[REWARDS] / std, rtol=1e-5)
    np.testing.assert_array_equal(rows[REWARDS][0], [1.0, 0.0])  # input unchanged
    # Sub-env 0's open episode continues in the next chunk of the same runner.
    restored = ReturnScaler(num_agents=2, gamma=0.5)
    restored.set_state(scaler.get_state())
    following = {REWARDS: np.array([[2.0, 2.0]], np.float32), ENV_INDICES: np.array([0]),
                 EPISODE_ENDS: np.array([0.0], np.float32)}
    restored.scale(following, chunk_position=0)
    std = np.vstack([returns, [[0.5 * 4.0 + 2.0, 0.5 * 1.0 + 2.0]]]).std(axis=0, ddof=1)
    np.testing.assert_allclose(restored.statistics.std, std, rtol=1e-5)


def test_attention_value_critic_attends_to_the_other_agents():
    torch.manual_seed(0)
    critic = AttentionValueCritic([3, 4, 3], hidden_dim=8, num_heads=2)
    observations = [torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 3)]
    values = critic(observations)
    assert values.shape == (5, 3)
    changed = [observations[0], torch.randn(5, 4), observations[2]]
    moved = (critic(changed) - values).abs()
    assert (moved[:, 0] > 0).all() and (moved[:, 2] > 0).all()  # o_1 changes V_0 and V_2
    alive = torch.tensor([[1.0, 0.0, 1.0]]).repeat(5, 1)
    torch.testing.assert_close(critic(changed, alive)[:, [0, 2]],
                               critic(observations, alive)[:, [0, 2]])


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"clip_param": 0.0}, "clip_param"),
        ({"lambda_": 1.5}, "lambda_"),
        ({"huber_delta": -1.0}, "huber_delta"),
        ({"minibatch_size": 5000}, "minibatch_size"),
        ({"critic_attention_heads": 3}, "critic_attention_heads"),
        ({"feature_normalization": "yes"}, "feature_normalization"),
        ({"num_epochs": 1.5}, "num_epochs"),
        ({"actor_hidden_sizes": [64, 0]}, "actor_hidden_sizes"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(settings, key):
    config = MAPPOConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(f"MAPPOConfig: '{key}' = {settings[key]!r} is invalid; allowed:")
    assert "\n" not in message


def test_more_than_one_learner_is_rejected():
    config = MAPPOConfig().environment("spread").learners(num_learners=2)
    with pytest.raises(ValueError, match=r"^MAPPOConfig: 'num_learners' = 2 is invalid"):
        config.validate()


# Box actions: diagonal Gaussian actors with a learned state-independent log-std.

def tiny_multiwalker_mappo(**training):
    """A MAPPOConfig on continuous Multi-Walker (3 walkers, Box(4) torques)
    sized to finish an iteration in about a second."""
    settings = dict(
        train_batch_size_per_learner=64,
        minibatch_size=32,
        num_epochs=2,
        actor_hidden_sizes=[16],
        critic_hidden_dim=16,
    )
    settings.update(training)
    return (
        MAPPOConfig()
        .environment("multiwalker", env_config={"action_mode": "continuous",
                                                "max_cycles": 50})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(**settings)
        .debugging(seed=0)
    )


def test_trains_two_iterations_and_restores_exactly_on_continuous_multiwalker(
        ray_session, tmp_path):
    config = tiny_multiwalker_mappo()
    algo = config.build_algo()
    try:
        actor = algo.learner_group._learner.module[algo.config.agent_ids()[0]].unwrapped()
        assert isinstance(actor, MAPPOGaussianActorModule)
        np.testing.assert_array_equal(actor.log_std.detach().numpy(), np.zeros(4))
    finally:
        algo.stop()
    _train_two_iterations_and_restore_exactly(config, tmp_path)


def _gaussian_actor(action_space, log_std):
    actor = MAPPOGaussianActorModule(
        observation_space=gym.spaces.Box(-1, 1, (3,), np.float32),
        action_space=action_space,
        model_config={"actor_hidden_sizes": [8], "feature_normalization": True},
    )
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor(log_std))
    return actor


def test_gaussian_log_prob_and_entropy_match_torch_normal():
    """Log-probs of the stored (unclipped, here partly out-of-bounds) actions
    and entropies equal those of torch's Normal summed over the dimensions;
    the joint column's zero padding of a shorter Box is dropped first."""
    torch.manual_seed(0)
    actor = _gaussian_actor(gym.spaces.Box(-1, 1, (2,), np.float32), [-0.5, 0.3])
    observations = torch.randn(5, 3)
    joint_actions = torch.zeros(5, 2, 3)  # 2 agents, the other one has 3 dims
    joint_actions[:, 1, :2] = torch.tensor(
        [[0.1, -0.2], [2.5, 0.0], [-3.0, 1.5], [0.9, 0.9], [-0.4, 4.0]])
    joint_actions[:, 1, 2] = 7.0  # must not reach the 2-dimensional actor
    actions = agent_actions(actor, joint_actions, 1)
    assert actions.shape == (5, 2)
    log_probs, entropies = policy_log_probs_and_entropy(actor, observations, actions)
    normal = torch.distributions.Normal(actor.action_logits(observations),
                                        torch.tensor([-0.5, 0.3]).exp())
    torch.testing.assert_close(log_probs, normal.log_prob(joint_actions[:, 1, :2]).sum(-1))
    torch.testing.assert_close(entropies, normal.entropy().sum(-1))
    hand_entropy = (0.5 + 0.5 * np.log(2 * np.pi)) * 2 + (-0.5 + 0.3)
    np.testing.assert_allclose(entropies.detach().numpy(), hand_entropy, rtol=1e-6)


def test_stored_action_is_the_unclipped_sample_and_the_env_gets_it_clipped(ray_session):
    """With std e^2 the samples leave [-1, 1]: the rows keep them, the walkers
    receive them clipped; explore=False acts with the actors' means."""
    algo = tiny_multiwalker_mappo().build_algo()
    try:
        runner = algo.env_runner
        agents = algo.config.agent_ids()
        for agent in agents:
            with torch.no_grad():
                runner.module[agent].log_std.fill_(2.0)
        received = []
        for env in runner._sub_envs:
            original = env.step
            env.step = lambda actions, original=original: (
                received.append({a: np.array(v) for a, v in actions.items()})
                or original(actions))
        rows = runner.sample(num_timesteps=10, explore=True)[0].rows
        stored = rows["actions"]
        assert np.abs(stored).max() > 1.0
        # Rows and env steps both run step by step, sub-env 0 then 1.
        sent = np.stack([[step[a] for a in agents] for step in received])
        np.testing.assert_array_equal(sent, np.clip(stored, -1.0, 1.0))

        rows = runner.sample(num_timesteps=10, explore=False)[0].rows
        for k, agent in enumerate(agents):
            with torch.no_grad():
                mean = runner.module[agent].action_logits(torch.as_tensor(rows[obs_key(k)]))
            np.testing.assert_allclose(rows["actions"][:, k], mean.numpy(), rtol=1e-5,
                                       atol=1e-6)
    finally:
        algo.stop()


def test_mixed_box_and_discrete_actions_are_rejected_with_one_line():
    register_env("mappo_box_actions", lambda config: PettingZooMultiAgentEnv(BoxActionEnv()))
    with pytest.raises(ValueError) as error:
        MAPPOConfig().environment("mappo_box_actions").validate()
    assert str(error.value).startswith(
        "MAPPO: agents ['worker'] have Box actions and ['scout'] do not; allowed: all "
        "agents Box or all Discrete")
    assert "\n" not in str(error.value)


def test_unbounded_box_actions_are_rejected_with_one_line():
    register_env("mappo_unbounded_box",
                 lambda config: PettingZooMultiAgentEnv(BoxActionEnv(unbounded=True)))
    with pytest.raises(ValueError, match=r"^MAPPO: agent 'scout' has action space Box\(-inf, "
                       r"inf, \(2,\), float32\); allowed: gymnasium.spaces.Discrete, or a "
                       r"float gymnasium.spaces.Box with finite low and high[^\n]*$"):
        MAPPOConfig().environment("mappo_unbounded_box").validate()


def test_box_actions_on_rllibs_env_runner_are_rejected_with_one_line():
    config = tiny_multiwalker_mappo().env_runners(env_runner_cls=MultiAgentEnvRunner)
    with pytest.raises(ValueError, match=r"^MAPPOConfig: 'env_runner_cls' = <class "
                       r"'ray\.rllib\.env\.multi_agent_env_runner\.MultiAgentEnvRunner'> "
                       r"is invalid; allowed: rllib_mamt\.JointEnvRunner[^\n]*$"):
        config.validate()


def test_runner_stacks_the_mappo_actors_and_follows_weight_syncs(ray_session):
    """The JointEnvRunner batches MAPPO's LayerNorm actors (one stacked group
    on Spread, not one RLModule call per agent) and re-reads their weights,
    LayerNorm affine included, when the learner's weights are synced."""
    algo = tiny_spread_mappo().build_algo()
    try:
        runner = algo.env_runner
        agents = algo.config.agent_ids()
        runner.sample(num_timesteps=4, explore=True)
        assert len(runner._actors.groups) == 1 and runner._actors.groups[0].stacked
        learner_module = algo.learner_group._learner.module
        with torch.no_grad():
            for agent in agents:
                normalization = learner_module[agent].unwrapped().observation_normalization
                normalization.weight.uniform_(0.2, 3.0)
                normalization.bias.normal_()
        algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group)
        rows = runner.sample(num_timesteps=10, explore=False)[0].rows
        for k, agent in enumerate(agents):
            actor = runner.module[agent]
            torch.testing.assert_close(
                actor.observation_normalization.weight,
                learner_module[agent].unwrapped().observation_normalization.weight)
            with torch.no_grad():
                logits = actor.action_logits(torch.as_tensor(rows[obs_key(k)]))
            np.testing.assert_array_equal(rows["actions"][:, k], logits.argmax(-1).numpy())
    finally:
        algo.stop()
