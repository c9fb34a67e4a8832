"""``Client`` and ``AsyncClient``: the same methods, blocking or awaitable.

Each method hands an operation from ``_operations`` (or ``_import``) to its client's driver,
``_run``, which performs the operation's instructions: HTTP requests through httpx, sleeps
between retries, and reads from the input of an import. Nothing else differs between them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO, TypeVar, overload
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from openlead import __version__
from openlead.client import _import
from openlead.client import _operations as ops
from openlead.client._models import (
    Activity,
    BlockEntry,
    BlockListAdded,
    BlockListPage,
    Campaign,
    CampaignCreated,
    CampaignEmailAccountList,
    CampaignLead,
    CampaignLeadPage,
    CampaignList,
    CampaignStatusChanged,
    CampaignUnsubscribed,
    ConnectionTest,
    Deleted,
    EmailAccount,
    EmailAccountPage,
    EmailAccountSaved,
    ImportResult,
    ImportSummary,
    Lead,
    Preview,
    Removed,
    ScheduleSaved,
    SequenceCheck,
    Sequences,
    SequencesSaved,
    SettingsSaved,
    Statistics,
    StatusChanged,
    Unsubscribed,
    UnsubscribeEntry,
    UnsubscribePage,
)
from openlead.client._protocol import (
    ApiRequest,
    ApiResponse,
    Operation,
    Outcome,
    Pull,
    RetryPolicy,
    Sleep,
    TransportFailure,
)

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000/api/v1"
API_PATH = "/api/v1"
DEFAULT_TIMEOUT = 60.0
# Failures that happen before a request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def resolve_base_url(url: str | None) -> str:
    """The argument, else ``OPENLEAD_URL``, else the local default; a URL without a path
    (``http://host:8000``) gets the API's ``/api/v1``."""
    url = (url or os.environ.get("OPENLEAD_URL") or DEFAULT_URL).strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path:
        path = API_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resolve_api_key(api_key: str | None) -> str | None:
    return api_key or os.environ.get("OPENLEAD_API_KEY") or None


def _root(base_url: str) -> str:
    parts = urlsplit(base_url)
    path = parts.path
    if path.endswith(API_PATH):
        path = path[: -len(API_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _profile(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _failure(error: Exception, partial: bool = False) -> TransportFailure:
    return TransportFailure(error, sent=not isinstance(error, _NOT_SENT), partial=partial)


class _Base:
    """Configuration shared by both clients."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.api_key = resolve_api_key(api_key)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._root_url = _root(self.base_url)
        self._headers = {"user-agent": f"openlead-python/{__version__}", **(headers or {})}
        if self.api_key:
            self._headers["authorization"] = f"Bearer {self.api_key}"

    def _url(self, request: ApiRequest) -> str:
        return (self._root_url if request.root else self.base_url) + request.path

    @staticmethod
    def _headers_for(request: ApiRequest, body: bytes | None) -> dict[str, str]:
        return {"content-type": "application/json"} if body is not None else {}

    @staticmethod
    def _answer(response: httpx.Response, content: bytes, streamed: int = 0) -> ApiResponse:
        return ApiResponse(
            response.status_code, response.headers, content, str(response.url), streamed
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(_Base):
    """A blocking openlead client.

    ``Client(base_url=None, api_key=None)`` reads ``OPENLEAD_URL`` and ``OPENLEAD_API_KEY``
    when they are not given. ``transport`` is any httpx transport (for instance
    ``SyncASGITransport(app)`` to call an app in process); ``retry`` says how often and how
    patiently requests are repeated. Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry, headers)
        if isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError(
                "Client needs a blocking transport; use AsyncClient with "
                "httpx.ASGITransport, or Client with openlead.client.SyncASGITransport(app)."
            )
        self._http = httpx.Client(headers=self._headers, timeout=timeout, transport=transport)

    # ----------------------------------------------------------------------- the driver

    def _perform(self, request: ApiRequest) -> Outcome:
        body = request.body()
        built = self._http.build_request(
            request.method,
            self._url(request),
            params=request.params,
            content=body,
            headers=self._headers_for(request, body),
        )
        if request.stream_to is None:
            try:
                response = self._http.send(built)
                return self._answer(response, response.content)
            except httpx.TransportError as exc:
                return _failure(exc)
        written = 0
        try:
            response = self._http.send(built, stream=True)
            try:
                if response.status_code >= 400:
                    return self._answer(response, response.read())
                for chunk in response.iter_bytes():
                    request.stream_to.write(chunk)
                    written += len(chunk)
                return self._answer(response, b"", written)
            finally:
                response.close()
        except httpx.TransportError as exc:
            return _failure(exc, partial=written > 0)

    def _run(self, operation: Operation[T]) -> T:
        try:
            instruction = next(operation)
            while True:
                if isinstance(instruction, ApiRequest):
                    value: Any = self._perform(instruction)
                elif isinstance(instruction, Sleep):
                    time.sleep(instruction.seconds)
                    value = None
                elif isinstance(instruction, Pull):
                    try:
                        value = list(itertools.islice(instruction.source, instruction.count))
                    except Exception as exc:
                        instruction = operation.throw(exc)
                        continue
                else:  # pragma: no cover - the operations yield nothing else
                    raise TypeError(f"unknown instruction {instruction!r}")
                instruction = operation.send(value)
        except StopIteration as done:
            return done.value
        finally:
            operation.close()

    def _iterate(self, page: Callable[[Any], Operation[Any]], items: str) -> Iterator[Any]:
        after = None
        while True:
            answer = self._run(page(after))
            yield from getattr(answer, items)
            if not answer.next_cursor:
                return
            after = answer.next_cursor

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- campaigns

    def create_campaign(self, name: str, *, client_id: int | None = None) -> CampaignCreated:
        """``POST /campaigns``."""
        return self._run(ops.create_campaign(self.retry, name, client_id))

    def list_campaigns(
        self, *, offset: int | None = None, limit: int | None = None, after: int | str | None = None
    ) -> CampaignList:
        """``GET /campaigns``: one page, with the cursor of the next."""
        return self._run(ops.list_campaigns(self.retry, offset, limit, after))

    def iter_campaigns(self, *, page_size: int = 1000) -> Iterator[Campaign]:
        """Every campaign, page after page."""
        return self._iterate(
            lambda after: ops.list_campaigns(self.retry, None, page_size, after), "campaigns"
        )

    def get_campaign(self, campaign_id: int) -> Campaign:
        return self._run(ops.get_campaign(self.retry, campaign_id))

    def delete_campaign(self, campaign_id: int) -> Deleted:
        return self._run(ops.delete_campaign(self.retry, campaign_id))

    def get_campaign_statistics(self, campaign_id: int) -> Statistics:
        return self._run(ops.get_campaign_statistics(self.retry, campaign_id))

    # ----------------------------------------------------------------------- leads in a campaign

    def add_leads(
        self, campaign_id: int, leads: Iterable[Any], *, settings: Any = None
    ) -> ImportResult:
        """One ``POST /campaigns/{id}/leads`` of at most 400 leads, the server's answer as it
        is. ``import_leads`` takes any number, retries and sums up."""
        return self._run(ops.add_leads(self.retry, campaign_id, leads, settings))

    def import_leads(
        self,
        campaign_id: int,
        leads: Iterable[Any],
        *,
        settings: Any = None,
        batch_size: int = 400,
        on_progress: Callable[[ImportSummary], Any] | None = None,
        on_skipped: Callable[[Any], Any] | None = None,
        keep_skipped: int | None = 10_000,
        skip_invalid: bool = False,
        retry: RetryPolicy | None = None,
    ) -> ImportSummary:
        """Import any number of leads (dicts or ``LeadIn`` models, from any iterable, read
        lazily) in batches of ``batch_size``; see the SDK docs for the retry rules and how a
        lost answer is counted."""
        return self._run(
            _import.import_leads(
                retry or self.retry,
                campaign_id,
                iter(leads),
                settings=settings,
                batch_size=batch_size,
                on_progress=on_progress,
                on_skipped=on_skipped,
                keep_skipped=keep_skipped,
                skip_invalid=skip_invalid,
            )
        )

    def list_campaign_leads(
        self,
        campaign_id: int,
        *,
        status: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> CampaignLeadPage:
        return self._run(
            ops.list_campaign_leads(self.retry, campaign_id, status, offset, limit, after)
        )

    def iter_campaign_leads(
        self, campaign_id: int, *, status: str | None = None, page_size: int = 1000
    ) -> Iterator[CampaignLead]:
        return self._iterate(
            lambda after: ops.list_campaign_leads(
                self.retry, campaign_id, status, None, page_size, after
            ),
            "leads",
        )

    def change_lead_status(self, campaign_id: int, lead_id: int, status: str) -> StatusChanged:
        return self._run(ops.change_lead_status(self.retry, campaign_id, lead_id, status))

    def get_lead_activity(
        self,
        campaign_id: int,
        lead_id: int,
        *,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> Activity:
        return self._run(
            ops.get_lead_activity(self.retry, campaign_id, lead_id, offset, limit, after)
        )

    def unsubscribe_lead_from_campaign(
        self, campaign_id: int, lead_id: int
    ) -> CampaignUnsubscribed:
        return self._run(ops.unsubscribe_lead_from_campaign(self.retry, campaign_id, lead_id))

    def remove_lead_from_campaign(self, campaign_id: int, lead_id: int) -> Removed:
        return self._run(ops.remove_lead_from_campaign(self.retry, campaign_id, lead_id))

    @overload
    def export_leads(self, campaign_id: int, file: None = None) -> bytes: ...
    @overload
    def export_leads(self, campaign_id: int, file: BinaryIO) -> int: ...
    def export_leads(self, campaign_id: int, file: BinaryIO | None = None) -> bytes | int:
        """The campaign's leads as CSV: the bytes, or streamed into ``file`` (a binary file)
        with the number of bytes written returned."""
        return self._run(ops.export_leads(self.retry, campaign_id, file))

    # ----------------------------------------------------------------------- leads

    def find_lead(self, email: str) -> Lead:
        return self._run(ops.find_lead(self.retry, email))

    def get_lead(self, lead_id: int) -> Lead:
        return self._run(ops.get_lead(self.retry, lead_id))

    def update_lead(
        self,
        lead_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        company_name: str | None = None,
        location: str | None = None,
        phone_number: str | None = None,
        website: str | None = None,
        linkedin_profile: str | None = None,
        company_url: str | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> Lead:
        """``PATCH /leads/{id}``: the given fields win, custom fields merge key by key."""
        fields = _profile(
            first_name=first_name,
            last_name=last_name,
            company_name=company_name,
            location=location,
            phone_number=phone_number,
            website=website,
            linkedin_profile=linkedin_profile,
            company_url=company_url,
            custom_fields=dict(custom_fields) if custom_fields is not None else None,
        )
        return self._run(ops.update_lead(self.retry, lead_id, fields))

    def unsubscribe_lead(self, lead_id: int) -> Unsubscribed:
        return self._run(ops.unsubscribe_lead(self.retry, lead_id))

    # ----------------------------------------------------------------------- suppression

    def add_to_block_list(
        self, *, emails: Iterable[str] | None = None, domains: Iterable[str] | None = None
    ) -> BlockListAdded:
        return self._run(ops.add_to_block_list(self.retry, emails, domains))

    def add_domain_block_list(
        self, entries: Iterable[str], *, client_id: int | None = None
    ) -> BlockListAdded:
        """SmartLead's mixed list: an entry with ``@`` is an address, any other a domain."""
        return self._run(ops.add_domain_block_list(self.retry, entries, client_id))

    def list_block_list(
        self,
        *,
        search: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> BlockListPage:
        return self._run(ops.list_block_list(self.retry, search, offset, limit, after))

    def iter_block_list(
        self, *, search: str | None = None, page_size: int = 1000
    ) -> Iterator[BlockEntry]:
        return self._iterate(
            lambda after: ops.list_block_list(self.retry, search, None, page_size, after),
            "block_list",
        )

    def delete_block_list_entry(self, entry_id: int) -> Deleted:
        return self._run(ops.delete_block_list_entry(self.retry, entry_id))

    def list_unsubscribes(
        self,
        *,
        search: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> UnsubscribePage:
        return self._run(ops.list_unsubscribes(self.retry, search, offset, limit, after))

    def iter_unsubscribes(
        self, *, search: str | None = None, page_size: int = 1000
    ) -> Iterator[UnsubscribeEntry]:
        return self._iterate(
            lambda after: ops.list_unsubscribes(self.retry, search, None, page_size, after),
            "unsubscribes",
        )

    def delete_unsubscribe(self, entry_id: int) -> Deleted:
        return self._run(ops.delete_unsubscribe(self.retry, entry_id))

    # ----------------------------------------------------------------------- sequences

    def save_sequences(self, campaign_id: int, sequences: Iterable[Any]) -> SequencesSaved:
        """Replace the campaign's steps (dicts in SmartLead's shape, or ``Step`` models)."""
        return self._run(ops.save_sequences(self.retry, campaign_id, sequences))

    def get_sequences(self, campaign_id: int) -> Sequences:
        return self._run(ops.get_sequences(self.retry, campaign_id))

    def check_sequences(self, campaign_id: int) -> SequenceCheck:
        return self._run(ops.check_sequences(self.retry, campaign_id))

    def preview_lead(self, campaign_id: int, lead_id: int) -> Preview:
        return self._run(ops.preview_lead(self.retry, campaign_id, lead_id))

    # ----------------------------------------------------------------------- sending

    def save_email_account(
        self,
        *,
        from_name: str,
        from_email: str,
        user_name: str,
        password: str | SecretStr | None = None,
        smtp_host: str,
        smtp_port: int,
        smtp_security: str | None = None,
        imap_host: str | None = None,
        imap_port: int | None = None,
        max_email_per_day: int | None = None,
        email_account_id: int | None = None,
    ) -> EmailAccountSaved:
        """``POST /email-accounts/save``: a new mailbox, or an update of ``email_account_id``
        (every field again; a password left out keeps the stored one). ``smtp_security`` is
        ``"SSL"``, ``"STARTTLS"`` (the server's default) or ``"NONE"``. The password is never
        shown in a repr or an error, and never returned."""
        return self._run(
            ops.save_email_account(
                self.retry,
                from_name=from_name,
                from_email=from_email,
                user_name=user_name,
                password=password,
                smtp_host=smtp_host,
                smtp_port=smtp_port,
                smtp_security=smtp_security,
                imap_host=imap_host,
                imap_port=imap_port,
                max_email_per_day=max_email_per_day,
                email_account_id=email_account_id,
            )
        )

    def list_email_accounts(
        self, *, offset: int | None = None, limit: int | None = None, after: int | str | None = None
    ) -> EmailAccountPage:
        return self._run(ops.list_email_accounts(self.retry, offset, limit, after))

    def iter_email_accounts(self, *, page_size: int = 1000) -> Iterator[EmailAccount]:
        return self._iterate(
            lambda after: ops.list_email_accounts(self.retry, None, page_size, after),
            "email_accounts",
        )

    def get_email_account(self, email_account_id: int) -> EmailAccount:
        return self._run(ops.get_email_account(self.retry, email_account_id))

    def delete_email_account(self, email_account_id: int) -> Deleted:
        return self._run(ops.delete_email_account(self.retry, email_account_id))

    def test_email_account(self, email_account_id: int) -> ConnectionTest:
        """Connect and log in as the sender would; ``stage`` says where it stopped
        (``connect``, ``tls``, ``login``, ``password``), ``None`` when it worked."""
        return self._run(ops.test_email_account(self.retry, email_account_id))

    def add_campaign_email_accounts(
        self, campaign_id: int, email_account_ids: Iterable[int]
    ) -> CampaignEmailAccountList:
        """The campaign's mailboxes after adding these (one already there stays once)."""
        return self._run(
            ops.add_campaign_email_accounts(self.retry, campaign_id, email_account_ids)
        )

    def list_campaign_email_accounts(
        self,
        campaign_id: int,
        *,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> CampaignEmailAccountList:
        return self._run(
            ops.list_campaign_email_accounts(self.retry, campaign_id, offset, limit, after)
        )

    def remove_campaign_email_accounts(
        self, campaign_id: int, email_account_ids: Iterable[int]
    ) -> CampaignEmailAccountList:
        """The campaign's mailboxes after taking these off."""
        return self._run(
            ops.remove_campaign_email_accounts(self.retry, campaign_id, email_account_ids)
        )

    def save_campaign_schedule(
        self,
        campaign_id: int,
        *,
        timezone: str,
        days_of_the_week: Iterable[int],
        start_hour: str,
        end_hour: str,
        min_time_btw_emails: int | None = None,
        max_new_leads_per_day: int | None = None,
        schedule_start_time: datetime | str | None = None,
    ) -> ScheduleSaved:
        """Replace the campaign's schedule: an IANA ``timezone``, days (0 = Sunday), hours as
        ``"HH:MM"``; a field left out takes the server's default."""
        return self._run(
            ops.save_campaign_schedule(
                self.retry,
                campaign_id,
                timezone,
                days_of_the_week,
                start_hour,
                end_hour,
                min_time_btw_emails,
                max_new_leads_per_day,
                schedule_start_time,
            )
        )

    def update_campaign_settings(
        self,
        campaign_id: int,
        *,
        track_settings: Iterable[str] | None = None,
        stop_lead_settings: str | None = None,
        unsubscribe_text: str | None = None,
        send_as_plain_text: bool | None = None,
    ) -> SettingsSaved:
        """The given settings change, the others keep their value (``unsubscribe_text=""``
        goes back to the default footer)."""
        return self._run(
            ops.update_campaign_settings(
                self.retry,
                campaign_id,
                track_settings,
                stop_lead_settings,
                unsubscribe_text,
                send_as_plain_text,
            )
        )

    def change_campaign_status(self, campaign_id: int, status: str) -> CampaignStatusChanged:
        """``"START"``, ``"PAUSED"`` or ``"STOPPED"``. A campaign that is not ready to start
        is a ``ValidationError`` whose ``details["reasons"]`` lists every reason."""
        return self._run(ops.change_campaign_status(self.retry, campaign_id, status))

    # ----------------------------------------------------------------------- service

    def health(self) -> bool:
        """True when the server answers its health check."""
        return self._run(ops.health(self.retry))


class AsyncClient(_Base):
    """The awaitable twin of ``Client``: the same methods, each a coroutine (the ``iter_*``
    methods are async iterators). ``transport`` is any async httpx transport, for instance
    ``httpx.ASGITransport(app=create_app(...))`` (run the app's lifespan around it with
    ``openlead.client.lifespan(app)``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry, headers)
        if isinstance(transport, httpx.BaseTransport):
            raise TypeError("AsyncClient needs an async transport (httpx.AsyncBaseTransport).")
        self._http = httpx.AsyncClient(headers=self._headers, timeout=timeout, transport=transport)

    # ----------------------------------------------------------------------- the driver

    async def _perform(self, request: ApiRequest) -> Outcome:
        body = request.body()
        built = self._http.build_request(
            request.method,
            self._url(request),
            params=request.params,
            content=body,
            headers=self._headers_for(request, body),
        )
        if request.stream_to is None:
            try:
                response = await self._http.send(built)
                return self._answer(response, response.content)
            except httpx.TransportError as exc:
                return _failure(exc)
        written = 0
        try:
            response = await self._http.send(built, stream=True)
            try:
                if response.status_code >= 400:
                    return self._answer(response, await response.aread())
                async for chunk in response.aiter_bytes():
                    request.stream_to.write(chunk)
                    written += len(chunk)
                return self._answer(response, b"", written)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            return _failure(exc, partial=written > 0)

    @staticmethod
    async def _pull(source: Any, count: int) -> list[Any]:
        if not hasattr(source, "__anext__"):
            return list(itertools.islice(source, count))
        items = []
        for _ in range(count):
            try:
                items.append(await anext(source))
            except StopAsyncIteration:
                break
        return items

    async def _run(self, operation: Operation[T]) -> T:
        try:
            instruction = next(operation)
            while True:
                if isinstance(instruction, ApiRequest):
                    value: Any = await self._perform(instruction)
                elif isinstance(instruction, Sleep):
                    await asyncio.sleep(instruction.seconds)
                    value = None
                elif isinstance(instruction, Pull):
                    try:
                        value = await self._pull(instruction.source, instruction.count)
                    except Exception as exc:
                        instruction = operation.throw(exc)
                        continue
                else:  # pragma: no cover
                    raise TypeError(f"unknown instruction {instruction!r}")
                instruction = operation.send(value)
        except StopIteration as done:
            return done.value
        finally:
            operation.close()

    async def _iterate(
        self, page: Callable[[Any], Operation[Any]], items: str
    ) -> AsyncIterator[Any]:
        after = None
        while True:
            answer = await self._run(page(after))
            for item in getattr(answer, items):
                yield item
            if not answer.next_cursor:
                return
            after = answer.next_cursor

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------------- campaigns

    async def create_campaign(self, name: str, *, client_id: int | None = None) -> CampaignCreated:
        return await self._run(ops.create_campaign(self.retry, name, client_id))

    async def list_campaigns(
        self, *, offset: int | None = None, limit: int | None = None, after: int | str | None = None
    ) -> CampaignList:
        return await self._run(ops.list_campaigns(self.retry, offset, limit, after))

    def iter_campaigns(self, *, page_size: int = 1000) -> AsyncIterator[Campaign]:
        return self._iterate(
            lambda after: ops.list_campaigns(self.retry, None, page_size, after), "campaigns"
        )

    async def get_campaign(self, campaign_id: int) -> Campaign:
        return await self._run(ops.get_campaign(self.retry, campaign_id))

    async def delete_campaign(self, campaign_id: int) -> Deleted:
        return await self._run(ops.delete_campaign(self.retry, campaign_id))

    async def get_campaign_statistics(self, campaign_id: int) -> Statistics:
        return await self._run(ops.get_campaign_statistics(self.retry, campaign_id))

    # ----------------------------------------------------------------------- leads in a campaign

    async def add_leads(
        self, campaign_id: int, leads: Iterable[Any], *, settings: Any = None
    ) -> ImportResult:
        return await self._run(ops.add_leads(self.retry, campaign_id, leads, settings))

    async def import_leads(
        self,
        campaign_id: int,
        leads: Iterable[Any] | AsyncIterable[Any],
        *,
        settings: Any = None,
        batch_size: int = 400,
        on_progress: Callable[[ImportSummary], Any] | None = None,
        on_skipped: Callable[[Any], Any] | None = None,
        keep_skipped: int | None = 10_000,
        skip_invalid: bool = False,
        retry: RetryPolicy | None = None,
    ) -> ImportSummary:
        source = aiter(leads) if hasattr(leads, "__aiter__") else iter(leads)  # type: ignore[arg-type]
        return await self._run(
            _import.import_leads(
                retry or self.retry,
                campaign_id,
                source,
                settings=settings,
                batch_size=batch_size,
                on_progress=on_progress,
                on_skipped=on_skipped,
                keep_skipped=keep_skipped,
                skip_invalid=skip_invalid,
            )
        )

    async def list_campaign_leads(
        self,
        campaign_id: int,
        *,
        status: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> CampaignLeadPage:
        return await self._run(
            ops.list_campaign_leads(self.retry, campaign_id, status, offset, limit, after)
        )

    def iter_campaign_leads(
        self, campaign_id: int, *, status: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[CampaignLead]:
        return self._iterate(
            lambda after: ops.list_campaign_leads(
                self.retry, campaign_id, status, None, page_size, after
            ),
            "leads",
        )

    async def change_lead_status(
        self, campaign_id: int, lead_id: int, status: str
    ) -> StatusChanged:
        return await self._run(ops.change_lead_status(self.retry, campaign_id, lead_id, status))

    async def get_lead_activity(
        self,
        campaign_id: int,
        lead_id: int,
        *,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> Activity:
        return await self._run(
            ops.get_lead_activity(self.retry, campaign_id, lead_id, offset, limit, after)
        )

    async def unsubscribe_lead_from_campaign(
        self, campaign_id: int, lead_id: int
    ) -> CampaignUnsubscribed:
        return await self._run(ops.unsubscribe_lead_from_campaign(self.retry, campaign_id, lead_id))

    async def remove_lead_from_campaign(self, campaign_id: int, lead_id: int) -> Removed:
        return await self._run(ops.remove_lead_from_campaign(self.retry, campaign_id, lead_id))

    @overload
    async def export_leads(self, campaign_id: int, file: None = None) -> bytes: ...
    @overload
    async def export_leads(self, campaign_id: int, file: BinaryIO) -> int: ...
    async def export_leads(self, campaign_id: int, file: BinaryIO | None = None) -> bytes | int:
        return await self._run(ops.export_leads(self.retry, campaign_id, file))

    # ----------------------------------------------------------------------- leads

    async def find_lead(self, email: str) -> Lead:
        return await self._run(ops.find_lead(self.retry, email))

    async def get_lead(self, lead_id: int) -> Lead:
        return await self._run(ops.get_lead(self.retry, lead_id))

    async def update_lead(
        self,
        lead_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        company_name: str | None = None,
        location: str | None = None,
        phone_number: str | None = None,
        website: str | None = None,
        linkedin_profile: str | None = None,
        company_url: str | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> Lead:
        fields = _profile(
            first_name=first_name,
            last_name=last_name,
            company_name=company_name,
            location=location,
            phone_number=phone_number,
            website=website,
            linkedin_profile=linkedin_profile,
            company_url=company_url,
            custom_fields=dict(custom_fields) if custom_fields is not None else None,
        )
        return await self._run(ops.update_lead(self.retry, lead_id, fields))

    async def unsubscribe_lead(self, lead_id: int) -> Unsubscribed:
        return await self._run(ops.unsubscribe_lead(self.retry, lead_id))

    # ----------------------------------------------------------------------- suppression

    async def add_to_block_list(
        self, *, emails: Iterable[str] | None = None, domains: Iterable[str] | None = None
    ) -> BlockListAdded:
        return await self._run(ops.add_to_block_list(self.retry, emails, domains))

    async def add_domain_block_list(
        self, entries: Iterable[str], *, client_id: int | None = None
    ) -> BlockListAdded:
        return await self._run(ops.add_domain_block_list(self.retry, entries, client_id))

    async def list_block_list(
        self,
        *,
        search: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> BlockListPage:
        return await self._run(ops.list_block_list(self.retry, search, offset, limit, after))

    def iter_block_list(
        self, *, search: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[BlockEntry]:
        return self._iterate(
            lambda after: ops.list_block_list(self.retry, search, None, page_size, after),
            "block_list",
        )

    async def delete_block_list_entry(self, entry_id: int) -> Deleted:
        return await self._run(ops.delete_block_list_entry(self.retry, entry_id))

    async def list_unsubscribes(
        self,
        *,
        search: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> UnsubscribePage:
        return await self._run(ops.list_unsubscribes(self.retry, search, offset, limit, after))

    def iter_unsubscribes(
        self, *, search: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[UnsubscribeEntry]:
        return self._iterate(
            lambda after: ops.list_unsubscribes(self.retry, search, None, page_size, after),
            "unsubscribes",
        )

    async def delete_unsubscribe(self, entry_id: int) -> Deleted:
        return await self._run(ops.delete_unsubscribe(self.retry, entry_id))

    # ----------------------------------------------------------------------- sequences

    async def save_sequences(self, campaign_id: int, sequences: Iterable[Any]) -> SequencesSaved:
        return await self._run(ops.save_sequences(self.retry, campaign_id, sequences))

    async def get_sequences(self, campaign_id: int) -> Sequences:
        return await self._run(ops.get_sequences(self.retry, campaign_id))

    async def check_sequences(self, campaign_id: int) -> SequenceCheck:
        return await self._run(ops.check_sequences(self.retry, campaign_id))

    async def preview_lead(self, campaign_id: int, lead_id: int) -> Preview:
        return await self._run(ops.preview_lead(self.retry, campaign_id, lead_id))

    # ----------------------------------------------------------------------- sending

    async def save_email_account(
        self,
        *,
        from_name: str,
        from_email: str,
        user_name: str,
        password: str | SecretStr | None = None,
        smtp_host: str,
        smtp_port: int,
        smtp_security: str | None = None,
        imap_host: str | None = None,
        imap_port: int | None = None,
        max_email_per_day: int | None = None,
        email_account_id: int | None = None,
    ) -> EmailAccountSaved:
        return await self._run(
            ops.save_email_account(
                self.retry,
                from_name=from_name,
                from_email=from_email,
                user_name=user_name,
                password=password,
                smtp_host=smtp_host,
                smtp_port=smtp_port,
                smtp_security=smtp_security,
                imap_host=imap_host,
                imap_port=imap_port,
                max_email_per_day=max_email_per_day,
                email_account_id=email_account_id,
            )
        )

    async def list_email_accounts(
        self, *, offset: int | None = None, limit: int | None = None, after: int | str | None = None
    ) -> EmailAccountPage:
        return await self._run(ops.list_email_accounts(self.retry, offset, limit, after))

    def iter_email_accounts(self, *, page_size: int = 1000) -> AsyncIterator[EmailAccount]:
        return self._iterate(
            lambda after: ops.list_email_accounts(self.retry, None, page_size, after),
            "email_accounts",
        )

    async def get_email_account(self, email_account_id: int) -> EmailAccount:
        return await self._run(ops.get_email_account(self.retry, email_account_id))

    async def delete_email_account(self, email_account_id: int) -> Deleted:
        return await self._run(ops.delete_email_account(self.retry, email_account_id))

    async def test_email_account(self, email_account_id: int) -> ConnectionTest:
        return await self._run(ops.test_email_account(self.retry, email_account_id))

    async def add_campaign_email_accounts(
        self, campaign_id: int, email_account_ids: Iterable[int]
    ) -> CampaignEmailAccountList:
        return await self._run(
            ops.add_campaign_email_accounts(self.retry, campaign_id, email_account_ids)
        )

    async def list_campaign_email_accounts(
        self,
        campaign_id: int,
        *,
        offset: int | None = None,
        limit: int | None = None,
        after: int | str | None = None,
    ) -> CampaignEmailAccountList:
        return await self._run(
            ops.list_campaign_email_accounts(self.retry, campaign_id, offset, limit, after)
        )

    async def remove_campaign_email_accounts(
        self, campaign_id: int, email_account_ids: Iterable[int]
    ) -> CampaignEmailAccountList:
        return await self._run(
            ops.remove_campaign_email_accounts(self.retry, campaign_id, email_account_ids)
        )

    async def save_campaign_schedule(
        self,
        campaign_id: int,
        *,
        timezone: str,
        days_of_the_week: Iterable[int],
        start_hour: str,
        end_hour: str,
        min_time_btw_emails: int | None = None,
        max_new_leads_per_day: int | None = None,
        schedule_start_time: datetime | str | None = None,
    ) -> ScheduleSaved:
        return await self._run(
            ops.save_campaign_schedule(
                self.retry,
                campaign_id,
                timezone,
                days_of_the_week,
                start_hour,
                end_hour,
                min_time_btw_emails,
                max_new_leads_per_day,
                schedule_start_time,
            )
        )

    async def update_campaign_settings(
        self,
        campaign_id: int,
        *,
        track_settings: Iterable[str] | None = None,
        stop_lead_settings: str | None = None,
        unsubscribe_text: str | None = None,
        send_as_plain_text: bool | None = None,
    ) -> SettingsSaved:
        return await self._run(
            ops.update_campaign_settings(
                self.retry,
                campaign_id,
                track_settings,
                stop_lead_settings,
                unsubscribe_text,
                send_as_plain_text,
            )
        )

    async def change_campaign_status(self, campaign_id: int, status: str) -> CampaignStatusChanged:
        return await self._run(ops.change_campaign_status(self.retry, campaign_id, status))

    # ----------------------------------------------------------------------- service

    async def health(self) -> bool:
        return await self._run(ops.health(self.retry))
