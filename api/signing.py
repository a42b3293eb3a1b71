"""The service's Ed25519 signing key, and offline verification of forwarded documents."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from projections.documents import canonical_bytes

KEY_FILE = "signing-key.pem"


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path``; a new one is written there (mode 0600) on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        tmp.unlink()
        return load_or_create_key(path)
    tmp.unlink()
    return key


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_info(key: Ed25519PrivateKey) -> dict[str, str]:
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "algorithm": "Ed25519",
        "pem": public_pem(public),
        "raw_base64": base64.b64encode(raw).decode(),
    }


def sign(key: Ed25519PrivateKey, doc: dict[str, Any]) -> str:
    """The base64 signature of the document's canonical bytes."""
    return base64.b64encode(key.sign(canonical_bytes(doc))).decode()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def verify_document(data: bytes, public: Ed25519PublicKey) -> Verdict:
    """Check a forwarded document's SHA-256 and its signature by ``public``."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return Verdict(False, f"not a JSON document: {e}")
    if not isinstance(doc, dict):
        return Verdict(False, "not a compiled document (a JSON object is expected)")
    stated, signature = doc.get("sha256"), doc.get("signature")
    if not isinstance(stated, str) or not isinstance(signature, str):
        return Verdict(False, "the document carries no sha256 and signature: was it forwarded?")
    body = canonical_bytes(doc)
    actual = hashlib.sha256(body).hexdigest()
    if actual != stated:
        return Verdict(False, f"sha256 mismatch: the content hashes to {actual}, not {stated}")
    try:
        public.verify(base64.b64decode(signature, validate=True), body)
    except (InvalidSignature, ValueError):
        return Verdict(False, "the signature does not match this key")
    version = doc.get("outcome_version")
    title = (doc.get("meeting") or {}).get("title", "?")
    return Verdict(True, f"valid: outcome version {version} of {title!r}, sha256 {actual}")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        private = serialization.load_pem_private_key(pem, password=None)
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the key is not an Ed25519 key")
    return key
