"""MADDPG (Lowe et al., 2017) as an RLlib ``Algorithm``.

MADDPG runs the shared off-policy loop
(:class:`rllib_mamt.joint_off_policy.JointOffPolicyAlgorithm`) unchanged: a ``training_step`` samples
``env_steps_per_update`` joint env steps from the JointEnvRunners into the
joint replay buffer, then, once the buffer holds enough rows, runs
``num_updates_per_round`` learner updates and pushes the new actor weights to
the EnvRunners; the buffer is saved with every checkpoint. It differs only in
its learner (:mod:`rllib_mamt.algorithms.maddpg.maddpg_learner`) and in how
many rows one update takes: each agent updates on its own minibatch, as in
the reference code (maddpg-pytorch), so an update takes n_agents minibatches.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.maddpg.maddpg_config import MADDPGConfig
from rllib_mamt.joint_off_policy import JointOffPolicyAlgorithm


class MADDPG(JointOffPolicyAlgorithm):
    """Multi-Agent Deep Deterministic Policy Gradient with discrete actions
    (straight-through Gumbel-softmax) or Box actions (deterministic tanh actors
    with Gaussian exploration noise), centralised critics Q_i(o, a) and
    soft-updated target networks; see :class:`MADDPGConfig` for the settings."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MADDPGConfig:
        return MADDPGConfig(cls)

    @override(JointOffPolicyAlgorithm)
    def minibatches_per_update(self) -> int:
        """Each agent updates on its own minibatch, as in the reference code."""
        return len(self.config.agent_ids())
