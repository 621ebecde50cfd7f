"""The ``rllib`` command (and ``python -m rllib_mamt``): tuned examples, evaluation, plots.

Ray 2.60 ships no ``rllib`` command (DESIGN.md §4); this one reads RLlib's
classic tuned-example YAML format::

    experiment_name:
      run: MAMT                  # any Tune-registered algorithm
      env: rover_tower           # a registered env name
      stop: {num_env_steps_sampled_lifetime: 1250000}
      config: {trust_region_mode: learned, coordination_threshold: {grid_search: [0.02, 0.2]}}

Commands::

    rllib train -f FILE [--stop JSON] [--config JSON] [--num-samples N]
                [--checkpoint-freq N] [--storage-path DIR] [--resume]
                [--ray-address ADDR | --num-cpus N --num-gpus N]
    rllib train file FILE ...    (the same)
    rllib evaluate CHECKPOINT [--episodes N] [--seed S]
    rllib plot RESULTS_DIR [--out DIR]

Bad input prints one line ``rllib: error: ...`` and exits with code 2.
"""

import argparse
import copy
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional

import yaml

USAGE_ERROR = 2


class UsageError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


def load_experiments(path: str) -> Dict[str, dict]:
    """Reads and checks a tuned-example YAML file: {name: {run, env, stop, config}}."""
    if not os.path.isfile(path):
        raise UsageError(f"file {path!r} does not exist")
    try:
        with open(path) as handle:
            document = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"{path}: not valid YAML{line}: {getattr(error, 'problem', error)}")
    if not isinstance(document, dict) or not document:
        raise UsageError(f"{path}: expected a mapping of experiment names to {{run, env, stop, config}}")
    for name, spec in document.items():
        if not isinstance(spec, dict):
            raise UsageError(f"{path}: experiment {name!r} must be a mapping with 'run', 'env', 'stop', 'config'")
        unknown = sorted(set(spec) - {"run", "env", "stop", "config"})
        if unknown:
            raise UsageError(f"{path}: experiment {name!r} has unknown field(s) {unknown}; allowed: run, env, stop, config")
        if not isinstance(spec.get("run"), str):
            raise UsageError(f"{path}: experiment {name!r} is missing 'run' (the algorithm name, e.g. MAMT)")
        if not isinstance(spec.get("stop", {}), dict):
            raise UsageError(f"{path}: experiment {name!r}: 'stop' must be a mapping such as {{training_iteration: 10}}, got {spec.get('stop')!r}")
        if not isinstance(spec.get("config", {}), dict):
            raise UsageError(f"{path}: experiment {name!r}: 'config' must be a mapping")
    return document


def parse_json_option(option: str, text: Optional[str]) -> dict:
    """A JSON object given on the command line (``--stop``, ``--config``)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option}: not valid JSON ({error.msg} at column {error.colno}): {text!r}")
    if not isinstance(value, dict):
        raise UsageError(f"{option}: expected a JSON object such as '{{\"training_iteration\": 2}}', got {text!r}")
    return value


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively with ``override`` (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "grid_search" not in value:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_grid_search(value: Any, first_only: bool = False) -> Any:
    """Turns ``{grid_search: [...]}`` anywhere in ``value`` into ``tune.grid_search``.

    With ``first_only`` it is replaced by its first element instead (used to
    validate one concrete config before launching Tune).
    """
    from ray import tune

    if isinstance(value, dict):
        if set(value) == {"grid_search"}:
            options = value["grid_search"]
            if not isinstance(options, list) or not options:
                raise UsageError(f"grid_search needs a non-empty list, got {options!r}")
            return resolve_grid_search(options[0], True) if first_only else tune.grid_search(options)
        return {k: resolve_grid_search(v, first_only) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_grid_search(v, first_only) for v in value]
    return value


def algorithm_class(run: str):
    """The Tune-registered algorithm class named ``run``."""
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    import ray.rllib  # noqa: F401  (registers RLlib's own algorithms)
    import rllib_mamt  # noqa: F401  (registers MAMT, MAMD, MAAC and the envs)

    if not _global_registry.contains(TRAINABLE_CLASS, run):
        raise UsageError(f"unknown algorithm {run!r} in 'run'; MAMT's are MAMT, MAMD, MAAC (RLlib's own, e.g. PPO, also work)")
    return _global_registry.get(TRAINABLE_CLASS, run)


def check_config_keys(run: str, default_config, config: dict) -> None:
    """Rejects config keys the algorithm's config does not have."""
    for key in config:
        attribute = type(default_config)._translate_special_keys(key, warn_deprecated=False)
        if key in ("multiagent", "env", "env_config") or hasattr(default_config, attribute):
            continue
        raise UsageError(f"unknown config key {key!r} for {run}; see the README's settings table")


