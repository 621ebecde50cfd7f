"""The ``rllib`` command (and ``python -m rllib_mamt``): tuned examples, evaluation, plots.

Ray 2.60 ships no ``rllib`` command; this one reads RLlib's classic
tuned-example YAML format::

    experiment_name:
      run: MAMT                  # any Tune-registered algorithm
      env: rover_tower           # a registered env name
      stop: {num_env_steps_sampled_lifetime: 1250000}
      config: {trust_region_mode: learned, coordination_threshold: {grid_search: [0.02, 0.2]}}

Commands::

    rllib train -f FILE [--stop JSON] [--config JSON] [--num-samples N]
                [--checkpoint-freq N] [--keep-checkpoints N] [--storage-path DIR]
                [--resume] [--import MODULE ...]
                [--ray-address ADDR | --num-cpus N --num-gpus N]
    rllib train file FILE ...    (the same)
    rllib evaluate CHECKPOINT [--episodes N] [--seed S] [--explore] [--import MODULE ...]
    rllib plot RESULTS_DIR [--out DIR]

Every experiment, every grid-search value, the stop criteria and the env are
checked in the driver before Ray starts. Bad input prints one line
``rllib: error: ...`` and exits with code 2; Ctrl-C checkpoints the running
trials and exits with code 130.
"""

import argparse
import copy
import difflib
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
from typing import Any, Dict, List, Optional, Tuple

import yaml

from rllib_mamt.checkpoint_evaluation import agent_episode_returns, mean_returns
from rllib_mamt.yaml_loading import load_yaml

USAGE_ERROR = 2
INTERRUPTED = 130  # the shell's code for Ctrl-C (128 + SIGINT)
DEFAULT_CHECKPOINT_FREQ = 10
DEFAULT_KEEP_CHECKPOINTS = 3


class UsageError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


def load_experiments(path: str) -> Dict[str, dict]:
    """Reads and checks a tuned-example YAML file: {name: {run, env, stop, config}}."""
    if not os.path.isfile(path):
        raise UsageError(f"file {path!r} does not exist")
    try:
        with open(path) as handle:
            document = load_yaml(handle)
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


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def resolve_grid_search(value: Any, first_only: bool = False) -> Any:
    """Turns ``{grid_search: [...]}`` anywhere in ``value`` into ``tune.grid_search``.

    With ``first_only`` it is replaced by its first element instead.
    """
    from ray import tune

    if isinstance(value, dict):
        if _is_grid(value):
            options = value["grid_search"]
            if not isinstance(options, list) or not options:
                raise UsageError(f"grid_search needs a non-empty list, got {options!r}")
            return resolve_grid_search(options[0], True) if first_only else tune.grid_search(options)
        return {k: resolve_grid_search(v, first_only) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_grid_search(v, first_only) for v in value]
    return value


def _grid_locations(value: Any, path: Tuple = ()) -> List[Tuple[Tuple, list]]:
    """(path, options) of every top-most grid search in ``value``."""
    if _is_grid(value):
        return [(path, value["grid_search"])]
    if isinstance(value, dict):
        return [loc for k, v in value.items() for loc in _grid_locations(v, path + (k,))]
    if isinstance(value, list):
        return [loc for i, v in enumerate(value) for loc in _grid_locations(v, path + (i,))]
    return []


def _replace_at(value: Any, path: Tuple, new: Any) -> Any:
    if not path:
        return new
    copied = copy.copy(value)
    copied[path[0]] = _replace_at(value[path[0]], path[1:], new)
    return copied


def grid_variants(config: dict) -> List[Tuple[str, dict]]:
    """Concrete configs covering every grid-search value at least once.

    The first has every grid at its first value; each further one changes one
    grid to one of its other values (so N values cost N checks, not a product).
    """
    base = resolve_grid_search(config, first_only=True)
    variants = [("", base)]
    for path, options in _grid_locations(config):
        for option in options[1:]:
            where = "/".join(str(p) for p in path)
            variants.append((f" (grid_search value {option!r} of {where!r})",
                             _replace_at(base, path, resolve_grid_search(option, first_only=True))))
    return variants


def algorithm_class(run: str):
    """The Tune-registered algorithm class named ``run``."""
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    import ray.rllib  # noqa: F401  (registers RLlib's own algorithms)
    import rllib_mamt  # registers this package's algorithms and the envs

    if not _global_registry.contains(TRAINABLE_CLASS, run):
        ours = ", ".join(rllib_mamt.ALGORITHMS)
        raise UsageError(f"unknown algorithm {run!r} in 'run'; this package's are {ours} (RLlib's own, e.g. PPO, also work)")
    return _global_registry.get(TRAINABLE_CLASS, run)


