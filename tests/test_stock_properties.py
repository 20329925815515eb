"""Property-based: random sequences of add, reduce, adjust and batches against a
plain model of the counts. After every step the quantities, the 409s and the
ledger chain agree with the model."""
import itertools
from collections import Counter, defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

PRODUCTS = 2
SKUS = itertools.count(1)
quantities = st.integers(min_value=1, max_value=40)
levels = st.integers(min_value=0, max_value=60)
slots = st.integers(min_value=0, max_value=PRODUCTS - 1)
stale = st.booleans()


def _expected_after(action: str, before: int, quantity: int) -> int:
    return {"add": before + quantity, "reduce": before - quantity, "adjust": quantity}[action]


class StockMachine(RuleBasedStateMachine):
    def __init__(self, client):
        super().__init__()
        self.client = client
        self.ids = []
        for _ in range(PRODUCTS):
            body = {"name": "性质测试商品", "sku": f"PROP-{next(SKUS)}", "price": 1}
            self.ids.append(self.client.post("/api/products/", json=body).get_json()["data"]["id"])
        self.model = {pid: 0 for pid in self.ids}

    def _change(self, slot: int, quantity: int, use_stale: bool) -> dict:
        pid = self.ids[slot]
        change = {"product_id": pid, "quantity": quantity}
        if use_stale:
            change["expected_quantity"] = self.model[pid] + 1
        return change

    def _outcome(self, action: str, change: dict, model: dict) -> tuple[str | None, int]:
        """(error code or None, new level) the model predicts for one change."""
        before = model[change["product_id"]]
        if change.get("expected_quantity", before) != before:
            return "CONFLICT", before
        after = _expected_after(action, before, change["quantity"])
        return ("INSUFFICIENT_STOCK", before) if after < 0 else (None, after)

    @rule(action=st.sampled_from(["add", "reduce", "adjust"]), slot=slots, quantity=levels, use_stale=stale)
    def single(self, action, slot, quantity, use_stale):
        if action != "adjust":
            quantity = max(quantity, 1)
        change = self._change(slot, quantity, use_stale)
        error, after = self._outcome(action, change, self.model)
        response = self.client.post(f"/api/stock/{action}", json=change)
        body = response.get_json()
        if error:
            assert response.status_code == 409 and body["error"]["code"] == error
        else:
            assert response.status_code == 200, body
            assert body["data"]["stock"]["quantity"] == after
            self.model[change["product_id"]] = after

    @rule(changes=st.lists(st.tuples(st.sampled_from(["add", "reduce", "adjust"]), slots, quantities, stale),
                           min_size=1, max_size=5),
          dry_run=st.booleans())
    def batch(self, changes, dry_run):
        planned, model, failure = [], dict(self.model), None
        for index, (action, slot, quantity, use_stale) in enumerate(changes):
            change = {"action": action, **self._change(slot, quantity, use_stale)}
            error, after = self._outcome(action, change, model)
            if error and failure is None:
                failure = (index, error)
            model[change["product_id"]] = after
            planned.append(change)
        response = self.client.post("/api/stock/batch", json={"changes": planned, "dry_run": dry_run})
        body = response.get_json()
        if failure:
            assert response.status_code == 409
            assert (body["error"]["details"]["index"], body["error"]["code"]) == failure
            return
        assert response.status_code == 200, body
        assert [r["stock"]["quantity"] for r in body["data"]["results"]] == [
            _running for _running in self._levels_along(planned)
        ]
        if not dry_run:
            self.model = model

    def _levels_along(self, planned):
        model = dict(self.model)
        for change in planned:
            model[change["product_id"]] = _expected_after(change["action"], model[change["product_id"]], change["quantity"])
            yield model[change["product_id"]]

    @invariant()
    def counts_and_ledger_agree_with_the_model(self):
        for pid in self.ids:
            stock = self.client.get(f"/api/stock/product/{pid}").get_json()["data"]
            assert stock["quantity"] == self.model[pid]
            report = self.client.get(f"/api/logs/verify?product_id={pid}").get_json()["data"]
            assert report["problems"] == []

    @invariant()
    def statistics_from_running_totals_equal_the_ledgers(self):
        """Statistics of all products come from the running totals; those of one product
        from its ledger rows. Added up over the products, both must say the same."""
        overall = self.client.get("/api/logs/statistics").get_json()["data"]
        by_action, daily = defaultdict(Counter), defaultdict(Counter)
        every_product = self.client.get("/api/products/?per_page=100").get_json()["data"]["items"]  # earlier runs' too
        for pid in (product["id"] for product in every_product):
            own = self.client.get(f"/api/logs/statistics?product_id={pid}").get_json()["data"]
            for action, totals in own["by_action"].items():
                by_action[action].update(totals)
            for day in own["daily"]:
                daily[day["date"]].update({key: day[key] for key in ("in", "out", "adjust")})
        assert overall["by_action"] == {action: {"count": 0, "quantity": 0, **by_action[action]}
                                        for action in overall["by_action"]}
        assert overall["daily"] == [{"date": day, "in": 0, "out": 0, "adjust": 0, **daily[day]} for day in sorted(daily)]


def test_stock_service_matches_a_simple_model(client):
    run_state_machine_as_test(
        lambda: StockMachine(client),
        settings=settings(max_examples=20, stateful_step_count=12, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]),
    )