def build_param_space(spec: dict, config_override: dict) -> dict:
    """Validated Tune param_space (a config dict, grid searches resolved) for one experiment."""
    cls = algorithm_class(spec["run"])
    config = deep_merge(spec.get("config") or {}, config_override)
    if spec.get("env") is not None:
        config.setdefault("env", spec["env"])
    default_config = cls.get_default_config()
    check_config_keys(spec["run"], default_config, config)
    concrete = resolve_grid_search(config, first_only=True)
    try:
        default_config.update_from_dict(concrete).validate()
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(str(error).splitlines()[0] if str(error) else repr(error))
    return resolve_grid_search(config)


def start_ray(args) -> None:
    import ray

    if ray.is_initialized():
        return
    if args.ray_address:
        ray.init(address=args.ray_address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                 include_dashboard=False, log_to_driver=False)


def run_experiment(name: str, spec: dict, args) -> None:
    """Runs (or resumes) one experiment with Tune and prints its best result."""
    from ray import tune

    stop = deep_merge(spec.get("stop") or {}, parse_json_option("--stop", args.stop))
    param_space = build_param_space(spec, parse_json_option("--config", args.config))
    storage = os.path.abspath(os.path.expanduser(args.storage_path))
    path = os.path.join(storage, name)
    print(f"== experiment {name}: {spec['run']} on {param_space.get('env')}, stop {stop}", flush=True)
    if args.resume:
        if not tune.Tuner.can_restore(path):
            raise UsageError(f"--resume: no experiment to resume at {path}")
        tuner = tune.Tuner.restore(path, trainable=spec["run"], resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            spec["run"],
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=args.num_samples),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                stop=stop,
                verbose=1,
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=args.checkpoint_freq, checkpoint_at_end=True
                ),
            ),
        )
    results = tuner.fit()
    for error in results.errors:
        print(f"trial error: {str(error).splitlines()[0]}", file=sys.stderr)
    successful = [r for r in results if r.error is None and r.metrics]
    if not successful:
        raise RuntimeError(f"experiment {name}: every trial failed")
    best = max(successful, key=lambda r: _finite(r.metrics.get("env_runners", {}).get("episode_return_mean")))
    checkpoint = best.checkpoint.path if best.checkpoint else None
    print(f"== {name}: best trial {best.path}", flush=True)
    print(f"   episode_return_mean {best.metrics.get('env_runners', {}).get('episode_return_mean')}"
          f" after {best.metrics.get('training_iteration')} iterations; checkpoint {checkpoint}", flush=True)


