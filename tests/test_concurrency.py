"""Eight clients importing overlapping lists into one campaign at once, on a real server."""

from __future__ import annotations

import random
import threading

import httpx

from tests.support import query

CLIENTS = 8
BATCHES_PER_CLIENT = 4
POOL = 2400


def test_concurrent_overlapping_imports_add_each_address_once(api, server):
    campaign = api.campaign()
    addresses = [f"person{i}@company{i % 50}.com" for i in range(POOL)]
    plans = []
    for client in range(CLIENTS):
        rng = random.Random(client)
        # Overlap on purpose: every client draws from the same pool, in its own order and
        # letter case, so the same address arrives from several clients at the same moment.
        plans.append(
            [
                [
                    {"email": e.upper() if rng.random() < 0.3 else e}
                    for e in rng.sample(addresses, 400)
                ]
                for _ in range(BATCHES_PER_CLIENT)
            ]
        )
    results: list[dict] = []
    failures: list[str] = []
    start = threading.Barrier(CLIENTS)
    lock = threading.Lock()

    def run(batches: list[list[dict]]) -> None:
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            start.wait()
            for batch in batches:
                response = http.post(
                    f"/campaigns/{campaign}/leads",
                    params={"api_key": api.key},
                    json={"lead_list": batch},
                )
                with lock:
                    if response.status_code == 200:
                        results.append(response.json())
                    else:
                        failures.append(f"{response.status_code}: {response.text[:300]}")

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(results) == CLIENTS * BATCHES_PER_CLIENT
    sent = {lead["email"].lower() for plan in plans for batch in plan for lead in batch}
    rows = query(
        server.database_url,
        "SELECT l.email, COUNT(*) FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id "
        "WHERE cl.campaign_id = :c GROUP BY l.email",
        c=campaign,
    )
    assert {email for email, _ in rows} == sent
    assert all(count == 1 for _, count in rows)
    assert sum(r["added_count"] for r in results) == len(sent)
    for r in results:
        reasons = {s["reason"] for s in r["skipped_leads"]}
        assert reasons <= {"Already exists in this campaign"}
        assert r["added_count"] + r["skipped_count"] == 400
    lead_rows = query(
        server.database_url,
        "SELECT COUNT(*), COUNT(DISTINCT email) FROM leads "
        "WHERE account_id = (SELECT account_id FROM campaigns WHERE id = :c)",
        c=campaign,
    )
    assert lead_rows == [(len(sent), len(sent))]
