"""Do the δ slopes depend on the horizon of the policy update they are read from?

    python benchmarks/delta_horizon.py CHECKPOINT [--horizons 1 3 10 30 100]
        [--epsilon 0.2] [--evaluation-rows 8192] [--seed 0] [--agents ...] [--out results.json]

The learner reads F(δ) = Σ_i V_i − Σ_i D_ns,i (§3.2) through the one-step
hypergradients of :mod:`rllib_mamt.algorithms.mamt.delta_allocation`: value
slope −∇L_j^PG·∇D_q,j/δ_j and drift slope ∇N_j·∇D_q,j/δ_j, both per unit
actor step. On Rover-Tower the drift slope is 5-50× the value slope for every
agent (BENCHMARKS.md, session 9), so the budget flows to whoever drifts least.
One suspected cause is the short-horizon bias of one-step hypergradients
(Wu et al., ICLR 2018): ∇N_j and ∇D_q,j both point back toward older policies,
so they align at every step, while one minibatch's policy gradient is mostly
noise that only adds up over many steps.

This script measures the slopes of K actor steps by central finite differences,
from a trained checkpoint, and compares them with the learner's one-step slopes:

* for each agent j and sign ±, the actors and their optimisers are restored,
  log δ_j is shifted by ±ε (the other δ stay), and the actors take K steps on
  the learner's own actor losses, on the same K minibatches and the same
  action samples for every shift (paired); the critic, opponent models, C and
  the m-update-old actors π_old stay as restored (one mirror-descent lag
  window when K ≤ ``mirror_descent_lag``);
* after k ∈ ``--horizons`` steps, on a fixed evaluation batch:
  V_i = E_o Σ_a π_i'(a|o_i) Q⁰_i(o, a, a⁰_-i) with the restored critic and the
  others' actions sampled once from the restored policies, and
  D = Σ_i D_ns,i(π') (Eq. 6) with the restored opponent models and C;
* slopes per unit log δ_j: (X(+ε) − X(−ε)) / 2ε for X = V_j, Σ_i V_i, D.

The one-step slopes are the learner's own (``delta_value_slope``,
``delta_drift_slope``), logged on the same minibatches by an unshifted run;
they are per unit actor step size, so only their ratio is compared. If the
K-step value/drift ratio grows with K, the one-step reading undervalues a
looser region. Prints a table and writes JSON.
"""

import argparse
import copy
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def build_inputs(learner, data):
    """The fixed evaluation quantities: observations, Q⁰ for every own action,
    C⁰, log h⁰ (opponent models) and the padded action count."""
    from rllib_mamt.alive_masks import alive_masks, no_op_for_dead
    from rllib_mamt.joint_replay_buffer import ACTIONS, obs_key
    from rllib_mamt.modules.actor import pad_logits

    central = learner._central()
    n = len(learner.agent_ids)
    observations = [data[obs_key(k)] for k in range(n)]
    actions = data[ACTIONS].long()
    alive, _ = alive_masks(data)
    generator = torch.Generator(device=actions.device).manual_seed(0)
    with torch.no_grad():
        probs = [torch.softmax(policy_logits(learner, agent, obs), -1)
                 for agent, obs in zip(learner.agent_ids, observations)]
        sampled = torch.stack([torch.multinomial(p, 1, generator=generator).squeeze(-1)
                               for p in probs], dim=-1)
        sampled = no_op_for_dead(sampled, alive)
        q_values, _ = central.critic(observations, sampled, alive)
        policy_log_probs = torch.stack(
            [pad_logits(p.log(), central.max_actions) for p in probs], dim=1).log_softmax(-1)
        coefficients, _ = learner._coordination_coefficients(
            central, observations, actions, policy_log_probs.exp(), alive)
        predicted = central.opponent_models(observations).float().log_softmax(-1)
    return dict(observations=observations, q_values=[q.double() for q in q_values],
                coefficients=coefficients.double(), predicted=predicted.double(),
                max_actions=central.max_actions)


def policy_logits(learner, agent, observations, dtype=torch.float32):
    """Agent's logits on ``observations`` with its network cast to ``dtype``
    (float64 for the measurements, whose differences are small)."""
    actor = learner._actor(agent)
    network = actor.policy_network
    if dtype != torch.float32:
        network = copy.deepcopy(network).to(dtype)
    return network(actor.normalized_observations(observations).to(dtype)).to(dtype)


