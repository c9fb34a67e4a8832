"""Email address and domain normalisation (pure: no I/O).

email-validator decides what a valid address is. It costs ~25 µs an address, which would be
a fifth of the whole import budget, so the common shape (an ASCII dot-atom at an ordinary
ASCII domain) is recognised by a stricter pattern first; anything else goes to the library.
The fast path only ever accepts what the library accepts (a property test holds it to that).
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FAST_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[a-z]{{2,63}})")
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
MAX_ADDRESS = 254
MAX_LOCAL = 64


def _fast(candidate: str) -> str | None:
    match = _FAST_ADDRESS.fullmatch(candidate)
    if match is None or len(candidate) > MAX_ADDRESS or len(match.group(1)) > MAX_LOCAL:
        return None
    domain = match.group(2)
    # Every special-use name is a single label, so looking at the last one is enough.
    # A "--" may be an IDNA label (xn--) with rules of its own: leave those to the library.
    if domain.rsplit(".", 1)[-1] in _SPECIAL or "--" in domain:
        return None
    return candidate


def normalise_email(raw: str | None) -> str | None:
    """The address in its one stored form (trimmed, lower-case, ASCII domain), or None.

    A stored address holds exactly one "@": quoted local parts and domain literals are refused
    (the fast pattern has neither, and email-validator allows neither by default), so SQL may
    cut the domain at it (``leads.repository``).
    """
    if not raw:
        return None
    candidate = raw.strip().lower()
    fast = _fast(candidate)
    if fast is not None:
        return fast
    return _validated(candidate)


@lru_cache(maxsize=4096)
def _validated(candidate: str) -> str | None:
    try:
        result = validate_email(
            candidate, check_deliverability=False, allow_smtputf8=False, strict=True
        )
    except EmailNotValidError:
        return None
    return (result.ascii_email or result.normalized).lower()


def domain_of(email: str) -> str:
    return email.rpartition("@")[2]


def normalise_domain(raw: str | None) -> str | None:
    """A bare domain in stored form, or None when it is not a valid domain name."""
    if not raw:
        return None
    candidate = raw.strip().lower().lstrip("@").rstrip(".")
    if not candidate or "@" in candidate:
        return None
    address = normalise_email(f"postmaster@{candidate}")
    return domain_of(address) if address else None


def searchable(term: str) -> str:
    """A search term in the form addresses are stored in: lower-case, each non-ASCII part
    between dots in its ASCII (IDNA) spelling, as domains are stored."""
    return ".".join(_ascii_label(part) for part in term.lower().split("."))


def _ascii_label(part: str) -> str:
    if part.isascii():
        return part
    try:
        return idna.encode(part, uts46=True).decode()
    except idna.IDNAError:
        return part
