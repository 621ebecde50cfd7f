"""LOLA(+DQN): Learning with Opponent-Learning Awareness (Foerster et al.,
2018a) combined with DQN, the paper's Table 10 baseline on 2-agent Spread.

The paper says only "We combine LOLA with DQN to solve more complex stochastic
game" and gives Table 7's settings (one Adam optimiser setting, MSE value
loss, replay buffer, batch 1024, 4 updates per 100 steps, one gradient clip).
This package implements the following, for exactly two agents with discrete
actions (n != 2 is rejected when the config is validated):

* **DQN part, value learning.** Each agent i has a centralised joint-action
  Q-network Q_i(o_0, o_1) in R^{A_0 x A_1}, with one output unit per joint
  action as DQN has one per action, and a soft-updated target copy Q'_i. It is
  trained off-policy on shuffled minibatches of the joint replay buffer by the
  MSE TD loss (Q_i(o)[a_0, a_1] - y_i)^2 with
  y_i = r_i + gamma (1 - d) pi_0(o'_0)^T Q'_i(o') pi_1(o'_1).
  The bootstrap is the expectation under both current policies rather than
  DQN's max: a max over joint actions would value a joint greedy policy that
  neither learner follows, and LOLA needs V_i of the current policy pair.
* **LOLA part, policy learning.** Each agent has a decentralised softmax
  policy pi_i(a_i | o_i; theta_i), the differentiable policy LOLA's gradient
  needs; it is what the EnvRunners sample and, with argmax, what evaluation
  runs. Each agent's value as a function of both policies is the batch mean
  V_i(theta_0, theta_1) = mean_b pi_0(o_0; theta_0)^T Q_i(o) pi_1(o_1; theta_1),
  with Q_i held fixed. Per state this is exactly the bilinear value of a matrix
  game with payoff matrix Q_i(o), the setting of LOLA's exact-gradient
  experiments, which is why the same function
  (:func:`~rllib_mamt.algorithms.lola.losses.lola_gradients`) is checked on
  exact matrix-game values in the tests. Each agent ascends
  grad_{theta_i} V_i(theta_i, theta_j + delta_j) with
  delta_j = eta grad_{theta_j} V_j(theta_i, theta_j), differentiated
  through delta_j (the second-order term), both agents at the same point.
  With eta = 0 the agents are naive learners on the same critics.

Why this reading: Table 7's keys are those of a value learner (MSE value loss,
replay buffer, shuffled transitions, a single optimiser setting) and
carry no policy-specific entry, so the "DQN" is the value estimator that
replaces LOLA's Monte-Carlo returns, making it off-policy and usable on a
stochastic game. LOLA itself is a gradient method on policy parameters, so the
policies stay separate networks (a Boltzmann policy over the agent's own
Q-network would have LOLA's gradient overwrite the TD fit). The Q-networks
see the joint action so that V_i depends on the opponent's parameters at
all; LOLA's lookahead is empty otherwise. Table 7's Adam settings and clip
grad (10 * n) apply to both networks; its "regularization (L2, 1.0)" has no
counterpart (see :class:`LOLAConfig`). What is not modelled: the effect of
a policy change on which states are visited (V_i is the critic's value on
replayed states), as in MADDPG's and MAAC's actor updates.
"""

from rllib_mamt.algorithms.lola.lola import LOLA
from rllib_mamt.algorithms.lola.lola_config import LOLAConfig

__all__ = ["LOLA", "LOLAConfig"]
