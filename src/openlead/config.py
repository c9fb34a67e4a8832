"""Runtime settings, read from the environment with the prefix ``OPENLEAD_``."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATA_DIR = Path("openlead-data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLEAD_", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR}/openlead.db"
    host: str = "127.0.0.1"
    port: int = 8000
    rate_limit: str = "20/second"
    redis_url: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    bootstrap_api_key: str | None = None
    log_level: str = "info"
    # Where a generated secret key is kept; by default the SQLite database's folder, or
    # ./openlead-data.
    data_dir: Path | None = None
    # Encrypts mailbox passwords and signs tracking links. Every process of one installation
    # needs the same one; when unset, one is generated into ``data_dir`` on first start.
    secret_key: str | None = None
    # The address recipients' mail clients reach this server at: tracking and unsubscribe
    # links are built on it. Unset: the address ``openlead serve`` listens on.
    public_url: str | None = None
    # The dispatcher inside ``openlead serve``; ``openlead worker`` runs it on its own.
    sender: bool = True
    sender_interval_seconds: float = 1.0
    # How long a claimed send stays with the worker that claimed it before another may
    # take it over (a worker that died).
    sender_lease_seconds: float = 300.0
    sender_batch: int = 200
    smtp_timeout_seconds: float = 30.0
    # How often each mailbox's inbox is read for replies (over IMAP, where the mailbox has an
    # imap_host); 0 turns reading off.
    reply_check_seconds: float = Field(default=60.0, ge=0)
    # How long a statement waits for a lock another transaction holds (SQLite's busy timeout,
    # PostgreSQL's lock_timeout) before the request gives up with 503 database_busy.
    lock_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def link_base(self) -> str:
        """Where the links in emails lead, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secret_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        database = make_url(self.database_url).database if self.is_sqlite else None
        if database and database != ":memory:":
            return Path(database).parent
        return DEFAULT_DATA_DIR


@lru_cache
def get_settings() -> Settings:
    return Settings()
