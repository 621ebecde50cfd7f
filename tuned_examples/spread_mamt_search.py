"""MAMT on Spread: the paper's hyper-parameter selection (Tables 8-9) by successive halving.

    python tuned_examples/spread_mamt_search.py                 # trust-region clip x sigma
    python tuned_examples/spread_mamt_search.py --table9        # all six Table 9 ranges
    python tuned_examples/spread_mamt_search.py --resume        # continue a stopped search
    python tuned_examples/spread_mamt_search.py --summarize     # the trials so far, as JSON
    python tuned_examples/spread_mamt_search.py --episodes 240 --clip-uppers 1.5 100 \
        --sigmas 0.2 --smoke                                     # a 2-trial check

The paper (Appendix G.2) trains every combination to 1/6 of the episode budget,
keeps the best sixth, continues them to 1/3, keeps the best sixth, and trains
those to the full budget. Here Ray Tune's asynchronous successive halving
(ASHA, one bracket, reduction factor 6; ``ResumableAsyncHyperBandScheduler``,
Tune's ``AsyncHyperBandScheduler`` with rung records that survive ``--resume``)
does the halving on training episodes: its rungs are geometric,
``grace_period x 6^k``, so with the grace period at 1/6 of the budget the only
cut is at 1/6 (the best sixth continues straight to the full budget; the
paper's second cut at 1/3 has no geometric counterpart); ``--first-cut 36``
instead cuts at 1/36 and 1/6. ASHA is asynchronous: a trial passes a rung if
it is in the best sixth of the trials that reached it so far, so the first
trial to reach it always passes: the combination of MAMT's defaults (Table 3)
is trained first, so that this free pass goes to the prior, not to an
arbitrary grid corner.

Selection metric: ``env_runners/episode_return_mean`` with a smoothing window
of 1,000 episodes, i.e. the paper's Table 10 metric (mean training return over
the last 1,000 episodes, our unit: sum over agents). Searched: the upper
trust-region clip (``trust_region_bounds`` = (0.01, upper)) and sigma
(``coordination_threshold``, "delta in coordination coefficient" {0.002, 0.02,
0.2}); ``--table9`` adds num epochs per step {1, 4, 8}, Adam lr {3e-4, 1e-3},
soft reward scale {10, 100} and the mirror-descent delay {100, 1000}.

The clip values are {1.5, 100}, not Table 9's {0.01, 1, 100}. MAMT's learned
delta_i keep sum_i delta_i on the budget (n_agents: delta_i = 1 on average),
so an upper clip of 1 or less holds every delta_i at the clip: the TRD-Net and
the delta update change nothing and the trial is MAMD (MAMTConfig rejects such
bounds, and so does ``--clip-uppers`` here). The first search on the paper's
variant had clips 0.01 and 1 in its grid; its three clip-1 trials gave the same
return for all three sigmas, and one of them was selected. On 2-agent Spread
no delta_i can exceed 2, so 100 does not bind; 1.5 caps how much of the joint
region one agent may take. 6 combinations, each a point of Tune's
``BasicVariantGenerator``. Seeds default to 100 (the reported runs use 0-4).
Two trials run at a time, one CPU and one torch thread each; results and
checkpoints go to the git-ignored
``benchmarks/results/spread_mamt_search_<variant>``, and the summary (every
trial's return at the first rung and at its end, and the best trial that
reached the full budget) to ``benchmarks/recorded/spread_mamt_search/<variant>.json``,
where the paper-budget plans read the selected values.
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
LOWER_CLIP = 0.01
#: The other Table 9 ranges (``--table9``); the critic takes the actor's lr.
TABLE9 = {"num_updates_per_round": [1, 4, 8], "actor_lr": [3e-4, 1e-3],
          "reward_scale": [10.0, 100.0], "mirror_descent_lag": [100, 1000]}
#: The config keys the search varies; a trial's values of them are its ``settings``.
SEARCHED_KEYS = ("trust_region_bounds", "coordination_threshold", *TABLE9, "critic_lr")
EPISODES = "env_runners/num_episodes_lifetime"
METRIC = "env_runners/episode_return_mean"


def search_points(args):
    """The combinations to train, one dict each (Tune ``points_to_evaluate``):
    the product of the searched values and the seeds, MAMT's defaults first."""
    import itertools

    grids = {"trust_region_bounds": [[LOWER_CLIP, upper] for upper in args.clip_uppers],
             "coordination_threshold": list(args.sigmas)}
    if args.table9:
        grids.update(TABLE9)
    grids["seed"] = list(args.seeds)
    points = [dict(zip(grids, values)) for values in itertools.product(*grids.values())]
    for point in points:
        if "actor_lr" in point:
            point["critic_lr"] = point["actor_lr"]
    points.sort(key=lambda point: not is_default(point))
    return points


