"""Free-text columns screened for personal identifiers, as DuckDB SQL.

A member may type an identifier into a free-text column (``loss_description``: "claimant
110105198002151234, tel 13812345678"). Every column the contract declares ``free_text: true``
gets a warning rule of kind ``identifiers_in_text`` (``<prefix>-PII-<column>``): the checking
statement finds the identifiers in the raw text, inside the staging database, and publishes the
text with each one replaced by a mask naming its kind (``[resident-id]``), so the raw value
never reaches the lake, the quarantine or a report.

What counts as an identifier (``KINDS``, in the order a candidate is tried):

- ``resident-id``: 18 characters, a valid GB 11643 check character and a real birth date
  (year 1900-2099) in positions 7-14;
- ``credit-code``: 18 characters, a valid GB 32100 check character;
- ``vin``: 17 characters with at least one letter and a valid ISO 3779 check digit;
- ``mobile``: ``1[3-9]`` and nine digits, optionally after ``86``, or written 3-4-4 with
  spaces or hyphens;
- ``landline``: an area code and a local number joined by a hyphen (``010-62345678``);
- ``bank-card``: 16-19 digits starting with 3-6 and passing the Luhn check, contiguous or in
  groups of four;
- ``email``: ``name@domain.tld`` (a name of two characters or more).

Candidates are maximal runs of letters and digits, of digits (with a trailing X), of digit
groups joined by single spaces or hyphens, and e-mail shapes, so an identifier is found where
it stands next to Chinese text, punctuation or a label ("ID110105..."), never inside a longer
number. Full-width digits and letters count as their ASCII forms (a text with a hit is
published in that normalised form). Landline numbers without a hyphen are not screened: a
bare 10-12 digit number is as likely an amount or a reference. Each mask is shorter than the
shortest value of its kind, so masking never makes a text longer.
"""

from __future__ import annotations

from pipelines.privacy import checkdigits

KINDS = ("resident-id", "credit-code", "vin", "mobile", "landline", "bank-card", "email")
EMAIL = r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
RUNS = (r"[0-9A-Za-z]+", r"[0-9]+[Xx]?", r"[0-9]+([ -][0-9]+)+", EMAIL)
FULL_WIDTH = "".join(chr(0xFF10 + i) for i in range(10)) + "".join(chr(0xFF21 + i) for i in range(26)) + \
    "".join(chr(0xFF41 + i) for i in range(26)) + "\uff20\uff0d\u3000"
ASCII = "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz" + "@- "
WIDE = "[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff20\uff0d\u3000]"
# Cheap test that a text may hold a candidate at all (most free text holds none): the regular
# expressions and checks run only on texts that pass it; full-width text is normalised first.
MAYBE = r"[0-9A-Za-z]{17}|[0-9]{11}|-[0-9]{7}|[0-9][ -][0-9]{4}[ -][0-9]{4}|@|" + WIDE


def mask(kind: str) -> str:
    return f"[{kind}]"


def normalised_sql(expr: str) -> str:
    """``expr`` with full-width digits, letters, @, hyphen and space as ASCII (``translate`` is
    slow on long Unicode text: only texts holding such characters go through it)."""
    return f"CASE WHEN regexp_matches({expr}, '{WIDE}') THEN translate({expr}, '{FULL_WIDTH}', '{ASCII}') ELSE {expr} END"


