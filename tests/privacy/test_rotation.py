"""Key rotation: every token re-made with the new key from the raw archive; linkage kept."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.errors import ConfigError, LakeBusy
from pipelines.privacy.tokens import check_key_current, load_key, next_key_path
from tests.conftest import claim_row, policy_row, resident_id, submit_and_process, write_csv

SHARED = resident_id("310105", "19750505", "135")


@pytest.fixture
def lake_with_links(settings, tmp_path):
    for member in ("M001", "M002"):
        rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(25)]
        rows.append(policy_row(transaction_id="TBAD", region_code="999999"))     # quarantined
        submit_and_process(settings, write_csv(tmp_path / f"{member}p.csv", rows), member=member)
        claims = [claim_row(claimant_id=SHARED)] + [claim_row(claim_no=f"C{i:04d}") for i in range(2, 22)]
        submit_and_process(settings, write_csv(tmp_path / f"{member}c.csv", claims), member=member, dataset="claim")
    return settings


def _rotate(settings, *args):
    return CliRunner().invoke(main, ["--home", str(settings.home), "keys", "rotate", *args])


def _tokens(settings):
    con = store.connect(settings)
    try:
        return (con.execute("SELECT insured_id, vin, phone FROM lake.policy").fetchall()
                + con.execute("SELECT claimant_id, NULL, NULL FROM lake.claim").fetchall(),
                [r[0] for r in con.execute("SELECT record FROM lake.quarantine").fetchall()])
    finally:
        con.close()


def test_rotation_remakes_every_token_with_the_new_key(lake_with_links):
    settings = lake_with_links
    old = load_key(settings)
    result = _rotate(settings)
    assert result.exit_code == 0, result.output
    new = load_key(settings)
    assert f"rotated {old.key_id} -> {new.key_id}: 4 submissions" in result.output
    assert new.key_id == "k-" + hashlib.sha256(b"insurshare key id:" + new.secret).hexdigest()[:8]
    assert not next_key_path(settings).exists()
    rows, records = _tokens(settings)
    values = [v for row in rows for v in row if v]
    assert values and all(v.startswith(f"{new.key_id}:") for v in values)
    assert all(f'"{old.key_id}:' not in r and f'"{new.key_id}:' in r for r in records) and len(records) == 2
    expected = f"{new.key_id}:" + hmac.new(new.secret, SHARED.encode(), hashlib.sha256).hexdigest()
    con = store.connect(settings)
    linked = con.execute("SELECT DISTINCT member_id FROM lake.claim WHERE claimant_id = ?", [expected]).fetchall()
    assert sorted(linked) == [("M001",), ("M002",)]


def test_rotation_keeps_linkage_with_new_submissions(lake_with_links, tmp_path):
    settings = lake_with_links
    assert _rotate(settings).exit_code == 0
    claims = [claim_row(claim_no="C9001", claimant_id=SHARED)] + [claim_row(claim_no=f"C8{i:03d}") for i in range(20)]
    submit_and_process(settings, write_csv(tmp_path / "v2.csv", claims), member="M001", dataset="claim")
    con = store.connect(settings)
    tokens = {r[0] for r in con.execute("SELECT claimant_id FROM lake.claim WHERE claim_no IN ('C0001', 'C9001')")
              .fetchall()}
    assert len(tokens) == 1 and next(iter(tokens)).startswith(f"{load_key(settings).key_id}:")


def test_rotation_is_audited_and_the_log_still_verifies(lake_with_links):
    settings = lake_with_links
    old = load_key(settings).key_id
    assert _rotate(settings, "--new-id", "k7").exit_code == 0
    con = store.connect(settings)
    kind, subject = con.execute("SELECT kind, subject FROM lake.audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    assert (kind, subject) == ("key-rotation", f"{old}->k7")
    verify = CliRunner().invoke(main, ["--home", str(settings.home), "audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_interrupted_rotation_blocks_processing_until_resumed(lake_with_links):
    settings = lake_with_links
    from pipelines.privacy.tokens import create_key

    create_key(next_key_path(settings), "k2")          # step 1 done, then a crash
    with pytest.raises(ConfigError, match="keys rotate --resume"):
        load_key(settings)
    assert "already under way" in _rotate(settings).output
    result = _rotate(settings, "--resume")
    assert result.exit_code == 0, result.output
    assert load_key(settings).key_id == "k2"
    rows, _ = _tokens(settings)
    assert all(v.startswith("k2:") for row in rows for v in row if v)


def test_publish_refuses_tokens_of_a_key_rotated_away(lake_with_links):
    settings = lake_with_links
    old = load_key(settings).key_id
    assert _rotate(settings).exit_code == 0
    new = load_key(settings).key_id
    con = store.connect(settings)
    with pytest.raises(LakeBusy, match=f"rotated to {new}"):
        check_key_current(con, old)
    check_key_current(con, new)
