"""MAMT on Spread: the paper's hyper-parameter selection (Tables 8-9) by successive halving.

    python tuned_examples/spread_mamt_search.py                 # trust-region clip x sigma
    python tuned_examples/spread_mamt_search.py --table9        # all six Table 9 ranges
    python tuned_examples/spread_mamt_search.py --resume        # continue a stopped search
    python tuned_examples/spread_mamt_search.py --summarize     # the trials so far, as JSON
    python tuned_examples/spread_mamt_search.py --summarize     # trials so far -> JSON
    python tuned_examples/spread_mamt_search.py --episodes 240 --clip-uppers 0.01 100 \
        --sigmas 0.2 --smoke                                     # a 2-trial check

The paper (Appendix G.2) trains every combination to 1/6 of the episode budget,
keeps the best sixth, continues them to 1/3, keeps the best sixth, and trains
those to the full budget. Here Ray Tune's own ``AsyncHyperBandScheduler``
(ASHA, one bracket, reduction factor 6) does the halving on training episodes:
its rungs are geometric, ``grace_period x 6^k``, so with the grace period at
1/6 of the budget the only cut is at 1/6 (the best sixth continues straight to
the full budget; the paper's second cut at 1/3 has no geometric counterpart);
``--first-cut 36`` instead cuts at 1/36 and 1/6. ASHA is asynchronous: a trial
passes a rung if it is in the best sixth of the trials that reached it so far.

Selection metric: ``env_runners/episode_return_mean`` with a smoothing window
of 1,000 episodes, i.e. the paper's Table 10 metric (mean training return over
the last 1,000 episodes, our unit: sum over agents). Searched: the upper
trust-region clip (``trust_region_bounds`` = (0.01, upper), "trust-region
clip" {0.01, 1, 100}) and sigma (``coordination_threshold``, "delta in
coordination coefficient" {0.002, 0.02, 0.2}); ``--table9`` adds num epochs per
step {1, 4, 8}, Adam lr {3e-4, 1e-3}, soft reward scale {10, 100} and the
mirror-descent delay {100, 1000}. Seeds default to 100 (the reported runs use
0-4). With the clip at 0.01 (= the lower clip) delta is fixed, so sigma
changes nothing and that clip's three trials are the same run (measured:
identical returns); they are kept so that the grid is the paper's. Two trials run at a time, one CPU and one torch thread each; results and
checkpoints go to the git-ignored ``benchmarks/results/spread_mamt_search``.
"""

import argparse
import json
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STORAGE = os.path.join(REPOSITORY, "benchmarks", "results")
NAME = "spread_mamt_search"
EPISODE_LENGTH = 25
LAST_EPISODES = 1000
EPISODES = "env_runners/num_episodes_lifetime"
METRIC = "env_runners/episode_return_mean"


def search_space(args):
    """Tune param_space: Table 3 defaults plus a grid over the searched keys."""
    from ray import tune

    space = {
        "env": "spread",
        "env_config": {"variant": args.variant},
        "trust_region_mode": "learned",
        "num_env_runners": 0,
        "learner_torch_threads": 1,
        "metrics_num_episodes_for_smoothing": LAST_EPISODES,
        "trust_region_bounds": tune.grid_search([(0.01, upper) for upper in args.clip_uppers]),
        "coordination_threshold": tune.grid_search(args.sigmas),
        "seed": tune.grid_search(args.seeds),
    }
    if args.table9:
        space.update({
            "num_updates_per_round": tune.grid_search([1, 4, 8]),
            "actor_lr": tune.grid_search([3e-4, 1e-3]),
            "critic_lr": tune.sample_from(lambda spec: spec.config.actor_lr),
            "reward_scale": tune.grid_search([10.0, 100.0]),
            "mirror_descent_lag": tune.grid_search([100, 1000]),
        })
    if args.smoke:
        space.update({"train_batch_size_per_learner": 32, "replay_buffer_capacity": 5000,
                      "actor_hidden_sizes": [32], "critic_hidden_dim": 32})
    return space


