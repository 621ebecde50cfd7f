"""The `rllib` command: tuned-example YAML end to end, grid search, resume, evaluate, errors."""

import glob
import json
import os
import pickle
import re
import signal
import subprocess
import sys

import pytest
import yaml
from ray import cloudpickle

from rllib_mamt.cli import UsageError, build_experiment, build_param_space, load_experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = {
    "num_env_runners": 0,
    "train_batch_size_per_learner": 32,
    "num_steps_sampled_before_learning_starts": 50,
    "env_steps_per_update": 50,
    "num_updates_per_round": 2,
    "replay_buffer_capacity": 5000,
    "actor_hidden_sizes": [32],
    "critic_hidden_dim": 32,
    "min_sample_timesteps_per_iteration": 100,
}


def write_yaml(path, experiments):
    path.write_text(yaml.safe_dump(experiments))
    return str(path)


def rllib(*args, timeout=300):
    """Runs `python -m rllib_mamt ARGS` and returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "rllib_mamt", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


def trial_results(experiment_dir):
    rows = []
    for path in glob.glob(os.path.join(experiment_dir, "*", "result.json")):
        with open(path) as handle:
            rows.append([json.loads(line) for line in handle if line.strip()])
    return rows


def test_train_grid_search_then_evaluate_the_checkpoint(tmp_path):
    config = dict(TINY_CONFIG, trust_region_mode="equal", tsallis_q={"grid_search": [0.2, 1.0]},
                  evaluation_interval=1, evaluation_duration=1)
    yaml_path = write_yaml(tmp_path / "tiny.yaml", {
        "tiny_grid": {"run": "MAMD", "env": "spread", "stop": {"training_iteration": 2}, "config": config}
    })
    storage = str(tmp_path / "results")
    done = rllib("train", "file", yaml_path, "--storage-path", storage, "--num-cpus", "2",
                 "--checkpoint-freq", "1", "--keep-checkpoints", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== tiny_grid: best trial" in done.stdout
    experiment = os.path.join(storage, "tiny_grid")
    trials = trial_results(experiment)
    assert sorted(rows[-1]["config"]["tsallis_q"] for rows in trials) == [0.2, 1.0]
    assert all(rows[-1]["training_iteration"] == 2 for rows in trials)
    # One short progress line per iteration with steps, return and eval, and the logdir.
    progress = [l for l in done.stdout.splitlines() if re.search(r" iter \d+ \| steps \d+ \| return ", l)]
    assert len(progress) == 4, done.stdout
    assert re.search(r" iter 1 \| steps 100 \| return -\d+\.\d+ \| eval -\d+\.\d+ \| \d+\.\d s$", progress[0])
    assert f"tensorboard --logdir {experiment}" in done.stdout
    # --keep-checkpoints 1: of the two checkpoints per trial only the newest is kept.
    assert len(glob.glob(os.path.join(experiment, "*", "checkpoint_*"))) == 2

    # "Trained on a cluster, evaluated on a laptop": the checkpoint's config asks
    # for more EnvRunners than this machine has; evaluate must not wait for them.
    checkpoint = glob.glob(os.path.join(experiment, "*", "checkpoint_*"))[0]
    ctor_path = os.path.join(checkpoint, "class_and_ctor_args.pkl")
    with open(ctor_path, "rb") as handle:
        saved = pickle.load(handle)
    saved["ctor_args_and_kwargs"][0][0].update(num_env_runners=8, evaluation_num_env_runners=4)
    with open(ctor_path, "wb") as handle:
        cloudpickle.dump(saved, handle)
    evaluated = rllib("evaluate", checkpoint, "--episodes", "2", timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    line = [l for l in evaluated.stdout.splitlines() if l.startswith("mean return over 2 episodes")]
    assert line and float(line[0].split(":")[1].split()[0]) < 0  # Spread returns are negative
    per_agent = [l for l in evaluated.stdout.splitlines() if l.startswith("mean return per agent")]
    agent_means = [float(part.split()[1]) for part in per_agent[0].split(":")[1].split(",")]
    assert len(agent_means) == 2
    assert sum(agent_means) == pytest.approx(float(line[0].split(":")[1].split()[0]), abs=1e-3)
    explored = [rllib("evaluate", checkpoint, "--episodes", "2", "--explore", timeout=120)
                for _ in range(2)]
    assert explored[0].returncode == 0, explored[0].stderr[-3000:]
    assert explored[0].stdout == explored[1].stdout  # the action draws are seeded
    assert line[0] not in explored[0].stdout  # drawn actions, not the argmax ones


def test_ctrl_c_checkpoints_exits_130_and_resume_continues(tmp_path):
    yaml_path = write_yaml(tmp_path / "long.yaml", {
        "resumable": {"run": "MAMT", "env": "spread", "stop": {"training_iteration": 5},
                      "config": dict(TINY_CONFIG)}
    })
    storage = str(tmp_path / "results")
    process = subprocess.Popen(  # default --checkpoint-freq (10): no periodic checkpoint by iteration 5
        [sys.executable, "-m", "rllib_mamt", "train", "-f", yaml_path, "--storage-path", storage,
         "--num-cpus", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        output = []
        for line in process.stdout:
            output.append(line)
            if " iter 2 |" in line:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == 130, "".join(output)
    assert glob.glob(os.path.join(storage, "resumable", "*", "checkpoint_*")), "".join(output)
    rows_before = trial_results(os.path.join(storage, "resumable"))[0]

    resumed = rllib("train", "-f", yaml_path, "--storage-path", storage, "--num-cpus", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = trial_results(os.path.join(storage, "resumable"))[0]
    assert rows[-1]["training_iteration"] == 5
    # Continued from the interrupt's checkpoint, not restarted: earlier rows kept.
    assert rows[-1]["iterations_since_restore"] == 5 - rows_before[-1]["training_iteration"]
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5]

    again = rllib("train", "-f", yaml_path, "--storage-path", storage, "--num-cpus", "2", "--resume")
    assert again.returncode == 0 and "nothing to resume" in again.stderr


def test_import_registers_a_users_env_in_the_driver_and_the_workers(tmp_path):
    module_dir = tmp_path / "user_code"
    module_dir.mkdir()
    (module_dir / "coin_match_env.py").write_text(COIN_MATCH_MODULE)
    yaml_path = write_yaml(tmp_path / "custom.yaml", {
        "custom": {"run": "MAMD", "env": "coin_match", "stop": {"training_iteration": 1},
                   "config": dict(TINY_CONFIG, trust_region_mode="equal", num_env_runners=1)}
    })
    storage = str(tmp_path / "results")
    missing = rllib("train", "-f", yaml_path, "--storage-path", storage)
    assert missing.returncode == 2
    assert "env 'coin_match' is not registered" in missing.stderr and "--import" in missing.stderr

    # The module is neither installed nor on the workers' path; a remote EnvRunner builds the env.
    module_file = str(module_dir / "coin_match_env.py")
    done = rllib("train", "-f", yaml_path, "--storage-path", storage, "--import", module_file,
                 "--num-cpus", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert trial_results(os.path.join(storage, "custom"))[0][-1]["training_iteration"] == 1
    evaluated = rllib("evaluate", os.path.join(storage, "custom"), "--episodes", "1", "--import", module_file)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "mean return over 1 episodes: " in evaluated.stdout


COIN_MATCH_MODULE = """
import gymnasium as gym
import numpy as np
from pettingzoo.utils.env import ParallelEnv
from ray.tune.registry import register_env