def is_default(point):
    """True for the combination of MAMT's defaults (Table 3: clip 100, sigma 0.2, ...)."""
    from rllib_mamt import MAMTConfig

    defaults = MAMTConfig()
    return all(list(value) == list(getattr(defaults, key)) if key == "trust_region_bounds"
               else value == getattr(defaults, key)
               for key, value in point.items() if key != "seed")


def search_space(args):
    """Tune param_space: Table 3 defaults, the fixed settings, and a choice
    over each searched key (every trial takes its values from a search point)."""
    from ray import tune

    space = {
        "env": "spread",
        "env_config": {"variant": args.variant},
        "trust_region_mode": "learned",
        "num_env_runners": 0,
        "learner_torch_threads": 1,
        "metrics_num_episodes_for_smoothing": LAST_EPISODES,
    }
    points = search_points(args)
    for key in points[0]:
        values = []
        for point in points:
            if point[key] not in values:
                values.append(point[key])
        space[key] = tune.choice(values)
    # Tune flattens a list-valued point into one path per element, so the
    # bounds are a list whose upper element is the choice.
    space["trust_region_bounds"] = [LOWER_CLIP, tune.choice(list(args.clip_uppers))]
    if args.smoke:
        space.update({"train_batch_size_per_learner": 32, "replay_buffer_capacity": 5000,
                      "actor_hidden_sizes": [32], "critic_hidden_dim": 32})
    return space


def successive_halving(args):
    """ASHA on training episodes, one bracket, keeping the best sixth at each rung."""
    from rllib_mamt.tune_schedulers import ResumableAsyncHyperBandScheduler

    return ResumableAsyncHyperBandScheduler(
        time_attr=EPISODES, metric=METRIC, mode="max", max_t=args.episodes,
        grace_period=args.episodes / args.first_cut, reduction_factor=6, brackets=1)


def spread_agents(variant):
    """Spread's agent count (its default env config) for ``variant``, read from
    the env itself (not through Tune's registry, which is gone after
    ``ray.shutdown()``)."""
    from rllib_mamt.envs.registry import make_rllib_env

    return len(make_rllib_env("spread", {"variant": variant}).possible_agents)


def pinned_delta(bounds, n_agents):
    """The delta every agent is held at under MAMT's default budget and
    constraint with these bounds, None if learned delta can move."""
    from rllib_mamt import MAMTConfig
    from rllib_mamt.config_validation import pinned_learned_delta

    return pinned_learned_delta(MAMTConfig().training(trust_region_bounds=tuple(bounds)),
                                n_agents)


def experiment_path(args):
    """Where the search keeps its trials (one experiment per Spread variant)."""
    return os.path.join(os.path.abspath(args.storage_path), f"{NAME}_{args.variant}")


def trial_summary(params, history, budget, first_cut, n_agents=2):
    """One trial as a JSON-able dict: its searched values (``settings``, what
    the paper-budget plans take from the best trial), the return at the first rung (budget / ``first_cut`` episodes) and at its last iteration.

    Args:
        params: The trial's config (``params.json``).
        history: Its (episodes, return over the last 1,000 episodes) rows, by episodes
            (a resumed trial repeats the iterations after its checkpoint).
        n_agents: Spread's agent count, for ``delta_pinned_at`` (the delta
            the trial's bounds held every agent at, None if delta could move).
    """
    rung = budget / first_cut
    at_rung = next((value for episodes, value in history if episodes >= rung), None)
    episodes, final = history[-1] if history else (0, None)
    settings = {key: params[key] for key in SEARCHED_KEYS if key in params}
    settings["trust_region_bounds"] = list(settings["trust_region_bounds"])
    return {"trust_region_bounds": settings["trust_region_bounds"],
            "coordination_threshold": settings["coordination_threshold"],
            "settings": settings, "seed": params["seed"], "episodes": episodes,
            "return_at_first_rung": at_rung, "return_last_1000_episodes": final,
            "finished_budget": episodes >= budget,
            "delta_pinned_at": pinned_delta(settings["trust_region_bounds"], n_agents)}