def check_config_keys(run: str, default_config, config: dict) -> None:
    """Rejects config keys the algorithm's config does not have (suggesting close ones)."""
    for key in config:
        attribute = type(default_config)._translate_special_keys(key, warn_deprecated=False)
        if key in ("multiagent", "env", "env_config") or hasattr(default_config, attribute):
            continue
        known = [k for k in vars(default_config) if not k.startswith("_")]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown config key {key!r} for {run}{hint}; see the README's settings table")


def resolve_env_runner_classes(config: dict) -> dict:
    """``config`` with an ``env_runner_cls`` given as text (or a grid of texts) resolved to classes."""
    from rllib_mamt.rllib_settings_validation import resolve_env_runner_cls

    if "env_runner_cls" not in config:
        return config
    value = config["env_runner_cls"]
    try:
        if _is_grid(value) and isinstance(value["grid_search"], list):
            resolved = {"grid_search": [resolve_env_runner_cls(v) for v in value["grid_search"]]}
        else:
            resolved = resolve_env_runner_cls(value)
    except ValueError as error:
        raise UsageError(str(error))
    return dict(config, env_runner_cls=resolved)


def _env_names() -> List[str]:
    from rllib_mamt.envs.registry import ENV_FACTORIES

    return sorted(ENV_FACTORIES)


def build_experiment(spec: dict, config_override: dict) -> Tuple[dict, list]:
    """Tune param_space and the validated AlgorithmConfig of every grid value.

    Each concrete config is built and validated once in the driver: the
    algorithm's own ``validate()`` (MAMT's settings), RLlib settings RLlib
    leaves unchecked, and one instance of the env.
    """
    from rllib_mamt.rllib_settings_validation import check_env_buildable, validate_rllib_settings

    cls = algorithm_class(spec["run"])
    config = deep_merge(spec.get("config") or {}, config_override)
    if spec.get("env") is not None:
        config.setdefault("env", spec["env"])
    check_config_keys(spec["run"], cls.get_default_config(), config)
    config = resolve_env_runner_classes(config)
    built, envs_checked = [], set()
    for where, concrete in grid_variants(config):
        try:
            algo_config = cls.get_default_config().update_from_dict(concrete)
            validate_rllib_settings(algo_config)
            env_key = repr((algo_config.env, algo_config.env_config))
            if env_key not in envs_checked:
                check_env_buildable(algo_config, _env_names())
                envs_checked.add(env_key)
            algo_config.validate()
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise UsageError(message + where)
        built.append(algo_config)
    return resolve_grid_search(config), built


def build_param_space(spec: dict, config_override: dict) -> dict:
    """Validated Tune param_space (a config dict, grid searches resolved) for one experiment."""
    return build_experiment(spec, config_override)[0]


def import_user_modules(names: List[str]) -> None:
    """Imports each ``--import`` module (a module name or a .py file).

    The modules typically call ``ray.tune.registry.register_env``. Each is marked
    for pickling by value before it runs, so the env creators it registers reach
    Ray workers even where the module is not on the workers' path.
    """
    from ray import cloudpickle

    for name in names:
        if name.endswith(".py"):
            if not os.path.isfile(name):
                raise UsageError(f"--import {name!r}: file does not exist")
            module_name = os.path.splitext(os.path.basename(name))[0]
            module_spec = importlib.util.spec_from_file_location(module_name, name)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module_name = name
            try:
                if "." in name:
                    importlib.import_module(name.rpartition(".")[0])
                module_spec = importlib.util.find_spec(name)
            except (ImportError, ValueError) as error:
                raise UsageError(f"--import {name!r} failed: {type(error).__name__}: {error}")
            if module_spec is None:
                raise UsageError(f"--import {name!r}: no such module (give a module on the Python path or a .py file)")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        cloudpickle.register_pickle_by_value(module)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:  # an error in user code is reported as one line
            del sys.modules[module_name]
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UsageError(f"--import {name!r} failed: {type(error).__name__}: {first}")


