"""LOLA(+DQN) as an RLlib ``Algorithm``.

LOLA runs the shared off-policy loop
(:class:`rllib_mamt.joint_off_policy.JointOffPolicyAlgorithm`) unchanged: a ``training_step`` samples
``env_steps_per_update`` joint env steps from the JointEnvRunners into the
joint replay buffer, then, once the buffer holds enough rows, runs
``num_updates_per_round`` learner updates on fresh minibatches and pushes the
new policy weights to the EnvRunners; the buffer is saved with every
checkpoint. Only the learner (:mod:`rllib_mamt.algorithms.lola.lola_learner`)
and the modules differ.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.lola.lola_config import LOLAConfig
from rllib_mamt.joint_off_policy import JointOffPolicyAlgorithm


class LOLA(JointOffPolicyAlgorithm):
    """Learning with Opponent-Learning Awareness with DQN-style joint-action
    Q-networks, for two agents; see :mod:`rllib_mamt.algorithms.lola` and
    :class:`LOLAConfig`."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> LOLAConfig:
        return LOLAConfig(cls)
