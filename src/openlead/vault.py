"""The installation's secret: it encrypts mailbox passwords at rest and signs and hides
tracking links.

One master secret, from ``OPENLEAD_SECRET_KEY`` or generated once into the data folder (mode
0600), and a key derived from it per purpose (HKDF), so that a token signature can never be
replayed as a ciphertext key or the other way round.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_FILE = "secret.key"
_PASSWORDS = b"openlead mailbox passwords v1"
_TOKENS = b"openlead tracking tokens v1"
_TOKEN_KEYSTREAM = b"openlead tracking token keystream v1"


class VaultError(Exception):
    """A stored secret that this installation's key cannot open."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def load_master_secret(secret_key: str | None, data_dir: Path) -> bytes:
    """The configured secret, or the one in the data folder (created on first use)."""
    if secret_key:
        return secret_key.encode()
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two processes start at once, one creates the file and both use it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    secret = path.read_text().strip()
    if not secret:
        raise VaultError(f"{path} is empty; delete it or set OPENLEAD_SECRET_KEY.")
    return secret.encode()


class Vault:
    """Encryption of stored secrets and signing of tokens, with keys derived from one master."""

    def __init__(self, master: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(master, _PASSWORDS)))
        self._token_key = _derive(master, _TOKENS)
        self._keystream_key = _derive(master, _TOKEN_KEYSTREAM)

    def __repr__(self) -> str:
        return "Vault(<secret>)"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise VaultError(
                "A stored password cannot be decrypted: the secret key has changed."
            ) from None

    def sign(self, payload: bytes) -> bytes:
        """A 128-bit HMAC-SHA256 tag: short enough for a link, far beyond guessing."""
        return hmac.new(self._token_key, payload, hashlib.sha256).digest()[:16]

    def verify(self, payload: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(payload), signature)

    def keystream(self, signature: bytes) -> bytes:
        """32 bytes to hide a signed payload with. Drawn from the payload's own tag (a
        synthetic IV, as in SIV): the same payload is hidden the same way, another one in
        an unrelated way, and whoever lacks the key can neither read nor alter it."""
        return hmac.digest(self._keystream_key, signature, "sha256")
