"""tuned_examples/spread_mamt_search.py: the successive-halving search, checked without training."""

import importlib.util
import os

import pytest
from ray import tune

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "tuned_examples", "spread_mamt_search.py")
SPEC = importlib.util.spec_from_file_location("spread_mamt_search", PATH)
search = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(search)


def parse(*argv):
    parser = search.build_parser()
    args = parser.parse_args(list(argv))
    search.check_arguments(parser, args)
    return args


@pytest.mark.parametrize("first_cut, rungs", [(6, [25000 / 6]), (36, [25000 / 6, 25000 / 36])])
def test_asha_keeps_the_best_sixth_at_the_papers_fractions(first_cut, rungs):
    scheduler = search.successive_halving(parse("--first-cut", str(first_cut)))
    bracket = scheduler._brackets[0]
    assert scheduler._reduction_factor == 6 and len(scheduler._brackets) == 1
    cuts = sorted(milestone for milestone, _ in bracket._rungs if milestone < 25000 - 1e-6)
    assert cuts == pytest.approx(sorted(rungs))
    assert scheduler._time_attr == "env_runners/num_episodes_lifetime"
    assert scheduler._max_t == 25000


def test_search_points_are_clips_that_leave_delta_free_times_the_papers_sigmas():
    points = search.search_points(parse())
    pairs = [(p["trust_region_bounds"], p["coordination_threshold"], p["seed"]) for p in points]
    # MAMT's defaults (clip 100, sigma 0.2) first: ASHA lets the first trial at a rung pass
    assert pairs == [([0.01, 100.0], 0.2, 100)] + [
        ([0.01, 1.5], sigma, 100) for sigma in (0.002, 0.02, 0.2)] + [
        ([0.01, 100.0], sigma, 100) for sigma in (0.002, 0.02)]
    space = search.search_space(parse())
    assert space["metrics_num_episodes_for_smoothing"] == 1000
    assert space["trust_region_bounds"][0] == 0.01
    assert space["trust_region_bounds"][1].categories == [1.5, 100.0]
    table9 = search.search_points(parse("--table9", "--clip-uppers", "1.5", "--sigmas", "0.2"))
    assert len(table9) == 3 * 2 * 2 * 2
    assert {p["num_updates_per_round"] for p in table9} == {1, 4, 8}
    assert all(p["critic_lr"] == p["actor_lr"] for p in table9)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "3", "100"], "--seeds has [3]"),
    (["--first-cut", "4"], "--first-cut is 4"),
    (["--sigmas", "1.5"], "--sigmas has 1.5"),
    # Table 9's clips 0.01 and 1 hold both Spread agents' delta at the clip
    (["--clip-uppers", "1", "100"], "--clip-uppers has 1.0; allowed: values above"),
    (["--clip-uppers", "0.01"], "--clip-uppers has 0.01; allowed: values above"),
])
def test_bad_options_name_the_option_and_value(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse(*argv)
    assert message in capsys.readouterr().err


def test_the_search_space_is_accepted_by_mamt_config():
    from rllib_mamt import MAMTConfig

    args = parse("--smoke")
    resolved = {key: value for key, value in search.search_space(args).items()
                if not hasattr(value, "categories") and key != "trust_region_bounds"}
    resolved.update(search.search_points(args)[0])
    config = MAMTConfig().update_from_dict(resolved)
    config.validate()
    assert list(config.trust_region_bounds) == [0.01, 100.0]
    assert config.coordination_threshold == 0.2


def test_summarize_picks_the_best_finished_trial_whose_delta_could_move(tmp_path):
    import json

    experiment = tmp_path / (search.NAME + "_mpe2")
    trials = {"MAMT_a": ((0.01, 1.5), 0.02, [(1000, -150.0), (5000, -120.0), (25000, -80.0)]),
              "MAMT_b": ((0.01, 100.0), 0.2, [(1000, -140.0), (4200, -110.0), (25000, -90.0)]),
              "MAMT_c": ((0.01, 0.01), 0.2, [(2000, -130.0), (4500, -125.0)]),
              # finished with the best return, but its bounds held delta at 1: MAMD
              "MAMT_d": ((0.01, 1.0), 0.2, [(1000, -150.0), (5000, -100.0), (25000, -70.0)])}
    for name, (bounds, sigma, history) in trials.items():
        directory = experiment / name
        directory.mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(
            {"trust_region_bounds": bounds, "coordination_threshold": sigma, "seed": 100}))
        lines = [json.dumps({"env_runners": {"num_episodes_lifetime": e, "episode_return_mean": r}})
                 for e, r in history]
        (directory / "result.json").write_text("\n".join(lines + lines[-1:]) + "\n{\"env_r")
    summary = search.summarize(parse("--storage-path", str(tmp_path)))
    by_clip = {tuple(t["trust_region_bounds"]): t for t in summary["trials"]}
    assert by_clip[(0.01, 1.5)]["return_at_first_rung"] == -120.0
    assert by_clip[(0.01, 100.0)]["return_at_first_rung"] == -110.0
    assert not by_clip[(0.01, 0.01)]["finished_budget"]
    assert [by_clip[clip]["delta_pinned_at"] for clip in sorted(by_clip)] == [0.01, 1.0, None, None]
    assert summary["best"]["trust_region_bounds"] == [0.01, 1.5]
    assert summary["best"]["return_last_1000_episodes"] == -80.0
    assert summary["best"]["settings"] == {"trust_region_bounds": [0.01, 1.5],
                                           "coordination_threshold": 0.02}


def test_the_summary_is_written_after_ray_shuts_down():
    """``run`` summarises after ``ray.shutdown()``, when Tune's env registry is
    gone: the agent count must not be read through it (the search of session 8
    trained all its trials, then failed writing its summary). In a subprocess,
    so that the test session's shared Ray instance is left alone."""
    import subprocess
    import sys

    script = (
        "import importlib.util, ray, rllib_mamt\n"
        f"spec = importlib.util.spec_from_file_location('search', {PATH!r})\n"
        "search = importlib.util.module_from_spec(spec); spec.loader.exec_module(search)\n"
        "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False); ray.shutdown()\n"
        "print(search.spread_agents('paper'), search.pinned_delta([0.01, 1.0], 2))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["2", "1.0"]
