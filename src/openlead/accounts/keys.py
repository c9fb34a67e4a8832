"""API key generation and verification (pure: no I/O).

Only a SHA-256 of a key is stored. Keys are long random tokens, so a fast hash is enough;
the first hex digits of the hash locate the row and the whole hash is compared in constant
time.
"""

import hashlib
import hmac
import secrets

KEY_PREFIX = "ol_"
LOOKUP_CHARS = 16
MIN_KEY_LENGTH = 16


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def lookup_prefix(hashed: str) -> str:
    return hashed[:LOOKUP_CHARS]


def matches(stored_hash: str, presented_hash: str) -> bool:
    return hmac.compare_digest(stored_hash.encode(), presented_hash.encode())
