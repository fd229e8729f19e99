"""``trimmed_sql``: DuckDB's ``NULLIF(trim(x), '')``, with ``trim`` called only where it can change a value."""

from __future__ import annotations

import unicodedata

import duckdb
import pytest

from pipelines.staging import trimmed_sql

SPACES = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"]
VALUES = ["", " ", "  ", "a", " a", "a ", " a ", "\ta\t", "a\n", "a b", "ab" * 20, " " + "ab" * 20 + " ",
          "名称", " 名称 ", "\u3000名称\u3000", "é", "\u200ba\u200b", "\ufeffa", None,
          *(s + "a" for s in SPACES), *("a" + s for s in SPACES), *SPACES, "".join(SPACES)]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v) for v in VALUES])
def test_trimmed_sql_equals_nullif_trim(value):
    con = duckdb.connect()
    got, want = con.execute(f"SELECT {trimmed_sql('$1')}, NULLIF(trim($1), '')", [value]).fetchone()
    assert got == want
