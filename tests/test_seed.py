"""`flask --app main seed` fills a database with a consistent, verifiable history."""
import json


def test_seed_writes_products_and_a_ledger_that_verifies(client, runner):
    result = runner.invoke(args=["seed", "--products", "25", "--movements", "600", "--random-seed", "7"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["products"], summary["movements"]) == (25, 600)

    assert client.get("/api/products/").get_json()["data"]["pagination"]["total"] == 25
    report = client.get("/api/logs/verify").get_json()["data"]
    assert (report["products_checked"], report["logs_checked"], report["problems"]) == (25, 600, [])


def test_seeded_history_is_oldest_first_so_ids_and_times_agree(client, runner):
    runner.invoke(args=["seed", "--products", "5", "--movements", "200", "--random-seed", "3"])
    logs = client.get("/api/logs/?per_page=100").get_json()["data"]["items"]
    times = [log["created_at"] for log in logs]  # newest first by id
    assert times == sorted(times, reverse=True)
