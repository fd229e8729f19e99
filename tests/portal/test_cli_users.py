"""`insurshare users ...` and `insurshare tokens ...` through click's CliRunner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from pipelines.airflow.scheduler import free_port
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.portal import db, identity

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _close_identity_db():
    yield
    db.dispose()


def run(settings: Settings, *args: str, input: str | None = None, ok: bool = True):
    result = CliRunner().invoke(main, ["--home", str(settings.home), *args], input=input)
    assert result.exit_code == (0 if ok else 1), result.output
    return result


def test_cli_users_add_reads_the_password_from_stdin(settings):
    out = run(settings, "users", "add", "Sam", "--role", "submitter", "--role", "analyst", "--member", "M001",
              "--password-stdin", input=PASSWORD + "\n").output
    assert "created sam" in out and "analyst, submitter of M001" in out and "/login" in out
    assert identity.authenticate(settings, "sam", PASSWORD, "127.0.0.1").member_id == "M001"
    assert PASSWORD not in out


def test_cli_users_add_reads_the_password_from_a_file(settings, tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text(PASSWORD + "\n")
    run(settings, "users", "add", "olga", "--role", "operator", "--password-file", str(secret_file))
    assert identity.authenticate(settings, "olga", PASSWORD, "127.0.0.1").roles == {"operator"}


def test_cli_users_add_prompts_twice_without_echo(settings):
    out = run(settings, "users", "add", "olga", "--role", "operator", input=f"{PASSWORD}\n{PASSWORD}\n").output
    assert "Password" in out and "Repeat for confirmation" in out and PASSWORD not in out
    assert identity.authenticate(settings, "olga", PASSWORD, "127.0.0.1").name == "olga"


def test_cli_users_add_prompt_asks_again_when_the_two_differ(settings):
    out = run(settings, "users", "add", "olga", "--role", "operator",
              input=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n").output
    assert "do not match" in out
    assert identity.authenticate(settings, "olga", PASSWORD, "127.0.0.1").name == "olga"


def test_cli_users_add_without_password_points_to_tokens(settings):
    out = run(settings, "users", "add", "robot", "--role", "analyst", "--member", "M002", "--no-password").output
    assert "insurshare tokens create robot" in out and "Password" not in out


@pytest.mark.parametrize("args, message", [
    (["--role", "submitter"], "acts for one member company"),
    (["--role", "operator", "--member", "M001"], "does not belong to a member company"),
    (["--role", "analyst", "--member", "M404"], "Member M404 is not registered"),
    (["--role", "chief"], "Unknown role chief"),
], ids=["member-missing", "member-given", "member-unknown", "role-unknown"])
def test_cli_users_add_refuses_roles_that_do_not_fit_before_asking_a_password(settings, args, message):
    result = run(settings, "users", "add", "x1", *args, ok=False)
    assert message in result.output and "Password" not in result.output


def test_cli_users_add_refuses_a_short_password(settings):
    result = run(settings, "users", "add", "olga", "--role", "operator", "--password-stdin", input="short\n", ok=False)
    assert "at least 12 characters" in result.output
    assert identity.get_user(settings, "olga") is None


def test_cli_users_list_says_how_to_create_the_first_operator(settings):
    assert "insurshare users add admin --role operator" in run(settings, "users", "list").output


def test_cli_users_list_disable_enable_passwd(settings):
    identity.create_user(settings, "sam", ["submitter"], "M001", PASSWORD)
    listed = run(settings, "users", "list").output
    assert "sam" in listed and "submitter" in listed and "M001" in listed and "active" in listed
    assert "scrypt" not in listed

    assert "disabled sam" in run(settings, "users", "disable", "sam").output
    assert "disabled" in run(settings, "users", "list").output.replace("disabled sam", "")
    assert identity.get_user(settings, "sam").disabled
    assert "enabled sam" in run(settings, "users", "enable", "sam").output
    assert not identity.get_user(settings, "sam").disabled

    run(settings, "users", "passwd", "sam", "--password-stdin", input="a brand new passphrase\n")
    assert identity.authenticate(settings, "sam", "a brand new passphrase", "127.0.0.1").name == "sam"


def test_cli_users_unlock(settings, monkeypatch):
    identity.create_user(settings, "sam", ["submitter"], "M001", PASSWORD)
    monkeypatch.setattr(identity, "LOCK_AFTER", 1)
    with pytest.raises(identity.LoginRefused):
        identity.authenticate(settings, "sam", "wrong password!", "10.0.0.1")
    assert "locked until" in run(settings, "users", "list").output
    assert "unlocked sam and address 10.0.0.1" in run(settings, "users", "unlock", "sam", "--ip", "10.0.0.1").output
    assert "locked" not in run(settings, "users", "list").output
    assert identity.authenticate(settings, "sam", PASSWORD, "10.0.0.1").name == "sam"


def test_cli_users_unknown_user_is_a_clear_error(settings):
    for args in (["disable", "ghost"], ["passwd", "ghost"], ["unlock", "ghost"]):
        result = run(settings, "users", *args, ok=False)
        assert "No user 'ghost'" in result.output and "Password" not in result.output


def test_cli_tokens_create_shows_the_secret_once(settings):
    identity.create_user(settings, "robot", ["analyst"], "M002")
    out = run(settings, "tokens", "create", "robot", "--name", "nightly", "--days", "7").output
    secret = next(line for line in out.splitlines() if line.startswith("ist_"))
    assert "will not be shown again" in out
    assert identity.token_principal(settings, secret).member_id == "M002"

    listed = run(settings, "tokens", "list", "--user", "robot").output
    token_id = secret.split("_")[1]
    assert token_id in listed and "nightly" in listed and secret.split("_", 2)[2] not in listed
    assert "no tokens" in run(settings, "tokens", "list", "--user", "somebody").output

    assert f"revoked {token_id}" in run(settings, "tokens", "revoke", token_id).output
    assert "revoked" in run(settings, "tokens", "list").output
    assert identity.token_principal(settings, secret) is None


def test_cli_tokens_create_refuses_a_too_long_life(settings):
    identity.create_user(settings, "robot", ["analyst"], "M002")
    result = run(settings, "tokens", "create", "robot", "--name", "n", "--days", "400", ok=False)
    assert "1 to 366 days" in result.output and "ist_" not in result.output


def test_cli_tokens_revoke_unknown_is_a_clear_error(settings):
    assert "No token 't-404'" in run(settings, "tokens", "revoke", "t-404", ok=False).output


def test_cli_users_add_refuses_an_existing_name_before_asking_a_password(settings):
    identity.create_user(settings, "sam", ["operator"])
    result = run(settings, "users", "add", "SAM", "--role", "operator", ok=False)
    assert "User sam already exists" in result.output and "Password" not in result.output


def test_cli_portal_serve_answers_and_says_how_to_log_in(settings):
    port = free_port()
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home)}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "portal", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    status = answer.status
                break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        assert status == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"portal at http://127.0.0.1:{port}" in out and "insurshare users add admin --role operator" in out


def test_cli_users_changes_are_audited_with_the_operating_system_account(settings):
    import getpass

    from pipelines import store
    from pipelines.lake import Lake

    run(settings, "users", "add", "olga", "--role", "operator", "--password-stdin", input=PASSWORD + "\n")
    with Lake(settings) as lake:
        kind, details = lake.execute(f"SELECT kind, details FROM {store.LAKE}.audit_log ORDER BY seq DESC "
                                     "LIMIT 1").fetchone()
    assert kind == "user-created" and f'"by": "cli:{getpass.getuser()}"' in details and PASSWORD not in details
