"""The plotting command writes the paper-style figures from Tune results."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rllib_mamt.plotting import coordination_matrix, mean_and_spread, plot_results

AGENTS = ["agent_0", "agent_1", "agent_2"]


def synthetic_trial(directory, seed, mode="learned", iterations=12):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    with open(directory / "result.json", "w") as handle:
        for it in range(1, iterations + 1):
            learners = {
                agent: {
                    "kl_to_old_policy": float(rng.uniform(0, 0.1)),
                    "non_stationarity": float(rng.uniform(0, 1)),
                    "trust_region_delta": 1.0 + 0.1 * i * it,
                    "coordination": {o: (0.0 if o == "agent_2" or agent == "agent_2" else 1.0)
                                     for o in AGENTS if o != agent},
                }
                for i, agent in enumerate(AGENTS)
            }
            learners["mamt_central"] = {"critic_loss": 1.0}
            row = {
                "training_iteration": it,
                "num_env_steps_sampled_lifetime": 1000 * it,
                "env_runners": {"episode_return_mean": -60 + it + rng.normal()},
                "learners": learners,
                "config": {"trust_region_mode": mode},
            }
            if it % 4 == 0:
                row["evaluation"] = {"env_runners": {"episode_return_mean": -50 + it}}
            handle.write(json.dumps(row) + "\n")


def test_all_figures_are_written_as_png(tmp_path):
    for seed in range(3):
        synthetic_trial(tmp_path / "exp" / f"MAMT_spread_{seed}", seed)
    synthetic_trial(tmp_path / "exp" / "MAAC_spread_0", 9, mode="none")
    paths = plot_results(str(tmp_path / "exp"), str(tmp_path / "figures"))
    names = sorted(p.split("/")[-1] for p in paths)
    assert names == ["coordination.png", "kl_per_agent.png", "learning_curves.png", "trust_regions.png"]
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_coordination_matrix_is_averaged_over_the_last_half(tmp_path):
    synthetic_trial(tmp_path / "trial", 0)
    from rllib_mamt.plotting import read_results

    agents, mean, std = coordination_matrix(read_results(str(tmp_path / "trial" / "result.json")))
    assert agents == AGENTS
    assert mean[0, 1] == 1.0 and mean[0, 2] == 0.0 and mean[2, 0] == 0.0
    assert np.all(std == 0)


def test_mean_and_spread_over_trials():
    grid, mean, std = mean_and_spread(
        [(np.array([0.0, 10.0]), np.array([0.0, 10.0])), (np.array([0.0, 10.0]), np.array([2.0, 12.0]))],
        points=3,
    )
    assert np.allclose(grid, [0, 5, 10]) and np.allclose(mean, [1, 6, 11]) and np.allclose(std, 1)


def test_command_line_reports_missing_results_with_exit_code_2(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "rllib_mamt.plotting", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert completed.returncode == 2
    assert "No result.json" in completed.stderr
    assert "Traceback" not in completed.stderr
