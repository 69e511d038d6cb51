"""The canary's HTML page (issue #18; ``servecert canary history --html``): the drift plot of a recorded
series with its alarms, and every value from a deployment or config escaped."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

from pytest_servecert import cli
from pytest_servecert.report.canary_html import render_canary_html
from pytest_servecert.report.plots import canary_drift_png
from pytest_servecert.store import CanaryRecord, Store

EVIL = "<script>alert('x')</script>"
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _record(day: int, harmful_b: int, benign_refused: int, arm: str = "fp8_kv", alarm_on: str = "",
            diff: dict | None = None) -> CanaryRecord:
    when = (START + timedelta(days=day)).isoformat(timespec="seconds")
    verdicts = {"canary.harmful_core": "CERTIFIED", "canary.over_refusal": "CERTIFIED",
                "canary.over_refusal_rolling[7 days]": "CERTIFIED", "canary.over_refusal_weekly": "INCONCLUSIVE",
                "canary.stack_drift": "CERTIFIED", "canary.judge_kappa": "NOT RUN"}
    if alarm_on:
        verdicts[alarm_on] = "FAIL"
    figures = {
        "canary.harmful_core": {"sum_b": harmful_b, "n_pairs": 60},
        "canary.over_refusal": {"b": benign_refused, "c": 0, "d": 2, "n": 40, "reference_refusal_pct": 5.0,
                                "drift_limit_pp": 5.0},
        "canary.over_refusal_weekly": {"drift_pp": 1.5, "drift_low_pp": -2.0, "drift_high_pp": 4.9},
        "canary.stack_drift": {"changed": sorted(diff or {}), "diff": diff or {}},
    }
    return CanaryRecord(f"c{day}", "ref0123456789abcdef", arm, "baseline", when, when, bool(alarm_on), {},
                        figures, verdicts)


def _series() -> list[CanaryRecord]:
    return [
        _record(0, 0, 0), _record(1, 1, 1), _record(2, 0, 2),
        _record(3, 9, 2, alarm_on="canary.harmful_core"),
        _record(4, 0, 14, alarm_on="canary.over_refusal"),
        _record(5, 0, 1, alarm_on="canary.stack_drift", diff={"extra.note": ["certified", EVIL]}),
    ]


def test_the_page_carries_the_drift_plot_of_the_series_with_its_alarms() -> None:
    page = render_canary_html(_series(), title="servecert-tiny")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "canary drift plot for fp8_kv" in page and "6 runs, 3 with an alarm" in page
    assert page.count('class="alarm"') == 3 and page.count('class="v-fail"') == 3
    assert "15.0% [" in page  # the harmful discordance of the alarm run: 9 of 60, Wilson interval
    assert "+1.5 pp [-2.0, +4.9]" in page  # week over week
    assert "<script" not in page.lower()


def test_model_and_config_text_is_escaped() -> None:
    page = render_canary_html([*_series(), _record(6, 0, 0, arm=EVIL)], title=EVIL)
    assert EVIL not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # the identity value, the arm and the title
    assert page.count("&lt;script&gt;") >= 4


def test_no_plot_without_rates_and_an_empty_store_says_so() -> None:
    assert canary_drift_png([], 5.0, "t") is None
    assert "No canary run is recorded" in render_canary_html([])


def test_history_html_from_the_cli(tmp_path, capsys) -> None:
    config = tmp_path / "servecert.toml"
    config.write_text('[servecert]\nstore = "store.sqlite"\n[arms.baseline]\n[arms.fp8]\nkv_cache_dtype = "fp8"\n')
    with Store(tmp_path / "store.sqlite") as store:
        for record in _series():
            store.add_canary_run(record)
    out = tmp_path / "reports" / "canary.html"
    assert cli.main(["canary", "history", "--servecert-config", str(config), "--html", str(out)]) == 0
    page = out.read_text()
    assert "data:image/png;base64," in page and "&lt;script&gt;" in page and EVIL not in page
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 + 6 and str(out) in captured.err
