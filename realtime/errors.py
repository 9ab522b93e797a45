"""Realtime errors, each with the websocket close code the gateway answers with.

RealtimeError
├── BadFrame          4400  malformed JSON, unknown type, missing field
├── Unauthenticated   4401  no hello first, or a bad/revoked token
├── Forbidden         4403  a topic outside the peer's role and scope
├── TooSlow           4408  the peer did not read; its buffer stayed over the bound
├── HeartbeatTimeout  4410  the peer sent nothing past its deadline
└── UnknownTopic      4404  a topic name no kind is registered for
(1009 "message too big" and 1012 "service restart" are the standard codes, sent by the
 websockets library for oversize frames and by the hub on shutdown.)
"""


class RealtimeError(Exception):
    code = "realtime_error"
    close_code = 1011

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadFrame(RealtimeError):
    code = "bad_frame"
    close_code = 4400


class Unauthenticated(RealtimeError):
    code = "unauthenticated"
    close_code = 4401


class Forbidden(RealtimeError):
    code = "forbidden"
    close_code = 4403


class UnknownTopic(RealtimeError):
    code = "unknown_topic"
    close_code = 4404


class TooSlow(RealtimeError):
    code = "too_slow"
    close_code = 4408


class HeartbeatTimeout(RealtimeError):
    code = "heartbeat_timeout"
    close_code = 4410


CLOSE_RESTART = 1012
CLOSE_TOO_BIG = 1009
