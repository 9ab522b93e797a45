"""Domain errors: what a service refuses and why, with a stable ``code`` the API shows.

DomainError                 domain_error
├── InvalidInput            invalid_input      a value breaks a rule; ``field`` names it
│   └── InvalidIdDocument   invalid_id_document an identity document number is malformed or
│                                              fails its check digit (Q4)
├── NotFound                not_found          the addressed record does not exist
├── Conflict                conflict           a unique key is taken or the state forbids it
├── NotSignedIn             unauthenticated    no credentials, or a bad/expired/revoked token
├── SignInFailed            sign_in_failed     wrong staff number or password (one code for both)
├── NotAllowed              forbidden          the role or scope does not cover the target
├── RateLimited             rate_limited       too many public requests; ``retry_after`` seconds
├── SpeechUnavailable       speech_unavailable the speech synthesizer is missing, failed or
│                                              timed out (Q5 announcements)
├── TooLarge                too_large          an upload over its size limit (a scan, D3)
└── UnsupportedType         unsupported_media_type  an upload of a type not taken

The API maps each class to an HTTP status in one table (hub/api/problems.py).
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of the hub's domain errors.

    Args:
        detail: a sentence for the operator; shown in the problem's ``detail``.
        field: the offending field path (``body.name``, ``$.hall_id``), when there is one.
    """

    code = "domain_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(DomainError):
    code = "invalid_input"


class InvalidIdDocument(InvalidInput):
    code = "invalid_id_document"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class NotSignedIn(DomainError):
    code = "unauthenticated"


class SignInFailed(NotSignedIn):
    code = "sign_in_failed"


class NotAllowed(DomainError):
    code = "forbidden"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class SpeechUnavailable(DomainError):
    code = "speech_unavailable"


class TooLarge(DomainError):
    code = "too_large"


class UnsupportedType(DomainError):
    code = "unsupported_media_type"