def kind_sql(c: str) -> str:
    """The kind of identifier candidate ``c`` is, or NULL when it is none.

    The outer CASE sorts candidates by shape with cheap tests; the check-digit arithmetic runs
    only in the inner CASEs, on the few candidates of the right shape.
    """
    u = f"upper({c})"
    digits = f"regexp_replace({c}, '[ -]', '', 'g')"
    card = checkdigits.luhn_valid_sql(digits)
    resident = (f"{checkdigits.resident_id_valid_sql(u)} AND "
                f"TRY_CAST(substr({c}, 7, 4) AS INTEGER) BETWEEN 1900 AND 2099")
    return (
        f"CASE WHEN length({c}) = 18 AND regexp_full_match({u}, '[0-9]{{17}}[0-9X]') THEN "
        f"CASE WHEN {resident} THEN 'resident-id' WHEN {checkdigits.credit_code_valid_sql(u)} THEN 'credit-code' "
        f"WHEN regexp_full_match({c}, '[3-6][0-9]{{17}}') AND {card} THEN 'bank-card' END "
        f"WHEN length({c}) = 18 AND regexp_full_match({u}, '[0-9A-HJ-NP-RTUW-Y]{{18}}') THEN "
        f"CASE WHEN {checkdigits.credit_code_valid_sql(u)} THEN 'credit-code' END "
        f"WHEN length({c}) = 17 AND regexp_full_match({u}, '[0-9A-HJ-NPR-Z]{{17}}') AND regexp_matches({u}, '[A-Z]') "
        f"THEN CASE WHEN {checkdigits.vin_valid_sql(u)} THEN 'vin' END "
        f"WHEN regexp_full_match({c}, '(86)?1[3-9][0-9]{{9}}|1[3-9][0-9][ -][0-9]{{4}}[ -][0-9]{{4}}') THEN 'mobile' "
        f"WHEN regexp_full_match({c}, '0[1-9][0-9]{{1,2}}-[2-9][0-9]{{6,7}}') THEN 'landline' "
        f"WHEN regexp_full_match({c}, '[3-6][0-9]{{15,18}}|[3-6][0-9]{{3}}([ -][0-9]{{4}}){{3}}([ -][0-9]{{1,3}})?') "
        f"THEN CASE WHEN {card} THEN 'bank-card' END "
        f"WHEN strpos({c}, '@') > 0 THEN 'email' END"
    )


def hits_query(column: str, table: str = "raw") -> str:
    """Per row of ``table`` whose text ``column`` holds identifiers: ``__row`` and ``hits``, the list
    of ``<order>|<kind>|<value>``, longest value first.

    The values are raw: the list stays inside the checking statement and is used only to mask
    the text and to flag the row. Candidates are unnested and checked as plain rows (lambdas over
    lists cost about a millisecond per element in DuckDB), and only in texts passing ``MAYBE``.
    """
    n = normalised_sql(column)
    runs = " || ".join(f"regexp_extract_all({n}, '{r}')" for r in RUNS)
    return (f"SELECT __row, list(h ORDER BY h) AS hits FROM ("
            f"SELECT __row, lpad(CAST(9999 - length(c) AS VARCHAR), 4, '0') || '|' || kind || '|' || c AS h FROM ("
            f"SELECT __row, c, {kind_sql('c')} AS kind FROM ("
            f"SELECT __row, unnest(list_distinct({runs})) AS c FROM {table} "
            f"WHERE {column} IS NOT NULL AND regexp_matches({column}, '{MAYBE}')) "
            f"WHERE length(c) >= 7 AND (regexp_matches(c, '[0-9]') OR strpos(c, '@') > 0)) "
            f"WHERE kind IS NOT NULL) GROUP BY __row")


def masked_sql(expr: str, hits: str) -> str:
    """Text ``expr`` with every identifier of ``hits`` (from ``hits_sql``) replaced by its mask."""
    return (f"CASE WHEN coalesce(len({hits}), 0) = 0 THEN {expr} ELSE list_reduce(list_prepend({normalised_sql(expr)}, {hits}), "
            f"(acc, h) -> replace(acc, split_part(h, '|', 3), '[' || split_part(h, '|', 2) || ']')) END")


def kinds_sql(hits: str) -> str:
    """The kinds of identifier found, as text for a reason (``mobile, resident-id``)."""
    return f"array_to_string(list_sort(list_distinct(list_transform({hits}, h -> split_part(h, '|', 2)))), ', ')"
