"""The plotting command writes readable paper-style figures from Tune results.

``write_trial`` writes a ``result.json`` shaped like MAMT's real ones: metric
keys the learner logs, RLlib's carried-over evaluation results, a
``policy_mapping_fn`` logged with its session-specific address, and optionally
the duplicate rows a resume from a checkpoint leaves behind.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from rllib_mamt import plotting
from rllib_mamt.cli import main as rllib_main
from rllib_mamt.plot_runs import evaluation_rows, group_trials, read_results, varying_config_keys
from rllib_mamt.plotting import colours, coordination_matrix, mean_and_spread, plot_results

AGENTS = ["agent_0", "agent_1", "agent_2"]


def write_trial(directory, seed, mode="learned", iterations=12, agents=AGENTS, settings=None,
                evaluation_interval=4, steps_per_iteration=1000, resume_after=None, address=None):
    """Writes ``directory/result.json`` as a MAMT trial would; returns its rows.

    ``resume_after=k`` replays iterations k-1.. after a restore from the
    checkpoint of iteration k-2, so iterations k-1 and k appear twice.
    """
    rng = np.random.default_rng(seed)
    settings = dict(settings or {})
    threshold = settings.get("coordination_threshold", 0.02)
    bounds = settings.get("trust_region_bounds", [0.01, 100.0])
    config = {
        "trust_region_mode": mode, "seed": seed, "evaluation_interval": evaluation_interval,
        "gamma": 0.99, "coordination_threshold": 0.02, "trust_region_bounds": [0.01, 100.0],
        "policy_mapping_fn": f"<function map_agent_to_own_module at {address or hex(0x7f0000000000 + seed * 4096)}>",
        "callbacks": "<class 'ray.rllib.callbacks.callbacks.RLlibCallback'>",
    }
    config.update(settings)
    n = len(agents)
    preference = rng.dirichlet(np.ones(n - 1) * 2.0, size=n)
    evaluation = None

    kl_scale = 0.6 + 0.4 * np.log10(bounds[1] * 100) / 4  # wider trust regions, larger steps
    drift = rng.normal(0, 0.4, size=n)

    def row(it):
        nonlocal evaluation
        progress = it / iterations
        learned = 1 - np.exp(-3 * progress)
        learners = {}
        for i, agent in enumerate(agents):
            others = [o for o in agents if o != agent]
            c = preference[i] * (1 - 0.3 * progress) + 0.3 * progress / (n - 1)
            c = np.where(c >= threshold, c, 0.0)
            delta = float(np.clip(np.exp(drift[i] * 4 * progress), *bounds))
            values = {
                "kl_to_old_policy": float(kl_scale * 0.05 * np.exp(-3 * progress) * (1 + 0.1 * i)
                                          + rng.uniform(0, 0.01)),
                "trust_region_delta": float("inf") if mode == "none" else (1.0 if mode == "equal" else delta),
                "actor_loss": float(rng.normal()), "entropy": 1.6 - progress,
            }
            if mode == "learned":
                values["non_stationarity"] = float(0.2 * np.exp(-2 * progress) * (1 + threshold) + rng.uniform(0, 0.02))
                values["predicted_kl"] = 0.001
                values["coordination"] = {o: float(v) for o, v in zip(others, c)}
                values["counterfactual_influence"] = {o: float(v) * 0.01 for o, v in zip(others, c)}
            learners[agent] = values
        learners["mamt_central"] = {"critic_loss": 1.0, "non_stationarity_total": 0.5}
        learners["__all_modules__"] = {"num_env_steps_trained": 256}
        result = {
            "training_iteration": it,
            "num_env_steps_sampled_lifetime": float(steps_per_iteration * it),
            "env_runners": {"episode_return_mean": -60 + (35 + 2 * seed % 7) * learned + rng.normal()},
            "learners": learners,
            "config": config,
        }
        if evaluation_interval and it % evaluation_interval == 0:
            evaluation = {"env_runners": {"episode_return_mean": -55 + (40 + 2 * seed % 7) * learned + rng.normal(),
                                          "num_episodes": 10},
                          "num_healthy_workers": 0, "num_remote_worker_restarts": 0}
            result["evaluation"] = evaluation
        elif evaluation is not None:  # RLlib repeats the last evaluation result
            result["evaluation"] = {"env_runners": evaluation["env_runners"]}
        return result

    rows = [row(it) for it in range(1, (resume_after or iterations) + 1)]
    if resume_after:
        rows += [row(it) for it in range(resume_after - 1, iterations + 1)]
    directory.mkdir(parents=True)
    with open(directory / "result.json", "w") as handle:
        for result in rows:
            handle.write(json.dumps(result) + "\n")
    return rows


@pytest.fixture
def captured_figures(monkeypatch):
    """The figures plot_results draws, kept open for inspection (name -> figure)."""
    figures = {}

    def keep(figure, out, name):
        figure.canvas.draw()
        figures[name] = figure
        return f"{out}/{name}"

    monkeypatch.setattr(plotting, "save", keep)
    yield figures
    plotting.plt.close("all")


def test_all_figures_are_written_as_png(tmp_path):
    for seed in range(3):
        write_trial(tmp_path / "exp" / f"MAMT_spread_{seed}", seed)
    write_trial(tmp_path / "exp" / "MAAC_spread_0", 9, mode="none")
    paths = plot_results(str(tmp_path / "exp"), str(tmp_path / "figures"))
    names = sorted(p.split("/")[-1] for p in paths)
    assert names == ["coordination.png", "kl_per_agent.png", "learning_curves.png", "trust_regions.png"]
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_duplicate_iterations_after_a_resume_keep_the_last_row(tmp_path):
    written = write_trial(tmp_path / "trial", 0, iterations=10, resume_after=6)
    assert len(written) == 6 + 6
    rows = read_results(str(tmp_path / "trial" / "result.json"))
    assert [r["training_iteration"] for r in rows] == list(range(1, 11))
    replayed = [r for r in written if r["training_iteration"] == 6]
    assert rows[5]["env_runners"] == replayed[-1]["env_runners"]


def test_evaluation_is_plotted_only_where_it_ran(tmp_path, captured_figures):
    written = write_trial(tmp_path / "exp" / "MAMT_spread_0", 0, iterations=12, evaluation_interval=4)
    assert sum("evaluation" in r for r in written) == 9  # 3 real, 6 carried over
    plot_results(str(tmp_path / "exp"), str(tmp_path / "figures"))
    evaluation_axis = captured_figures["learning_curves.png"].axes[1]
    steps = evaluation_axis.lines[0].get_xdata()
    assert np.allclose(steps, [4000, 8000, 12000])


def test_evaluation_iterations_without_an_interval_come_from_health_counters(tmp_path):
    rows = write_trial(tmp_path / "trial", 0, iterations=12, evaluation_interval=4)
    for row in rows:
        row["config"] = {**row["config"], "evaluation_interval": None}
    assert [r["training_iteration"] for r in evaluation_rows(rows)] == [4, 8, 12]


def test_trials_differing_only_in_function_addresses_and_seeds_are_pooled(tmp_path):
    for seed, address in [(0, "0x7f02ea5684a0"), (1, "0x7fda9822cae0")]:
        write_trial(tmp_path / "run1" / f"MAMT_spread_{seed}", seed, address=address,
                    settings={"coordination_threshold": 0.02})
    write_trial(tmp_path / "run2" / "MAMT_spread_0", 2, address="0x7f787cc12c00",
                settings={"coordination_threshold": 0.2})
    trials = [read_results(str(p)) for p in sorted(tmp_path.glob("run*/*/result.json"))]
    assert varying_config_keys(trials) == ["coordination_threshold"]
    groups = group_trials(str(tmp_path))
    assert [(g.legend, len(g.trials)) for g in groups] == [
        ("coordination_threshold=0.02", 2), ("coordination_threshold=0.2", 1)]


def test_different_functions_still_split_groups_and_are_named_without_address(tmp_path):
    write_trial(tmp_path / "a" / "MAMT_spread_0", 0, settings={"policy_mapping_fn": "<function f at 0x1>"})
    write_trial(tmp_path / "b" / "MAMT_spread_0", 0, settings={"policy_mapping_fn": "<function g at 0x2>"})
    assert [g.legend for g in group_trials(str(tmp_path))] == ["policy_mapping_fn=f", "policy_mapping_fn=g"]


@pytest.mark.parametrize("content", ["", json.dumps({"training_iteration": 1, "config": {}}) + "\n"])
def test_nothing_to_plot_is_an_error_with_exit_code_2(tmp_path, capsys, content):
    (tmp_path / "MAMT_failed").mkdir()
    (tmp_path / "MAMT_failed" / "result.json").write_text(content)
    assert rllib_main(["plot", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rllib: error: no results to plot under") and error.count("\n") == 1


def grid_of_nine(tmp_path, agents):
    """Table 9's grid: 3 trust-region bounds x 3 coordination thresholds, one seed."""
    for b, bounds in enumerate([[0.01, 0.01], [0.01, 1.0], [0.01, 100.0]]):
        for t, threshold in enumerate([0.002, 0.02, 0.2]):
            write_trial(tmp_path / "grid" / f"MAMT_rover_tower_{b}{t}", 3 * b + t, agents=agents,
                        iterations=30, evaluation_interval=10, steps_per_iteration=1200,
                        settings={"trust_region_bounds": bounds, "coordination_threshold": threshold})
    return tmp_path / "grid"