def successive_halving(args):
    """ASHA on training episodes, one bracket, keeping the best sixth at each rung."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    return AsyncHyperBandScheduler(
        time_attr=EPISODES, metric=METRIC, mode="max", max_t=args.episodes,
        grace_period=args.episodes / args.first_cut, reduction_factor=6, brackets=1)


def trial_summary(params, history, budget, first_cut):
    """One trial as a JSON-able dict: its searched values, the return at the
    first rung (budget / ``first_cut`` episodes) and at its last iteration.

    Args:
        params: The trial's config (``params.json``).
        history: Its (episodes, return over the last 1,000 episodes) rows, by episodes
            (a resumed trial repeats the iterations after its checkpoint).
    """
    rung = budget / first_cut
    at_rung = next((value for episodes, value in history if episodes >= rung), None)
    episodes, final = history[-1] if history else (0, None)
    return {"trust_region_bounds": list(params["trust_region_bounds"]),
            "coordination_threshold": params["coordination_threshold"],
            "seed": params["seed"], "episodes": episodes,
            "return_at_first_rung": at_rung, "return_last_1000_episodes": final,
            "finished_budget": episodes >= budget}


def summarize(args):
    """The search so far from its trial directories, without training: every
    trial (``trial_summary``) and the best trial that reached the full budget."""
    import glob

    path = os.path.join(os.path.abspath(args.storage_path), NAME)
    trials = []
    for directory in sorted(glob.glob(os.path.join(path, "MAMT_*"))):
        results = os.path.join(directory, "result.json")
        if not os.path.exists(results):
            continue
        with open(os.path.join(directory, "params.json")) as handle:
            params = json.load(handle)
        history = []
        with open(results) as handle:
            for line in handle:
                runners = json.loads(line).get("env_runners", {}) if line.strip() else {}
                if "num_episodes_lifetime" in runners and "episode_return_mean" in runners:
                    history.append((runners["num_episodes_lifetime"], runners["episode_return_mean"]))
        history.sort()
        trials.append(trial_summary(params, history, args.episodes, args.first_cut))
    if not trials:
        raise SystemExit(f"--summarize: no trial with a result.json under {path}")
    finished = [t for t in trials if t["finished_budget"]]
    best = max(finished, key=lambda t: t["return_last_1000_episodes"]) if finished else None
    return {"search": NAME, "variant": args.variant, "budget_episodes": args.episodes,
            "first_rung_episodes": args.episodes / args.first_cut, "metric": METRIC,
            "metric_unit": "sum over agents, mean over the last 1,000 training episodes",
            "scheduler": "AsyncHyperBandScheduler, one bracket, reduction factor 6",
            "trials": trials, "best": best}


def check_arguments(parser, args):
    """One-line errors naming the option, the value and what is allowed."""
    if args.episodes < 1:
        parser.error(f"--episodes is {args.episodes}; allowed: an int >= 1")
    if args.first_cut not in (6, 36):
        parser.error(f"--first-cut is {args.first_cut}; allowed: 6 or 36")
    for upper in args.clip_uppers:
        if upper < 0.01:
            parser.error(f"--clip-uppers has {upper}; allowed: values >= 0.01 (the lower clip)")
    for sigma in args.sigmas:
        if not 0.0 <= sigma < 1.0:
            parser.error(f"--sigmas has {sigma}; allowed: values in [0, 1)")
    reported = sorted(set(args.seeds) & set(range(5)))
    if reported:
        parser.error(f"--seeds has {reported}; allowed: seeds other than the reported 0-4")


def build_parser():
    """The command line of the search."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=25000, help="full budget (paper: 25,000)")
    parser.add_argument("--first-cut", type=int, default=6,
                        help="first rung at budget / this (6: as the paper; 36: cuts at 1/36, 1/6)")
    parser.add_argument("--clip-uppers", type=float, nargs="+", default=[0.01, 1.0, 100.0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.002, 0.02, 0.2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100])
    parser.add_argument("--variant", choices=["mpe2", "paper"], default="mpe2")
    parser.add_argument("--table9", action="store_true", help="also search the other Table 9 ranges")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny networks and batches")
    parser.add_argument("--summarize", metavar="JSON", nargs="?", const="-",
                        help="write the trials so far as JSON to this path (- : print), no training")
    return parser


def run(args):
    """Runs or resumes the search; prints and returns the best trial's config."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray
    from ray import tune

    sys.path.insert(0, REPOSITORY)
    import rllib_mamt  # noqa: F401  (registers MAMT and the environments)

    ray.init(num_cpus=args.max_concurrent, include_dashboard=False, log_to_driver=False)
    path = os.path.join(os.path.abspath(args.storage_path), NAME)
    if args.resume:
        tuner = tune.Tuner.restore(path, trainable="MAMT", resume_unfinished=True)
    else:
        tuner = tune.Tuner(
            "MAMT",
            param_space=search_space(args),
            tune_config=tune.TuneConfig(scheduler=successive_halving(args),
                                        max_concurrent_trials=args.max_concurrent),
            run_config=tune.RunConfig(
                name=NAME, storage_path=os.path.abspath(args.storage_path),
                stop={EPISODES: args.episodes}, verbose=1,
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=25,
                                                        checkpoint_at_end=True, num_to_keep=1)))
    results = tuner.fit()
    rows = []
    for result in results:
        metrics = result.metrics or {}
        runners = metrics.get("env_runners", {})
        rows.append({"trust_region_bounds": result.config["trust_region_bounds"],
                     "coordination_threshold": result.config["coordination_threshold"],
                     "seed": result.config["seed"],
                     "episodes": runners.get("num_episodes_lifetime"),
                     "return_last_1000_episodes": runners.get("episode_return_mean"),
                     "error": None if result.error is None else str(result.error).splitlines()[0]})
    for row in sorted(rows, key=lambda r: -(r["return_last_1000_episodes"] or -1e9)):
        print(json.dumps(row))
    best = results.get_best_result(metric=METRIC, mode="max", scope="last")
    print(f"best: trust_region_bounds {best.config['trust_region_bounds']}, "
          f"coordination_threshold {best.config['coordination_threshold']}, "
          f"{METRIC} {best.metrics['env_runners']['episode_return_mean']:.2f} "
          f"after {best.metrics['env_runners']['num_episodes_lifetime']} episodes")
    ray.shutdown()
    return best.config


def main():
    """Command line entry point."""
    parser = build_parser()
    args = parser.parse_args()
    check_arguments(parser, args)
    if args.summarize:
        text = json.dumps(summarize(args), indent=1)
        if args.summarize == "-":
            print(text)
        else:
            with open(args.summarize, "w") as handle:
                handle.write(text + "\n")
        return
    run(args)


if __name__ == "__main__":
    main()
