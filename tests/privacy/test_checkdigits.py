import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.privacy import checkdigits as cd

KNOWN = [
    ("resident_id", "11010519491231002X", True),   # GB 11643 worked example
    ("resident_id", "110105194912310021", False),
    ("resident_id", "11010519491331002X", False),  # month 13, check char irrelevant
    ("credit_code", "91350100M000100Y43", True),   # GB 32100 worked example
    ("credit_code", "91350100M000100Y44", False),
    ("credit_code", "9135010OM000100Y43", False),  # O is not in the alphabet
    ("vin", "1M8GDM9AXKP042788", True),            # ISO 3779 worked example (check digit X)
    ("vin", "1M8GDM9A1KP042788", False),
    ("vin", "1M8GDM9AXKP04278", False),            # 16 characters
    ("vin", "IM8GDM9AXKP042788", False),           # I is never used
]


@pytest.mark.parametrize("scheme,value,valid", KNOWN, ids=[f"{s}-{v}" for s, v, _ in KNOWN])
def test_check_python_agrees_with_known_examples(scheme, value, valid):
    assert cd.PYTHON_CHECKS[scheme](value) is valid


@pytest.mark.parametrize("scheme,value,valid", KNOWN, ids=[f"{s}-{v}" for s, v, _ in KNOWN])
def test_check_sql_agrees_with_known_examples(scheme, value, valid):
    con = duckdb.connect()
    assert con.execute(f"SELECT {cd.valid_sql(scheme, '$v')}", {"v": value}).fetchone()[0] is valid


def test_resident_id_embedded_birth_date_and_gender():
    assert str(cd.resident_id_birth_date("11010519491231002X")) == "1949-12-31"
    assert cd.resident_id_gender("11010519491231002X") == "F"   # sequence 002 is even
    assert cd.resident_id_gender("110105194912310011") == "M"


def _valid_resident_ids():
    digits = st.text("0123456789", min_size=6, max_size=6)
    dates = st.dates(min_value=__import__("datetime").date(1920, 1, 1),
                     max_value=__import__("datetime").date(2020, 12, 31))
    seq = st.text("0123456789", min_size=3, max_size=3)
    return st.builds(lambda a, d, s: (a + d.strftime("%Y%m%d") + s) + cd.resident_id_check_char(
        a + d.strftime("%Y%m%d") + s), digits, dates, seq)


candidates = st.one_of(
    _valid_resident_ids(),
    st.text(alphabet=cd.CREDIT_ALPHABET + "IOSVZ", min_size=16, max_size=19),
    st.text(alphabet=cd.VIN_ALPHABET + "IOQ", min_size=16, max_size=18),
    st.text(min_size=0, max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(candidates, min_size=1, max_size=40))
def test_check_sql_matches_python_on_any_string(values):
    con = duckdb.connect()
    for scheme in ("resident_id", "credit_code", "vin"):
        got = con.execute(f"SELECT {cd.valid_sql(scheme, 'v')} FROM unnest(?) t(v)", [values]).fetchall()
        expected = [cd.PYTHON_CHECKS[scheme](v) if v == cd.normalise(v) else None for v in values]
        for v, (g,), e in zip(values, got, expected, strict=False):
            if e is not None:
                assert g is e, (scheme, v)
