"""Per-key rate limiting with the ``limits`` library (memory, or Redis when configured)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from openlead.web.errors import ApiError


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


def parse_rate(rate: str) -> RateLimitItem | None:
    """``off`` disables limiting; anything else must be a ``limits`` string."""
    if rate.strip().lower() in ("off", "none", "0", ""):
        return None
    try:
        return parse(rate)
    except ValueError as exc:
        raise ValueError(f"OPENLEAD_RATE_LIMIT {rate!r} is not a rate such as '20/second'") from exc


def _storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    uri = redis_url if redis_url.startswith("async+") else "async+" + redis_url
    return RedisStorage(uri, implementation="redispy")


class RateLimiter:
    def __init__(self, rate: str, redis_url: str | None = None) -> None:
        self.item = parse_rate(rate)
        self._limiter = FixedWindowRateLimiter(_storage(redis_url)) if self.item else None

    async def check(self, key_id: int) -> Quota | None:
        """Count one request for the key; raise ``429`` when it is over its quota."""
        if self._limiter is None or self.item is None:
            return None
        identity = str(key_id)
        allowed = await self._limiter.hit(self.item, "api-key", identity)
        stats = await self._limiter.get_window_stats(self.item, "api-key", identity)
        quota = Quota(self.item.amount, stats.remaining, stats.reset_time)
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests: this key may make {self.item}. Retry after {retry_after} s.",
                {"retry_after": retry_after},
                headers={"Retry-After": str(retry_after), **quota.headers()},
            )
        return quota
