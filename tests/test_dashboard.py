"""Supervisor dashboard state from live events (the browser side is tests/test_browser_dashboard.py)."""

from __future__ import annotations

from assist.dashboard import Dashboard
from assist.events import CallStarted
from tests.test_scorecard import live_threat_warnings


def test_a_retracted_interim_does_not_close_a_confirmed_warning_of_the_same_rule() -> None:
    dashboard = Dashboard()
    dashboard.on_event(CallStarted(call_id="c", protocol="plain", metadata={"agent": "Mike"}))
    statuses = []
    for warning in live_threat_warnings():
        dashboard.on_event(warning.model_copy(update={"call_id": "c"}))
        (call,) = dashboard.snapshot()["calls"]
        statuses.append((warning.status, [w["rule_id"] for w in call["critical"]], call["warnings"]))
    assert statuses == [
        ("provisional", ["US-THR-01"], 1),
        ("confirmed", ["US-THR-01"], 1),
        ("provisional", ["US-THR-01"], 2),  # a second threat heard in an interim
        ("retracted", ["US-THR-01"], 1),  # that one was misheard; the first threat still stands
    ]
