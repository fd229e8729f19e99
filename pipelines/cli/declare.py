"""The options that declare a file's manifest, shared by ``submit`` and ``check``.

``manifest_options`` adds them to a command and hands the command one ``Declared``: the manifest
file given and the fields the options give, which win over it. ``Declared.manifest_for`` builds
the ``Manifest`` for one file and says, as a usage error, what is still missing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import click

from pipelines.config import Settings

_OPTIONS = (
    click.option("--member", help="Member id, e.g. M001."),
    click.option("--dataset", help="policy or claim."),
    click.option("--period", help="Reporting period, e.g. 2025Q4."),
    click.option("--contract-version", help="Contract version the file follows [default: current]."),
    click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="A JSON manifest; options given here override it."),
    click.option("--rows", type=int, help="Row count declared by the member."),
    click.option("--control", multiple=True, metavar="COLUMN=AMOUNT",
                 help="A control total, e.g. written_premium=1234.50."),
    click.option("--encoding", help="Encoding of a CSV file [default: detect UTF-8 or GB18030]."),
)


@dataclass(frozen=True)
class Declared:
    """What the command line declares: a manifest file, and fields (``Manifest.build`` keywords,
    None where not given) that override it."""

    manifest: Path | None
    fields: dict[str, object]

    def manifest_for(self, settings: Settings):
        """The manifest; a ``click.UsageError`` when the member, dataset or period is missing."""
        from pipelines.contracts import datasets
        from pipelines.intake import Manifest

        m = Manifest.from_file(self.manifest, **self.fields) if self.manifest else Manifest.build(**self.fields)
        examples = {"member_id": ("--member", "e.g. M001"), "period": ("--period", "e.g. 2025Q4"),
                    "dataset": ("--dataset", f"one of {', '.join(datasets(settings.schemas_dir))}")}
        missing = [f"{option} ({example})" for name, (option, example) in examples.items() if not getattr(m, name)]
        if missing:
            raise click.UsageError(
                f"Missing {', '.join(missing)}: give {'it as an option' if len(missing) == 1 else 'them as options'} "
                "or in a --manifest file. Nothing was recorded.")
        return m


def manifest_options(fn):
    """Add the manifest options to a command; it receives them as one ``declared`` argument."""
    @functools.wraps(fn)
    def wrapper(*args, member, dataset, period, contract_version, manifest, rows, control, encoding, **kwargs):
        bad = [item for item in control if "=" not in item]
        if bad:
            raise click.BadParameter(f"{bad[0]!r} is not COLUMN=AMOUNT, e.g. written_premium=1234.50.",
                                     param_hint="--control")
        totals = dict(item.split("=", 1) for item in control) if control else None
        fields = dict(member_id=member, dataset=dataset, period=period, contract_version=contract_version,
                      row_count=rows, control_totals=totals, encoding=encoding)
        return fn(*args, declared=Declared(manifest, fields), **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
