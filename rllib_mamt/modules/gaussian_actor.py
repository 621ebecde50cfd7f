"""A diagonal Gaussian policy pi_i(a_i | o_i) for one agent's Box actions.

The mean is the project's actor MLP (:class:`MAMTActorModule`) with one
output per flat action dimension, in the Box's own units (no squashing); the
standard deviation is state-independent: one learned log-std per action
dimension, a parameter of the module, as in the MAPPO and PPO reference codes
(``DiagGaussian`` with a free ``logstd``). Every log-std starts at
:data:`INITIAL_LOG_STD` = 0, i.e. std 1 in the Box's units.

The forward pass returns RLlib's diagonal-Gaussian distribution inputs (mean
and log-std concatenated) under ``Columns.ACTION_DIST_INPUTS``, and the
module's action distribution class is RLlib's ``TorchDiagGaussian`` (a
``torch.distributions.Normal`` whose log-prob and entropy sum over the
action dimensions). The sampler
(:class:`rllib_mamt.stacked_actors.StackedActors`) draws a ~ N(mean, std^2)
when exploring and takes the mean otherwise; that unclipped sample is what
is stored and whose log-prob the learner evaluates. Only the copy handed to
the env is clipped to the Box's bounds
(:class:`rllib_mamt.joint_env_runner.JointEnvRunner`), the usual PPO practice.
"""

import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian

from rllib_mamt.modules.actor import MAMTActorModule
from rllib_mamt.modules.deterministic_actor import require_bounded_box

# log std of every action dimension at initialisation (std 1, the MAPPO and
# PPO reference codes' zero-initialised log-std).
INITIAL_LOG_STD = 0.0


class GaussianActorModule(MAMTActorModule):
    """Diagonal Gaussian policy with a state-independent learned log-std.

    ``model_config`` keys are :class:`MAMTActorModule`'s. The action space
    must be a float Box with finite bounds (they bound what the env receives,
    not the Gaussian).
    """

    STACKABLE_FORWARD = True

    def setup(self):
        action_size = require_bounded_box("this module", self.action_space)
        self.build_networks(action_size)
        self.log_std = nn.Parameter(torch.full((action_size,), INITIAL_LOG_STD))
        self.action_dist_cls = TorchDiagGaussian
        self.eval()

    def distribution_inputs(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, 2 * d) mean and log-std of pi_i(. | o_i), RLlib's layout for
        ``TorchDiagGaussian.from_logits``."""
        mean = self.action_logits(observations)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)

    def action_distribution(self, observations: torch.Tensor) -> TorchDiagGaussian:
        """pi_i(. | o_i) for a batch of observations."""
        return TorchDiagGaussian.from_logits(self.distribution_inputs(observations))

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.distribution_inputs(batch[Columns.OBS])}
