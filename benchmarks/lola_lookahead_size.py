"""How far LOLA's lookahead turns the policy gradient away from the naive one,
along a LOLA training run on 2-agent Spread.

    python benchmarks/lola_lookahead_size.py [--env-steps 20000] [--probes 5] \
        [--lookahead-lrs 0.001 0.01 0.1 1] [--seed 0]

Trains LOLA with its defaults (Table 7, ``lookahead_lr`` as LOLAConfig sets
it) and at ``--probes`` evenly spaced env-step counts (the last at
``--env-steps``) draws one minibatch of ``train_batch_size_per_learner`` rows from the
joint replay buffer and computes, at the current parameters and with the
learner's own V_i (:meth:`LOLATorchLearner.policy_values`), each agent's
naive gradient (eta = 0) and its LOLA gradient for each eta of
``--lookahead-lrs``. Reports, per agent, ||g_LOLA - g_naive|| / ||g_naive||
and the cosine between the two (a
relative size of 1e-4 means the LOLA step is the naive step to about four
digits). Nothing is timed. Prints a table; writes JSON.
"""

import argparse
import json
import os

import ray
import torch

from rllib_mamt import LOLAConfig
from rllib_mamt.algorithms.lola.losses import lola_gradients
from rllib_mamt.alive_masks import alive_masks
from rllib_mamt.joint_replay_buffer import obs_key


def flat(gradients):
    return torch.cat([g.reshape(-1) for g in gradients])


def lookahead_sizes(algo, lookahead_lrs):
    """Per eta and agent: relative size of the lookahead term and the cosine
    between the LOLA and the naive gradient, on one fresh minibatch."""
    learner = algo.learner_group._learner
    rows = algo.joint_replay_buffer.sample(algo.config.train_batch_size_per_learner)
    data = {key: torch.as_tensor(value) for key, value in rows.items()}
    alive, _ = alive_masks(data)
    observations = [data[obs_key(k)] for k in range(2)]
    actors = [learner.module[agent].unwrapped() for agent in learner.agent_ids]
    with torch.no_grad():
        normalized = [a.normalized_observations(o) for a, o in zip(actors, observations)]
    value_of, parameters = learner.policy_values(normalized, observations, alive)
    naive = [flat(g) for g in lola_gradients(value_of, parameters, 0.0)]
    sizes = {}
    for eta in lookahead_lrs:
        lola = [flat(g) for g in lola_gradients(value_of, parameters, eta)]
        sizes[eta] = {
            agent: {
                "relative_size": float((g - n).norm() / n.norm()),
                "cosine": float(torch.nn.functional.cosine_similarity(g, n, dim=0)),
            }
            for agent, g, n in zip(learner.agent_ids, lola, naive)
        }
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=20000)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--lookahead-lrs", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/lola_lookahead_size.json")
    args = parser.parse_args()
    if args.probes < 1:
        parser.error(f"--probes {args.probes}: must be an int >= 1")
    if args.env_steps < 1:
        parser.error(f"--env-steps {args.env_steps}: must be an int >= 1")
    negative = [eta for eta in args.lookahead_lrs if eta <= 0]
    if negative:
        parser.error(f"--lookahead-lrs {negative[0]}: each must be > 0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        LOLAConfig().environment("spread")
        .env_runners(num_env_runners=0)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    probes, result = [], {}
    for target in (args.env_steps * k // args.probes for k in range(1, args.probes + 1)):
        while result.get("num_env_steps_sampled_lifetime", 0) < target:
            result = algo.train()
        probes.append({"env_steps": int(result["num_env_steps_sampled_lifetime"]),
                       "sizes": lookahead_sizes(algo, args.lookahead_lrs)})
    default_eta = algo.config.lookahead_lr
    algo.stop()
    print(f"LOLA on 2-agent Spread, seed {args.seed}, default lookahead_lr {default_eta}")
    print(f"{'env steps':>9} {'eta':>7} {'agent':<8} {'|g_LOLA - g_naive| / |g_naive|':>31} {'cosine':>8}")
    for probe in probes:
        for eta, agents in probe["sizes"].items():
            for agent, size in agents.items():
                print(f"{probe['env_steps']:>9} {eta:>7g} {agent:<8} "
                      f"{size['relative_size']:>31.2e} {size['cosine']:>8.5f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"seed": args.seed, "default_lookahead_lr": default_eta,
                   "env_steps": args.env_steps, "probes": probes}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
