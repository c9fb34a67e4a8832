"""Request and response shapes of the lead endpoints."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from openlead.web.text import NO_CONTROL, NO_NUL, line, text

MAX_LEADS_PER_REQUEST = 400
MAX_CUSTOM_FIELDS = 200
MAX_CUSTOM_FIELD_TEXT = 5000
# Numbers are kept to the range every JSON reader holds exactly (JavaScript's safe integers);
# a larger one should travel as a string.
MAX_NUMBER = 2**53 - 1


def _one_custom_field_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One plain error for a bad value, not one per member of the union.

    An integer out of range is refused before the union sees it: the float member would
    otherwise take it and silently round it. Integers and floats share one range, so that the
    published schema, where 1e30 and 10**30 are the same number, says exactly what is accepted.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise PydanticCustomError(
            "custom_field_value",
            "a number in a custom field must be between -{max} and {max}; send a larger one "
            "as a string",
            {"max": MAX_NUMBER},
        )
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "custom_field_value",
            "a custom field value must be a string of at most {max} characters without control "
            "characters, a number between -{max_number} and {max_number}, true, false or null",
            {"max": MAX_CUSTOM_FIELD_TEXT, "max_number": MAX_NUMBER},
        ) from None


CustomFieldKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL)]
# The members are strict: a string too long or with a control character in it must not be
# read as a number ("000…0" as 0) or a flag ("true") instead of being refused.
_CustomFieldMembers = (
    text(MAX_CUSTOM_FIELD_TEXT)
    | StrictBool
    | Annotated[int, Strict(), Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
    | Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-MAX_NUMBER, le=MAX_NUMBER)]
    | None
)
CustomFieldValue = Annotated[_CustomFieldMembers, WrapValidator(_one_custom_field_error)]


def _keys_in_property_names(schema: dict[str, Any]) -> None:
    """Pydantic publishes the key pattern as ``patternProperties``, which leaves any key that
    does not match it allowed with any value; ``propertyNames`` says what is really checked."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, value_schema),) = patterns.items()
        schema.setdefault("propertyNames", {})["pattern"] = pattern
        schema["additionalProperties"] = value_schema


_CUSTOM_FIELDS_LIMIT = Field(
    max_length=MAX_CUSTOM_FIELDS, json_schema_extra=_keys_in_property_names
)
# The explaining reading: one plain error per bad value. It calls a Python function for every
# value, a quarter of a 400-lead body's validation, so it reads only objects already refused.
_EXPLAINED_CUSTOM_FIELDS: TypeAdapter[dict[str, Any]] = TypeAdapter(
    Annotated[dict[CustomFieldKey, CustomFieldValue], _CUSTOM_FIELDS_LIMIT]
)