def experiment_state(path: str) -> Dict[str, dict]:
    """{trial dir name: {status, has_checkpoint, stop}} of a saved Tune experiment."""
    # Newest by the timestamp in the name, as Tune picks it (mtimes change when Tune syncs).
    states = sorted(f for f in os.listdir(path) if f.startswith("experiment_state") and f.endswith(".json"))
    if not states:
        return {}
    with open(os.path.join(path, states[-1])) as handle:
        saved = json.load(handle)
    trials = {}
    for trial_json, _ in saved.get("trial_data", []):
        trial = json.loads(trial_json)
        directory = str(trial.get("relative_logdir") or trial.get("trial_id"))
        trial_dir = os.path.join(path, directory)
        has_checkpoint = os.path.isdir(trial_dir) and any(
            entry.startswith("checkpoint_") for entry in os.listdir(trial_dir)
        )
        trials[directory] = {"status": trial.get("status"), "has_checkpoint": has_checkpoint,
                             "stop": trial.get("stopping_criterion")}
    return trials


def warn_about_resume(name: str, path: str, stop: dict) -> None:
    """Says when resuming ``path`` will continue nothing, restart a trial or keep an old stop."""
    trials = experiment_state(path)
    unfinished = {t: s for t, s in trials.items() if s["status"] != "TERMINATED"}
    if trials and not unfinished:
        print(f"rllib: warning: --resume: every trial of {name} already finished; nothing to resume "
              "(start a new experiment with a new name or --storage-path to train further)",
              file=sys.stderr, flush=True)
    for trial, state in sorted(unfinished.items()):
        if not state["has_checkpoint"]:
            print(f"rllib: warning: --resume: trial {trial} ({state['status']}) has no checkpoint; "
                  "it restarts from iteration 1", file=sys.stderr, flush=True)
    saved_stops = {json.dumps(s["stop"], sort_keys=True) for s in unfinished.values() if s["stop"] is not None}
    if saved_stops and saved_stops != {json.dumps(stop, sort_keys=True)}:
        print(f"rllib: warning: --resume: the file's stop {stop} differs from the saved experiment's "
              f"{sorted(saved_stops)[0]}; the saved one applies", file=sys.stderr, flush=True)


def run_experiment(name: str, spec: dict, stop: dict, param_space: dict, args) -> int:
    """Runs (or resumes) one experiment with Tune; returns the exit code."""
    from ray import tune

    from rllib_mamt import cli_interrupt
    from rllib_mamt.cli_interrupt import CheckpointOnInterrupt
    from rllib_mamt.cli_progress import IterationLines

    storage = os.path.abspath(os.path.expanduser(args.storage_path))
    path = os.path.join(storage, name)
    print(f"== experiment {name}: {spec['run']} on {param_space.get('env')}, stop {stop}", flush=True)
    print(f"   results in {path} (TensorBoard: tensorboard --logdir {path})", flush=True)
    cli_interrupt.INTERRUPTED.clear()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no status tables
    if args.resume:
        if not tune.Tuner.can_restore(path):
            raise UsageError(f"--resume: no experiment to resume at {path}")
        warn_about_resume(name, path, stop)
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
                verbose=0,
                callbacks=[IterationLines(), CheckpointOnInterrupt()],
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=args.checkpoint_freq,
                    checkpoint_at_end=True,
                    num_to_keep=args.keep_checkpoints or None,
                ),
            ),
        )
    try:
        results = tuner.fit()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if cli_interrupt.INTERRUPTED.is_set():
        print(f"rllib: interrupted; continue with: rllib train -f {args.file} --storage-path "
              f"{args.storage_path} --resume", file=sys.stderr, flush=True)
        return INTERRUPTED
    for error in results.errors:
        print(f"trial error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
    successful = [r for r in results if r.error is None and r.metrics]
    if not successful:
        print(f"rllib: experiment {name}: every trial failed (errors above)", file=sys.stderr)
        return 1
    best = max(successful, key=lambda r: _finite(r.metrics.get("env_runners", {}).get("episode_return_mean")))
    checkpoint = best.checkpoint.path if best.checkpoint else None
    print(f"== {name}: best trial {best.path}", flush=True)
    print(f"   episode_return_mean {best.metrics.get('env_runners', {}).get('episode_return_mean')}"
          f" after {best.metrics.get('training_iteration')} iterations; checkpoint {checkpoint}", flush=True)
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib", description="MAMT's RLlib command line")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="run tuned-example YAML experiments")
    train.add_argument("words", nargs="*", help="'file FILE' (alternative to -f FILE)")
    train.add_argument("-f", "--file", dest="file", help="tuned-example YAML file")
    train.add_argument("--stop", help="JSON stop criteria merged over the YAML's (not with --resume)")
    train.add_argument("--config", help="JSON config deep-merged over the YAML's (not with --resume)")
    train.add_argument("--num-samples", type=int, default=1)
    train.add_argument("--checkpoint-freq", type=int, default=DEFAULT_CHECKPOINT_FREQ,
                       help=f"checkpoint every N iterations (default {DEFAULT_CHECKPOINT_FREQ}; "
                            "0: only at the end and on Ctrl-C)")
    train.add_argument("--keep-checkpoints", type=int, default=DEFAULT_KEEP_CHECKPOINTS,
                       help=f"newest checkpoints kept per trial (default {DEFAULT_KEEP_CHECKPOINTS}; 0: all)")
    train.add_argument("--storage-path", default="~/ray_results")
    train.add_argument("--resume", action="store_true", help="resume the experiments in --storage-path")
    train.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                       help="import MODULE (or a .py file) first, e.g. one that registers your env")
    train.add_argument("--ray-address", help="join an existing Ray cluster (e.g. auto or HOST:6379)")
    train.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: enough for a trial)")
    train.add_argument("--num-gpus", type=int, help="GPUs of the local Ray instance")

    evaluate = commands.add_parser(
        "evaluate", help="mean return, and each agent's, of a checkpoint's policy (argmax unless --explore)")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--explore", action="store_true",
                          help="draw actions from the policies, as in training (default: argmax)")
    evaluate.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                          help="import MODULE (or a .py file) first, e.g. one that registers your env")

    plot = commands.add_parser("plot", help="PNG figures from Tune results")
    plot.add_argument("results_dir")
    plot.add_argument("--out")
    return parser


