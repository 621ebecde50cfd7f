"""When a multi-agent episode is over, and whether its last step is a true terminal.

MAMT's rule, used by :class:`rllib_mamt.envs.PettingZooMultiAgentEnv` to set
``__all__`` and by :class:`rllib_mamt.joint_env_runner.JointEnvRunner` to read
any RLlib ``MultiAgentEnv``:

* an agent is done when it is terminated or truncated; an agent flagged both is
  terminated (gymnasium: a terminal state is never bootstrapped);
* the episode is over when every agent is done (at this step or earlier) or
  the env sets ``terminateds["__all__"]`` or ``truncateds["__all__"]``;
* the last joint transition is a true terminal (d = 1: no bootstrap for any
  agent) when the env set ``terminateds["__all__"]`` or every agent is
  terminated, also if a time limit ended the episode on the same step (a true
  termination is never bootstrapped). Otherwise, if some agent was only
  truncated (a time limit), d = 0 and the critic targets bootstrap from the
  last observation.

Per agent, the joint buffer's ``next_alive`` mask makes a mixed end exact: an
agent terminated on the last step (or that left earlier) has next_alive = 0 and
is not bootstrapped; an agent truncated on the last step keeps next_alive = 1
and is. An agent truncated before the episode's end leaves it like a terminated
one (its future is not observed).
"""

from typing import Collection, Mapping, Sequence, Tuple


def episode_end(
    agent_ids: Sequence,
    terminateds: Mapping,
    truncateds: Mapping,
    terminated_before: Collection = (),
) -> Tuple[bool, bool]:
    """Applies MAMT's episode-end rule (module docstring) to one step's flags.

    Args:
        agent_ids: Every agent of the env.
        terminateds: The step's per-agent terminated flags (and maybe ``__all__``).
        truncateds: The step's per-agent truncated flags (and maybe ``__all__``).
        terminated_before: Agents that terminated at an earlier step of the episode.

    Returns:
        (over, terminal): whether the episode is over, and whether its last
        transition is a true terminal state (no bootstrap).
    """
    terminated = {a for a in agent_ids if terminateds.get(a)} | set(terminated_before)
    truncated = {a for a in agent_ids if truncateds.get(a)} - terminated
    all_terminated = bool(terminateds.get("__all__"))
    all_truncated = bool(truncateds.get("__all__"))
    every_agent_done = all(a in terminated or a in truncated for a in agent_ids)
    over = all_terminated or all_truncated or every_agent_done
    terminal = all_terminated or len(terminated) == len(agent_ids)
    return over, terminal


def all_flags(agent_ids: Sequence, terminateds: Mapping, truncateds: Mapping) -> Tuple[bool, bool]:
    """``(terminateds["__all__"], truncateds["__all__"])`` by MAMT's rule.

    ``terminateds["__all__"]`` is True only for a true terminal; an episode that
    is over otherwise (some agent truncated) reports ``truncateds["__all__"]``.
    """
    over, terminal = episode_end(agent_ids, terminateds, truncateds)
    return terminal, over and not terminal
