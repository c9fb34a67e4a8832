"""A mailbox's sends by the quarter hour they were reserved in, over the last 26 hours.

A daily cap has to count the day of whoever reads it: a campaign in Sydney and one in
New York sharing a mailbox each count that mailbox's sends since their own midnight. A
counter reset at one fixed midnight (UTC) would let a mailbox send its cap twice within one
working day wherever that midnight falls inside the sending window (it does in Sydney, and
in Los Angeles in winter). Every time zone's midnight falls on a quarter hour in UTC, so
counts kept by quarter hour answer "how many since midnight" exactly for any of them; no day
is longer than 25 hours, so 26 hours of them is enough.

Stored as JSON: ``[[quarter, count], ...]``, a quarter being whole quarter hours since the
Unix epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

QUARTER_SECONDS = 900
KEPT_QUARTERS = 26 * 4


def quarter_of(moment: datetime) -> int:
    """The quarter hour holding ``moment`` (an aware datetime)."""
    return int(moment.timestamp() // QUARTER_SECONDS)


@dataclass(frozen=True)
class Tally:
    counts: tuple[tuple[int, int], ...] = ()

    @classmethod
    def read(cls, stored: Sequence[Sequence[int]] | None) -> Tally:
        return cls(tuple((int(quarter), int(count)) for quarter, count in stored or ()))

    def stored(self) -> list[list[int]]:
        return [[quarter, count] for quarter, count in self.counts]

    def since(self, start: datetime) -> int:
        """Sends reserved at or after ``start``. A ``start`` inside a quarter (no time zone's
        midnight is) counts that whole quarter: more, never fewer."""
        first = quarter_of(start)
        return sum(count for quarter, count in self.counts if quarter >= first)

    def add(self, moment: datetime, count: int) -> Tally:
        """With ``count`` more sends reserved at ``moment``; quarters too old to be in anyone's
        day any more are dropped."""
        return self._changed(quarter_of(moment), count, oldest=quarter_of(moment) - KEPT_QUARTERS)

    def remove(self, quarter: int, count: int) -> Tally:
        """With ``count`` sends reserved in ``quarter`` given back (never below none)."""
        return self._changed(quarter, -count, oldest=None)

    def _changed(self, quarter: int, delta: int, oldest: int | None) -> Tally:
        counts = dict(self.counts)
        counts[quarter] = max(counts.get(quarter, 0) + delta, 0)
        return Tally(
            tuple(
                (q, c)
                for q, c in sorted(counts.items())
                if c > 0 and (oldest is None or q >= oldest)
            )
        )
