"""A picture sent with a request: read whole, never more than the limit.

Two ways are taken, as clients send them: the picture's bytes as the body (`fetch(url,
{method: "POST", body: file})`, `curl --data-binary @drawing.jpg`), or the field `image`
of a multipart form (an HTML form, `curl -F image=@drawing.jpg`). The bytes decide what
the picture is, not the Content-Type, which clients often leave generic.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.types import Message

from .errors import BadRequest, TooLarge

UPLOAD_FIELD = "image"
# A multipart form wraps the picture in a few headers and boundaries.
FORM_OVERHEAD = 64 * 1024

HOW_TO_SEND = (
    "send the picture's bytes as the request's body (curl --data-binary @drawing.jpg "
    f"-H 'Content-Type: image/jpeg') or as the field {UPLOAD_FIELD!r} of a multipart form "
    f"(curl -F {UPLOAD_FIELD}=@drawing.jpg)"
)

# The request body as OpenAPI describes it (the route reads the body itself).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The picture: its bytes, or the field `image` of a multipart form.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                    "required": [UPLOAD_FIELD],
                }
            },
        },
    }
}


def _too_large(size: int | None, limit: int) -> TooLarge:
    sent = f"{size:,} bytes" if size is not None else "over the limit"
    return TooLarge(
        f"the picture sent is {sent}; the limit is {limit:,} bytes (REGARD_MAX_UPLOAD_BYTES): "
        "send a smaller copy (a few megapixels is plenty: the model sees a few hundred pixels)",
        code="upload_too_large",
    )


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it passes `limit` (a declared length is
    believed first: nothing is read of a body declared too large)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _form_field(request: Request, body: bytes) -> bytes:
    """The field `image` of a multipart form whose body is already read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except Exception as error:  # starlette raises its own types on a malformed form
        raise BadRequest(
            f"the multipart form cannot be read ({error}): {HOW_TO_SEND}", code="empty_upload"
        ) from error
    field = form.get(UPLOAD_FIELD)
    if not isinstance(field, UploadFile):
        given = ", ".join(repr(name) for name in form.keys()) or "none"
        raise BadRequest(
            f"the form has no file in the field {UPLOAD_FIELD!r} (fields sent: {given}): "
            + HOW_TO_SEND,
            code="empty_upload",
        )
    try:
        return await field.read()
    finally:
        await form.close()


async def read_upload(request: Request, limit: int) -> bytes:
    """The picture's bytes. Raises TooLarge past `limit` bytes, BadRequest when none
    were sent."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        data = await _form_field(request, await _body(request, limit + FORM_OVERHEAD))
        if len(data) > limit:
            raise _too_large(len(data), limit)
    else:
        data = await _body(request, limit)
    if not data:
        raise BadRequest(f"no picture was sent: {HOW_TO_SEND}", code="empty_upload")
    return data
