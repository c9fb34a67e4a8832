"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from openlead import __version__
from openlead.campaign_leads.endpoints import router as campaign_leads_router
from openlead.campaigns.endpoints import router as campaigns_router
from openlead.config import Settings, get_settings
from openlead.db.engine import create_database
from openlead.leads.endpoints import router as leads_router
from openlead.sending.endpoints import router as sending_router
from openlead.sending.runner import run_dispatcher
from openlead.sequences.endpoints import router as sequences_router
from openlead.suppression.endpoints import router as suppression_router
from openlead.tracking.endpoints import router as tracking_router
from openlead.vault import Vault, load_master_secret
from openlead.web.errors import ERROR_RESPONSES, error_response, install_error_handlers
from openlead.web.middleware import AccessLogMiddleware, BodyLimitMiddleware
from openlead.web.ratelimit import RateLimiter

API_PREFIX = "/api/v1"


async def _conflict(_request, _exc: IntegrityError):  # type: ignore[no-untyped-def]
    # A constraint caught a race the service did not foresee; the transaction rolled back.
    return error_response(409, "conflict", "The request conflicts with the current state.")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = create_database(
            settings.database_url, lock_timeout_seconds=settings.lock_timeout_seconds
        )
        app.state.vault = Vault(load_master_secret(settings.secret_key, settings.secret_dir))
        stopping = asyncio.Event()
        sender = None
        if settings.sender:
            sender = asyncio.create_task(
                run_dispatcher(app.state.database, app.state.vault, settings, stopping)
            )
        try:
            yield
        finally:
            stopping.set()
            if sender is not None:
                await sender
            await app.state.database.dispose()

    app = FastAPI(
        title="openlead",
        version=__version__,
        description="Self-hosted, SmartLead-compatible lead management and outreach.",
        lifespan=lifespan,
        # The body limit is BodyLimitMiddleware's: FastAPI's answers 413 in plain text.
        max_body_size=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.redis_url)
    install_error_handlers(app)
    app.add_exception_handler(IntegrityError, _conflict)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)  # added last, so outermost: it logs every answer
    for router in (
        campaigns_router,
        leads_router,
        campaign_leads_router,
        suppression_router,
        sequences_router,
        sending_router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    # Where the links in every email lead: short, at the root, no API key.
    app.include_router(tracking_router, responses=ERROR_RESPONSES)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app
