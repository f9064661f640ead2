"""How the test IIIF server misbehaves on request: the failure modes of real servers.

A `Failure` rule matches request paths with an fnmatch pattern and turns the normal
`Answer` into a bad one (`misbehave`); the server applies "reset" and "slow" itself,
since they act on the connection and the clock rather than on the answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

FAILURE_MODES = {
    "status": "answer `status` (default 500) with a short JSON error body",
    "html": "answer 200 with an HTML error page (text/html)",
    "invalid_json": "answer 200, application/json, with a body that is not JSON",
    "wrong_type": "the normal body, labelled text/html",
    "empty": "answer 200 with a 0-byte body",
    "truncated": "the first half of the normal body",
    "corrupt": "the first 2 bytes of the normal body (a JPEG's SOI marker), then junk",
    "slow": "wait `delay` seconds, then answer normally",
    "429": "answer 429 Too Many Requests with Retry-After: `retry_after`",
    "reset": "close the connection without answering",
    "redirect_loop": "redirect (302) to the same URL, for ever",
}


@dataclass
class Failure:
    """How requests whose path matches `pattern` (fnmatch, on the decoded path with its
    query) misbehave; `times` limits it to the first N matching requests."""

    pattern: str
    mode: str
    status: int = 500
    times: int | None = None
    delay: float = 1.0
    retry_after: int = 1


@dataclass
class Answer:
    """An HTTP answer before it is sent."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(status: int, doc: Any) -> Answer:
    return Answer(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json")


_HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>"
_NOT_JSON = b'{"@context": "http://iiif.io/api/presentation/3/context.json", "id": '


def misbehave(rule: Failure, answer: Answer) -> Answer:
    """The answer as a server failing in `rule.mode` would give it."""
    body, content_type = answer.body, answer.content_type
    if rule.mode == "status":
        return json_answer(rule.status, {"error": f"test failure {rule.status}"})
    if rule.mode == "html":
        return Answer(200, _HTML_PAGE, "text/html; charset=utf-8")
    if rule.mode == "invalid_json":
        return Answer(200, _NOT_JSON, "application/json")
    if rule.mode == "wrong_type":
        return Answer(answer.status, body, "text/html; charset=utf-8")
    if rule.mode == "empty":
        return Answer(200, b"", content_type)
    if rule.mode == "truncated":
        return Answer(answer.status, body[: len(body) // 2], content_type)
    if rule.mode == "corrupt":
        junk = hashlib.sha256(body).digest() * (len(body) // 32 + 1)
        return Answer(answer.status, body[:2] + junk[: max(0, len(body) - 2)], content_type)
    if rule.mode == "429":
        headers = {"Retry-After": str(rule.retry_after)}
        return Answer(429, b'{"error": "too many requests"}', "application/json", headers)
    if rule.mode == "redirect_loop":
        return Answer(302, b"", "text/plain", {"Location": "SELF"})  # the server fills it in
    return answer  # "slow" (already waited) and "reset" (never answered)
