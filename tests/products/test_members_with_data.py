"""A member's product exists only once the member has accepted data: a registered member that
sent nothing gets no file (a file left from before is removed), and its first accepted
submission makes the next build write it."""

from __future__ import annotations

import pytest

from pipelines.errors import NotFound
from pipelines.marts.build import build_marts
from pipelines.products import build_products, open_product, products_dir
from tests.conftest import policy_row, submit_and_process, write_csv


def _products(settings) -> list[str]:
    return sorted(p.name for p in products_dir(settings).glob("*.duckdb"))


def test_products_only_for_members_with_accepted_data(settings, tmp_path):
    one = write_csv(tmp_path / "m1.csv", [policy_row()])
    assert submit_and_process(settings, one, member="M001").status == "accepted"
    rejected = write_csv(tmp_path / "m3.csv", [policy_row(transaction_id="T3", written_premium="x")] * 3)
    assert submit_and_process(settings, rejected, member="M003").status == "rejected"
    products_dir(settings).mkdir(parents=True)
    (products_dir(settings) / "member_M002.duckdb").write_bytes(b"left by an earlier build")
    build_marts(settings)

    built = build_products(settings)

    assert sorted(built.rows) == ["member_M001", "public", "regulator"]
    assert _products(settings) == ["member_M001.duckdb", "public.duckdb", "regulator.duckdb"]
    with pytest.raises(NotFound, match="There is no product for member:M003. A member's product is built once"):
        open_product(settings, "member:M003")

    two = write_csv(tmp_path / "m2.csv", [policy_row()])
    outcome = submit_and_process(settings, two, member="M002")
    assert outcome.status == "accepted", outcome.reasons
    build_marts(settings)
    build_products(settings)
    assert _products(settings) == ["member_M001.duckdb", "member_M002.duckdb", "public.duckdb", "regulator.duckdb"]
