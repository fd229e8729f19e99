"""The catalogue of defects, and which rules of the contract each one breaks.

Rule ids are looked up in the contract by what a rule checks (kind, column, parameters), so
the truth follows the contract. Each defect is designed so that it breaks exactly the rules
it names and nothing else: e.g. a corrupted resident id breaks its check digit rule but not
the birth-date agreement rule (that rule only looks at valid ids), a non-existent date breaks
the date's type rule only: not its required rule (the value is there, only malformed) nor any
comparison (NULL never fails a comparison).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from pipelines.contracts import DatasetContract
from pipelines.generate.defects import DefectContext, DefectKind, Truth, impossible_date
from pipelines.generate.identities import mobile, vin
from pipelines.generate.texts import FORMULAS
from pipelines.privacy.checkdigits import (
    CREDIT_ALPHABET,
    is_valid_credit_code,
    is_valid_resident_id,
    is_valid_vin,
)

BAD_REGIONS = ("999999", "990000", "000000")
BAD_CHANNELS = ("TELE", "WECHAT")
BAD_PHONES = ("1381234567", "12812345678", "021-6234 5678", "138-1234-5678")
BAD_CAUSES = ("ACCIDENT", "碰撞", "UNKNOWN")
BAD_GENDERS = ("U", "男", "1")


def rule_id(contract: DatasetContract, kind: str, column: str, **params: object) -> str:
    """The id of the one rule of ``kind`` on ``column`` whose parameters match ``params``."""
    found = [r.id for r in contract.rules if r.kind == kind and r.column == column
             and all(r.params.get(k) == v for k, v in params.items())]
    if len(found) != 1:
        raise LookupError(f"{contract.dataset}: expected one {kind} rule on {column} {params}, found {found}")
    return found[0]


def _truth(ctx: DefectContext, defect: str, *rules: tuple) -> Truth:
    ids = frozenset(rule_id(ctx.contract, kind, column, **(params[0] if params else {}))
                    for kind, column, *params in rules)
    return Truth(ids, defect)


def _not_in(ctx: DefectContext, column: str, candidates: tuple[str, ...]) -> str:
    codes = set(ctx.contract.codes_of(column))
    return ctx.r.choice([c for c in candidates if c not in codes])


# -- defects common to both datasets ------------------------------------------------------

def _bad_code(column: str, candidates: tuple[str, ...], warning: bool = False,
              weight: float = 1.0) -> DefectKind:
    def apply(row: dict, ctx: DefectContext) -> Truth:
        row[column] = _not_in(ctx, column, candidates)
        return _truth(ctx, f"bad_code:{column}", ("codes", column))
    return DefectKind(f"bad_code:{column}", weight, lambda row, ctx: row.get(column) is not None,
                      apply, warning=warning)


def _bad_coverage(row: dict, ctx: DefectContext) -> Truth:
    line = row["line_of_business"]
    row["coverage_code"] = _not_in(ctx, "coverage_code", (f"{line}-GLASS", f"{line}-XX", "GLASS"))
    return _truth(ctx, "bad_code:coverage_code", ("codes", "coverage_code"))


def _required_columns(row: dict, ctx: DefectContext) -> list[str]:
    out = []
    for c in ctx.contract.columns:
        needed = c.required or (c.required_when and all(
            str(row.get(k)) in values for k, values in c.required_when.items()))
        if needed and row.get(c.name) is not None and c.name != "valuation_date":
            out.append(c.name)
    return out


def _missing(row: dict, ctx: DefectContext) -> Truth:
    column = ctx.r.choice(_required_columns(row, ctx))
    row[column] = None
    return _truth(ctx, f"missing_required:{column}", ("required", column))


def _date_columns(row: dict, ctx: DefectContext) -> list[str]:
    return [c.name for c in ctx.contract.columns if c.base_type == "date" and c.required
            and c.name != "valuation_date" and isinstance(row.get(c.name), dt.date)]


def _nonexistent_date(row: dict, ctx: DefectContext) -> Truth:
    column = ctx.r.choice(_date_columns(row, ctx))
    row[column] = impossible_date(row[column])
    return _truth(ctx, f"nonexistent_date:{column}", ("type", column))


def _duplicate(row: dict, ctx: DefectContext) -> Truth:
    return _truth(ctx, "duplicate_key", ("unique", ctx.contract.key[0]))


def _formula(column: str) -> Callable[[dict, DefectContext], Truth]:
    def apply(row: dict, ctx: DefectContext) -> Truth:
        row[column] = ctx.r.choice(FORMULAS)
        return _truth(ctx, f"formula:{column}", ("free_text", column))
    return apply


IDENTIFIER_LABELS = (("身份证号", " ID "), ("联系电话", " tel "), ("车架号", " VIN "))


def _identifier_in_text(column: str, own: str) -> Callable[[dict, DefectContext], Truth]:
    """An identifier typed into free text: the row's own ``own`` identifier, a mobile or a VIN."""
    def apply(row: dict, ctx: DefectContext) -> Truth:
        choice = ctx.r.randrange(3)
        value = (row.get(own) or mobile(ctx.r)) if choice == 0 else mobile(ctx.r) if choice == 1 \
            else vin(ctx.r, ctx.r.randint(2010, 2024))
        label = IDENTIFIER_LABELS[choice][ctx.r.random() < 0.3]
        added = f"，{label}{value}" if label[0] != " " else f"{label}{value}"
        room = ctx.contract.column(column).max_length - len(added)
        text = (row.get(column) or "")[:room]
        row[column] = (text + added).strip(" ，") if text else added.strip(" ，")
        return _truth(ctx, f"identifier_in_text:{column}", ("identifiers_in_text", column))
    return apply