def measure(learner, inputs, non_stationarity_range):
    """(V_i for every agent, D = Σ_i D_ns,i) of the current actors, in float64."""
    from rllib_mamt.algorithms.mamt.coordination import non_stationarity
    from rllib_mamt.modules.actor import pad_logits

    with torch.no_grad():
        log_probs = [torch.log_softmax(policy_logits(learner, agent, obs, torch.float64), -1)
                     for agent, obs in zip(learner.agent_ids, inputs["observations"])]
        values = [(lp.exp() * q).sum(-1).mean().item()
                  for lp, q in zip(log_probs, inputs["q_values"])]
        stacked = torch.stack([pad_logits(lp, inputs["max_actions"]) for lp in log_probs],
                              dim=1).log_softmax(-1)
        drift = non_stationarity(inputs["coefficients"], inputs["predicted"], stacked,
                                 non_stationarity_range).sum(-1).mean().item()
    return values, drift


def actor_step(learner, batch):
    """One step of every actor's optimiser on the learner's own actor losses;
    returns the learner's one-step (value, drift) slopes logged on ``batch``."""
    from rllib_mamt.algorithms.mamt.mamt_learner import POLICY_OPTIMIZER

    with learner.train_mode(), learner._forward_precision():
        learner.compute_losses(fwd_out={}, batch=batch)
    optimizers = [learner.get_optimizer(agent, POLICY_OPTIMIZER) for agent in learner.agent_ids]
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    sum(learner._losses_by_optimizer[(agent, POLICY_OPTIMIZER)]
        for agent in learner.agent_ids).backward()
    learner._losses_by_optimizer = {}
    for agent, optimizer in zip(learner.agent_ids, optimizers):
        learner._clip_optimizer_gradients(agent, POLICY_OPTIMIZER)
        optimizer.step()
    return [(float(learner.metrics.peek((agent, "delta_value_slope"))),
             float(learner.metrics.peek((agent, "delta_drift_slope"))))
            for agent in learner.agent_ids]


class Snapshot:
    """The learner's modules, actor optimisers and sampling generator, to
    restore before every shifted run."""

    def __init__(self, learner):
        from rllib_mamt.algorithms.mamt.mamt_learner import POLICY_OPTIMIZER

        self.learner = learner
        self.modules = {module_id: copy.deepcopy(learner.module[module_id].state_dict())
                        for module_id in learner.module.keys()}
        self.optimizers = {agent: copy.deepcopy(
            learner.get_optimizer(agent, POLICY_OPTIMIZER).state_dict())
            for agent in learner.agent_ids}
        self.generator = learner._sampling_generator.get_state()

    def restore(self):
        from rllib_mamt.algorithms.mamt.mamt_learner import POLICY_OPTIMIZER

        learner = self.learner
        for module_id, state in self.modules.items():
            learner.module[module_id].load_state_dict(state)
        for agent, state in self.optimizers.items():
            # a copy: load_state_dict keeps the given tensors, which the next steps
            # would change in place
            learner.get_optimizer(agent, POLICY_OPTIMIZER).load_state_dict(copy.deepcopy(state))
        learner._sampling_generator.set_state(self.generator)


def run(learner, snapshot, batches, inputs, horizons, agent_index, shift, config):
    """Restores, shifts log δ of ``agent_index`` by ``shift`` (None: no shift),
    steps the actors; {k: (values, drift)} and the per-step one-step slopes."""
    snapshot.restore()
    if agent_index is not None:
        with torch.no_grad():
            learner._central().log_trust_region_deltas[agent_index] += shift
    readings, slopes = {}, []
    for k, batch in enumerate(batches, start=1):
        slopes.append(actor_step(learner, batch))
        if k in horizons:
            readings[k] = measure(learner, inputs, tuple(config.non_stationarity_range))
    return readings, slopes