def _explain_refused_custom_fields(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Read with the bare members (the same values pass: the explaining check refuses only
    integers that both number members refuse too); a refused object is read again to say why."""
    try:
        return handler(value)
    except ValidationError:
        return _EXPLAINED_CUSTOM_FIELDS.validate_python(value)


CustomFields = Annotated[
    dict[CustomFieldKey, _CustomFieldMembers],
    _CUSTOM_FIELDS_LIMIT,
    WrapValidator(_explain_refused_custom_fields),
]


class LeadProfile(BaseModel):
    """The fields a lead carries besides its address."""

    model_config = ConfigDict(extra="forbid")

    first_name: line(500) | None = None
    last_name: line(500) | None = None
    company_name: line(500) | None = None
    location: line(500) | None = None
    phone_number: line(500) | None = None
    website: line(2000) | None = None
    linkedin_profile: line(2000) | None = None
    company_url: line(2000) | None = None
    custom_fields: CustomFields | None = None


PROFILE_FIELDS = tuple(f for f in LeadProfile.model_fields if f != "custom_fields")


# Longer than any address can be, so refused whole; not read ahead of validation either.
MAX_GIVEN_EMAIL = 1000


class LeadIn(LeadProfile):
    # Not constrained beyond length and NUL: a missing or malformed address is a skip reason,
    # not a 400. White space around it, a CR/LF from a pasted cell included, is trimmed
    # (``addresses.normalise_email``); a control character inside it makes it invalid.
    email: Annotated[str, StringConstraints(max_length=MAX_GIVEN_EMAIL, pattern=NO_NUL)] | None = (
        None
    )


class ImportSettings(BaseModel):
    # Strict: "true", "no" or 1 is not a flag; a client sending one has a bug to hear about.
    model_config = ConfigDict(extra="forbid", strict=True)

    ignore_global_block_list: bool = False
    ignore_unsubscribe_list: bool = False
    ignore_duplicate_leads_in_other_campaign: bool = False


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_list: list[LeadIn] = Field(min_length=1, max_length=MAX_LEADS_PER_REQUEST)
    settings: ImportSettings | None = None


class ImportBody:
    """An import request as sent, read in two steps: the addresses first, which is all the
    database lookups need, then the whole body, validated while they run (``service``).

    Validation reads the bytes with pydantic's own JSON parser: FastAPI decodes a body with
    the standard library and validates the Python objects, a few milliseconds more for 400
    leads. A body that this refuses is read again as FastAPI reads it, so that a bad body gets
    FastAPI's very answer, and one it would take is taken (tests/test_import_fast_path.py).
    """

    __slots__ = ("_parsed", "_refused", "_request", "raw")

    def __init__(
        self,
        raw: bytes,
        parsed: Any = None,
        request: ImportRequest | None = None,
        refused: bool = False,
    ) -> None:
        self.raw = raw
        self._parsed = parsed
        self._request = request
        # Validated already and refused; ``parsed`` is then the standard library's reading.
        self._refused = refused

    @classmethod
    def of(cls, request: ImportRequest) -> ImportBody:
        """A request already validated (callers inside the process)."""
        return cls(b"", request=request)

    @classmethod
    def read(cls, raw: bytes, validate: bool) -> ImportBody:
        """The body as sent, parsed, and validated now if ``validate``; a body that does not
        parse raises here what ``Request.json()`` raises, for FastAPI to answer before the key
        is checked (docs/decisions.md, "Bad input")."""
        if validate:
            try:
                return cls(raw, request=ImportRequest.model_validate_json(raw))
            except ValidationError:
                return cls(raw, parsed=json.loads(raw), refused=True)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = json.loads(raw)  # what orjson refuses and the standard library reads
        return cls(raw, parsed=parsed)

    def addresses(self) -> list[str | None] | None:
        """Each lead's address as sent, nothing else checked; None when the body is not shaped
        like an import request, which its validation will then say. An address too long for
        the schema is not screened (that could take a second a megabyte): the body is
        validated first, and refused."""
        if self._request is not None:
            return [lead.email for lead in self._request.lead_list]
        parsed = self._parsed
        lead_list = parsed.get("lead_list") if isinstance(parsed, dict) else None
        if not isinstance(lead_list, list) or len(lead_list) > MAX_LEADS_PER_REQUEST:
            return None
        addresses: list[str | None] = []
        for lead in lead_list:
            email = lead.get("email") if isinstance(lead, dict) else 0
            if email is not None and (not isinstance(email, str) or len(email) > MAX_GIVEN_EMAIL):
                return None
            addresses.append(email)
        return addresses

    def request(self) -> ImportRequest:
        """The validated request; a 4xx error when the body is not one."""
        if self._request is None:
            if self._refused:
                self._request = _as_fastapi_validates(self._parsed)
                return self._request
            try:
                self._request = ImportRequest.model_validate_json(self.raw)
            except ValidationError:
                self._request = _as_fastapi_reads(self.raw)
        return self._request


_PLAIN_IMPORT = TypeAdapter(ImportRequest)


def _as_fastapi_reads(raw: bytes) -> ImportRequest:
    """``Request.json()`` and then the body parameter's validation, failing as they fail."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ],
            body=error.doc,
        ) from error
    except Exception as error:  # not UTF-8, nested too deep: FastAPI's catch-all answer
        raise HTTPException(400, "There was an error parsing the body") from error
    return _as_fastapi_validates(value)


def _as_fastapi_validates(value: Any) -> ImportRequest:
    """The body parameter's validation of what ``json.loads`` read, failing as it fails."""
    try:
        return _PLAIN_IMPORT.validate_python(value, from_attributes=True)
    except ValidationError as error:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors, body=value) from None


class SentImportRequest(ImportRequest):
    """Stands in, for FastAPI, for the body it would have validated before the endpoint ran;
    the endpoint hands the body as sent to the service instead."""

    _body: ImportBody = PrivateAttr()

    @classmethod
    def holding(cls, body: ImportBody) -> SentImportRequest:
        sent = cls.model_construct(lead_list=[])
        sent._body = body
        return sent

    @property
    def body(self) -> ImportBody:
        return self._body


class SkippedLead(BaseModel):
    email: str | None
    reason: str


class ImportResult(BaseModel):
    ok: bool = True
    added_count: int
    skipped_count: int
    skipped_leads: list[SkippedLead]
    upload_count: int
    total_leads: int
    already_added_to_campaign: int
    duplicate_count: int
    invalid_email_count: int
    invalid_emails: list[str | None]
    unsubscribed_leads: int
    block_count: int


class LeadCampaign(BaseModel):
    campaign_id: int
    status: str


class LeadView(BaseModel):
    """What every answer about a lead shows: its profile and whether the lists hold it."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    location: str | None
    phone_number: str | None
    website: str | None
    linkedin_profile: str | None
    company_url: str | None
    custom_fields: dict[str, Any]
    is_unsubscribed: bool
    is_blocked: bool
    created_at: str
    updated_at: str


class Lead(LeadView):
    """A lead's profile, the same in every campaign, with where it stands in each."""

    campaigns: list[LeadCampaign]
