import hashlib
import hmac
import os
import stat

import duckdb
import pytest

from pipelines.config import Settings
from pipelines.errors import ConfigError
from pipelines.privacy.tokens import PseudonymKey, bind_key, create_key, load_key, token_sql


def test_token_sql_equals_python_hmac(tmp_path):
    key = create_key(tmp_path / "k.key", "k7")
    con = duckdb.connect()
    bind_key(con, key)
    values = ["110105194912310021", "LSVAU2180N2000000", "13812345678", "测试客户"]
    got = [r[0] for r in con.execute(f"SELECT {token_sql('v')} FROM unnest(?) t(v)", [values]).fetchall()]
    expected = ["k7:" + hmac.new(key.secret, v.encode(), hashlib.sha256).hexdigest() for v in values]
    assert got == expected


def test_token_of_null_is_null(tmp_path):
    con = duckdb.connect()
    bind_key(con, create_key(tmp_path / "k.key"))
    assert con.execute(f"SELECT {token_sql('NULL::VARCHAR')}").fetchone()[0] is None


def test_token_sql_text_holds_no_key_material(tmp_path):
    key = create_key(tmp_path / "k.key")
    sql = token_sql("v")
    assert key.secret.hex() not in sql
    ipad, opad = key._pads()
    assert ipad.hex() not in sql and opad.hex() not in sql
    assert key.secret.hex() not in repr(key)


def test_key_file_is_private_and_never_overwritten(tmp_path):
    path = tmp_path / "secrets" / "k.key"
    create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        create_key(path)


def test_missing_key_says_how_to_create_one(tmp_path):
    settings = Settings(home=tmp_path)
    with pytest.raises(ConfigError, match="insurshare keygen"):
        load_key(settings)


def test_key_from_variable_wins_over_file(tmp_path):
    settings = Settings(home=tmp_path, env={"INSURSHARE_PSEUDONYM_KEY": "env1:" + "ab" * 32})
    key = load_key(settings)
    assert key == PseudonymKey("env1", bytes.fromhex("ab" * 32))


def test_malformed_key_is_refused_without_echoing_it(tmp_path):
    settings = Settings(home=tmp_path, env={"INSURSHARE_PSEUDONYM_KEY": "nocolon-secretvalue"})
    with pytest.raises(ConfigError) as err:
        load_key(settings)
    assert "secretvalue" not in str(err.value)
