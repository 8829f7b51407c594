"""Form bodies (safeq_portal.forms): urlencoded and multipart/form-data, sizes and types."""
from __future__ import annotations

import pytest

from safeq_portal import forms

BOUNDARY = "----portaltest7MA4YWxkTrZu0gW"


def multipart(parts, boundary=BOUNDARY) -> tuple[str, bytes]:
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        kind = "Content-Type: application/octet-stream\r\n" if filename is not None else ""
        data = value if isinstance(value, bytes) else value.encode()
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def test_urlencoded_fields():
    form = forms.parse("application/x-www-form-urlencoded; charset=UTF-8",
                       b"csrf=t%C3%B6k&policy=built-in&ocsp_url=&auto_trust=on&auto_trust=again")
    assert form.get("csrf") == "tök"
    assert form.get("policy") == "built-in"
    assert form.has("ocsp_url") and form.get("ocsp_url") == ""
    assert form.fields["auto_trust"] == ["on", "again"]
    assert not form.has("ocsp_enabled") and form.get("ocsp_enabled", "x") == "x"
    assert form.files == []


def test_urlencoded_not_utf8_is_400():
    with pytest.raises(forms.FormError) as err:
        forms.parse(forms.URLENCODED, b"user=%FF%FE\xff")
    assert err.value.status == 400


def test_multipart_several_files_and_a_text_field():
    der = bytes(range(256)) * 4 + b"\r\n--\r\r\n\n"  # binary, with line ends and a boundary-like dash pair
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    ctype, body = multipart([("csrf", "tök", None), ("file", der, "root.der"), ("file", pem, "issuing ca.pem"),
                             ("file", b"", "")])  # the empty part a browser sends for "no file chosen"
    form = forms.parse(ctype, body)
    assert form.get("csrf") == "tök"
    assert [(u.field, u.filename, u.data) for u in form.files] == [("file", "root.der", der),
                                                                   ("file", "issuing ca.pem", pem)]


def test_multipart_no_file_chosen_gives_no_upload():
    ctype, body = multipart([("csrf", "t", None), ("file", b"", "")])
    assert forms.parse(ctype, body).files == []


def test_multipart_without_boundary_is_400():
    with pytest.raises(forms.FormError) as err:
        forms.parse("multipart/form-data", b"--x\r\n\r\n--x--\r\n")
    assert err.value.status == 400


@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain", "multipart/mixed; boundary=x"])
def test_other_content_types_are_415(ctype):
    with pytest.raises(forms.FormError) as err:
        forms.parse(ctype, b"a=b")
    assert err.value.status == 415


def test_oversize_body_is_413():
    with pytest.raises(forms.FormError) as err:
        forms.parse(forms.URLENCODED, b"a=" + b"x" * forms.MAX_BODY)
    assert err.value.status == 413 and "8 MiB" in str(err.value)


@pytest.mark.parametrize("length, encoding, status", [
    (str(forms.MAX_BODY + 1), None, 413), ("99999999999999999", None, 400), (None, None, 411),
    ("10", "chunked", 411), ("-1", None, 400), ("ten", None, 400),
])
def test_body_length_refused_before_reading(length, encoding, status):
    with pytest.raises(forms.FormError) as err:
        forms.body_length(length, encoding)
    assert err.value.status == status


def test_body_length_up_to_the_cap():
    assert forms.body_length(str(forms.MAX_BODY), None) == forms.MAX_BODY
    assert forms.body_length(" 12 ", None) == 12
