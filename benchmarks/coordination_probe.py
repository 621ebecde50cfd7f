"""Does a trained critic's C (Eq. 5) show who depends on whom?

    python benchmarks/coordination_probe.py CHECKPOINT [--rows 2048] [--seed 0]
        [--out probe.json] [--into-summary RUN_SUMMARY.json]

Restores a checkpoint of any algorithm of the MAMT family (MAAC's critic is the
same attention critic), draws ``--rows`` replayed rows, and computes on them
the counterfactual influence and C exactly as the learner does
(``coordination_threshold``, ``coordination_normalization`` of the checkpoint's
config), with the restored policies. Prints the mean C matrix (row i: how much
Q_i depends on agent j).

On Rover-Tower the pairs are drawn at random every episode (a rover's
observation starts with the one-hot of its tower, a tower's with that of its
rover), so the mean matrix cannot show them: a rover's mean C toward each
tower is the same whatever the critic knows. The probe therefore reads each
row's pairing from the observations and prints, per agent, the mean C toward
that row's partner against the mean C toward the other agents of the
partner's kind. ``paper_budget.py`` stores the same measurement in every
finished run's summary (``final_coordination``), and on Rover-Tower also the
partner contrast at every checkpoint (``coordination_history``, the paper's
Fig. 5 read per row over training); ``--into-summary`` adds the final one to a
summary written before that.
"""

import argparse
import json
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def coordination_rows(algo, rows, seed=0):
    """(C, counterfactual influence), each (rows, n, n), and the observations,
    on ``rows`` replayed rows of ``algo``'s buffer."""
    from checkpoint_rows import SeededRows

    from rllib_mamt.alive_masks import alive_masks
    from rllib_mamt.joint_replay_buffer import ACTIONS, obs_key
    from rllib_mamt.modules.actor import pad_logits

    learner = algo.learner_group._learner
    data = SeededRows(algo, seed)(rows)
    central = learner._central()
    n = len(learner.agent_ids)
    observations = [data[obs_key(k)] for k in range(n)]
    alive, _ = alive_masks(data)
    with torch.no_grad():
        log_probs = torch.stack(
            [pad_logits(torch.log_softmax(learner._actor(agent).action_logits(obs).float(), -1),
                        central.max_actions)
             for agent, obs in zip(learner.agent_ids, observations)], dim=1).log_softmax(-1)
        coefficients, influence = learner._coordination_coefficients(
            central, observations, data[ACTIONS].long(), log_probs.exp(), alive)
    return coefficients, influence, observations


def rover_tower_pairs(agents):
    """(rover indices, tower indices) when ``agents`` are Rover-Tower's
    ``rover_k`` and ``tower_k`` in equal numbers and nothing else, else None."""
    rovers = [i for i, a in enumerate(agents) if re.fullmatch(r"rover_\d+", a)]
    towers = [i for i, a in enumerate(agents) if re.fullmatch(r"tower_\d+", a)]
    if not rovers or len(rovers) != len(towers) or len(rovers) + len(towers) != len(agents):
        return None
    return rovers, towers


def rover_tower_partner_contrast(agents, coefficients, observations):
    """{agent: (mean C toward the row's partner, mean C toward the other agents
    of the partner's kind)} on Rover-Tower rows (agents ``rover_k``, ``tower_k``;
    each observation starts with the one-hot of the partner); {} for other agents."""
    kinds = rover_tower_pairs(agents)
    if kinds is None:
        return {}
    rovers, towers = kinds
    pairs = len(rovers)
    contrast = {}
    for own, partners in ((rovers, towers), (towers, rovers)):
        for i in own:
            partner = torch.as_tensor(partners, device=coefficients.device)[
                observations[i][:, :pairs].argmax(-1)]
            toward = coefficients[:, i, :]
            kind = toward[:, partners]
            at_partner = toward.gather(1, partner.unsqueeze(1)).squeeze(1)
            at_others = (kind.sum(1) - at_partner) / (pairs - 1)
            contrast[agents[i]] = (at_partner.mean().item(), at_others.mean().item())
    return contrast


