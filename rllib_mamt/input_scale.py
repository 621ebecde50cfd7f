"""Whether an observation space needs input normalisation (``input_normalization="auto"``).

MAAC batch-normalises every actor and critic input. On Spread that slowed
learning markedly (BENCHMARKS.md, issue 11: MAAC -52 vs -44 at 60k steps), so
MAMT normalises only where raw inputs would not train: an observation space
that declares values beyond ``LARGE_BOUND`` in magnitude (pixels 0-255, raw
sensor counts). Unbounded spaces (-inf, inf), as MPE declares, carry no scale
information and are left as they are; set ``input_normalization=True`` for them
if their values are large.
"""

import gymnasium as gym
import numpy as np

LARGE_BOUND = 100.0


def declares_large_values(space: gym.Space) -> bool:
    """True if the flattened ``space`` has a finite bound beyond ±LARGE_BOUND."""
    flat = gym.spaces.flatten_space(space)
    bounds = np.concatenate([np.ravel(flat.low), np.ravel(flat.high)]).astype(np.float64)
    finite = bounds[np.isfinite(bounds)]
    return bool(finite.size and np.abs(finite).max() > LARGE_BOUND)
