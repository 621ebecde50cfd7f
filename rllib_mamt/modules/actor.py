"""The decentralized actor pi_psi_i(a_i | o_i) of each agent (paper §3.2).

Each agent's actor is its own RLlib ``RLModule`` that sees only that agent's
observation, so it runs unchanged on EnvRunners, on learners and (as target and
m-update-old copies) inside the learner-only central module.
"""

from typing import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.distributed_mean import average_across_processes_

DEFAULT_ACTOR_HIDDEN_SIZES = (128, 128)
DEFAULT_INPUT_NORMALIZATION = True


class InputNormalization(nn.BatchNorm1d):
    """MAAC's input normalisation: ``BatchNorm1d(affine=False)`` over the last axis.

    MAAC (Iqbal & Sha, 2019), on which the paper builds, normalises the input
    of every policy and of every critic encoder this way. Which statistics a
    pass uses is decided by the pass, not only by the module's mode:

    * train mode with gradients enabled (the forwards that are differentiated
      in a learner update: the actors on the batch's o, the critic on the
      replayed (o, a)): the batch's mean and variance, which are recorded into
      the running statistics (momentum 0.1, PyTorch's and MAAC's default);
    * every other pass (eval mode on the EnvRunners, and every evaluation under
      ``torch.no_grad`` / ``inference_mode`` in the learner: targets, old
      policies, baselines, counterfactual evaluations): the running
      statistics, so its output neither depends on how its batch is composed
      (single rows, tiled counterfactual actions) nor skews the statistics.

    Any number of leading batch dimensions is allowed.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=False)
        # Only counts batches for momentum=None; with the fixed momentum it
        # would just add a scalar to every actor's state.
        self.num_batches_tracked = None

    def uses_batch_statistics(self) -> bool:
        """Whether the next forward pass normalises with (and records) batch statistics."""
        return self.training and torch.is_grad_enabled()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        flat = inputs.reshape(-1, inputs.shape[-1])
        batch_statistics = self.uses_batch_statistics()
        normalized = F.batch_norm(
            flat, self.running_mean, self.running_var, None, None,
            batch_statistics, self.momentum, self.eps,
        )
        return normalized.reshape(inputs.shape)


@torch.no_grad()
def average_running_statistics_across_processes_(modules: Sequence[nn.Module]) -> None:
    """Averages the running mean and variance of every :class:`InputNormalization`
    in ``modules`` over the ``torch.distributed`` processes (no-op without them).

    Data-parallel learners see different minibatches, so their batch
    statistics differ even though their averaged gradients keep the
    parameters identical; averaging after every update keeps the statistics
    identical too. Running means are linear in the batch means, so their
    average is the running mean of the global batches' means; the averaged
    variance leaves out the (small) spread between the learners' batch means.
    """
    average_across_processes_([
        buffer
        for module in modules
        for normalization in module.modules()
        if isinstance(normalization, InputNormalization)
        for buffer in (normalization.running_mean, normalization.running_var)
    ])


def build_input_normalization(num_features: int, enabled: bool) -> nn.Module:
    """:class:`InputNormalization` if ``enabled``, else the identity."""
    return InputNormalization(num_features) if enabled else nn.Identity()


DEFAULT_NEGATIVE_SLOPE = 0.01  # nn.LeakyReLU's default, MAAC's actor


def build_policy_network(
    observation_size: int, num_actions: int, hidden_sizes: Sequence[int],
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> nn.Sequential:
    """MLP from a flat observation to action logits.

    Hidden layers use ``LeakyReLU(negative_slope)``: 0.01 is MAAC's actor,
    0.0 is a plain ReLU (the MADDPG reference code's actor).
    """
    layers = []
    previous = observation_size
    for size in hidden_sizes:
        layers += [nn.Linear(previous, size), nn.LeakyReLU(negative_slope)]
        previous = size
    layers.append(nn.Linear(previous, num_actions))
    return nn.Sequential(*layers)


def flatten_observations(observations: torch.Tensor) -> torch.Tensor:
    """(B, ...) observations as a (B, obs_size) float tensor."""
    return observations.reshape(observations.shape[0], -1).float()


def pad_logits(logits: torch.Tensor, num_actions: int) -> torch.Tensor:
    """Pads (..., A_i) logits to (..., num_actions) with a very negative value,
    so padded actions get probability 0 (agents may have different |A_i|)."""
    missing = num_actions - logits.shape[-1]
    if missing == 0:
        return logits
    return torch.nn.functional.pad(logits, (0, missing), value=-1e9)


def flat_size(space: gym.Space) -> int:
    """Number of floats in a flattened observation of ``space``."""
    return int(gym.spaces.utils.flatdim(space))


def require_discrete(agent_id, space: gym.Space) -> int:
    """Returns the number of actions of a Discrete space, or raises a clear error."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            f"Agent '{agent_id}' has action space {space}; MAMT (discrete "
            "counterfactual baseline, Eq. 10) supports only gymnasium.spaces."
            "Discrete action spaces for now."
        )
    return int(space.n)


def has_stackable_forward(actor) -> bool:
    """Whether the actor's own class declares ``STACKABLE_FORWARD = True`` in
    its body: its forward pass is the actor MLP on the normalised flat
    observation (for a Gaussian actor, followed by its log-std), so the
    EnvRunner's sampler may evaluate it batched with other agents'
    (:class:`rllib_mamt.stacked_actors.StackedActors`).

    The declaration is not inherited: a subclass that changes the forward
    pass (a user's own actor) is evaluated through its own forward unless it
    declares the same.
    """
    return type(actor).__dict__.get("STACKABLE_FORWARD", False) is True


class MAMTActorModule(TorchRLModule):
    """Categorical policy over one agent's discrete actions from its own observation.

    ``model_config`` keys:
        actor_hidden_sizes: Hidden layer sizes (default (128, 128), MAAC's actor).
        actor_negative_slope: Negative slope of the hidden LeakyReLUs (default
            0.01, MAAC's actor; 0.0 is a ReLU).
        input_normalization: Whether the flat observation passes through
            :class:`InputNormalization` before the MLP (default True, MAAC's
            ``norm_in``). Its running statistics are buffers of this module, so
            they travel with the weights to the EnvRunners and into checkpoints.

    The module is built in eval mode, so every pass outside the learner's
    update (EnvRunners, evaluation, direct calls) uses running statistics.

    ``STACKABLE_FORWARD = True`` declares that this class's forward pass is
    ``policy_network(observation_normalization(flat observation))`` (see
    :func:`has_stackable_forward`).
    """

    STACKABLE_FORWARD = True

    def setup(self):
        self.build_networks(require_discrete("this module", self.action_space))
        self.eval()  # the learner switches to train mode for its update only

    def build_observation_normalization(self, size: int) -> nn.Module:
        """This actor's observation normalisation: MAAC's input normalisation
        (``input_normalization``). Subclasses may return another kind the
        stacked sampler knows (:mod:`rllib_mamt.stacked_normalization`)."""
        return build_input_normalization(
            size, self.model_config.get("input_normalization", DEFAULT_INPUT_NORMALIZATION)
        )

    def build_networks(self, output_size: int) -> None:
        """Builds ``observation_normalization`` and the LeakyReLU MLP
        ``policy_network`` with ``output_size`` outputs, from ``model_config``
        (``actor_hidden_sizes``, ``actor_negative_slope``)."""
        observation_size = flat_size(self.observation_space)
        self.observation_normalization = self.build_observation_normalization(observation_size)
        self.policy_network = build_policy_network(
            observation_size,
            output_size,
            self.model_config.get("actor_hidden_sizes", DEFAULT_ACTOR_HIDDEN_SIZES),
            self.model_config.get("actor_negative_slope", DEFAULT_NEGATIVE_SLOPE),
        )

    def normalized_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """The flat observations as the policy network sees them (see
        :class:`InputNormalization` for which statistics a pass uses)."""
        return self.observation_normalization(flatten_observations(observations))

    def action_logits(self, observations: torch.Tensor) -> torch.Tensor:
        """Logits of pi_i(. | o_i) for a batch of observations."""
        return self.policy_network(self.normalized_observations(observations))

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.action_logits(batch[Columns.OBS])}
