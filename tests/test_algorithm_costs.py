"""benchmarks/algorithm_costs.py: one tiny round on Spread writes its JSON, and
bad options fail with a one-line error (no speed is asserted here)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import algorithm_costs  # noqa: E402


def test_one_tiny_round_writes_every_cost_and_ratio(ray_session, tmp_path):
    out = tmp_path / "costs.json"
    algorithm_costs.main([
        "--envs", "spread", "--algorithms", "MAAC", "MAMT", "LOLA",
        "--rounds", "1", "--seconds", "0.05", "--sample-chunk", "50", "--repeats", "1",
        "--out", str(out),
    ])
    summary = json.loads(out.read_text())
    (row,) = summary["rows"]
    assert row["env"] == "spread" and row["agents"] == 2 and row["skipped"] == {}
    assert set(row["algorithms"]) == {"MAAC", "MAMT", "LOLA"}
    maac = row["algorithms"]["MAAC"]
    assert maac["sampling_ratio_to_maac"] == 1.0
    assert maac["learner_per_env_step_ratio_to_maac"] == 1.0
    assert maac["update_ratio_to_maac_per_round_range"] == [1.0, 1.0]
    for costs in row["algorithms"].values():
        assert costs["sampling_env_steps_per_s"] > 0
        assert costs["seconds_per_update"] > 0 and costs["gflop_per_update"] > 0
        # Table 3/7 schedule: 4 updates every 100 env steps.
        assert costs["updates_per_1000_env_steps"] == 40
        assert costs["learner_seconds_per_1000_env_steps"] == pytest.approx(
            40 * costs["seconds_per_update"])


@pytest.mark.parametrize("argv, message", [
    (["--algorithms", "MAMT", "LOLA"], "--algorithms MAMT LOLA: must include MAAC and MAMT"),
    (["--repeats", "0"], "--repeats 0: must be an int >= 1"),
    (["--seconds", "-1"], "--seconds -1.0: must be > 0"),
])
def test_bad_options_name_the_option_value_and_what_is_allowed(argv, message, capsys):
    with pytest.raises(SystemExit):
        algorithm_costs.parse_args(argv)
    assert message in capsys.readouterr().err
