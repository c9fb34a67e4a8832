"""When a campaign may send: its weekly window in its own time zone. Pure.

Days are numbered as SmartLead numbers them, 0 = Sunday. A window is [start, end) in local
wall-clock minutes; ``end`` may be 1440 (midnight at the end of the day). Local times are
turned into instants with ``zoneinfo``, so the window moves with daylight saving time: 09:00
in New York is 14:00 UTC in January and 13:00 UTC in July.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MINUTES_PER_DAY = 24 * 60


def known_timezone(name: str) -> bool:
    if name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def parse_clock(text: str) -> int:
    """``"HH:MM"`` as minutes after midnight; ``"24:00"`` is the end of the day."""
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes)
    if not (len(hours) == 2 and len(minutes) == 2 and 0 <= int(minutes) < 60):
        raise ValueError(text)
    if not 0 <= value <= MINUTES_PER_DAY:
        raise ValueError(text)
    return value


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _sunday_based(day: date) -> int:
    return day.isoweekday() % 7


@dataclass(frozen=True)
class Schedule:
    timezone: str
    days: frozenset[int]
    start_minute: int
    end_minute: int

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return as_utc(moment).astimezone(self.zone)

    def local_day(self, moment: datetime) -> str:
        """The campaign's calendar day at ``moment`` (its daily new-lead budget's key)."""
        return self.local(moment).date().isoformat()

    def day_start(self, moment: datetime) -> datetime:
        """The start of the campaign's calendar day at ``moment`` (its mailboxes' caps)."""
        return day_start(moment, self.zone)

    def is_open(self, moment: datetime) -> bool:
        local = self.local(moment)
        minute = local.hour * 60 + local.minute
        return (
            _sunday_based(local.date()) in self.days
            and self.start_minute <= minute < self.end_minute
        )

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The window of a local day as UTC instants. A local time that does not exist (the
        hour skipped in spring) or exists twice (autumn) is read as zoneinfo reads it with
        ``fold=0``: the first of the two, the offset before the change."""
        zone = self.zone

        def instant(minutes: int) -> datetime:
            moment_day = day + timedelta(days=minutes // MINUTES_PER_DAY)
            clock = time((minutes % MINUTES_PER_DAY) // 60, minutes % 60)
            return datetime.combine(moment_day, clock, tzinfo=zone).astimezone(UTC)

        return instant(self.start_minute), instant(self.end_minute)

    def next_open(self, moment: datetime) -> datetime | None:
        """The first instant at or after ``moment`` when the window is open (None: never)."""
        moment = as_utc(moment)
        if self.is_open(moment):
            return moment
        today = self.local(moment).date()
        for offset in range(8):
            day = today + timedelta(days=offset)
            if _sunday_based(day) not in self.days:
                continue
            start, end = self._window(day)
            candidate = max(start, moment)
            if candidate < end and self.is_open(candidate):
                return candidate
        return None


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive; they are UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    """The start of ``moment``'s calendar day in ``zone``, as a UTC instant (a midnight that
    is skipped or repeated read with ``fold=0``, as the window's times)."""
    local_day = as_utc(moment).astimezone(zone).date()
    return datetime.combine(local_day, time(0), tzinfo=zone).astimezone(UTC)