from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv


class CoinMatch(ParallelEnv):
    metadata = {"name": "coin_match_v0"}

    def __init__(self):
        self.possible_agents = ["a", "b"]

    def observation_space(self, agent):
        return gym.spaces.Box(0, 1, (2,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return {a: np.zeros(2, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        reward = float(actions["a"] == actions["b"])
        done = self.t >= 10
        observations = {a: np.full(2, actions[a], np.float32) for a in self.agents}
        if done:
            self.agents = []
        return (observations, {a: reward for a in observations}, {a: False for a in observations},
                {a: done for a in observations}, {a: {} for a in observations})


register_env("coin_match", lambda env_config: PettingZooMultiAgentEnv(CoinMatch()))
"""


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "tuned_examples", "*.yaml"))))
def test_every_tuned_example_parses_and_builds_its_config(path):
    for spec in load_experiments(path).values():
        param_space = build_param_space(spec, {})
        assert param_space["env"] == spec["env"]


def test_rover_tower_grid_has_table_9s_sigmas_and_clips_that_leave_delta_free():
    spec = load_experiments(os.path.join(ROOT, "tuned_examples", "rover_tower_mamt_grid.yaml"))
    config = next(iter(spec.values()))["config"]
    assert config["coordination_threshold"]["grid_search"] == [0.002, 0.02, 0.2]
    assert [b[1] for b in config["trust_region_bounds"]["grid_search"]] == [2.0, 4.0, 100.0]
    from rllib_mamt import MAMTConfig

    for bounds in config["trust_region_bounds"]["grid_search"]:
        MAMTConfig().environment("rover_tower").training(trust_region_bounds=tuple(bounds)).validate()


@pytest.mark.parametrize(
    "experiments, extra, message",
    [
        ({"e": {"env": "spread"}}, [], "missing 'run'"),
        ({"e": {"run": "NOPE", "env": "spread"}}, [], "unknown algorithm 'NOPE'"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"trust_region_mood": "x"}}}, [],
         "unknown config key 'trust_region_mood' for MAMT (did you mean 'trust_region_mode'?)"),
        ({"e": {"run": "MAMT", "env": "spread", "stop": 5}}, [], "'stop' must be a mapping"),
        ({"e": {"run": "MAMT", "env": "spread"}}, ["--stop", "{training_iteration: 1"], "--stop: not valid JSON"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"tsallis_q": -1}}}, [], "'tsallis_q' = -1"),
        # A typo in a stop key would otherwise run the YAML's whole budget.
        ({"e": {"run": "MAMT", "env": "spread", "stop": {"num_env_steps_sampled_lifetime": 10**9},
                "config": TINY_CONFIG}}, ["--stop", '{"training_iterations": 1}'],
         "unknown stop key 'training_iterations' (did you mean 'training_iteration'?)"),
        ({"e": {"run": "MAMT", "env": "spread", "stop": {"env_runners": {"episode_return_mean": "high"}}}}, [],
         "stop 'env_runners/episode_return_mean' = 'high' is invalid; allowed: a number"),
        # RLlib settings RLlib itself only trips over inside the trial.
        ({"e": {"run": "MAMT", "env": "spread", "config": {"num_env_runners": -1}}}, [],
         "'num_env_runners' = -1 is invalid; allowed: an integer >= 0"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"evaluation_interval": "ten"}}}, [],
         "'evaluation_interval' = 'ten' is invalid; allowed: an integer >= 0 or None"),
        ({"e": {"run": "MAMT", "env": "spred"}}, [],
         "env 'spred' is not registered (did you mean 'spread'?)"),
        ({"e": {"run": "MAMT", "env": "spread"}}, ["--config", '{"actor_lr": {"grid_search": [0.001, "x"]}}'],
         "'actor_lr' = 'x' is invalid; allowed: a number > 0. (grid_search value 'x' of 'actor_lr')"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"env_runner_cls": "MultiAgentRunner"}}}, [],
         "'env_runner_cls' = 'MultiAgentRunner' is invalid; allowed: 'MultiAgentEnvRunner' (did you mean it?)"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"env_runner_cls": "ray.rllib.env.NoRunner"}}}, [],
         "'env_runner_cls' = 'ray.rllib.env.NoRunner' is invalid"),
        # Not enough CPUs for a trial: an error, not a trial PENDING forever.
        ({"e": {"run": "MAMD", "env": "spread", "config": {"trust_region_mode": "equal"}}},
         ["--config", '{"num_env_runners": 2}', "--num-cpus", "2"],
         "a trial needs 3 CPUs, --num-cpus gives 2; pass --num-cpus 3"),
        ({"e": {"run": "MAMT", "env": "spread"}}, ["--import", "no_such_env_module"],
         "--import 'no_such_env_module': no such module"),
        # --resume cannot change stop or config: refused, not echoed and ignored.
        ({"e": {"run": "MAMT", "env": "spread"}}, ["--resume", "--stop", '{"training_iteration": 14}'],
         "--resume continues with the experiment's saved stop criteria and config"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, experiments, extra, message):
    done = rllib("train", "-f", write_yaml(tmp_path / "bad.yaml", experiments), *extra,
                 "--storage-path", str(tmp_path), timeout=90)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [l for l in done.stderr.splitlines() if l.startswith("rllib: error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]


def test_yaml_syntax_error_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("e:\n  run: MAMT\n   env: [spread\n")
    with pytest.raises(UsageError, match="not valid YAML at line"):
        load_experiments(str(broken))
    done = rllib("train", "-f", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_yaml_reads_exponent_floats_as_numbers(tmp_path):
    path = tmp_path / "floats.yaml"
    path.write_text("e:\n  run: MAMT\n  env: spread\n  config:\n    actor_lr: 1e-3\n    critic_lr: 5E-4\n"
                    "    replay_buffer_capacity: 1000\n    trust_region_mode: '1e-3'\n")
    config = load_experiments(str(path))["e"]["config"]
    assert config["actor_lr"] == 0.001 and config["critic_lr"] == 0.0005
    assert config["replay_buffer_capacity"] == 1000 and isinstance(config["replay_buffer_capacity"], int)
    assert config["trust_region_mode"] == "1e-3"  # quoted text stays text
    spec = load_experiments(str(path))["e"]
    del spec["config"]["trust_region_mode"]
    assert build_param_space(spec, {})["actor_lr"] == 0.001


def test_env_runner_cls_by_short_name_or_dotted_path():
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    spec = {"run": "MAMD", "env": "spread", "config": {"trust_region_mode": "equal"}}
    for name in ("MultiAgentEnvRunner", "ray.rllib.env.multi_agent_env_runner.MultiAgentEnvRunner"):
        assert build_param_space(spec, {"env_runner_cls": name})["env_runner_cls"] is MultiAgentEnvRunner


def test_trial_resources_come_from_rllibs_resource_request():
    from rllib_mamt.cli_resources import largest_trial

    spec = {"run": "MAMD", "env": "spread",
            "config": {"trust_region_mode": "equal", "num_env_runners": {"grid_search": [0, 2]},
                       "evaluation_num_env_runners": 1}}
    _, configs = build_experiment(spec, {})
    assert largest_trial(configs) == {"CPU": 4.0, "GPU": 0.0}  # 1 main + 2 runners + 1 eval runner


def test_local_ray_gets_enough_logical_cpus_and_says_so(monkeypatch, capsys):
    import ray

    from rllib_mamt import cli_resources

    started = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.update(kwargs))
    monkeypatch.setattr(cli_resources, "machine_cpus", lambda: 2)
    cli_resources.start_ray({"CPU": 3.0, "GPU": 0.0})
    assert started["num_cpus"] == 3
    assert "a trial needs 3 CPUs, this machine has 2: starting Ray with 3 logical CPUs" in capsys.readouterr().out
    with pytest.raises(cli_resources.ResourceError, match="pass --num-cpus 3"):
        cli_resources.start_ray({"CPU": 3.0, "GPU": 0.0}, num_cpus=2)


def test_resume_warnings_name_what_will_not_continue(tmp_path, capsys):
    from rllib_mamt.cli import warn_about_resume

    (tmp_path / "trial_0").mkdir()
    trial = {"status": "RUNNING", "relative_logdir": "trial_0", "stopping_criterion": {"training_iteration": 5}}
    finished = dict(trial, status="TERMINATED")
    (tmp_path / "experiment_state-2026-01-02_10-00-00.json").write_text(
        json.dumps({"trial_data": [[json.dumps(trial), "{}"]]}))
    (tmp_path / "experiment_state-2026-01-01_10-00-00.json").write_text(  # older, written last
        json.dumps({"trial_data": [[json.dumps(finished), "{}"]]}))
    warn_about_resume("e", str(tmp_path), {"training_iteration": 9})
    errors = capsys.readouterr().err
    assert "trial trial_0 (RUNNING) has no checkpoint; it restarts from iteration 1" in errors
    assert "the file's stop {'training_iteration': 9} differs" in errors
    (tmp_path / "trial_0" / "checkpoint_000000").mkdir()
    warn_about_resume("e", str(tmp_path), {"training_iteration": 5})
    assert capsys.readouterr().err == ""
