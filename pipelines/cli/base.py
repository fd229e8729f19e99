"""The command group ``main`` and the ``command`` decorator every subject module registers with.

Kept apart from ``pipelines/cli/__init__.py`` so that the subject modules import this module and
``__init__`` imports them, without a cycle.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from pipelines.config import Settings, setting
from pipelines.errors import InsurShareError


def _fail_cleanly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InsurShareError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except Exception as exc:   # a missing or damaged lake file: say so, not a traceback
            clear = _lake_file_error(exc, getattr(args[0], "storage", "") if args else "")
            if clear is None:
                raise
            click.echo(f"Error: {clear}", err=True)
            sys.exit(1)
    return wrapper


def _lake_file_error(exc: Exception, storage: str) -> InsurShareError | None:
    if "duckdb" not in sys.modules:   # no lake was read
        return None
    from pipelines.audit.anchor import lake_file_error

    return lake_file_error(exc, storage)


def setting_option(*decls: str, env: str, help: str, **kwargs):
    """A ``click.option`` that also reads setting ``env`` (see ``pipelines.config.SETTINGS``);
    its help ends with the variable and the setting's default."""
    s = setting(env)
    return click.option(*decls, envvar=s.env, help=f"{help} [env {s.env}; default: {s.default_text}].", **kwargs)


def command(group: click.Group, *args, **kwargs):
    """Register ``fn`` on ``group`` with the settings object and clean error handling."""
    def decorate(fn):
        return group.command(*args, **kwargs)(click.pass_obj(_fail_cleanly(fn)))
    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@setting_option("--home", type=click.Path(path_type=Path), env="INSURSHARE_HOME",
                help="The platform's working folder (landing, archive, lake, reports)")
@click.version_option(package_name="insurshare")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """InsurShare: the insurance industry's shared data platform.

    Members submit premium and claim data; the platform validates it, pseudonymises
    identifiers and publishes it into one shared DuckLake store.
    """
    os.umask(0o077)   # whatever the platform writes under its home is for its owner only
    ctx.obj = Settings.from_env(home=home)