def common_kinds(free_text: str, own_identifier: str) -> list[DefectKind]:
    return [
        _bad_code("region_code", BAD_REGIONS, weight=1.5),
        DefectKind("bad_code:coverage_code", 1.0, lambda row, ctx: bool(row.get("line_of_business"))
                   and row.get("coverage_code") is not None, _bad_coverage),
        DefectKind("missing_required", 3.0, lambda row, ctx: bool(_required_columns(row, ctx)), _missing),
        DefectKind("duplicate_key", 1.5, lambda row, ctx: True, _duplicate, duplicate=True),
        DefectKind("nonexistent_date", 1.5, lambda row, ctx: ctx.file_format != "parquet"
                   and bool(_date_columns(row, ctx)), _nonexistent_date),
        DefectKind(f"formula:{free_text}", 1.0, lambda row, ctx: True, _formula(free_text)),
        DefectKind(f"identifier_in_text:{free_text}", 0.5, lambda row, ctx: True,
                   _identifier_in_text(free_text, own_identifier), warning=True),
    ]


# -- identifiers ----------------------------------------------------------------------------

def wrong_resident_id(number: str, ctx: DefectContext) -> str:
    """The number with a wrong check character (valid neither as resident id nor credit code)."""
    if ctx.r.random() < 0.25:
        return number[:6] + number[8:17]          # an old 15-digit number
    choices = [number[:17] + c for c in "0123456789X"]
    ctx.r.shuffle(choices)
    return next(c for c in choices if not is_valid_resident_id(c) and not is_valid_credit_code(c))


def wrong_credit_code(code: str, ctx: DefectContext) -> str:
    if ctx.r.random() < 0.25:
        return code[8:16] + "-" + code[16]        # the old organisation code
    choices = [code[:17] + c for c in CREDIT_ALPHABET]
    ctx.r.shuffle(choices)
    return next(c for c in choices if not is_valid_credit_code(c) and not is_valid_resident_id(c))


def wrong_vin(vin: str, ctx: DefectContext) -> str:
    if "0" in vin[9:] and ctx.r.random() < 0.3:
        i = vin.index("0", 9)
        return vin[:i] + "O" + vin[i + 1:]        # the letter O typed for a zero
    choices = [vin[:8] + c + vin[9:] for c in "0123456789X"]
    ctx.r.shuffle(choices)
    return next(c for c in choices if not is_valid_vin(c))


def _is_person(row: dict) -> bool:
    return row.get("insured_type") == "P" and is_valid_resident_id(row.get("insured_id") or "")


def _bad_person_id(row: dict, ctx: DefectContext) -> Truth:
    row["insured_id"] = wrong_resident_id(row["insured_id"], ctx)
    return _truth(ctx, "bad_check_digit:insured_id:person",
                  ("check_digit", "insured_id", {"scheme": "resident_id"}))


def _bad_org_id(row: dict, ctx: DefectContext) -> Truth:
    row["insured_id"] = wrong_credit_code(row["insured_id"], ctx)
    return _truth(ctx, "bad_check_digit:insured_id:organisation",
                  ("check_digit", "insured_id", {"scheme": "credit_code"}))


def _bad_vin(row: dict, ctx: DefectContext) -> Truth:
    row["vin"] = wrong_vin(row["vin"], ctx)
    return _truth(ctx, "bad_check_digit:vin", ("check_digit", "vin"))


def _disagreeing_person(row: dict, ctx: DefectContext) -> Truth:
    if ctx.r.random() < 0.5:
        row["gender"] = "F" if row["gender"] == "M" else "M"
        return _truth(ctx, "disagrees_with_id:gender", ("resident_id_agrees", "insured_id"))
    shift = ctx.r.choice((-1, 1)) * ctx.r.randint(1, 4000)
    row["birth_date"] = row["birth_date"] + dt.timedelta(days=shift)
    return _truth(ctx, "disagrees_with_id:birth_date", ("resident_id_agrees", "insured_id"))


