"""email_accounts: sends by quarter hour, so that each campaign counts its own day

``sent_day``/``sent_today`` counted a mailbox's sends per UTC day, so a campaign whose window
holds UTC midnight (Sydney's working day; Los Angeles at 16:00 in winter) could send a
mailbox's daily cap twice in one of its own days. ``sent_log`` keeps the sends of the last
26 hours by quarter hour (``openlead.sending.tally``), from which a campaign reads what the
mailbox sent since its own midnight.

A mailbox's count for the current UTC day is carried over as sent in the quarter hour of its
last claim; a downgrade gives back the count since 00:00 UTC.

Revision ID: 0008_mailbox_sent_log
Revises: 0007_replies
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_mailbox_sent_log"
down_revision: str | None = "0007_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# As openlead.sending.tally keeps them (written out here: a migration stays as it was made).
_QUARTER_SECONDS = 900

_MAILBOXES = sa.table(
    "email_accounts",
    sa.column("id", sa.BigInteger()),
    sa.column("sent_day", sa.String(10)),
    sa.column("sent_today", sa.Integer()),
    sa.column("last_claimed_at", sa.DateTime(timezone=True)),
    sa.column("sent_log", _JSON),
)


def _quarter(moment: datetime) -> int:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(aware.timestamp() // _QUARTER_SECONDS)


def upgrade() -> None:
    op.add_column("email_accounts", sa.Column("sent_log", _JSON, nullable=True))
    bind = op.get_bind()
    today = datetime.now(UTC).date().isoformat()
    counted = bind.execute(
        sa.select(_MAILBOXES.c.id, _MAILBOXES.c.sent_today, _MAILBOXES.c.last_claimed_at).where(
            _MAILBOXES.c.sent_day == today,
            _MAILBOXES.c.sent_today > 0,
            _MAILBOXES.c.last_claimed_at.is_not(None),
        )
    ).all()
    for mailbox, sent, claimed_at in counted:
        log = [[_quarter(claimed_at), sent]]
        bind.execute(sa.update(_MAILBOXES).where(_MAILBOXES.c.id == mailbox).values(sent_log=log))
    op.drop_column("email_accounts", "sent_day")
    op.drop_column("email_accounts", "sent_today")


def downgrade() -> None:
    op.add_column("email_accounts", sa.Column("sent_day", sa.String(10), nullable=True))
    op.add_column(
        "email_accounts",
        sa.Column("sent_today", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    logged = bind.execute(
        sa.select(_MAILBOXES.c.id, _MAILBOXES.c.sent_log).where(_MAILBOXES.c.sent_log.is_not(None))
    ).all()
    for mailbox, log in logged:
        sent = sum(count for quarter, count in log if quarter >= _quarter(midnight))
        bind.execute(
            sa.update(_MAILBOXES)
            .where(_MAILBOXES.c.id == mailbox)
            .values(sent_day=now.date().isoformat(), sent_today=sent)
        )
    op.drop_column("email_accounts", "sent_log")
