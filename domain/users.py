"""People: users with their global roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.base import Event, remember

TOKEN_NAMESPACE = uuid5(NAMESPACE_URL, "urn:prepmeet:token")


def new_token() -> str:
    """A 256-bit random bearer token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_index_id(hash_hex: str) -> UUID:
    return uuid5(TOKEN_NAMESPACE, hash_hex)


class User(Aggregate):
    """A person with a delegation, global roles, and the hashes of their tokens."""

    class Registered(Aggregate.Created):
        actor: str
        name: str
        delegation: str
        secretariat: bool
        ministerial: bool
        request_hash: str | None

    @event(Registered)
    def __init__(
        self,
        actor: str,
        name: str,
        delegation: str,
        secretariat: bool,
        ministerial: bool,
        request_hash: str | None,
    ) -> None:
        self.name = name
        self.delegation = delegation
        self.secretariat = secretariat
        self.ministerial = ministerial
        self.request_hash = request_hash
        self.token_hashes: list[str] = []

    class TokenIssued(Event):
        class_version = 2

        actor: str
        token_hash: str
        idempotency: dict[str, str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["idempotency"] = None

    @event(TokenIssued)
    def _token_issued(
        self, actor: str, token_hash: str, idempotency: dict[str, str] | None
    ) -> None:
        remember(self, idempotency)
        self.token_hashes.append(token_hash)

    class TokensRevoked(Event):
        actor: str

    @event(TokensRevoked)
    def _tokens_revoked(self, actor: str) -> None:
        self.token_hashes = []

    def issue_token(self, actor: str, idempotency: dict[str, str] | None = None) -> tuple[str, str]:
        token = new_token()
        hashed = token_hash(token)
        self._token_issued(actor=actor, token_hash=hashed, idempotency=idempotency)
        return token, hashed

    def revoke_tokens(self, actor: str) -> None:
        self._tokens_revoked(actor=actor)

    def holds(self, hashed: str) -> bool:
        found = False
        for stored in self.token_hashes:
            found |= secrets.compare_digest(stored, hashed)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "delegation": self.delegation,
            "secretariat": self.secretariat,
            "ministerial": self.ministerial,
            "version": self.version,
        }


class ApiToken(Aggregate):
    """Index from a token's hash to its user; the id is derived from the hash."""

    class Issued(Aggregate.Created):
        actor: str
        user_id: str
        token_hash: str

    @event(Issued)
    def __init__(self, actor: str, user_id: str, token_hash: str) -> None:
        self.user_id = user_id
        self.token_hash = token_hash