def horizon_slopes(algo, horizons, epsilon, evaluation_rows, seed=0, agents=None):
    """The K-step slopes of a MAMT ``algo`` (see module doc) as a JSON-ready dict:
    per shifted agent and horizon, dV_j, dΣV and dD per unit log δ_j, and the
    learner's one-step value/drift ratio on the same minibatches. The learner's
    state is restored afterwards."""
    from checkpoint_rows import SeededRows

    from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

    config = algo.config
    if config.trust_region_update != "hypergradient":
        raise ValueError(f"trust_region_update is {config.trust_region_update!r}; allowed: "
                         "'hypergradient' (the reading whose slopes are measured)")
    if min(horizons) < 1:
        raise ValueError(f"horizons {list(horizons)}: allowed: positive step counts")
    learner = algo.learner_group._learner
    names = list(learner.agent_ids)
    unknown = sorted(set(agents or []) - set(names))
    if unknown:
        raise ValueError(f"agents {unknown}: allowed: {names}")
    seeded_rows = SeededRows(algo, seed)

    def draw(rows):
        return {CENTRAL_MODULE_ID: seeded_rows(rows)}

    horizons = sorted(set(horizons))
    batches = [draw(config.train_batch_size_per_learner) for _ in range(max(horizons))]
    inputs = build_inputs(learner, seeded_rows(evaluation_rows))
    snapshot = Snapshot(learner)
    deltas = learner._central().log_trust_region_deltas.detach().exp().tolist()
    try:
        unshifted, one_step = run(learner, snapshot, batches, inputs, horizons, None, 0.0,
                                  config)
        result = {"epsilon": epsilon, "horizons": horizons, "seed": seed,
                  "evaluation_rows": evaluation_rows,
                  "batch_rows": config.train_batch_size_per_learner,
                  "mirror_descent_lag": config.mirror_descent_lag, "deltas": deltas,
                  "one_step_slopes": {agent: {"value": [s[j][0] for s in one_step],
                                              "drift": [s[j][1] for s in one_step]}
                                      for j, agent in enumerate(names)},
                  "unshifted": {str(k): {"values": v, "drift": d}
                                for k, (v, d) in unshifted.items()},
                  "agents": {}}
        for j, agent in enumerate(names):
            if agents and agent not in agents:
                continue
            plus, _ = run(learner, snapshot, batches, inputs, horizons, j, epsilon, config)
            minus, _ = run(learner, snapshot, batches, inputs, horizons, j, -epsilon, config)
            rows = {"delta": deltas[j]}
            for k in horizons:
                (values_plus, drift_plus), (values_minus, drift_minus) = plus[k], minus[k]
                rows[str(k)] = {
                    "own_value_slope": (values_plus[j] - values_minus[j]) / (2 * epsilon),
                    "total_value_slope": (sum(values_plus) - sum(values_minus)) / (2 * epsilon),
                    "drift_slope": (drift_plus - drift_minus) / (2 * epsilon),
                }
            first = [s[j] for s in one_step]
            mean_drift = sum(d for _, d in first) / len(first)
            rows["one_step_ratio"] = (sum(v for v, _ in first) / len(first) / mean_drift
                                      if mean_drift else float("nan"))
            result["agents"][agent] = rows
    finally:
        snapshot.restore()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 3, 10, 30, 100])
    parser.add_argument("--epsilon", type=float, default=0.2,
                        help="shift of log delta_j (each sign)")
    parser.add_argument("--evaluation-rows", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the minibatch and evaluation-row draws")
    parser.add_argument("--agents", nargs="+", default=None,
                        help="agents whose delta is shifted (default: all)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from checkpoint_rows import restore

    algo = restore(args.checkpoint)
    result = horizon_slopes(algo, args.horizons, args.epsilon, args.evaluation_rows,
                            args.seed, args.agents)
    result["checkpoint"] = args.checkpoint
    for agent, rows in result["agents"].items():
        print(f"{agent} (delta {rows['delta']:.3f}); one-step value/drift "
              f"{rows['one_step_ratio']:.3g}", flush=True)
        for k in result["horizons"]:
            row = rows[str(k)]
            ratio = row["own_value_slope"] / row["drift_slope"] if row["drift_slope"] else float("nan")
            print(f"  K={k:4d}  dV_j {row['own_value_slope']:+.3e}  dSumV "
                  f"{row['total_value_slope']:+.3e}  dD {row['drift_slope']:+.3e}  "
                  f"value/drift {ratio:+.3g}", flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    algo.stop()


if __name__ == "__main__":
    main()