def summarize(args):
    """The search so far from its trial directories, without training: every
    trial (``trial_summary``) and the best trial that reached the full budget
    with a delta that could move (a trial whose bounds held delta at the clip
    ran MAMD, so it is listed but never selected)."""
    import glob

    from rllib_mamt.tune_schedulers import history_from_results

    path = experiment_path(args)
    n_agents = spread_agents(args.variant)
    trials = []
    for directory in sorted(glob.glob(os.path.join(path, "MAMT_*"))):
        results = os.path.join(directory, "result.json")
        if not os.path.exists(results):
            continue
        with open(os.path.join(directory, "params.json")) as handle:
            params = json.load(handle)
        with open(results) as handle:
            history = history_from_results(handle.read(), EPISODES, METRIC)
        trials.append(trial_summary(params, history, args.episodes, args.first_cut, n_agents))
    if not trials:
        raise SystemExit(f"--summarize: no trial with a result.json under {path}")
    finished = [t for t in trials if t["finished_budget"] and t["delta_pinned_at"] is None]
    best = max(finished, key=lambda t: t["return_last_1000_episodes"]) if finished else None
    return {"search": os.path.basename(path), "variant": args.variant, "budget_episodes": args.episodes,
            "first_rung_episodes": args.episodes / args.first_cut, "metric": METRIC,
            "metric_unit": "sum over agents, mean over the last 1,000 training episodes",
            "scheduler": "ResumableAsyncHyperBandScheduler (Tune's ASHA), one bracket, "
                         f"reduction factor 6, first rung at budget / {args.first_cut}",
            "trials": trials, "best": best}


def check_arguments(parser, args):
    """One-line errors naming the option, the value and what is allowed."""
    if args.episodes < 1:
        parser.error(f"--episodes is {args.episodes}; allowed: an int >= 1")
    if args.first_cut not in (6, 36):
        parser.error(f"--first-cut is {args.first_cut}; allowed: 6 or 36")
    n_agents = spread_agents(args.variant)
    for upper in args.clip_uppers:
        pinned = pinned_delta((LOWER_CLIP, upper), n_agents)
        if upper < LOWER_CLIP or pinned is not None:
            parser.error(f"--clip-uppers has {upper}; allowed: values above budget / n_agents = 1 "
                         f"(with a lower clip of {LOWER_CLIP} and {n_agents} agents on the "
                         "budget, a smaller one holds every delta_i at the clip: MAMD)")
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
    parser.add_argument("--clip-uppers", type=float, nargs="+", default=[1.5, 100.0])
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
    """Runs or resumes the search, writes its summary (:func:`summary_path`) and
    returns the best trial that reached the full budget."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray
    from ray import tune

    sys.path.insert(0, REPOSITORY)
    import rllib_mamt  # noqa: F401  (registers MAMT and the environments)

    ray.init(num_cpus=args.max_concurrent, include_dashboard=False, log_to_driver=False)
    path = experiment_path(args)
    if args.resume:
        tuner = tune.Tuner.restore(path, trainable="MAMT", resume_unfinished=True)
    else:
        from ray.tune.search import BasicVariantGenerator

        points = search_points(args)
        tuner = tune.Tuner(
            "MAMT",
            param_space=search_space(args),
            tune_config=tune.TuneConfig(
                search_alg=BasicVariantGenerator(points_to_evaluate=points),
                num_samples=len(points), scheduler=successive_halving(args),
                max_concurrent_trials=args.max_concurrent),
            run_config=tune.RunConfig(
                name=os.path.basename(path), storage_path=os.path.dirname(path),
                stop={EPISODES: args.episodes}, verbose=1,
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=25,
                                                        checkpoint_at_end=True, num_to_keep=1)))
    tuner.fit()
    ray.shutdown()
    summary = write_summary(args)
    for trial in summary["trials"]:
        print(json.dumps(trial))
    print(f"best finished trial: {json.dumps(summary['best'])}; summary: {summary_path(args)}")
    return summary["best"]


def summary_path(args):
    """The JSON summary of the search: committed under ``benchmarks/recorded``
    (where the paper-budget plans read its best) for the default storage,
    beside the experiment for any other ``--storage-path``."""
    if os.path.abspath(args.storage_path) == os.path.abspath(DEFAULT_STORAGE):
        return os.path.join(REPOSITORY, "benchmarks", "recorded", NAME, f"{args.variant}.json")
    return experiment_path(args) + "_summary.json"


def write_summary(args, path=None):
    """Writes :func:`summarize` to ``path`` (default :func:`summary_path`); returns it."""
    summary = summarize(args)
    path = path or summary_path(args)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(json.dumps(summary, indent=1) + "\n")
    return summary


def main():
    """Command line entry point."""
    parser = build_parser()
    args = parser.parse_args()
    check_arguments(parser, args)
    if args.summarize == "-":
        print(json.dumps(summarize(args), indent=1))
        return
    if args.summarize:
        write_summary(args, args.summarize)
        return
    run(args)


if __name__ == "__main__":
    main()