def train_command(args) -> int:
    """``rllib train``: checks everything, starts Ray, runs each experiment."""
    from rllib_mamt.cli_resources import ResourceError, largest_trial, start_ray
    from rllib_mamt.stop_criteria import validate_stop

    words = list(args.words)
    if args.file is None and len(words) == 2 and words[0] == "file":
        args.file = words[1]
    elif words:
        raise UsageError(f"unexpected arguments {words}; use 'rllib train -f FILE' or 'rllib train file FILE'")
    if args.file is None:
        raise UsageError("train needs a YAML file: 'rllib train -f FILE'")
    if args.num_samples < 1 or args.checkpoint_freq < 0 or args.keep_checkpoints < 0:
        raise UsageError("--num-samples must be >= 1, --checkpoint-freq and --keep-checkpoints >= 0")
    if args.resume and (args.stop or args.config):
        raise UsageError("--resume continues with the experiment's saved stop criteria and config; "
                         "--stop and --config cannot change them (start a new experiment instead)")
    experiments = load_experiments(args.file)
    import_user_modules(args.imports)
    stop_override = parse_json_option("--stop", args.stop)
    config_override = parse_json_option("--config", args.config)
    prepared, configs = {}, []
    for name, spec in experiments.items():  # check every experiment before running any
        try:
            stop = validate_stop(deep_merge(spec.get("stop") or {}, stop_override))
        except ValueError as error:
            raise UsageError(str(error))
        param_space, built = build_experiment(spec, config_override)
        prepared[name] = (spec, stop, param_space)
        configs.extend(built)
    try:
        start_ray(largest_trial(configs), args.ray_address, args.num_cpus, args.num_gpus)
    except ResourceError as error:
        raise UsageError(str(error))
    for name, (spec, stop, param_space) in prepared.items():
        code = run_experiment(name, spec, stop, param_space, args)
        if code:
            return code
    return 0


def evaluate_command(args) -> int:
    """``rllib evaluate``: mean return (and each agent's) of the deterministic
    policy, or with ``--explore`` of the sampling one, all in this process."""
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    checkpoint = find_checkpoint(args.checkpoint)
    import rllib_mamt  # noqa: F401  (registers the envs)

    import_user_modules(args.imports)
    try:
        agent_returns = agent_episode_returns(checkpoint, args.episodes, args.seed, args.explore)
    except FileNotFoundError as error:
        raise UsageError(str(error))
    means = mean_returns(agent_returns)
    mean = means["return_mean"]
    returns = [sum(episode.values()) for episode in agent_returns]
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    print(f"checkpoint: {checkpoint}")
    print(f"mean return over {len(returns)} episodes: {mean:.4f} (std {std:.4f})")
    print("mean return per agent: " + ", ".join(
        f"{agent} {value:.4f}" for agent, value in means["agent_return_mean"].items()))
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
    except KeyboardInterrupt:
        print("rllib: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
