"""Every endpoint as an operation: the request to make and how to read its answer.

Each function returns an operation generator (see ``_protocol``); ``Client`` and
``AsyncClient`` expose each one under the same name with the same parameters. ``ROUTES``
records which endpoint each operation calls, so a test can hold the SDK to the server's route
table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from pydantic import SecretStr

from openlead.client._errors import NetworkError
from openlead.client._models import (
    Activity,
    BlockListAdded,
    BlockListPage,
    Campaign,
    CampaignCreated,
    CampaignEmailAccountList,
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
    UnsubscribePage,
)
from openlead.client._protocol import (
    NO_RETRY,
    ApiRequest,
    ApiResponse,
    Operation,
    RetryPolicy,
    call,
    call_with,
    drop_none,
    dump,
    parse,
    send,
)

F = TypeVar("F", bound=Callable[..., Any])
ROUTES: dict[str, tuple[str, str]] = {}


def route(method: str, path: str) -> Callable[[F], F]:
    def register(function: F) -> F:
        ROUTES[function.__name__] = (method, path)
        return function

    return register


def _page(offset: int | None, limit: int | None, after: int | str | None) -> dict[str, Any]:
    return drop_none({"offset": offset, "limit": limit, "after": after})


# --------------------------------------------------------------------------- campaigns


@route("POST", "/campaigns")
def create_campaign(
    policy: RetryPolicy, name: str, client_id: int | None = None
) -> Operation[CampaignCreated]:
    body = drop_none({"name": name, "client_id": client_id})
    return call(ApiRequest("POST", "/campaigns", json=body), policy, CampaignCreated)


def _campaign_list(response: ApiResponse) -> CampaignList:
    campaigns = parse(response, list[Campaign])
    cursor = next((v for k, v in response.headers.items() if k.lower() == "x-next-cursor"), None)
    return CampaignList(campaigns=campaigns, next_cursor=cursor)


@route("GET", "/campaigns")
def list_campaigns(
    policy: RetryPolicy,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[CampaignList]:
    request = ApiRequest("GET", "/campaigns", params=_page(offset, limit, after), idempotent=True)
    return call_with(request, policy, _campaign_list)


@route("GET", "/campaigns/{campaign_id}")
def get_campaign(policy: RetryPolicy, campaign_id: int) -> Operation[Campaign]:
    request = ApiRequest("GET", f"/campaigns/{int(campaign_id)}", idempotent=True)
    return call(request, policy, Campaign)


@route("DELETE", "/campaigns/{campaign_id}")
def delete_campaign(policy: RetryPolicy, campaign_id: int) -> Operation[Deleted]:
    return call(ApiRequest("DELETE", f"/campaigns/{int(campaign_id)}"), policy, Deleted)


# --------------------------------------------------------------------------- leads in a campaign


def settings_body(settings: Any) -> dict[str, bool] | None:
    """Import settings given as a model, a mapping, or an iterable of the names to turn on."""
    if settings is None:
        return None
    if isinstance(settings, Mapping):
        return dict(settings)
    dumped = dump(settings)
    if isinstance(dumped, dict):
        return dumped
    if isinstance(settings, str):
        return {settings: True}
    return {name: True for name in settings}


@route("POST", "/campaigns/{campaign_id}/leads")
def add_leads(
    policy: RetryPolicy,
    campaign_id: int,
    leads: Iterable[Any],
    settings: Any = None,
) -> Operation[ImportResult]:
    body: dict[str, Any] = {"lead_list": dump(list(leads))}
    settings_dict = settings_body(settings)
    if settings_dict is not None:
        body["settings"] = settings_dict
    # Not repeated after a lost answer: a repeat would report the leads the first attempt
    # added as "Already exists". import_leads() handles that case.
    request = ApiRequest("POST", f"/campaigns/{int(campaign_id)}/leads", json=body)
    return call(request, policy, ImportResult)


@route("GET", "/campaigns/{campaign_id}/leads")
def list_campaign_leads(
    policy: RetryPolicy,
    campaign_id: int,
    status: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[CampaignLeadPage]:
    params = {**_page(offset, limit, after), **drop_none({"status": status})}
    request = ApiRequest(
        "GET", f"/campaigns/{int(campaign_id)}/leads", params=params, idempotent=True
    )
    return call(request, policy, CampaignLeadPage)


@route("PATCH", "/campaigns/{campaign_id}/leads/{lead_id}/status")
def change_lead_status(
    policy: RetryPolicy, campaign_id: int, lead_id: int, status: str
) -> Operation[StatusChanged]:
    request = ApiRequest(
        "PATCH",
        f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}/status",
        json={"status": str(status)},
        idempotent=True,
    )
    return call(request, policy, StatusChanged)


@route("GET", "/campaigns/{campaign_id}/leads/{lead_id}/activity")
def get_lead_activity(
    policy: RetryPolicy,
    campaign_id: int,
    lead_id: int,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[Activity]:
    request = ApiRequest(
        "GET",
        f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}/activity",
        params=_page(offset, limit, after),
        idempotent=True,
    )
    return call(request, policy, Activity)


@route("POST", "/campaigns/{campaign_id}/leads/{lead_id}/unsubscribe")
def unsubscribe_lead_from_campaign(
    policy: RetryPolicy, campaign_id: int, lead_id: int
) -> Operation[CampaignUnsubscribed]:
    request = ApiRequest(
        "POST", f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}/unsubscribe", idempotent=True
    )
    return call(request, policy, CampaignUnsubscribed)


@route("DELETE", "/campaigns/{campaign_id}/leads/{lead_id}")
def remove_lead_from_campaign(
    policy: RetryPolicy, campaign_id: int, lead_id: int
) -> Operation[Removed]:
    request = ApiRequest("DELETE", f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}")
    return call(request, policy, Removed)


@route("GET", "/campaigns/{campaign_id}/leads-export")
def export_leads(
    policy: RetryPolicy, campaign_id: int, file: BinaryIO | None = None
) -> Operation[Any]:
    request = ApiRequest(
        "GET", f"/campaigns/{int(campaign_id)}/leads-export", idempotent=True, stream_to=file
    )
    if file is None:
        return call_with(request, policy, lambda response: response.content)
    return call_with(request, policy, lambda response: response.streamed_bytes)


@route("GET", "/campaigns/{campaign_id}/statistics")
def get_campaign_statistics(policy: RetryPolicy, campaign_id: int) -> Operation[Statistics]:
    request = ApiRequest("GET", f"/campaigns/{int(campaign_id)}/statistics", idempotent=True)
    return call(request, policy, Statistics)


# --------------------------------------------------------------------------- leads


@route("GET", "/leads")
def find_lead(policy: RetryPolicy, email: str) -> Operation[Lead]:
    request = ApiRequest("GET", "/leads", params={"email": email}, idempotent=True)
    return call(request, policy, Lead)


@route("GET", "/leads/{lead_id}")
def get_lead(policy: RetryPolicy, lead_id: int) -> Operation[Lead]:
    return call(ApiRequest("GET", f"/leads/{int(lead_id)}", idempotent=True), policy, Lead)


@route("PATCH", "/leads/{lead_id}")
def update_lead(policy: RetryPolicy, lead_id: int, fields: Mapping[str, Any]) -> Operation[Lead]:
    request = ApiRequest("PATCH", f"/leads/{int(lead_id)}", json=dump(fields), idempotent=True)
    return call(request, policy, Lead)


@route("POST", "/leads/{lead_id}/unsubscribe")
def unsubscribe_lead(policy: RetryPolicy, lead_id: int) -> Operation[Unsubscribed]:
    request = ApiRequest("POST", f"/leads/{int(lead_id)}/unsubscribe", idempotent=True)
    return call(request, policy, Unsubscribed)


# --------------------------------------------------------------------------- suppression


@route("POST", "/leads/block-list")
def add_to_block_list(
    policy: RetryPolicy,
    emails: Iterable[str] | None = None,
    domains: Iterable[str] | None = None,
) -> Operation[BlockListAdded]:
    body = drop_none(
        {
            "emails": list(emails) if emails is not None else None,
            "domains": list(domains) if domains is not None else None,
        }
    )
    request = ApiRequest("POST", "/leads/block-list", json=body, idempotent=True)
    return call(request, policy, BlockListAdded)


@route("POST", "/leads/add-domain-block-list")
def add_domain_block_list(
    policy: RetryPolicy, entries: Iterable[str], client_id: int | None = None
) -> Operation[BlockListAdded]:
    body = drop_none({"domain_block_list": list(entries), "client_id": client_id})
    request = ApiRequest("POST", "/leads/add-domain-block-list", json=body, idempotent=True)
    return call(request, policy, BlockListAdded)


@route("GET", "/leads/block-list")
def list_block_list(
    policy: RetryPolicy,
    search: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[BlockListPage]:
    params = {**_page(offset, limit, after), **drop_none({"search": search})}
    request = ApiRequest("GET", "/leads/block-list", params=params, idempotent=True)
    return call(request, policy, BlockListPage)


@route("DELETE", "/leads/block-list/{entry_id}")
def delete_block_list_entry(policy: RetryPolicy, entry_id: int) -> Operation[Deleted]:
    return call(ApiRequest("DELETE", f"/leads/block-list/{int(entry_id)}"), policy, Deleted)


@route("GET", "/leads/unsubscribes")
def list_unsubscribes(
    policy: RetryPolicy,
    search: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[UnsubscribePage]:
    params = {**_page(offset, limit, after), **drop_none({"search": search})}
    request = ApiRequest("GET", "/leads/unsubscribes", params=params, idempotent=True)
    return call(request, policy, UnsubscribePage)


@route("DELETE", "/leads/unsubscribes/{entry_id}")
def delete_unsubscribe(policy: RetryPolicy, entry_id: int) -> Operation[Deleted]:
    return call(ApiRequest("DELETE", f"/leads/unsubscribes/{int(entry_id)}"), policy, Deleted)


# --------------------------------------------------------------------------- sequences


@route("POST", "/campaigns/{campaign_id}/sequences")
def save_sequences(
    policy: RetryPolicy, campaign_id: int, sequences: Iterable[Any]
) -> Operation[SequencesSaved]:
    request = ApiRequest(
        "POST",
        f"/campaigns/{int(campaign_id)}/sequences",
        json={"sequences": dump(list(sequences))},
        idempotent=True,  # it replaces the steps: repeating it changes nothing
    )
    return call(request, policy, SequencesSaved)


@route("GET", "/campaigns/{campaign_id}/sequences")
def get_sequences(policy: RetryPolicy, campaign_id: int) -> Operation[Sequences]:
    request = ApiRequest("GET", f"/campaigns/{int(campaign_id)}/sequences", idempotent=True)
    return call(request, policy, Sequences)


@route("GET", "/campaigns/{campaign_id}/sequences/check")
def check_sequences(policy: RetryPolicy, campaign_id: int) -> Operation[SequenceCheck]:
    request = ApiRequest("GET", f"/campaigns/{int(campaign_id)}/sequences/check", idempotent=True)
    return call(request, policy, SequenceCheck)


@route("GET", "/campaigns/{campaign_id}/leads/{lead_id}/preview")
def preview_lead(policy: RetryPolicy, campaign_id: int, lead_id: int) -> Operation[Preview]:
    request = ApiRequest(
        "GET", f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}/preview", idempotent=True
    )
    return call(request, policy, Preview)


# --------------------------------------------------------------------------- sending


@route("POST", "/campaigns/{campaign_id}/schedule")
def save_campaign_schedule(
    policy: RetryPolicy,
    campaign_id: int,
    timezone: str,
    days_of_the_week: Iterable[int],
    start_hour: str,
    end_hour: str,
    min_time_btw_emails: int | None = None,
    max_new_leads_per_day: int | None = None,
    schedule_start_time: datetime | str | None = None,
) -> Operation[ScheduleSaved]:
    if isinstance(schedule_start_time, datetime):
        schedule_start_time = schedule_start_time.isoformat()
    body = drop_none(
        {
            "timezone": timezone,
            "days_of_the_week": list(days_of_the_week),
            "start_hour": start_hour,
            "end_hour": end_hour,
            "min_time_btw_emails": min_time_btw_emails,
            "max_new_leads_per_day": max_new_leads_per_day,
            "schedule_start_time": schedule_start_time,
        }
    )
    request = ApiRequest(
        "POST",
        f"/campaigns/{int(campaign_id)}/schedule",
        json=body,
        idempotent=True,  # it replaces the schedule
    )
    return call(request, policy, ScheduleSaved)


@route("POST", "/campaigns/{campaign_id}/settings")
def update_campaign_settings(
    policy: RetryPolicy,
    campaign_id: int,
    track_settings: Iterable[str] | None = None,
    stop_lead_settings: str | None = None,
    unsubscribe_text: str | None = None,
    send_as_plain_text: bool | None = None,
) -> Operation[SettingsSaved]:
    """Only the settings given are sent: the server keeps the others."""
    body = drop_none(
        {
            "track_settings": list(track_settings) if track_settings is not None else None,
            "stop_lead_settings": stop_lead_settings,
            "unsubscribe_text": unsubscribe_text,
            "send_as_plain_text": send_as_plain_text,
        }
    )
    request = ApiRequest(
        "POST", f"/campaigns/{int(campaign_id)}/settings", json=body, idempotent=True
    )
    return call(request, policy, SettingsSaved)


@route("POST", "/campaigns/{campaign_id}/status")
def change_campaign_status(
    policy: RetryPolicy, campaign_id: int, status: str
) -> Operation[CampaignStatusChanged]:
    request = ApiRequest(
        "POST",
        f"/campaigns/{int(campaign_id)}/status",
        json={"status": str(status)},
        idempotent=True,  # asking again for the status it has changes nothing
    )
    return call(request, policy, CampaignStatusChanged)


@route("POST", "/email-accounts/save")
def save_email_account(
    policy: RetryPolicy,
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
) -> Operation[EmailAccountSaved]:
    """Create a mailbox, or update the one ``email_account_id`` names. The password travels
    as a ``SecretStr`` up to the moment the body is serialised, so no repr shows it."""
    if password is not None and not isinstance(password, SecretStr):
        password = SecretStr(password)
    body = drop_none(
        {
            "id": email_account_id,
            "from_name": from_name,
            "from_email": from_email,
            "user_name": user_name,
            "password": password,
            "smtp_host": smtp_host,
            "smtp_port": smtp_port,
            "smtp_security": smtp_security,
            "imap_host": imap_host,
            "imap_port": imap_port,
            "max_email_per_day": max_email_per_day,
        }
    )
    # An update is safe to repeat; a create is not (the repeat would be refused as a second
    # mailbox for the address, hiding the one the lost attempt created).
    request = ApiRequest(
        "POST", "/email-accounts/save", json=body, idempotent=email_account_id is not None
    )
    return call(request, policy, EmailAccountSaved)


@route("GET", "/email-accounts")
def list_email_accounts(
    policy: RetryPolicy,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[EmailAccountPage]:
    request = ApiRequest(
        "GET", "/email-accounts", params=_page(offset, limit, after), idempotent=True
    )
    return call(request, policy, EmailAccountPage)


@route("GET", "/email-accounts/{email_account_id}")
def get_email_account(policy: RetryPolicy, email_account_id: int) -> Operation[EmailAccount]:
    request = ApiRequest("GET", f"/email-accounts/{int(email_account_id)}", idempotent=True)
    return call(request, policy, EmailAccount)


@route("DELETE", "/email-accounts/{email_account_id}")
def delete_email_account(policy: RetryPolicy, email_account_id: int) -> Operation[Deleted]:
    request = ApiRequest("DELETE", f"/email-accounts/{int(email_account_id)}")
    return call(request, policy, Deleted)


@route("POST", "/email-accounts/{email_account_id}/test")
def test_email_account(policy: RetryPolicy, email_account_id: int) -> Operation[ConnectionTest]:
    request = ApiRequest("POST", f"/email-accounts/{int(email_account_id)}/test", idempotent=True)
    return call(request, policy, ConnectionTest)


def _campaign_email_accounts(
    method: str,
    campaign_id: int,
    email_account_ids: Iterable[int] | None = None,
    params: dict[str, Any] | None = None,
) -> ApiRequest:
    body = None
    if email_account_ids is not None:
        body = {"email_account_ids": [int(i) for i in email_account_ids]}
    # Adding or removing a mailbox twice is the same as once: all three are safe to repeat.
    return ApiRequest(
        method,
        f"/campaigns/{int(campaign_id)}/email-accounts",
        json=body,
        params=params,
        idempotent=True,
    )


@route("POST", "/campaigns/{campaign_id}/email-accounts")
def add_campaign_email_accounts(
    policy: RetryPolicy, campaign_id: int, email_account_ids: Iterable[int]
) -> Operation[CampaignEmailAccountList]:
    request = _campaign_email_accounts("POST", campaign_id, email_account_ids)
    return call(request, policy, CampaignEmailAccountList)


@route("GET", "/campaigns/{campaign_id}/email-accounts")
def list_campaign_email_accounts(
    policy: RetryPolicy,
    campaign_id: int,
    offset: int | None = None,
    limit: int | None = None,
    after: int | str | None = None,
) -> Operation[CampaignEmailAccountList]:
    request = _campaign_email_accounts("GET", campaign_id, params=_page(offset, limit, after))
    return call(request, policy, CampaignEmailAccountList)


@route("DELETE", "/campaigns/{campaign_id}/email-accounts")
def remove_campaign_email_accounts(
    policy: RetryPolicy, campaign_id: int, email_account_ids: Iterable[int]
) -> Operation[CampaignEmailAccountList]:
    request = _campaign_email_accounts("DELETE", campaign_id, email_account_ids)
    return call(request, policy, CampaignEmailAccountList)


# --------------------------------------------------------------------------- service


HEALTH_PATH = "/healthz"  # at the server's root, not under /api/v1


@route("GET", HEALTH_PATH)
def health(policy: RetryPolicy) -> Operation[bool]:
    """One attempt, no retries: True when the server answers 200, else False."""
    request = ApiRequest("GET", HEALTH_PATH, idempotent=True, root=True)
    try:
        response = yield from send(request, NO_RETRY)
    except NetworkError:
        return False
    return response.status == 200
