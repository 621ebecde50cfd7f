"""Spread as the paper's code ran it: the MPE fork used by MAAC and MAMT.

Two facts separate that fork (and the original OpenAI MPE) from ``mpe2``'s
``simple_spread`` (see DESIGN.md, "Spread: ours versus the paper's"):

- Self-collision. The original scenario's reward loops over *all* agents,
  the agent itself included, and an agent always "collides" with itself
  (distance 0 < 2 x size), so every agent gets -1 every step on top of its
  real collisions. ``mpe2`` skips the agent itself.
- Integration order. The original world damps the velocity, adds force / mass
  x dt and then moves the position with the new velocity (semi-implicit Euler):
  an action moves its agent in the same step. ``mpe2`` moves the position with
  the old velocity first, so an action shows in the position one step later.

:func:`apply_paper_variant` turns an ``mpe2`` simple_spread into that variant.
"""

import numpy as np
from mpe2.simple_spread.simple_spread import ExtendedWorld
from pettingzoo.utils.wrappers import BaseParallelWrapper

SELF_COLLISION_PENALTY = -1.0


class VelocityFirstWorld(ExtendedWorld):
    """``mpe2``'s Spread world integrated as the original MPE: velocity, then position."""

    def integrate_state(self, p_force):
        """Semi-implicit Euler step; ``p_force`` is the per-entity force or ``None``."""
        for entity, force in zip(self.entities, p_force):
            if not entity.movable:
                continue
            entity.state.p_vel = entity.state.p_vel * (1.0 - self.damping)
            if force is not None:
                entity.state.p_vel = entity.state.p_vel + (force / entity.mass) * self.dt
            if entity.max_speed is not None:
                speed = float(np.linalg.norm(entity.state.p_vel))
                if speed > entity.max_speed:
                    entity.state.p_vel = entity.state.p_vel / speed * entity.max_speed
            entity.state.p_pos = entity.state.p_pos + entity.state.p_vel * self.dt


class SelfCollisionPenalty(BaseParallelWrapper):
    """Adds the original scenario's -1 per agent per step for colliding with itself."""

    def step(self, actions):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        rewards = {agent: reward + SELF_COLLISION_PENALTY for agent, reward in rewards.items()}
        return observations, rewards, terminations, truncations, infos


def apply_paper_variant(env):
    """Returns ``env`` (a global-plus-local Spread) with the fork's physics and reward.

    Args:
        env: The parallel Spread env whose per-agent reward is already the
            paper's global + local sum (``GlobalPlusLocalReward``).
    """
    world = env.unwrapped.world
    if type(world) is not ExtendedWorld:
        raise TypeError(f"expected mpe2's simple_spread world, got {type(world).__name__}")
    world.__class__ = VelocityFirstWorld
    return SelfCollisionPenalty(env)
