"""Keys, tenancy basics, rate limits and the access log, against real server processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import Server, free_port, query


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openlead.cli", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bootstrap_key_is_the_configured_one(server):
    response = httpx.get(f"{server.base_url}/campaigns", params={"api_key": server.key})
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_three_ways_to_present_a_key(api, server):
    url = f"{server.base_url}/campaigns"
    assert httpx.get(url, params={"api_key": api.key}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {api.key}"}).status_code == 200
    assert httpx.get(url, headers={"X-API-Key": api.key}).status_code == 200
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = httpx.get(url, params={"api_key": api.key + "x"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


def test_keys_are_stored_only_as_hashes(api, server):
    rows = query(server.database_url, "SELECT prefix, key_hash FROM api_keys")
    stored = " ".join(f"{p} {h}" for p, h in rows)
    assert api.key not in stored and server.key not in stored
    assert hashlib.sha256(api.key.encode()).hexdigest() in stored


def test_cli_accounts_and_keys(server):
    created = _cli(server.database_url, "accounts", "create", "cli-account")
    assert created.returncode == 0, created.stderr
    first_key = created.stdout.strip()
    assert first_key.startswith("ol_") and "\n" not in first_key

    made = _cli(server.database_url, "keys", "create", "--account", "cli-account")
    assert made.returncode == 0, made.stderr
    second_key = made.stdout.strip()
    assert made.stdout == second_key + "\n", "the key alone on stdout, for scripts"
    url = f"{server.base_url}/campaigns"
    assert httpx.get(url, params={"api_key": second_key}).status_code == 200

    listed = _cli(server.database_url, "keys", "list", "--account", "cli-account")
    assert listed.returncode == 0
    lines = listed.stdout.strip().splitlines()[1:]
    assert len(lines) == 2
    assert first_key not in listed.stdout and second_key not in listed.stdout
    second_id = lines[-1].split("\t")[0]

    revoked = _cli(server.database_url, "keys", "revoke", second_id)
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(url, params={"api_key": second_key}).status_code == 401
    assert httpx.get(url, params={"api_key": first_key}).status_code == 200
    assert _cli(server.database_url, "keys", "revoke", second_id).returncode == 1

    duplicate = _cli(server.database_url, "accounts", "create", "cli-account")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    unknown = _cli(server.database_url, "keys", "create", "--account", "nobody")
    assert unknown.returncode == 1 and "No account" in unknown.stderr


def test_access_log_never_shows_the_key(api, server):
    api.get("/campaigns")
    api.get("/campaigns", params={"api_key": api.key, "offset": 0})
    httpx.get(f"{server.base_url}/campaigns", params={"api_key": "wrong-key-value-123"})
    # A key under a spelling the API does not take is refused, and not logged either.
    for misspelt in ("API_KEY", "apikey", f"api_key={api.key}"):
        response = httpx.get(f"{server.base_url}/campaigns", params={misspelt: api.key})
        assert response.status_code == 401
    api.get("/leads/block-list", params={"search": "acme", "limit": 5})
    time.sleep(0.2)
    log = server.log()
    assert "GET /api/v1/campaigns?api_key=***" in log
    assert "GET /api/v1/campaigns?API_KEY=***" in log
    assert "GET /api/v1/leads/block-list?search=acme&limit=5" in log
    assert api.key not in log
    assert server.key not in log
    assert "wrong-key-value-123" not in log


@pytest.fixture
def limited_server(tmp_path):
    servers: list[Server] = []

    def start(rate: str, redis_url: str | None = None, database_url: str | None = None) -> Server:
        env = {"OPENLEAD_RATE_LIMIT": rate}
        if redis_url:
            env["OPENLEAD_REDIS_URL"] = redis_url
        instance = Server(
            backend="sqlite",
            database_url=database_url or f"sqlite+aiosqlite:///{tmp_path}/limits.db",
            port=free_port(),
            key="ol_limits_key_0123456789abcdef",
            log_path=tmp_path / f"server-{len(servers)}.log",
            env=env,
        )
        instance.start()
        servers.append(instance)
        return instance

    yield start
    for instance in servers:
        instance.stop()


def _burst(server: Server, count: int) -> list[httpx.Response]:
    with httpx.Client() as http:
        return [
            http.get(f"{server.base_url}/campaigns", headers={"X-API-Key": server.key})
            for _ in range(count)
        ]


def test_rate_limit_per_key_in_memory(limited_server):
    server = limited_server("5/minute")
    responses = _burst(server, 7)
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    ok, limited = responses[0], responses[-1]
    assert ok.headers["X-RateLimit-Limit"] == "5"
    assert ok.headers["X-RateLimit-Remaining"] == "4"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in limited.headers
    assert limited.json()["error"]["code"] == "rate_limited"


def test_rate_limit_off(limited_server):
    server = limited_server("off")
    assert {r.status_code for r in _burst(server, 30)} == {200}


def _redis_url() -> str | None:
    try:
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping()
    except Exception:
        return None
    return "redis://127.0.0.1:6379/0"


def test_rate_limit_shared_through_redis(limited_server, tmp_path):
    redis_url = _redis_url()
    if redis_url is None:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    database_url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    first = limited_server("6/minute", redis_url, database_url)
    second = limited_server("6/minute", redis_url, database_url)
    codes = [r.status_code for r in _burst(first, 4)] + [r.status_code for r in _burst(second, 4)]
    # Two processes, one quota: the counter lives in Redis.
    assert codes == [200] * 6 + [429] * 2
