"""Signed tracking tokens. Pure, apart from the key they are signed with.

A token names one email by its unique key (account, campaign, lead, step), what it is for
(unsubscribe, open, click) and, for a click, which of the email's links. The payload is packed
binary, then an HMAC-SHA256 tag (128 bits, ``openlead.vault``), all base64url: 64 characters.
Anything that does not decode, has the wrong length or kind, is not spelled exactly as it was
issued, or whose tag does not match (compared in constant time) is not a token.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from enum import Enum

from openlead.vault import Vault

_VERSION = 1
# version, kind, account, campaign, lead, step, link: 32 bytes, 48 with the tag, which base64
# spells in exactly 64 characters with no padding and no spare bits.
_LAYOUT = struct.Struct(">BcQQQHI")
_TAG_BYTES = 16
_SIZE = _LAYOUT.size + _TAG_BYTES
_TEXT_SIZE = _SIZE // 3 * 4


class Purpose(Enum):
    UNSUBSCRIBE = b"u"
    OPEN = b"o"
    CLICK = b"c"


@dataclass(frozen=True)
class EmailRef:
    """The email a token speaks for: the unique key of its ``messages`` row."""

    account_id: int
    campaign_id: int
    lead_id: int
    seq_number: int


@dataclass(frozen=True)
class Token:
    purpose: Purpose
    email: EmailRef
    link: int = 0


def issue(vault: Vault, token: Token) -> str:
    ref = token.email
    payload = _LAYOUT.pack(
        _VERSION,
        token.purpose.value,
        ref.account_id,
        ref.campaign_id,
        ref.lead_id,
        ref.seq_number,
        token.link,
    )
    return base64.urlsafe_b64encode(payload + vault.sign(payload)).decode()


def read(vault: Vault, text: str, purpose: Purpose) -> Token | None:
    """The token, when ``text`` is one this installation signed for ``purpose``."""
    if len(text) != _TEXT_SIZE or not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        return None
    # The decoder skips characters outside the alphabet; only the one spelling is the token.
    if len(raw) != _SIZE or base64.urlsafe_b64encode(raw).decode() != text:
        return None
    payload, tag = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not vault.verify(payload, tag):
        return None
    version, kind, account_id, campaign_id, lead_id, seq_number, link = _LAYOUT.unpack(payload)
    if version != _VERSION or kind != purpose.value:
        return None
    return Token(purpose, EmailRef(account_id, campaign_id, lead_id, seq_number), link)
