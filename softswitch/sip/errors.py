"""Errors that carry the SIP answer they deserve.

The core catches :class:`SipError` in one place (the endpoint) and turns it into a
response when the offending message is a request that can be answered at all
(RFC 3261 §8.2: a UAS answers what it cannot process with a 4xx/5xx final response).
Any other exception escaping the core is a bug.
"""

from __future__ import annotations


class SipError(Exception):
    """A failure with the status code and reason phrase to answer it with."""

    def __init__(self, status_code: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{status_code} {reason}" + (f": {detail}" if detail else ""))
        self.status_code = status_code
        self.reason = reason
        self.detail = detail


class ParseError(SipError):
    """A message that cannot be understood (400 unless a more precise code applies)."""

    def __init__(
        self, detail: str, status_code: int = 400, reason: str = "Bad Request"
    ) -> None:
        super().__init__(status_code, reason, detail)
