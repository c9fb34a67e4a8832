"""Every endpoint as an operation: the request to make and how to read its answer.

Each function returns an operation generator (see ``_protocol``); ``Client`` and
``AsyncClient`` expose each one under the same name with the same parameters. ``ROUTES``
records which endpoint each operation calls, so a test can hold the SDK to the server's route
table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO, TypeVar

from openlead.client._errors import NetworkError
from openlead.client._models import (
    Activity,
    BlockListAdded,
    BlockListPage,
    Campaign,
    CampaignCreated,
    CampaignLeadPage,
    CampaignList,
    CampaignUnsubscribed,
    Deleted,
    ImportResult,
    Lead,
    Preview,
    Removed,
    SequenceCheck,
    Sequences,
    SequencesSaved,
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
def get_lead_activity(policy: RetryPolicy, campaign_id: int, lead_id: int) -> Operation[Activity]:
    request = ApiRequest(
        "GET", f"/campaigns/{int(campaign_id)}/leads/{int(lead_id)}/activity", idempotent=True
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
