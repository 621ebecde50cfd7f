"""Observations of any flattenable gymnasium space as flat float vectors.

MAMT's actors, critic and joint replay buffer take one flat vector per agent.
Dict, Tuple, Discrete, MultiDiscrete and MultiBinary observations are flattened
with gymnasium's own ``gymnasium.spaces.flatten`` (Discrete parts one-hot), and
their size is ``gymnasium.spaces.flatdim`` everywhere (``modules.actor.flat_size``),
so the sampler, the buffer and the networks agree.
"""

from functools import partial
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np


def observation_flattener(space: gym.Space) -> Optional[Callable[[Any], np.ndarray]]:
    """A function mapping one observation of ``space`` to its flat vector, or
    None for a Box, whose flat vector is just ``np.reshape(value, -1)`` (what
    ``gymnasium.spaces.flatten`` gives, without a per-step function call)."""
    if isinstance(space, gym.spaces.Box):
        return None
    return partial(gym.spaces.flatten, space)


def require_flattenable(agent_id, space: gym.Space) -> None:
    """Raises a clear error for an observation space gymnasium cannot flatten
    to a fixed-size vector (Graph, Sequence, ...)."""
    if not space.is_np_flattenable:
        raise ValueError(
            f"Agent '{agent_id}' has observation space {space}; MAMT supports Box, "
            "Discrete, MultiDiscrete, MultiBinary and Dict/Tuple of these "
            "(flattened with gymnasium.spaces.flatten)."
        )
