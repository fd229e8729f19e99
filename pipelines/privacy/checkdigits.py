"""Check characters of Chinese identifiers and VINs, in Python and as DuckDB SQL.

The Python functions are the reference (the generator and the tests use them); the ``*_sql``
functions build the same checks as DuckDB expressions so that validation runs inside the
database on millions of rows. A differential test keeps the two in agreement.

Formulas (DOMAIN.md section 4):

- resident identity number (GB 11643-1999): weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 on
  positions 1-17, check character ``"10X98765432"[S mod 11]``;
- unified social credit code (GB 32100-2015): alphabet ``0-9 A-H J-N P-R T U W-Y``, weights
  1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28, check value ``(31 - S mod 31) mod 31``;
- VIN (ISO 3779): letters transliterated, weights 8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2, position 9
  is ``S mod 11`` with 10 written as X.
"""

from __future__ import annotations

import datetime as dt

RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_CHECK = "10X98765432"

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
VIN_VALUES = {**{str(d): d for d in range(10)},
              **dict(zip("ABCDEFGH", range(1, 9), strict=True)), **dict(zip("JKLMN", range(1, 6), strict=True)),
              "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def normalise(value: str) -> str:
    """How an identifier is compared and hashed: trimmed and upper case."""
    return value.strip().upper()


# -- Python reference ------------------------------------------------------------------

def resident_id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_WEIGHTS, strict=True))
    return RESIDENT_CHECK[total % 11]


def is_valid_resident_id(value: str) -> bool:
    """18 characters, 17 digits and the right check character, with a real birth date."""
    v = normalise(value)
    if len(v) != 18 or not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        return False
    if not v.isascii():
        return False
    if resident_id_birth_date(v) is None:
        return False
    return resident_id_check_char(v[:17]) == v[17]


def resident_id_birth_date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(normalise(value)[6:14], "%Y%m%d").date()
    except ValueError:
        return None


def resident_id_gender(value: str) -> str:
    """M when the sequence number (positions 15-17) is odd, F when even."""
    return "M" if int(normalise(value)[16]) % 2 else "F"


def credit_code_check_char(first17: str) -> str:
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(value: str) -> bool:
    v = normalise(value)
    if len(v) != 18 or any(c not in CREDIT_ALPHABET for c in v) or not v[2:8].isdigit():
        return False
    return credit_code_check_char(v[:17]) == v[17]


def vin_check_char(vin: str) -> str:
    total = sum(VIN_VALUES[c] * w for c, w in zip(vin, VIN_WEIGHTS, strict=True))
    r = total % 11
    return "X" if r == 10 else str(r)


def is_valid_vin(value: str) -> bool:
    v = normalise(value)
    if len(v) != 17 or any(c not in VIN_VALUES for c in v):
        return False
    return vin_check_char(v) == v[8]


PYTHON_CHECKS = {
    "resident_id": is_valid_resident_id,
    "credit_code": is_valid_credit_code,
    "vin": is_valid_vin,
    "resident_id_or_credit_code": lambda v: is_valid_resident_id(v) or is_valid_credit_code(v),
}


# -- DuckDB SQL ------------------------------------------------------------------------

def _chars(expr: str, n: int) -> list[str]:
    return [f"substr({expr}, {i}, 1)" for i in range(1, n + 1)]


def resident_id_valid_sql(expr: str) -> str:
    """SQL that is true when ``expr`` (already normalised) is a valid resident identity number."""
    digits = _chars(expr, 17)
    total = " + ".join(f"{w} * TRY_CAST({d} AS INTEGER)" for d, w in zip(digits, RESIDENT_WEIGHTS, strict=True))
    return (
        f"coalesce(regexp_full_match({expr}, '[0-9]{{17}}[0-9X]') "
        f"AND try_strptime(substr({expr}, 7, 8), '%Y%m%d') IS NOT NULL "
        f"AND substr('{RESIDENT_CHECK}', (({total}) % 11) + 1, 1) = substr({expr}, 18, 1), false)"
    )


