"""Budgets in money per consumer, over a calendar day and month (UTC):
reserved before each call, settled with its price, refused once spent, and
shown by GET /ai/budgets and /ai/budgets/{consumer}."""

import datetime
import time

import orjson
import pytest
from ai_limits_kit import CHAT, MONEY_RESERVATION, proxy_config

from fastgw.testing import GatewayProcess, log_entries
from fastgw.testing.mock_llm import running_mock

CEILING = MONEY_RESERVATION  # what one call holds until it is settled


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("budgets") / "access.log"
    with running_mock() as mock:
        base = mock.base_url
        proxy = proxy_config(base)
        doc = {
            "_format_version": "3.0",
            "services": [{"name": "llm", "url": base, "routes": [{
                "name": "chat", "paths": ["/chat"],
                "plugins": [{"name": "ai-proxy", "config": proxy},
                            {"name": "key-auth", "config": {}}]}]}],
            "consumers": [
                {"username": "free", "keyauth_credentials": [{"key": "free-key"}]},
                {"username": "gold", "keyauth_credentials": [{"key": "gold-key"}],
                 "plugins": [{"name": "ai-rate-limiting-advanced", "config": {
                     "llm_providers": [], "budget": {"day": 1.0, "month": 20.0}}}]},
                {"username": "tina", "keyauth_credentials": [{"key": "tina-key"}],
                 "groups": [{"name": "team"}]},
                {"username": "tom", "keyauth_credentials": [{"key": "tom-key"}],
                 "groups": [{"name": "team"}]},
            ],
            # One budget the team's members spend together.
            "consumer_groups": [{"name": "team", "plugins": [
                {"name": "ai-rate-limiting-advanced", "config": {
                    "llm_providers": [], "identifier": "consumer-group",
                    "budget": {"day": 4 * CEILING}}}]}],
            "plugins": [
                {"name": "ai-rate-limiting-advanced", "config": {
                    "llm_providers": [], "budget": {"day": 3 * CEILING, "month": 5.0}}},
                {"name": "file-log", "config": {"path": str(log_path)}},
                {"name": "prometheus", "config": {"ai_metrics": True}},
            ],
        }
        with GatewayProcess(doc, workers=2) as gw:
            gw.log_path = log_path
            yield gw


def post(gw, key: str):
    return gw.request("POST", "/chat", orjson.dumps(CHAT),
                      {"Content-Type": "application/json", "apikey": key})


def spent_in_logs(gw, consumer: str, count: int) -> float:
    answered = log_entries(gw.log_path, lambda e: (e.get("consumer") or {}).get("username")
                           == consumer and e["response"]["status"] == 200, count)
    return sum(e["ai"]["proxy"]["usage"]["cost"] for e in answered)


def budgets(gw, consumer: str | None = None) -> list[dict]:
    path = "/ai/budgets" + (f"/{consumer}" if consumer else "")
    status, _, body = gw.admin("GET", path)
    assert status == 200, body
    return orjson.loads(body)["data"]


def test_a_daily_budget_admits_what_fits_and_refuses_the_rest(gateway):
    statuses = [post(gateway, "free-key")[0] for _ in range(8)]
    admitted = statuses.count(200)
    # Each call settles for less than its ceiling, so more than three fit.
    assert admitted >= 3 and statuses[admitted:] == [429] * (8 - admitted)
    status, headers, body = post(gateway, "free-key")
    assert status == 429
    assert orjson.loads(body)["error"]["message"].endswith("day budget")
    assert headers["x-ai-budget-limit-day"] == f"{3 * CEILING:.6f}".rstrip("0")
    spent = spent_in_logs(gateway, "free", admitted)
    assert spent <= 3 * CEILING
    assert 3 * CEILING - spent < CEILING  # full but for less than one call


def test_the_admin_api_shows_limit_spent_reserved_and_reset(gateway):
    post(gateway, "free-key")
    time.sleep(0.3)
    [day, month] = budgets(gateway, "free")
    assert (day["window"], month["window"]) == ("day", "month")
    assert day["consumer"] == "free" and day["limit"] == pytest.approx(3 * CEILING)
    assert day["reserved"] == 0
    assert day["spent"] == pytest.approx(spent_in_logs(gateway, "free", 1), abs=1e-6)
    assert month["spent"] == pytest.approx(day["spent"], abs=1e-6)
    now = datetime.datetime.now(datetime.UTC)
    tomorrow = (now + datetime.timedelta(days=1)).date()
    assert day["resets_at"] == f"{tomorrow.isoformat()}T00:00:00+00:00"
    assert month["resets_at"].endswith("-01T00:00:00+00:00")


def test_a_consumers_own_budget_replaces_the_global_one(gateway):
    for _ in range(5):
        assert post(gateway, "gold-key")[0] == 200
    time.sleep(0.3)
    entries = budgets(gateway, "gold")
    assert [e["limit"] for e in entries] == [1.0, 20.0]
    assert entries[0]["spent"] > 0
    everyone = budgets(gateway)
    assert {e["consumer"] for e in everyone} == {"free", "gold", None}
    assert len(everyone) == 5  # free's and gold's day and month, the team's day


def test_a_groups_budget_is_spent_by_its_members_together(gateway):
    statuses = [post(gateway, key)[0] for key in ("tina-key", "tom-key") * 5]
    admitted = statuses.count(200)
    assert admitted >= 4 and 429 in statuses
    time.sleep(0.3)
    [team] = budgets(gateway, "tom")
    assert team["consumer_group"] == "team" and team["consumer"] is None
    spent = spent_in_logs(gateway, "tina", 1) + spent_in_logs(gateway, "tom", 1)
    assert team["spent"] == pytest.approx(spent, abs=1e-6)
    assert team["spent"] <= 4 * CEILING


def test_an_unknown_consumer_is_a_404(gateway):
    status, _, _ = gateway.admin("GET", "/ai/budgets/nobody")
    assert status == 404


def test_metrics_show_each_budgets_remaining_money(gateway):
    post(gateway, "gold-key")
    time.sleep(0.3)
    _, _, body = gateway.admin("GET", "/metrics")
    text = body.decode()
    [gold_day] = [e for e in budgets(gateway, "gold") if e["window"] == "day"]
    line = ('fastgw_ai_budget_remaining{consumer="gold",consumer_group="",window="day"} '
            + repr(gold_day["remaining"]))
    assert line in text
    assert 'fastgw_ai_budget_spent{consumer="",consumer_group="team",window="day"}' in text
