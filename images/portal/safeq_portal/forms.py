"""Form bodies: application/x-www-form-urlencoded and multipart/form-data (with the email package;
the cgi module is gone in Python 3.13)."""
from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

MAX_BODY = 8 * 1024 * 1024
MAX_FIELDS = 200
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_LENGTH = re.compile(r"[0-9]{1,12}")


class FormError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    field: str
    filename: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def has(self, name: str) -> bool:
        return name in self.fields


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def body_length(content_length: str | None, transfer_encoding: str | None) -> int:
    """The declared size of a POST body; FormError 411/413 before a byte of it is read."""
    if transfer_encoding:
        raise FormError(411, "send the form with a Content-Length, not chunked")
    if content_length is None:
        raise FormError(411, "a form needs a Content-Length")
    value = content_length.strip()
    if not _LENGTH.fullmatch(value):
        raise FormError(400, "bad Content-Length")
    if int(value) > MAX_BODY:
        raise FormError(413, f"the form is over {MAX_BODY // (1024 * 1024)} MiB: import fewer or smaller files")
    return int(value)


def check_type(content_type: str | None) -> None:
    if media_type(content_type) not in (URLENCODED, MULTIPART):
        raise FormError(415, f"a form is sent as {URLENCODED} or {MULTIPART}")


def parse(content_type: str | None, body: bytes) -> Form:
    check_type(content_type)
    if len(body) > MAX_BODY:
        raise FormError(413, f"the form is over {MAX_BODY // (1024 * 1024)} MiB: import fewer or smaller files")
    if media_type(content_type) == URLENCODED:
        return parse_urlencoded(body)
    return parse_multipart(content_type, body)


def parse_urlencoded(body: bytes) -> Form:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise FormError(400, "the form is not UTF-8") from None
    except ValueError:  # too many fields
        raise FormError(400, "the form has too many fields") from None
    return Form(fields=fields)


def parse_multipart(content_type: str, body: bytes) -> Form:
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart() or not msg.get_boundary():
        raise FormError(400, "the multipart form has no boundary")
    form = Form()
    for count, part in enumerate(msg.iter_parts()):
        if count >= MAX_FIELDS:
            raise FormError(400, "the form has too many fields")
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            if filename or data:  # a browser sends an empty part for "no file chosen"
                form.files.append(Upload(name, filename, data))
            continue
        try:
            form.fields.setdefault(name, []).append(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormError(400, f"form field {name!r} is not UTF-8") from None
    return form
