"""The MAAC attention critic Q_i(o, a) of every agent (paper Eq. 9).

Per agent i: a state encoder s_i = f_i(o_i), a state-action encoder
e_i = g_i(o_i, a_i), and a head that maps (s_i, x_i) to Q_i for *every* own
action, where x_i is what agent i attends to in the other agents' e_j through
shared multi-head attention (keys, queries and values shared across agents).
Because the head outputs all own actions, the counterfactual baseline
b_i = sum_a' pi_i(a'|o_i) Q_i(o, a', a_-i) of Eq. 10 is exact and costs nothing
extra. Attention is computed for all agents at once as a batched
(..., heads, n, n) tensor product; any leading batch dimensions are allowed.

With ``input_normalization`` (MAAC's default), the input of every encoder, o_i
for f_i and (o_i, one-hot a_i) for g_i, first passes through
:class:`~rllib_mamt.modules.actor.InputNormalization` (``BatchNorm1d(affine=
False)``): the critic's training forward normalises with the batch's
statistics and records them; every no-grad evaluation (target critic,
baselines, the counterfactual values of Eq. 5) uses the running statistics.
"""

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from rllib_mamt.modules.actor import build_input_normalization


def masked_softmax(logits: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of ``logits`` leaving out the ``excluded``
    entries (bool, broadcastable); a row with every entry excluded is all 0.

    Written as max-shift, exp, normalise: for the critic's attention (last axis
    = n agents, e.g. 8) ``torch.softmax`` over such a short axis ran ~5x slower
    on CPU than these element-wise ops (issue 15's profile), and the masked
    rows need no -inf fill.
    """
    shift = logits.masked_fill(excluded, float("-inf")).amax(-1, keepdim=True)
    shift = shift.masked_fill(torch.isinf(shift), 0.0).detach()
    exponentials = (logits - shift).exp().masked_fill(excluded, 0.0)
    total = exponentials.sum(-1, keepdim=True)
    return exponentials / total.masked_fill(total == 0, 1.0)


class AttentionCritic(nn.Module):
    """Centralized critics of all agents with shared attention.

    Args:
        observation_sizes: Flat observation size of each agent, in agent order.
        action_sizes: Number of discrete actions of each agent.
        hidden_dim: Width of every embedding (MAAC: 128).
        num_heads: Number of attention heads (Table 3: 4); must divide hidden_dim.
        input_normalization: Whether every encoder input is batch-normalised
            (MAAC's choice; MAMTCentralModule passes the config's
            ``input_normalization``, True by default); False feeds the raw
            inputs to the encoders.
    """

    def __init__(
        self,
        observation_sizes: Sequence[int],
        action_sizes: Sequence[int],
        hidden_dim: int = 128,
        num_heads: int = 4,
        input_normalization: bool = False,
    ):
        super().__init__()
        if hidden_dim % num_heads:
            raise ValueError(
                f"critic_hidden_dim={hidden_dim} must be divisible by "
                f"critic_attention_heads={num_heads}."
            )
        self.num_agents = len(observation_sizes)
        self.action_sizes = list(action_sizes)
        self.num_heads = num_heads
        self.head_dim = hidden_dim // num_heads
        self.state_normalizations = nn.ModuleList(
            build_input_normalization(size, input_normalization)
            for size in observation_sizes
        )
        self.state_action_normalizations = nn.ModuleList(
            build_input_normalization(size + actions, input_normalization)
            for size, actions in zip(observation_sizes, action_sizes)
        )
        self.state_encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(size, hidden_dim), nn.LeakyReLU())
            for size in observation_sizes
        )
        self.state_action_encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(size + actions, hidden_dim), nn.LeakyReLU())
            for size, actions in zip(observation_sizes, action_sizes)
        )
        self.q_heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(2 * hidden_dim, hidden_dim),
                nn.LeakyReLU(),
                nn.Linear(hidden_dim, actions),
            )
            for actions in action_sizes
        )
        self.key_projection = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.query_projection = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.value_projection = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU()
        )
        self.register_buffer(
            "self_mask", torch.eye(self.num_agents, dtype=torch.bool), persistent=False
        )

    def shared_parameters(self) -> List[nn.Parameter]:
        """Parameters every agent's Q_i depends on, whose gradient therefore sums
        n agents' losses (MAAC scales it by 1/n): the attention projections and
        each agent's state-action encoder g_j, whose output e_j every other
        agent attends to."""
        return [
            *self.key_projection.parameters(),
            *self.query_projection.parameters(),
            *self.value_projection.parameters(),
            *self.state_action_encoders.parameters(),
        ]

    def encode_states(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """s_i for every agent: (..., n, hidden)."""
        return torch.stack(
            [
                encoder(normalization(obs))
                for encoder, normalization, obs in zip(
                    self.state_encoders, self.state_normalizations, observations
                )
            ],
            dim=-2,
        )

    def encode_state_action(
        self, agent_index: int, observation: torch.Tensor, action_one_hot: torch.Tensor
    ) -> torch.Tensor:
        """e_i = g_i(o_i, a_i): (..., hidden)."""
        inputs = torch.cat([observation, action_one_hot], dim=-1)
        return self.state_action_encoders[agent_index](
            self.state_action_normalizations[agent_index](inputs)
        )

    def _excluded_pairs(self, alive: Optional[torch.Tensor]) -> torch.Tensor:
        """Bool mask of (query i, key j) pairs left out of the attention: j = i,
        and, given an alive mask (..., n), every dead key j. Shape (..., 1, n, n)
        (or (n, n) without a mask)."""
        if alive is None:
            return self.self_mask
        dead_keys = (alive < 0.5).unsqueeze(-2).unsqueeze(-3)
        return self.self_mask | dead_keys

    @torch.no_grad()
    def copy_normalization_statistics_(self, source: "AttentionCritic") -> None:
        """Copies ``source``'s running input statistics into this critic.

        The target critic normalises with the online critic's running
        statistics: ``BatchNorm1d(affine=False)`` has no parameters for the
        soft update to average, and the statistics describe the replayed
        inputs, not the critic's weights (the same hard copy of running
        statistics into targets as, e.g., Stable-Baselines3's SAC/TD3).
        """
        for own, theirs in zip(self.normalization_modules(), source.normalization_modules()):
            for name, buffer in own.named_buffers():
                buffer.copy_(theirs.get_buffer(name))

    def normalization_modules(self) -> List[nn.Module]:
        """The input normalisations of all encoders (identities when disabled)."""
        return [*self.state_normalizations, *self.state_action_normalizations]

    def attend(
        self, states: torch.Tensor, state_actions: torch.Tensor,
        alive: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_i = sum_{j != i} softmax_j(q_i . k_j / sqrt(d)) v_j for every agent.

        Args:
            states: (..., n, hidden) state embeddings s_i (queries).
            state_actions: (..., n, hidden) state-action embeddings e_j.
            alive: Optional (..., n) mask, 0 for agents that have left the
                episode: they are no key of anyone's attention; an agent with
                no live other agent attends to nothing (x_i = 0).

        Returns:
            (attended, logits): (..., n, hidden) and the raw attention logits
            (..., heads, n, n), 0 on the pairs excluded from the softmax and
            on the rows of dead agents.
        """
        leading = states.shape[:-2]
        n = self.num_agents

        def split_heads(x):
            return x.reshape(*leading, n, self.num_heads, self.head_dim).transpose(
                -3, -2
            )

        queries = split_heads(self.query_projection(states))
        keys = split_heads(self.key_projection(state_actions))
        values = split_heads(self.value_projection(state_actions))
        logits = queries @ keys.transpose(-1, -2) / math.sqrt(self.head_dim)
        excluded = self._excluded_pairs(alive)
        weights = masked_softmax(logits, excluded)
        attended = (weights @ values).transpose(-3, -2).reshape(*leading, n, -1)
        logits = logits.masked_fill(excluded, 0.0)
        if alive is not None:  # a dead agent's query logits are meaningless too
            logits = logits.masked_fill((alive < 0.5).unsqueeze(-1).unsqueeze(-3), 0.0)
        return attended, logits

    def all_action_values(
        self, states: torch.Tensor, attended: torch.Tensor
    ) -> List[torch.Tensor]:
        """Q_i(o, a', a_-i) for every own action a' of every agent i.

        The agents' rows are taken apart with one ``unbind``: indexing agent i
        out of the (..., n, 2 * hidden) input would make every agent's backward
        zero-fill a gradient of the whole input.
        """
        inputs = torch.cat([states, attended], dim=-1).unbind(-2)
        return [head(row) for row, head in zip(inputs, self.q_heads)]

    def forward(
        self, observations: Sequence[torch.Tensor], actions: torch.Tensor,
        alive: Optional[torch.Tensor] = None,
    ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Q-values of all own actions per agent, given the others' actions.

        Args:
            observations: One (B, obs_i) tensor per agent.
            actions: (B, n) integer joint actions.
            alive: Optional (B, n) alive mask; dead agents are left out of the
                others' attention (see :meth:`attend`).

        Returns:
            (q_values, attention_logits): a list of (B, |A_i|) tensors and the
            (B, heads, n, n) attention logits (for MAAC's regulariser).
        """
        states = self.encode_states(observations)
        state_actions = torch.stack(
            [
                self.encode_state_action(
                    index, obs, F.one_hot(actions[:, index], size).float()
                )
                for index, (obs, size) in enumerate(zip(observations, self.action_sizes))
            ],
            dim=-2,
        )
        attended, logits = self.attend(states, state_actions, alive)
        # fp32 outputs also under autocast (losses are formed in fp32)
        return [q.float() for q in self.all_action_values(states, attended)], logits.float()

    @torch.no_grad()
    def counterfactual_values(
        self,
        observations: Sequence[torch.Tensor],
        actions: torch.Tensor,
        policy_probs: torch.Tensor,
        alive: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Q_i(o, a) and Q_i(a_\\j) of Eq. 5 for every ordered pair (i, j) at once.

        Q_i(a_\\j) = sum_a' pi_j(a'|o_j) Q_i(o, a'_j, a_-j): agent j's replayed
        action is replaced by each of its actions and marginalised under pi_j.
        Replacing a_j changes only j's key and value, i.e. one term of agent i's
        attention softmax. With Z_-j and U_-j the softmax denominator and
        weighted value sum over the agents k not in {i, j}, the attended vector
        is (U_-j + e^(l') v'_(j,a')) / (Z_-j + e^(l')) for the replaced logit l'
        and value v'; no softmax over all agents is recomputed. The Q heads'
        first layer is split into a state part computed once per agent and an
        attended part evaluated per (j, a').

        Cost per sample: O(n^2 * A * H^2) multiply-adds in the Q heads (the
        n * A state-action embeddings and their keys/values cost O(n * A * H^2));
        memory O(n^2 * A * H). For n = 8, A = 5, H = 128 that is ~1.3 M MACs a
        sample, so callers evaluate it on a sub-batch (``coordination_batch_size``).

        Evaluated without gradient (Eq. 5's C is computed "in advance"), so the
        input normalisation uses the running statistics: the n * A tiled
        state-action rows are normalised as the replayed ones were in training
        and are never recorded into the statistics.

        Args:
            observations: One (B, obs_i) tensor per agent.
            actions: (B, n) replayed joint actions.
            policy_probs: (B, n, A_max) pi_j(. | o_j), zero on padded actions.
            alive: Optional (B, n) alive mask: dead agents k are left out of the
                attention sums; pairs (i, j) with a dead i or j are meaningless
                (callers mask them, :func:`rllib_mamt.algorithms.mamt.coordination.coefficients_from_influence`).

        Returns:
            (q_joint, q_without): (B, n) and (B, n, n). The diagonal of
            ``q_without`` is agent i's own marginal Q_i(a_\\i) = sum_a pi_i(a|o_i)
            Q_i(o, a, a_-i): Eq. 5 ignores it; the ``"relative"`` coordination
            normalisation measures the other agents' influence against it.
        """
        n, heads, d = self.num_agents, self.num_heads, self.head_dim
        max_actions = max(self.action_sizes)
        batch = actions.shape[0]
        states = self.encode_states(observations)
        all_embeddings = torch.stack(
            [
                F.pad(
                    self.encode_state_action(
                        k,
                        obs.unsqueeze(1).expand(batch, size, obs.shape[-1]),
                        torch.eye(size, device=obs.device).expand(batch, size, size),
                    ),
                    (0, 0, 0, max_actions - size),
                )
                for k, (obs, size) in enumerate(zip(observations, self.action_sizes))
            ],
            dim=1,
        )  # (B, n, A, H)
        queries = self.query_projection(states).reshape(batch, n, heads, d)
        all_keys = self.key_projection(all_embeddings).reshape(batch, n, max_actions, heads, d)
        all_values = self.value_projection(all_embeddings).reshape(
            batch, n, max_actions, heads, d
        )
        index = actions.reshape(batch, n, 1, 1, 1).expand(batch, n, 1, heads, d)
        keys = all_keys.gather(2, index).squeeze(2)  # (B, k, h, d)
        values = all_values.gather(2, index).squeeze(2)
        scale = 1.0 / math.sqrt(d)
        logits = torch.einsum("bihd,bkhd->bihk", queries, keys) * scale
        replaced_logits = torch.einsum("bihd,bjahd->bijah", queries, all_keys) * scale
        others = ~self.self_mask  # [i, k]: k != i
        shift = torch.maximum(
            logits.masked_fill(self.self_mask.view(1, n, 1, n), float("-inf")).amax(-1),
            replaced_logits.amax(dim=(2, 3)),
        ).detach()  # (B, i, h)
        weights = (logits - shift.unsqueeze(-1)).exp() * others.view(1, n, 1, n)
        if alive is not None:
            weights = weights * (alive >= 0.5).view(batch, 1, 1, n)
        excluded = others.float()  # [k, j]: k != j
        denominator = torch.einsum("bihk,kj->bijh", weights, excluded)  # Z_-j
        weighted_values = torch.einsum("bihk,kj,bkhd->bijhd", weights, excluded, values)
        # Contiguous (B, i, j, a', h): the einsum's output is a permuted view,
        # and products with it would inherit that layout (and need a copy to
        # be reshaped for the Q heads).
        replaced_weights = (
            (replaced_logits - shift.view(batch, n, 1, 1, heads)).exp().contiguous()
        )
        q_own, own_values = self._replaced_action_values(
            states, actions, replaced_weights, denominator, weighted_values, all_values
        )
        q_without = (q_own * policy_probs.unsqueeze(0)).sum(-1).transpose(0, 1)  # (B, i, j)
        if alive is not None:
            # The replaced-agent formula above always counts agent (i + 1) % n,
            # alive or not; with dead agents, Q_i(o, .) comes from a plain pass.
            own_values, _ = self.forward(observations, actions, alive)
        q_joint = torch.stack(
            [q.gather(-1, actions[:, i : i + 1]).squeeze(-1) for i, q in enumerate(own_values)],
            dim=-1,
        )
        own_marginal = torch.stack(
            [(policy_probs[:, i, : q.shape[-1]] * q).sum(-1) for i, q in enumerate(own_values)],
            dim=-1,
        )  # Q_i(a_\\i) = sum_a pi_i(a | o_i) Q_i(o, a, a_-i)
        eye = torch.eye(n, device=actions.device)
        q_without = q_without * (1 - eye) + torch.diag_embed(own_marginal)
        return q_joint.float(), q_without.float()

    def _replaced_action_values(
        self, states, actions, replaced_weights, denominator, weighted_values, all_values
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The Q heads on every replaced-action attended vector of
        :meth:`counterfactual_values`, one agent i at a time.

        Agent i's (B, n - 1, A, H) attended vectors, one per other agent j and
        action a', are built in one buffer (products, sums and quotients in
        place) and fed straight to its Q head. j = i is skipped: replacing
        agent i's own action is not a counterfactual of Eq. 5 (the diagonal
        of ``q_without`` is agent i's own marginal, computed from
        ``own_values``), so its slot of ``q_own`` is 0. Going agent by agent
        keeps every intermediate ~1/n of the (B, n, n, A, H) tensor a single
        batched pass would allocate: on CPU, freshly allocated tensors of
        that size cost more in page faults than their arithmetic.

        Returns:
            (q_own, own_values): (n_i, B, n_j, A) Q_i(o, a'_j, a_-j) at agent i's
            replayed action (0 where j = i), and per agent i the (B, |A_i|)
            values Q_i(o, ., a_-i) (replacing agent (i + 1) % n's action by its
            replayed one leaves the joint action as replayed).
        """
        n, max_actions = self.num_agents, max(self.action_sizes)
        batch, hidden = states.shape[0], states.shape[-1]
        rows = torch.arange(batch, device=actions.device)
        # (B, n - 1, A, h, d), reused for every i: slots [:i] hold j < i, [i:] j > i
        attended = all_values.new_empty(batch, n - 1, *all_values.shape[2:])
        q_own = all_values.new_zeros(n, batch, n, max_actions)
        own_values = []
        for i, head in enumerate(self.q_heads):
            first, activation, last = head[0], head[1], head[2]
            for slots, others in ((slice(0, i), slice(0, i)), (slice(i, n - 1), slice(i + 1, n))):
                weights = replaced_weights[:, i, others]  # (B, j, A, h)
                target = attended[:, slots]
                torch.mul(weights.unsqueeze(-1), all_values[:, others], out=target)
                target.add_(weighted_values[:, i, others].unsqueeze(2))
                target.div_((denominator[:, i, others].unsqueeze(2) + weights).unsqueeze(-1))
            state_part = F.linear(states[:, i], first.weight[:, :hidden], first.bias)
            pre = attended.view(batch, n - 1, max_actions, hidden) @ first.weight[:, hidden:].T
            pre = F.leaky_relu(
                pre.add_(state_part[:, None, None]), activation.negative_slope, inplace=True
            )
            q_all_own = last(pre)  # (B, j != i, a', A_i)
            own = actions[:, i].view(batch, 1, 1, 1).expand(batch, n - 1, max_actions, 1)
            q_at_own = q_all_own.gather(-1, own).squeeze(-1)  # (B, j != i, a')
            q_own[i, :, :i] = q_at_own[:, :i]
            q_own[i, :, i + 1 :] = q_at_own[:, i:]
            other = (i + 1) % n
            slot = other if other < i else other - 1
            own_values.append(q_all_own[rows, slot, actions[:, other]])
        return q_own, own_values
