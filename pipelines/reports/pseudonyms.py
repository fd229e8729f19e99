"""What a member receives shows identifiers only as that member's own pseudonyms.

The lake keeps platform tokens (``k1:<hex>``): the same person has the same token at every
member, which is what lets the platform link records across companies. Nothing a member
receives may carry them, or two members could join their customers by comparing files. A
member's product replaces each token with the member's pseudonym (``m:<hex>``,
``products.catalog.pseudonym_sql``); the member's quarantine downloads, the samples in its
submission reports and the samples in its GX Data Docs use that same function, so the same row
shows the same pseudonym in the report, the download and the product, and a different one at
another member. The regulator's views (the lake, the regulator product) keep platform tokens.
"""

from __future__ import annotations

import duckdb

from pipelines.products.catalog import TOKEN_PATTERN, pseudonym_sql


def member_scoped_sql(member: str, text: str) -> str:
    """SQL for text ``text`` with every platform token in it replaced by ``member``'s pseudonym."""
    return (f"CASE WHEN {text} IS NOT NULL THEN list_reduce(list_prepend({text}, "
            f"regexp_extract_all({text}, '{TOKEN_PATTERN}')), "
            f"(acc, t) -> replace(acc, t, {pseudonym_sql(member, 't')})) END")


def member_scoped_text(con: duckdb.DuckDBPyConnection, member: str, text: str | None) -> str | None:
    """``text`` with every platform token replaced by ``member``'s pseudonym (computed in ``con``)."""
    return con.execute(f"SELECT {member_scoped_sql(member, 'v')} FROM (SELECT ?::VARCHAR AS v)",
                       [text]).fetchone()[0]


def scope_to_members(con: duckdb.DuckDBPyConnection, table: str, column: str) -> None:
    """Rewrite text ``column`` of temporary ``table`` (which has ``member_id``) row by row to the
    pseudonyms of the row's member."""
    members = [m for (m,) in con.execute(f"SELECT DISTINCT member_id FROM {table} ORDER BY 1").fetchall()]
    for member in members:
        con.execute(f"UPDATE {table} SET {column} = {member_scoped_sql(member, column)} WHERE member_id = ?",
                    [member])
