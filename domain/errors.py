"""Domain errors: the only errors the application service raises on purpose."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every refusal by the domain."""

    title = "Domain error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    title = "Not found"

    def __init__(self, kind: str, id_: object) -> None:
        super().__init__(f"{kind} {id_} not found")
        self.kind = kind
        self.id = id_


class Unauthenticated(DomainError):
    title = "Not authenticated"


class Forbidden(DomainError):
    title = "Forbidden"


class InvalidInput(DomainError):
    title = "Invalid input"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class IdempotencyKeyReused(InvalidInput):
    title = "Idempotency key reused"


class InvalidTransition(DomainError):
    """A lifecycle step that the current state does not allow."""

    title = "Invalid transition"

    def __init__(self, kind: str, state: str, action: str, reason: str | None = None) -> None:
        detail = f"cannot {action} a {kind} that is {state}"
        if reason:
            detail = f"{detail}: {reason}"
        super().__init__(detail)
        self.kind = kind
        self.state = state
        self.action = action


class RuleViolation(DomainError):
    """A rule of state other than the lifecycle (merge target, duplicate endorsement...)."""

    title = "Conflict with the current state"


class AlreadyIssued(RuleViolation):
    """A retry of a creation whose first answer cannot be given again (a secret shown once)."""

    title = "Already issued for this idempotency key"


class VersionConflict(DomainError):
    title = "Version conflict"

    def __init__(self, kind: str, id_: object, expected: int | None, actual: int | None) -> None:
        if expected is None:
            detail = f"{kind} {id_} was changed concurrently; retry"
        else:
            detail = f"{kind} {id_} is at version {actual}, not {expected}"
        super().__init__(detail)
        self.expected = expected
        self.actual = actual