def resident_id_birth_date_sql(expr: str) -> str:
    return f"CAST(try_strptime(substr({expr}, 7, 8), '%Y%m%d') AS DATE)"


def resident_id_gender_sql(expr: str) -> str:
    return f"CASE WHEN TRY_CAST(substr({expr}, 17, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'F' END"


def credit_code_valid_sql(expr: str) -> str:
    values = [f"(strpos('{CREDIT_ALPHABET}', {c}) - 1)" for c in _chars(expr, 17)]
    total = " + ".join(f"{w} * {v}" for v, w in zip(values, CREDIT_WEIGHTS, strict=True))
    return (
        f"coalesce(regexp_full_match({expr}, '[0-9A-HJ-NP-RTUW-Y]{{2}}[0-9]{{6}}[0-9A-HJ-NP-RTUW-Y]{{10}}') "
        f"AND substr('{CREDIT_ALPHABET}', ((31 - ({total}) % 31) % 31) + 1, 1) = substr({expr}, 18, 1), false)"
    )


def vin_valid_sql(expr: str) -> str:
    table = "[" + ", ".join(str(VIN_VALUES[c]) for c in VIN_ALPHABET) + "]"
    values = [f"{table}[strpos('{VIN_ALPHABET}', {c})]" for c in _chars(expr, 17)]
    total = " + ".join(f"{w} * {v}" for v, w in zip(values, VIN_WEIGHTS, strict=True) if w)
    return (
        f"coalesce(regexp_full_match({expr}, '[0-9A-HJ-NPR-Z]{{17}}') "
        f"AND (CASE WHEN ({total}) % 11 = 10 THEN 'X' ELSE CAST(({total}) % 11 AS VARCHAR) END)"
        f" = substr({expr}, 9, 1), false)"
    )


CHECK_DIGIT_SCHEMES_SQL = ("resident_id", "credit_code", "vin")


def valid_sql(scheme: str, expr: str) -> str:
    if scheme == "resident_id":
        return resident_id_valid_sql(expr)
    if scheme == "credit_code":
        return credit_code_valid_sql(expr)
    if scheme == "vin":
        return vin_valid_sql(expr)
    if scheme == "resident_id_or_credit_code":
        return f"({resident_id_valid_sql(expr)} OR {credit_code_valid_sql(expr)})"
    raise ValueError(f"unknown check-digit scheme {scheme!r}")


# -- payment cards (ISO/IEC 7812 Luhn check) -------------------------------------------

LUHN_DOUBLED = "0246813579"     # digit d doubled, with the digits of 2d added: "0246813579"[d]


def is_valid_luhn(value: str) -> bool:
    """A digit string whose last digit is its Luhn check digit (payment card numbers)."""
    if not value.isascii() or not value.isdigit():
        return False
    total = sum(int(LUHN_DOUBLED[int(d)]) if i % 2 else int(d) for i, d in enumerate(reversed(value)))
    return total % 10 == 0


def luhn_valid_sql(expr: str, max_digits: int = 19) -> str:
    """SQL that is true when ``expr`` is a string of at most ``max_digits`` digits passing the Luhn check.

    Unrolled over the positions (no lambda: DuckDB runs a list lambda element by element).
    """
    def digit(i: int) -> str:         # the i-th digit from the right (0-based), 0 beyond the string
        return f"coalesce(ascii(substr({expr}, length({expr}) - {i}, 1)) - 48, 0)"
    terms = [digit(i) if i % 2 == 0 else f"(ascii(substr('{LUHN_DOUBLED}', {digit(i)} + 1, 1)) - 48)"
             for i in range(max_digits)]
    guarded = " + ".join(f"CASE WHEN length({expr}) > {i} THEN {t} ELSE 0 END" for i, t in enumerate(terms))
    return (f"coalesce(regexp_full_match({expr}, '[0-9]{{1,{max_digits}}}') "
            f"AND ({guarded}) % 10 = 0, false)")