def _bad_gender(row: dict, ctx: DefectContext) -> Truth:
    row["gender"] = _not_in(ctx, "gender", BAD_GENDERS)
    # one message per real problem: a gender outside the code list is not also "disagrees with the id"
    return _truth(ctx, "bad_code:gender", ("codes", "gender"))


def _bad_phone(row: dict, ctx: DefectContext) -> Truth:
    row["phone"] = ctx.r.choice(BAD_PHONES)
    return _truth(ctx, "malformed:phone", ("pattern", "phone"))


def _expiry_before_effective(row: dict, ctx: DefectContext) -> Truth:
    row["expiry_date"] = row["effective_date"] - dt.timedelta(days=ctx.r.randint(1, 30))
    return _truth(ctx, "impossible_dates:expiry_before_effective",
                  ("compare", "expiry_date", {"right": "effective_date"}))


def policy_kinds() -> list[DefectKind]:
    motor = lambda row, ctx: row.get("vin") is not None        # noqa: E731
    person = lambda row, ctx: _is_person(row) and row.get("birth_date") is not None \
        and row.get("gender") is not None                      # noqa: E731
    return [
        *common_kinds("product_name", "insured_id"),
        _bad_code("channel", BAD_CHANNELS, weight=0.5),
        DefectKind("bad_check_digit:person", 1.5, lambda row, ctx: _is_person(row), _bad_person_id),
        DefectKind("bad_check_digit:organisation", 1.0,
                   lambda row, ctx: row.get("insured_type") == "O" and row.get("insured_id") is not None,
                   _bad_org_id),
        DefectKind("bad_check_digit:vin", 1.5, motor, _bad_vin),
        DefectKind("disagrees_with_id", 1.0, person, _disagreeing_person),
        DefectKind("bad_code:gender", 0.5, person, _bad_gender),
        DefectKind("impossible_dates", 1.0, lambda row, ctx: isinstance(row.get("effective_date"), dt.date),
                   _expiry_before_effective),
        DefectKind("malformed:phone", 2.0, lambda row, ctx: row.get("insured_type") == "P",
                   _bad_phone, warning=True),
    ]


# -- claims ---------------------------------------------------------------------------------

def _bad_claimant(row: dict, ctx: DefectContext) -> Truth:
    value = row["claimant_id"]
    row["claimant_id"] = (wrong_resident_id(value, ctx) if is_valid_resident_id(value)
                          else wrong_credit_code(value, ctx))
    return _truth(ctx, "bad_check_digit:claimant_id", ("check_digit", "claimant_id"))


def _orphan(row: dict, ctx: DefectContext) -> Truth:
    row["policy_no"] = ctx.orphan_policy_no(row["accident_date"], row["region_code"])
    return _truth(ctx, "orphan_claim", ("exists_in", "policy_no"))


def _report_before_accident(row: dict, ctx: DefectContext) -> Truth:
    row["report_date"] = row["accident_date"] - dt.timedelta(days=ctx.r.randint(1, 30))
    return _truth(ctx, "impossible_dates:report_before_accident",
                  ("compare", "report_date", {"right": "accident_date"}))


def _negative_paid(row: dict, ctx: DefectContext) -> Truth:
    paid = row["paid_to_date"]
    row["paid_to_date"] = -paid if paid > 0 else -Decimal(ctx.r.randint(10_000, 500_000)).scaleb(-2)
    return _truth(ctx, "negative_paid", ("range", "paid_to_date"))


def _closed_with_reserve(row: dict, ctx: DefectContext) -> Truth:
    row["case_reserve"] = Decimal(ctx.r.randint(10_000, 2_000_000)).scaleb(-2)
    return _truth(ctx, "closed_with_reserve", ("range", "case_reserve", {"max": 0}))


def claim_kinds() -> list[DefectKind]:
    dated = lambda row, ctx: isinstance(row.get("accident_date"), dt.date)   # noqa: E731
    return [
        *common_kinds("loss_description", "claimant_id"),
        DefectKind("bad_check_digit:claimant_id", 2.0, lambda row, ctx: row.get("claimant_id") is not None,
                   _bad_claimant),
        DefectKind("orphan_claim", 2.0, lambda row, ctx: dated(row, ctx) and row.get("region_code") is not None,
                   _orphan),
        DefectKind("impossible_dates", 1.0, lambda row, ctx: dated(row, ctx)
                   and isinstance(row.get("report_date"), dt.date), _report_before_accident),
        DefectKind("negative_paid", 2.0, lambda row, ctx: row.get("paid_to_date") is not None, _negative_paid,
                   warning=True),   # a warning in net data (CLM-X06): the row is kept and flagged
        DefectKind("closed_with_reserve", 1.5, lambda row, ctx: row.get("claim_status") == "CLOSED",
                   _closed_with_reserve, warning=True),
        _bad_code("cause_code", BAD_CAUSES, warning=True, weight=0.7),
    ]
