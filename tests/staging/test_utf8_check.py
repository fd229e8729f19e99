"""The fast UTF-8 check of staging (Arrow's validation) agrees with decoding the file in Python."""

from __future__ import annotations

import codecs

import pytest

from pipelines import staging
from pipelines.staging import _CHUNK, _decode_problem, _utf8_text

NAME = "名称".encode()


def _slow(path, encoding="utf-8"):
    """``_decode_problem`` with the fast path switched off: the reference."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                if "\0" in decoder.decode(chunk):
                    return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


CASES = {
    "ascii": b"a,b\n1,2\n",
    "chinese": b"a,b\n" + NAME + b",2\n",
    "bom": codecs.BOM_UTF8 + b"a,b\n1,2\n",
    "no final line break": b"a,b\n1," + NAME,
    "cr line breaks": b"a,b\r1," + NAME + b"\r",
    "crlf": b"a,b\r\n1," + NAME + b"\r\n",
    "character across the read size": b"a\n" + b"x" * (_CHUNK - 3) + NAME + b"\n",
    "line break right at the read size": b"x" * (_CHUNK - 1) + b"\n" + NAME,
    "bad byte": b"a,b\n1,\xff\n",
    "bad byte after the read size": b"a\n" + b"x" * _CHUNK + b"\xff\n",
    "surrogate": b"a,\xed\xa0\x80\n",
    "overlong": b"a,\xc0\xaf\n",
    "beyond U+10FFFF": b"a,\xf4\x90\x80\x80\n",
    "truncated at the end": b"a,b\n1," + NAME[:2],
    "truncated before a line break": b"a," + NAME[:2] + b"\n1,2\n",
    "nul": b"a,b\n1,\x002\n",
    "gb18030 text": "名称,金额\n".encode("gb18030"),
    "long line without a break": b"x" * (staging.MAX_LINE_BYTES + _CHUNK) + NAME,
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_utf8_text_agrees_with_python_decoding(tmp_path, data):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    fast, slow = _utf8_text(path), _slow(path)
    # the one allowed difference: a line too long to split is left to the slow path
    assert fast == slow or (slow and data is CASES["long line without a break"])
    assert (_decode_problem(path, "utf-8") is None) == slow