def has_counterfactual_critic(algo):
    """True for the algorithms whose learner computes C from a replay buffer
    (MAAC, MAMD, MAMT and its ablations)."""
    return (hasattr(algo, "joint_replay_buffer")
            and hasattr(algo.learner_group._learner, "_coordination_coefficients"))


def partner_contrast_record(algo, episodes, rows=512, seed=0):
    """One ``coordination_history`` entry of a Rover-Tower run in training:
    ``{"episodes": episodes, "rows": rows, "partner_contrast": {agent: [C
    toward the row's partner, C toward the others of its kind]}}`` on ``rows``
    replayed rows drawn with their own generator (training's draws are
    untouched). None on other envs and for algorithms without C."""
    if not has_counterfactual_critic(algo):
        return None
    agents = list(algo.learner_group._learner.agent_ids)
    if rover_tower_pairs(agents) is None:
        return None
    per_row, _, observations = coordination_rows(algo, rows, seed)
    contrast = rover_tower_partner_contrast(agents, per_row, observations)
    return {"episodes": int(episodes), "rows": rows,
            "partner_contrast": {agent: list(pair) for agent, pair in contrast.items()}}


def coordination_summary(algo, rows=2048, seed=0):
    """C (Eq. 5) of ``algo``'s critic on ``rows`` replayed rows, as a finished
    run's ``final_coordination``: the mean matrix and, on Rover-Tower, each
    agent's C toward its row's partner against the other agents of that kind.
    For MAMT-Fixed and MAMT-Random, C is the ablation's own (not the critic's)
    and ``influence`` is None, as in the learner.
    None for algorithms without a replay buffer or without the attention
    critic's counterfactuals (MADDPG, MA-PPO, LOLA, MAMT-PPO)."""
    if not has_counterfactual_critic(algo):
        return None
    agents = list(algo.learner_group._learner.agent_ids)
    per_row, influence, observations = coordination_rows(algo, rows, seed)
    return {"rows": rows, "seed": seed, "agents": agents,
            "coefficients": per_row.mean(0).tolist(),
            "influence": None if influence is None else influence.mean(0).tolist(),
            "partner_contrast": rover_tower_partner_contrast(agents, per_row, observations)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0, help="seed of the row draw")
    parser.add_argument("--out", default=None, help="write the measurement as JSON")
    parser.add_argument("--into-summary", default=None,
                        help="a paper_budget run summary to store it in as final_coordination")
    args = parser.parse_args()

    from checkpoint_rows import restore

    algo = restore(args.checkpoint)
    result = coordination_summary(algo, args.rows, args.seed)
    algo.stop()
    if result is None:
        raise SystemExit(f"{args.checkpoint}: no replay buffer or no counterfactual critic; "
                         "allowed: a checkpoint of MAAC, MAMD, MAMT or its ablations")
    agents = result["agents"]
    print("mean C (row i: Q_i's dependence on agent j)")
    print("         " + " ".join(f"{a:>8}" for a in agents))
    for agent, row in zip(agents, result["coefficients"]):
        print(f"{agent:>8} " + " ".join(f"{c:8.3f}" for c in row))
    for agent, (partner, others) in result["partner_contrast"].items():
        print(f"{agent}: C toward its partner {partner:.3f}, toward the others of that kind "
              f"{others:.3f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(dict(result, checkpoint=args.checkpoint), handle, indent=1)
    if args.into_summary:
        import run_summary

        summary = run_summary.load(args.into_summary)
        summary["final_coordination"] = result
        with open(args.into_summary + ".tmp", "w") as handle:
            json.dump(run_summary.validate(summary, args.into_summary), handle, indent=1)
        os.replace(args.into_summary + ".tmp", args.into_summary)


if __name__ == "__main__":
    main()
