"""A Ray Tune grid search over MAMT's trust-region clip and sigma (paper Table 9).

    python examples/tune_grid_search.py [--env-steps 5000] [--storage-path ~/ray_results]

Grid: the upper trust-region clip delta_max in {1.5, 100} (delta_min stays
0.01) times the coordination threshold sigma in {0.002, 0.02, 0.2} (Table 9):
6 trials on Spread with a short budget. Table 9's clips 0.01 and 1 are left
out: learned delta_i keep sum_i delta_i on the budget (2 agents, delta_i = 1 on
average), so a clip of 1 or less holds both delta_i at the clip (MAMD;
MAMTConfig rejects it); 1.5 caps one agent's share, 100 does not bind. Prints
each trial's final return and the best setting, then writes the figures of
`python -m rllib_mamt.plotting` into the experiment directory.
"""

import argparse
import os

import ray
from ray import tune

from rllib_mamt import MAMTConfig
from rllib_mamt.plotting import plot_results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=5000)
    parser.add_argument("--storage-path", default=os.path.expanduser("~/ray_results"))
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        MAMTConfig()
        .environment("spread")
        .env_runners(num_env_runners=0)
        .training(
            train_batch_size_per_learner=256,
            trust_region_bounds=tune.grid_search([(0.01, 1.5), (0.01, 100.0)]),
            coordination_threshold=tune.grid_search([0.002, 0.02, 0.2]),
        )
    )
    tuner = tune.Tuner(
        "MAMT",
        param_space=config,
        run_config=tune.RunConfig(
            name="mamt_spread_grid",
            storage_path=args.storage_path,
            stop={"num_env_steps_sampled_lifetime": args.env_steps},
            verbose=1,
        ),
    )
    results = tuner.fit()
    metric = "env_runners/episode_return_mean"
    for result in results:
        print(f"clip {result.config['trust_region_bounds']}, sigma "
              f"{result.config['coordination_threshold']}: return {result.metrics['env_runners']['episode_return_mean']:.2f}")
    best = results.get_best_result(metric=metric, mode="max")
    print("best:", best.config["trust_region_bounds"], best.config["coordination_threshold"])
    experiment = os.path.join(args.storage_path, "mamt_spread_grid")
    for path in plot_results(experiment, os.path.join(experiment, "figures")):
        print("figure:", path)


if __name__ == "__main__":
    main()
