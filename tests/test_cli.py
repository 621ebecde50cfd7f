"""The `rllib` command: tuned-example YAML end to end, grid search, resume, evaluate, errors."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from rllib_mamt.cli import UsageError, build_param_space, load_experiments

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
    config = dict(TINY_CONFIG, trust_region_mode="equal", tsallis_q={"grid_search": [0.2, 1.0]})
    yaml_path = write_yaml(tmp_path / "tiny.yaml", {
        "tiny_grid": {"run": "MAMD", "env": "spread", "stop": {"training_iteration": 1}, "config": config}
    })
    storage = str(tmp_path / "results")
    done = rllib("train", "file", yaml_path, "--storage-path", storage, "--num-cpus", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== tiny_grid: best trial" in done.stdout
    trials = trial_results(os.path.join(storage, "tiny_grid"))
    assert sorted(rows[-1]["config"]["tsallis_q"] for rows in trials) == [0.2, 1.0]
    assert all(rows[-1]["training_iteration"] == 1 for rows in trials)

    evaluated = rllib("evaluate", os.path.join(storage, "tiny_grid"), "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    line = [l for l in evaluated.stdout.splitlines() if l.startswith("mean return over 2 episodes")]
    assert line and float(line[0].split(":")[1].split()[0]) < 0  # Spread returns are negative


def test_interrupted_run_is_resumed(tmp_path):
    yaml_path = write_yaml(tmp_path / "long.yaml", {
        "resumable": {"run": "MAMT", "env": "spread", "stop": {"training_iteration": 12},
                      "config": dict(TINY_CONFIG)}
    })
    storage = str(tmp_path / "results")
    process = subprocess.Popen(
        [sys.executable, "-m", "rllib_mamt", "train", "-f", yaml_path, "--storage-path", storage,
         "--num-cpus", "2", "--checkpoint-freq", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not glob.glob(os.path.join(storage, "resumable", "*", "checkpoint_000001")):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves its state and stops
    try:
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert glob.glob(os.path.join(storage, "resumable", "*", "checkpoint_000001"))

    resumed = rllib("train", "-f", yaml_path, "--storage-path", storage, "--num-cpus", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    last = trial_results(os.path.join(storage, "resumable"))[0][-1]
    assert last["training_iteration"] == 12
    # Continued from a checkpoint, not restarted: fewer iterations since the restore.
    assert last["iterations_since_restore"] < 12


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "tuned_examples", "*.yaml"))))
def test_every_tuned_example_parses_and_builds_its_config(path):
    for spec in load_experiments(path).values():
        param_space = build_param_space(spec, {})
        assert param_space["env"] == spec["env"]


def test_rover_tower_grid_has_the_table_9_grid():
    spec = load_experiments(os.path.join(ROOT, "tuned_examples", "rover_tower_mamt_grid.yaml"))
    config = next(iter(spec.values()))["config"]
    assert config["coordination_threshold"]["grid_search"] == [0.002, 0.02, 0.2]
    assert [b[1] for b in config["trust_region_bounds"]["grid_search"]] == [0.01, 1.0, 100.0]


@pytest.mark.parametrize(
    "experiments, extra, message",
    [
        ({"e": {"env": "spread"}}, [], "missing 'run'"),
        ({"e": {"run": "NOPE", "env": "spread"}}, [], "unknown algorithm 'NOPE'"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"trust_region_mood": "x"}}}, [],
         "unknown config key 'trust_region_mood'"),
        ({"e": {"run": "MAMT", "env": "spread", "stop": 5}}, [], "'stop' must be a mapping"),
        ({"e": {"run": "MAMT", "env": "spread"}}, ["--stop", "{training_iteration: 1"], "--stop: not valid JSON"),
        ({"e": {"run": "MAMT", "env": "spread", "config": {"tsallis_q": -1}}}, [], "'tsallis_q' = -1"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, experiments, extra, message):
    done = rllib("train", "-f", write_yaml(tmp_path / "bad.yaml", experiments), *extra,
                 "--storage-path", str(tmp_path))
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
