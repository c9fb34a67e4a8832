"""Tracking tokens, signed and sealed. Pure, apart from the key they are signed with.

A token names one email by its unique key (account, campaign, lead, step), what it is for
(unsubscribe, open, click) and, for a click, which of the email's links. The payload is packed
binary and signed with an HMAC-SHA256 tag (128 bits, ``openlead.vault``); the payload is then
hidden with a keystream drawn from that tag, so that the ids (how many leads and accounts an
installation holds, among others) are not readable by whoever has the email. Sealed payload
and tag, in base64url: 64 characters. Anything that does not decode, has the wrong length or
kind, is not spelled exactly as it was issued, or whose tag does not match (compared in
constant time) is not a token.

Tokens issued before they were sealed carry the payload in clear; links in emails already sent
still use them, so they are read too.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from enum import Enum

from openlead.vault import Vault

# The payload's first byte. Signed only (the payload in clear): read, no longer issued.
_SIGNED = 1
_SEALED = 2
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
        _SEALED,
        token.purpose.value,
        ref.account_id,
        ref.campaign_id,
        ref.lead_id,
        ref.seq_number,
        token.link,
    )
    tag = vault.sign(payload)
    return base64.urlsafe_b64encode(_xor(payload, vault.keystream(tag)) + tag).decode()


def _xor(data: bytes, keystream: bytes) -> bytes:
    return (int.from_bytes(data) ^ int.from_bytes(keystream)).to_bytes(len(data))


def _opened(vault: Vault, body: bytes, tag: bytes) -> bytes | None:
    """The payload, when ``tag`` is this installation's, sealed or (issued before) signed.
    Both readings are checked every time, so that how long it takes says nothing."""
    sealed = _xor(body, vault.keystream(tag))
    sealed_matches = vault.verify(sealed, tag)
    signed_matches = vault.verify(body, tag)
    if sealed_matches and sealed[0] == _SEALED:
        return sealed
    if signed_matches and body[0] == _SIGNED:
        return body
    return None


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
    payload = _opened(vault, raw[: _LAYOUT.size], raw[_LAYOUT.size :])
    if payload is None:
        return None
    _version, kind, account_id, campaign_id, lead_id, seq_number, link = _LAYOUT.unpack(payload)
    if kind != purpose.value:
        return None
    return Token(purpose, EmailRef(account_id, campaign_id, lead_id, seq_number), link)
