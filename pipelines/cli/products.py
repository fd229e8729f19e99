"""Commands for the audiences' data products: build them, list them, show what one can see."""

from __future__ import annotations

import click

from pipelines.cli.base import command, main, setting_option
from pipelines.config import Settings


def disclosure_options(fn):
    """``--profile``, ``--min-members`` and ``--max-share`` (also from the environment)."""
    fn = setting_option("--max-share", type=float, env="INSURSHARE_DISCLOSURE_MAX_SHARE",
                        help="Largest member's share a published cell may have, e.g. 0.5")(fn)
    fn = setting_option("--min-members", type=int, env="INSURSHARE_DISCLOSURE_MIN_MEMBERS",
                        help="Fewest members a published cell may have")(fn)
    return setting_option("--profile", type=click.Choice(["default", "strict"]), env="INSURSHARE_DISCLOSURE",
                          help="Disclosure rules: default (3 members, 50%) or strict (5 members, 25%)")(fn)


@main.group()
def products() -> None:
    """Read-only data products per audience: regulator, public, each member."""


@command(products, "build")
@disclosure_options
@click.option("--force", is_flag=True, help="Build even when nothing changed since the last build.")
def products_build(settings: Settings, profile: str | None, min_members: int | None, max_share: float | None,
                   force: bool) -> None:
    """Rebuild every product from the lake's current snapshot, with disclosure control.

    Skipped when nothing was written to the lake since the last build, the rules are the same and
    the files are those it wrote (the products would be the same); --force builds anyway.
    """
    from pipelines.products import build_products
    from pipelines.products.disclosure import resolve_rules

    result = build_products(settings, resolve_rules(profile, min_members=min_members, max_share=max_share),
                            force=force)
    click.echo("\n".join(result.lines()))


@command(products, "list")
def products_list(settings: Settings) -> None:
    """List the products: audience, lake snapshot, disclosure profile, build time, size."""
    from pipelines.products import list_products

    click.echo(list_products(settings))


@command(products, "show")
@click.argument("audience")
def products_show(settings: Settings, audience: str) -> None:
    """Show what AUDIENCE (regulator, public or member:M001) can see: its tables and suppression."""
    from pipelines.products import describe_product

    click.echo(describe_product(settings, audience))