def _finite(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def find_checkpoint(path: str) -> str:
    """An algorithm checkpoint directory at ``path`` or the newest one below it."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise UsageError(f"checkpoint {path!r} does not exist")
    if os.path.isfile(os.path.join(path, "algorithm_state.pkl")) or os.path.isfile(
        os.path.join(path, "rllib_checkpoint.json")
    ):
        return path
    candidates = []
    for directory, _, files in os.walk(path):
        if "rllib_checkpoint.json" in files or "algorithm_state.pkl" in files:
            candidates.append(directory)
    if not candidates:
        raise UsageError(f"no RLlib checkpoint found at or below {path!r}")
    return max(candidates, key=os.path.getmtime)


def evaluate_checkpoint(checkpoint: str, episodes: int, seed: int) -> List[float]:
    """Returns of ``episodes`` episodes of the restored deterministic (argmax) policy."""
    import numpy as np
    import torch
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core.columns import Columns

    from rllib_mamt.envs.registry import ENV_FACTORIES, make_rllib_env

    algo = Algorithm.from_checkpoint(checkpoint)
    try:
        env_name = algo.config.env
        if env_name not in ENV_FACTORIES:
            raise UsageError(f"evaluate supports the registered envs {sorted(ENV_FACTORIES)}; checkpoint uses {env_name!r}")
        env = make_rllib_env(env_name, dict(algo.config.env_config))
        modules = {agent: algo.get_module(agent) for agent in env.possible_agents}
        returns = []
        for episode in range(episodes):
            observations, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                actions = {}
                for agent, observation in observations.items():
                    batch = {Columns.OBS: torch.as_tensor(np.asarray(observation)[None])}
                    with torch.no_grad():
                        logits = modules[agent].forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
                    actions[agent] = int(torch.argmax(logits, dim=-1)[0])
                observations, rewards, terminateds, truncateds, _ = env.step(actions)
                total += float(sum(rewards.values()))
                done = terminateds["__all__"] or truncateds["__all__"]
            returns.append(total)
        return returns
    finally:
        algo.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib", description="MAMT's RLlib command line")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="run tuned-example YAML experiments")
    train.add_argument("words", nargs="*", help="'file FILE' (alternative to -f FILE)")
    train.add_argument("-f", "--file", dest="file", help="tuned-example YAML file")
    train.add_argument("--stop", help="JSON stop criteria merged over the YAML's")
    train.add_argument("--config", help="JSON config deep-merged over the YAML's")
    train.add_argument("--num-samples", type=int, default=1)
    train.add_argument("--checkpoint-freq", type=int, default=0)
    train.add_argument("--storage-path", default="~/ray_results")
    train.add_argument("--resume", action="store_true", help="resume the experiments in --storage-path")
    train.add_argument("--ray-address", help="join an existing Ray cluster (e.g. auto or HOST:6379)")
    train.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance")
    train.add_argument("--num-gpus", type=int, help="GPUs of the local Ray instance")

    evaluate = commands.add_parser("evaluate", help="mean return of a checkpoint's deterministic policy")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)

    plot = commands.add_parser("plot", help="PNG figures from Tune results")
    plot.add_argument("results_dir")
    plot.add_argument("--out")
    return parser


def train_command(args) -> int:
    words = list(args.words)
    if args.file is None and len(words) == 2 and words[0] == "file":
        args.file = words[1]
    elif words:
        raise UsageError(f"unexpected arguments {words}; use 'rllib train -f FILE' or 'rllib train file FILE'")
    if args.file is None:
        raise UsageError("train needs a YAML file: 'rllib train -f FILE'")
    if args.num_samples < 1 or args.checkpoint_freq < 0:
        raise UsageError("--num-samples must be >= 1 and --checkpoint-freq >= 0")
    experiments = load_experiments(args.file)
    for spec in experiments.values():  # check every experiment before running any
        build_param_space(spec, parse_json_option("--config", args.config))
        deep_merge(spec.get("stop") or {}, parse_json_option("--stop", args.stop))
    start_ray(args)
    for name, spec in experiments.items():
        run_experiment(name, spec, args)
    return 0


def evaluate_command(args) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    checkpoint = find_checkpoint(args.checkpoint)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    returns = evaluate_checkpoint(checkpoint, args.episodes, args.seed)
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    print(f"checkpoint: {checkpoint}")
    print(f"mean return over {len(returns)} episodes: {mean:.4f} (std {std:.4f})")
    return 0


def plot_command(args) -> int:
    from rllib_mamt.plotting import plot_results

    try:
        paths = plot_results(args.results_dir, args.out or os.path.join(args.results_dir, "figures"))
    except FileNotFoundError as error:
        raise UsageError(str(error))
    for path in paths:
        print(path)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": train_command, "evaluate": evaluate_command, "plot": plot_command}
    try:
        return handlers[args.command](args)
    except UsageError as error:
        print(f"rllib: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
