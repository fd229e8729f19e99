"""``insurshare notices``: configure a channel, send, read the log, as an operator types them."""

from __future__ import annotations

import hashlib
import hmac
import json

from click.testing import CliRunner

from pipelines.cli import main
from tests.notices.servers import SmtpServer, WebhookServer
from tests.notices.test_notices import _rejected


def test_configure_send_and_log_from_the_command_line(settings, tmp_path):
    with WebhookServer() as hook, SmtpServer() as smtp:
        runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0", "INSURSHARE_SMTP_HOST": "127.0.0.1",
                                "INSURSHARE_SMTP_PORT": str(smtp.port), "INSURSHARE_SMTP_TLS": "none"})

        def cli(*args: str):
            return runner.invoke(main, ["--home", str(settings.home), "notices", *args], catch_exceptions=False)

        assert cli("log").output == "no notice logged\n"
        got = cli("configure", "--member", "M001", "--webhook", hook.url)
        assert got.exit_code == 0 and f"M001: webhook {hook.url} for rejected, refused, due_soon, overdue" in got.output
        assert cli("configure", "--default", "--email", "ops@platform.example", "--events", "rejected").exit_code == 0
        bad = cli("configure", "--member", "M001", "--webhook", "ftp://x")
        assert bad.exit_code == 1 and "Error: Webhook 'ftp://x' is not an http:// or https:// URL." in bad.output
        both = cli("configure", "--member", "M001", "--default", "--email", "a@b.example")
        assert both.exit_code == 2 and "Give --member M or --default" in both.output
        listed = cli("channels").output.splitlines()
        assert [line.split("  ")[:3] for line in listed] == [["default", "email", "ops@platform.example"],
                                                             ["M001", "webhook", hook.url]]

        one, two = _rejected(settings, tmp_path), _rejected(settings, tmp_path, member="M002")
        sent = cli("send")
        assert sent.exit_code == 0 and sent.output.splitlines()[-1] == "notices: 2 sent, 0 failed, 0 skipped"
        assert [json.loads(c.body)["submission_id"] for c in hook.calls] == [one]
        assert [m.recipients for m in smtp.mails] == [["ops@platform.example"]] and two in smtp.mails[0].message["Subject"]
        assert cli("send").output == "notices: 0 sent, 0 failed, 0 skipped\n"

        secret = cli("secret", "--member", "M001").output.strip()
        body = hook.calls[0].body
        assert hook.calls[0].headers["x-insurshare-signature"] == \
            "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

        unknown = cli("secret", "--member", "M999")
        assert unknown.exit_code == 1 and "M999 is not a registered member" in unknown.output

        log = cli("log", "--member", "M002").output.splitlines()
        assert len(log) == 1 and "sent" in log[0] and two in log[0] and "email ops@platform.example" in log[0]
        assert len(cli("log").output.splitlines()) == 2

        assert cli("configure", "--member", "M001", "--webhook", hook.url, "--remove").output == \
            "removed webhook channel of M001\n"
        assert [line.split("  ")[0] for line in cli("channels").output.splitlines()] == ["default"]