def overlaps(box, other) -> bool:
    return box.x0 < other.x1 and other.x0 < box.x1 and box.y0 < other.y1 and other.y0 < box.y1


def test_legends_never_cover_axes_and_list_each_setting_once(tmp_path, captured_figures):
    agents = [f"agent_{i}" for i in range(8)]
    plot_results(str(grid_of_nine(tmp_path, agents)), str(tmp_path / "figures"))
    assert set(captured_figures) == {"learning_curves.png", "kl_per_agent.png",
                                     "trust_regions.png", "coordination.png"}
    for name, figure in captured_figures.items():
        renderer = figure.canvas.get_renderer()
        visible = [axis for axis in figure.axes if axis.get_visible()]
        legends = [axis.get_legend() for axis in visible if axis.get_legend()] + figure.legends
        for legend in legends:
            assert len(legend.get_texts()) <= 9, name
            box = legend.get_window_extent(renderer)
            for axis in visible:
                assert not overlaps(box, axis.get_window_extent(renderer)), (name, axis.get_title())


def test_heat_maps_are_annotated_and_std_is_shown_only_with_several_seeds(tmp_path, captured_figures):
    write_trial(tmp_path / "one" / "MAMT_spread_0", 0)
    plot_results(str(tmp_path / "one"), str(tmp_path / "f1"))
    heat_map = captured_figures["coordination.png"].axes[0]
    cells = [t.get_text() for t in heat_map.texts]
    assert len(cells) == 3 * 2 and not any("\u00b1" in c for c in cells)
    for seed in (1, 2):
        write_trial(tmp_path / "one" / f"MAMT_spread_{seed}", seed)
    plot_results(str(tmp_path / "one"), str(tmp_path / "f2"))
    cells = [t.get_text() for t in captured_figures["coordination.png"].axes[0].texts]
    assert len(cells) == 6 and all("\u00b1" in c for c in cells)


def test_every_time_series_panel_has_a_y_label(tmp_path, captured_figures):
    write_trial(tmp_path / "exp" / "MAMT_spread_0", 0)
    plot_results(str(tmp_path / "exp"), str(tmp_path / "figures"))
    for name in ("learning_curves.png", "kl_per_agent.png", "trust_regions.png"):
        assert all(axis.get_ylabel() for axis in captured_figures[name].axes), name


def test_colours_stay_distinct_beyond_ten_lines():
    for count in (9, 12, 25):
        assert len(set(colours(count))) == count


def test_coordination_matrix_is_averaged_over_the_last_half(tmp_path):
    rows = write_trial(tmp_path / "trial", 0)
    agents, mean = coordination_matrix(read_results(str(tmp_path / "trial" / "result.json")))
    assert agents == AGENTS and np.isnan(np.diag(mean)).all()
    last_half = [r["learners"]["agent_0"]["coordination"]["agent_1"] for r in rows[6:]]
    assert mean[0, 1] == pytest.approx(np.mean(last_half))


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
