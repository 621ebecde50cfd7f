"""Joint rows of an on-policy sample laid out as per-sub-env trajectories.

The JointEnvRunner returns one chunk per ``sample()`` call whose rows are in
step order across its vectorised sub-envs (row = step * num_envs + env), with
an ``env_indices`` and an ``episode_ends`` column. GAE needs each sub-env's
rows in time order, cut where an episode ends, at the end of the chunk, and
where a restarted sub-env's rows were dropped: :func:`trajectory_rows` sorts
every chunk by sub-env (stably, so time order is kept) and adds
``continues`` = 1 where the next row is the next step of the same episode.
"""

from typing import Dict, List

import numpy as np

from rllib_mamt.joint_transitions import ENV_INDICES, EPISODE_ENDS

CONTINUES = "continues"


def sort_by_sub_env(rows: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """One chunk's rows with each sub-env's rows contiguous and in time order."""
    if ENV_INDICES not in rows or EPISODE_ENDS not in rows:
        raise ValueError(
            f"MAPPO needs the '{ENV_INDICES}' and '{EPISODE_ENDS}' columns of "
            "rllib_mamt's JointEnvRunner to cut trajectories; got a chunk with "
            f"columns {sorted(rows)}: sample with env_runner_cls=JointEnvRunner."
        )
    order = np.argsort(rows[ENV_INDICES], kind="stable")
    return {key: column[order] for key, column in rows.items()}


def with_continues(rows: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Adds ``continues`` to one sub-env-sorted chunk: 1 where the next row is
    the same sub-env's next step and this row's step did not end the episode."""
    env = rows[ENV_INDICES]
    same_sub_env = np.append(env[1:] == env[:-1], False)
    continues = same_sub_env & (rows[EPISODE_ENDS] < 0.5)
    return {**rows, CONTINUES: continues.astype(np.float32)}


def trajectory_rows(chunks: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Concatenates sub-env-sorted chunks with their ``continues`` column;
    a trajectory never continues from one chunk into the next."""
    parts = [with_continues(chunk) for chunk in chunks]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
