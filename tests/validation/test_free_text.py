"""Free text screened for identifiers: found, masked in the published value, flagged as a warning.

Declarative cases give a text and what must be published; two hypothesis tests build texts
from ordinary Chinese and English words, amounts and dates, with and without valid
identifiers embedded, and compare what the checking statement publishes with the text built
with each identifier replaced by the mask of its kind (the kind from the Python check-digit
reference, not from the SQL).
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contracts import load_contract
from pipelines.privacy.checkdigits import (
    CREDIT_ALPHABET,
    LUHN_DOUBLED,
    VIN_ALPHABET,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_luhn,
    is_valid_resident_id,
    is_valid_vin,
    luhn_valid_sql,
    resident_id_check_char,
    vin_check_char,
)
from pipelines.validation.screening import ASCII, FULL_WIDTH, KINDS, mask
from tests.conftest import claim_row, credit_code, policy_row, resident_id, vin
from tests.validation.helpers import run_rules

RID, CC, VIN = resident_id(), credit_code(), vin()
CARD = "6222021234567890128"

# text typed by the member -> text published (None: published unchanged, no warning)
CASES = {
    "plain chinese": ("追尾事故，车辆前部受损", None),
    "amounts and dates": ("2024-03-01 修理费 12,345.67 元，另付 500 元（20240301 结案）", None),
    "policy number and short numbers": ("保单 P2024000123 第 3 次出险，损失 88000 元", None),
    "resident id": (f"伤者身份证{RID}住院", "伤者身份证[resident-id]住院"),
    "resident id after an ASCII label": (f"ID{RID}", "ID[resident-id]"),
    "resident id with lower-case x": (resident_id("110105", "19491231", "002").lower() + "号",
                                      "[resident-id]号"),
    "resident id with wrong check char": (f"证件{RID[:-1]}{'0' if RID[-1] != '0' else '1'}", None),
    "eighteen digits without a real birth date": ("单号110105198013451234", None),
    "credit code": (f"投保单位{CC}。", "投保单位[credit-code]。"),
    "vin in lower case": (f"车架号:{VIN.lower()}", "车架号:[vin]"),
    "vin with wrong check digit": (f"车架号 {VIN[:8]}{'1' if VIN[8] != '1' else '2'}{VIN[9:]}", None),
    "mobile": ("联系电话13812345678，已报案", "联系电话[mobile]，已报案"),
    "mobile with country code": ("tel +8613812345678", "tel +[mobile]"),
    "mobile in groups": ("电话 138 1234 5678 / 139-8765-4321", "电话 [mobile] / [mobile]"),
    "full-width mobile": ("电话１３８１２３４５６７８", "电话[mobile]"),
    "twelve digits are not a mobile": ("编号138123456789", None),
    "landline": ("座机 010-62345678 转 8", "座机 [landline] 转 8"),
    "bank card": (f"赔款打入{CARD}账户", "赔款打入[bank-card]账户"),
    "bank card in groups": ("卡号 4111 1111 1111 1111", "卡号 [bank-card]"),
    "card number failing Luhn": ("卡号 4111111111111112", None),
    "email": ("mail zhang.san@example.com.cn please", "mail [email] please"),
    "several": (f"{RID}/{VIN}/13812345678", "[resident-id]/[vin]/[mobile]"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_free_text_case_published_as_expected(tmp_path, case):
    text, published = CASES[case]
    con, check, failures = run_rules(tmp_path, "claim", [claim_row(loss_description=text)],
                                     references={"CLM-D01": ["P0001"]})
    got = con.execute("SELECT loss_description, __warnings FROM checked").fetchone()
    assert got[0] == (text if published is None else published)
    assert failures[1] == (set() if published is None else {"CLM-PII-loss_description"})
    assert check.failed("CLM-PII-loss_description") == (0 if published is None else 1)


def test_free_text_screening_is_declared_by_the_contracts():
    for dataset in ("policy", "claim"):
        contract = load_contract(dataset)
        free = {c.name for c in contract.columns if c.free_text}
        screened = {r.column: r for r in contract.rules if r.kind == "identifiers_in_text"}
        assert free and set(screened) == free
        assert all(r.severity == "warn" and r.id == f"{contract.rule_prefix}-PII-{c}" for c, r in screened.items())


def test_free_text_raw_identifiers_never_leave_the_checking_statement(tmp_path):
    text = f"{RID} {CC} {VIN} 13812345678 {CARD} li.si@example.com"
    rows = [claim_row(loss_description=text), claim_row(claim_no="C0002", loss_description="=" + text),
            claim_row(claim_no="C0003", policy_no="PNONE", loss_description=text)]
    con, check, failures = run_rules(tmp_path, "claim", rows, references={"CLM-D01": ["P0001"]})
    assert check.failed("CLM-PII-loss_description") == 3 and failures[3] >= {"CLM-D01"}
    dump = " ".join(str(r) for r in con.execute("SELECT * FROM checked").fetchall())
    for raw in (RID, CC, VIN, "13812345678", CARD, "li.si@example.com"):
        assert raw not in dump
    reasons = con.execute("SELECT __reasons FROM checked WHERE __row = 3").fetchone()[0]
    assert ("CLM-PII-loss_description: loss_description holds what looks like: bank-card, credit-code, email, "
            "mobile, resident-id, vin (masked in the published value)") in reasons
    record = con.execute("SELECT __record FROM checked WHERE __row = 3").fetchone()[0]
    assert "[resident-id] [credit-code] [vin] [mobile] [bank-card] [email]" in record


def test_free_text_masks_never_lengthen_a_text():
    shortest = {"resident-id": 18, "credit-code": 18, "vin": 17, "mobile": 11, "landline": 11,
                "bank-card": 16, "email": 7}
    assert set(shortest) == set(KINDS)
    assert all(len(mask(k)) <= n for k, n in shortest.items())


@given(st.text("0123456789", min_size=1, max_size=19))     # card numbers have at most 19 digits
@settings(max_examples=200, deadline=None)
def test_luhn_sql_agrees_with_python(digits):
    con = _duck()
    assert con.execute(f"SELECT {luhn_valid_sql('$1::VARCHAR')}", [digits]).fetchone()[0] == is_valid_luhn(digits)


# -- generated texts ----------------------------------------------------------------------

def _duck() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        if is_valid_luhn(body + d):
            return body + d
    raise AssertionError(body)


_digit = st.sampled_from("0123456789")


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.lists(_digit, min_size=n, max_size=n).map("".join)


def _resident() -> st.SearchStrategy[str]:
    def make(region: str, born: dt.date, seq: str, lower: bool) -> str:
        first = f"{region}{born:%Y%m%d}{seq}"
        value = first + resident_id_check_char(first)
        return value.lower() if lower else value
    return st.builds(make, st.sampled_from(["110105", "310101", "440305", "510107", "650102"]),
                     st.dates(dt.date(1920, 1, 1), dt.date(2023, 12, 31)), _digits(3), st.booleans())


def _credit() -> st.SearchStrategy[str]:
    chars = st.sampled_from(CREDIT_ALPHABET)
    body = st.tuples(st.sampled_from("159"), st.sampled_from("123"), _digits(6),
                     st.lists(chars, min_size=9, max_size=9).map("".join)).map("".join)
    return body.map(lambda b: b + credit_code_check_char(b))


def _vin() -> st.SearchStrategy[str]:
    chars = st.sampled_from(VIN_ALPHABET)

    def make(head: str, rest: str, lower: bool) -> str:
        raw = head + "0" + rest
        value = raw[:8] + vin_check_char(raw) + raw[9:]
        return value.lower() if lower else value
    return st.builds(make, st.sampled_from(["LSVAU218", "LFV2A21K", "WVWZZZ3C", "JTDBR32E"]),
                     st.lists(chars, min_size=8, max_size=8).map("".join), st.booleans())


def _mobile() -> st.SearchStrategy[str]:
    number = st.tuples(st.just("1"), st.sampled_from("3456789"), _digits(9)).map("".join)
    return st.one_of(number, number.map(lambda n: "86" + n), number.map(lambda n: f"{n[:3]} {n[3:7]} {n[7:]}"),
                     number.map(lambda n: f"{n[:3]}-{n[3:7]}-{n[7:]}"))


def _landline() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["010", "021", "0755", "0571"]), st.sampled_from("23456789"),
                     st.sampled_from([6, 7]).flatmap(_digits)).map(lambda p: f"{p[0]}-{p[1]}{p[2]}")


def _card() -> st.SearchStrategy[str]:
    body = st.tuples(st.sampled_from(["62", "4", "51", "37"]), st.integers(14, 17)).flatmap(
        lambda p: _digits(p[1] - len(p[0]) + 1).map(lambda d: p[0] + d))
    cards = body.map(_luhn_complete)
    return st.one_of(cards, cards.filter(lambda c: len(c) == 16).map(lambda c: " ".join(re.findall("....", c))))


def _email() -> st.SearchStrategy[str]:
    word = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=8)
    return st.builds(lambda a, b, c: f"{a}.{b}@{c}.com", word, word, word)


IDENTIFIERS = st.one_of(_resident(), _credit(), _vin(), _mobile(), _landline(), _card(), _email())

_WORDS = ["追尾事故", "车辆", "前部受损", "暴雨", "水淹", "火灾", "盗抢", "医疗费用", "已结案", "修理",
          "rear-end collision", "water damage", "windscreen", "total loss", "repair shop", "claim",
          "the", "and", "of", "hail", "Beijing", "Zhang"]
_NUMBERS = st.one_of(
    st.integers(0, 999_999).map(lambda n: f"{n}元"), st.integers(0, 10**8).map(lambda c: f"{c / 100:,.2f}"),
    st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)).flatmap(
        lambda d: st.sampled_from([f"{d:%Y-%m-%d}", f"{d:%Y/%m/%d}", f"{d:%Y%m%d}", f"{d:%Y年%m月%d日}"])),
    st.integers(0, 100).map(lambda n: f"{n}%"), st.integers(1, 99).map(lambda n: f"{n}辆"),
    st.sampled_from(["12:30", "P2024000123", "No.5", "3.5km"]))
_SEPARATORS = ["：", "，", "。", "（", "）", ": ", "、", "; ", " / ", "号", "电话", "是"]
FILLER = st.lists(st.one_of(st.sampled_from(_WORDS), _NUMBERS), min_size=0, max_size=6).flatmap(
    lambda items: st.lists(st.sampled_from([" ", "，", "、", "。"]), min_size=len(items), max_size=len(items)).map(
        lambda seps: "".join(i + s for i, s in zip(items, seps, strict=True)).strip()))


def _kind(value: str) -> str:
    """The Python reference for the kind of identifier a generated value is (screening's order)."""
    u = value.upper()
    if len(u) == 18 and is_valid_resident_id(u) and 1900 <= int(u[6:10]) <= 2099:
        return "resident-id"
    if len(u) == 18 and is_valid_credit_code(u):
        return "credit-code"
    if len(u) == 17 and re.search("[A-Z]", u) and is_valid_vin(u):
        return "vin"
    if re.fullmatch(r"(86)?1[3-9]\d{9}|1[3-9]\d[ -]\d{4}[ -]\d{4}", value):
        return "mobile"
    if re.fullmatch(r"0[1-9]\d{1,2}-[2-9]\d{6,7}", value):
        return "landline"
    if is_valid_luhn(value.replace(" ", "")):
        return "bank-card"
    assert "@" in value, value
    return "email"


@st.composite
def texts_with_identifiers(draw) -> tuple[str, str]:
    """A text with 1-3 valid identifiers between filler, and the text as it must be published."""
    typed, published = [], []
    for _ in range(draw(st.integers(1, 3))):
        before, value = draw(FILLER), draw(IDENTIFIERS)
        left, right = draw(st.sampled_from(_SEPARATORS)), draw(st.sampled_from(_SEPARATORS))
        typed += [before, left, value, right]
        published += [before, left, mask(_kind(value)), right]
    tail = draw(FILLER)
    return ("".join(typed + [tail]).strip(),
            "".join(published + [tail]).translate(str.maketrans(FULL_WIDTH, ASCII)).strip())


HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _published(tmp_path, texts: list[str]) -> list[tuple[str, list[str]]]:
    rows = [claim_row(claim_no=f"C{i:04d}", loss_description=t) for i, t in enumerate(texts)]
    folder = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    con, _, _ = run_rules(folder, "claim", rows, references={"CLM-D01": ["P0001"]})
    return con.execute("SELECT loss_description, __warnings FROM checked ORDER BY __row").fetchall()


@given(st.lists(texts_with_identifiers(), min_size=1, max_size=8))
@HYPOTHESIS
def test_free_text_embedded_identifiers_are_always_masked(tmp_path, cases):
    got = _published(tmp_path, [typed for typed, _ in cases])
    for (typed, expected), (published, warnings) in zip(cases, got, strict=True):
        assert published == expected, typed
        assert "CLM-PII-loss_description" in warnings


@given(st.lists(FILLER.filter(bool), min_size=1, max_size=8))
@HYPOTHESIS
def test_free_text_without_identifiers_is_left_unchanged(tmp_path, texts):
    got = _published(tmp_path, texts)
    for typed, (published, warnings) in zip(texts, got, strict=True):
        assert published == typed
        assert "CLM-PII-loss_description" not in warnings


def test_free_text_policy_product_name_is_screened_too(tmp_path):
    con, _, failures = run_rules(tmp_path, "policy", [policy_row(product_name=f"团险 {CARD}")])
    assert con.execute("SELECT product_name FROM checked").fetchone()[0] == "团险 [bank-card]"
    assert failures[1] == {"POL-PII-product_name"}


def test_luhn_reference_values():
    assert LUHN_DOUBLED == "".join(str(sum(map(int, str(2 * d)))) for d in range(10))
    assert [is_valid_luhn(x) for x in ("79927398713", "4111111111111111", "4111111111111112", "12a")] == [
        True, True, False, False]
    assert credit_code() == CC and is_valid_credit_code(CC)
