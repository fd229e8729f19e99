"""Documentation generated from the code and the contracts: README's configuration table (from
``pipelines.config.SETTINGS``), command reference, portal API reference (from the app's OpenAPI
document and the policy table) and data dictionary. ``insurshare docs``
rewrites them; ``insurshare docs --check`` (run by the tests) fails when README.md has drifted
from the code."""

from __future__ import annotations

import re
from pathlib import Path

import click

from pipelines.config import PROJECT_ROOT, SCHEMAS_DIR, SETTINGS
from pipelines.contracts import DatasetContract, datasets, load_code_lists, load_contract, load_submission_rules

README = PROJECT_ROOT / "README.md"
_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def command_reference(main: click.Group) -> str:
    lines = []
    ctx = click.Context(main, info_name="insurshare", terminal_width=100, max_content_width=100,
                        help_option_names=["-h", "--help"])

    def walk(cmd: click.Command, ctx: click.Context, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, click.Context(sub, info_name=name, parent=ctx), f"{path} {name}")
            return
        lines.append(f"### `{path}`\n")
        lines.append("```text")
        lines.append(cmd.get_help(ctx).replace("Usage: insurshare", "Usage: insurshare").rstrip())
        lines.append("```\n")

    walk(main, ctx, "insurshare")
    return "\n".join(lines)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _contract_section(c: DatasetContract) -> str:
    out = [f"### `{c.dataset}`: {c.title} (contract version {c.version}, `{c.source}`)\n",
           f"{c.description}\n",
           f"Key: `{', '.join(c.key)}`. Business keys (how a member finds its rows in quarantine downloads "
           f"and report samples): `{', '.join(c.business_keys)}`. Control totals: `{', '.join(c.control_totals)}`. "
           f"Reported per {c.grain}. Rejected when more than {c.max_error_row_share:.0%} of rows, and "
           f"more than {c.min_error_rows} rows, break error rules, or every row does.\n",
           "| column | type | required | code list / format | description |",
           "|---|---|---|---|---|"]
    for col in c.columns:
        req = "yes" if col.required else (
            "when " + ", ".join(f"{k} in {'/'.join(v)}" for k, v in col.required_when.items())
            if col.required_when else "")
        fmt = f"`{col.codes}`" if col.codes else (f"{col.pattern_words} (`{col.pattern}`)" if col.pattern else "")
        if col.identifier:
            fmt = (fmt + " " if fmt else "") + "pseudonymised (HMAC token)"
        out.append(f"| `{col.name}` | {col.type} | {req} | {_md(fmt)} | {_md(col.description)} |")
    out += ["", "Rules:", "", "| rule | severity | description | how to fix |", "|---|---|---|---|"]
    for r in c.rules:
        out.append(f"| `{r.id}` | {r.severity} | {_md(r.description)} | {_md(r.fix)} |")
    return "\n".join(out) + "\n"


def data_dictionary(schemas_dir: Path = SCHEMAS_DIR) -> str:
    parts = []
    for d in datasets(schemas_dir):
        parts.append(_contract_section(load_contract(d, None, schemas_dir)))
    sub = load_submission_rules(schemas_dir)
    parts.append("### Submission checks (`schemas/submission.yaml`, all fatal)\n")
    parts.append("| check | description | how to fix |\n|---|---|---|")
    parts.append("\n".join(f"| `{c.id}` | {_md(c.description)} | {_md(c.fix)} |" for c in sub.checks) + "\n")
    parts.append("### Code lists (`schemas/codes.yaml`)\n")
    for name, cl in load_code_lists(schemas_dir).items():
        codes = ", ".join(f"`{c.code}` {c.en} ({c.zh})" for c in cl.codes)
        parts.append(f"- **{name}**: {_md(cl.description)} {codes}")
    return "\n".join(parts) + "\n"


def settings_table() -> str:
    """README's configuration table: every ``INSURSHARE_*`` setting, its default and meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {_md(s.default_markdown)} | {_md(s.meaning)} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


def api_reference() -> str:
    """README's API reference: each endpoint of the portal's OpenAPI document, who may call it."""
    from fastapi.routing import APIRoute

    from pipelines.config import Settings
    from pipelines.portal.app import create_app, endpoints
    from pipelines.portal.policy import ANONYMOUS, POLICY, ROLES

    app = create_app(Settings.from_env())
    names = {(m, r.path): r.name for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    rows = ["| method | path | what | who may call it | whose objects |", "|---|---|---|---|---|"]
    for e in endpoints(app.openapi()):
        rule = POLICY[names[e["method"], e["path"]]]
        who = "anyone" if ANONYMOUS in rule.roles else ", ".join(r for r in ROLES if r in rule.roles)
        whose = ("the caller's own member's" + (f"; every member's: {', '.join(sorted(rule.sees_all))}"
                                                 if rule.sees_all else "")) if rule.scope == "own" else ""
        rows.append(f"| `{e['method']}` | `{e['path']}` | {_md(e['summary'])} | {who} | {whose} |")
    return "\n".join(rows) + "\n"


def render(text: str, cli: click.Group) -> str:
    makers = {"settings": settings_table, "commands": lambda: command_reference(cli),
              "data-dictionary": data_dictionary, "api": api_reference}

    def replace(m: re.Match) -> str:
        maker = makers.get(m["name"])
        return m.group(1) + maker() + m.group(4) if maker else m.group(0)

    return _BLOCK.sub(replace, text)


def update_readme(cli: click.Group, check: bool = False, path: Path = README) -> bool:
    """Rewrite the generated blocks of README.md from the command group ``cli`` (``pipelines.cli.main``)
    and the contracts; return whether anything changed."""
    text = path.read_text(encoding="utf-8")
    new = render(text, cli)
    if new != text and not check:
        path.write_text(new, encoding="utf-8")
    return new != text
