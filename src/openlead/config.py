"""Runtime settings, read from the environment with the prefix ``OPENLEAD_``."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
