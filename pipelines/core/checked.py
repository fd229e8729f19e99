"""The ``checked`` table: what validation hands to the publisher.

Validation (``pipelines.validation.engine.check_rows``) creates it in the submission's isolated
staging database from staging's view ``raw``, in one statement: one row per data row of the
file, with

- ``__row`` (``ROW``): the data row's number in the file (1 = the first row after the header),
  as staging numbered it in ``raw``;
- the contract's columns, typed; identifiers replaced by their tokens and identifiers found in
  free text masked (privacy happens inside this statement: nothing later sees a raw identifier);
- ``__errors``, ``__fatal``, ``__warnings`` (``ERRORS``, ``FATAL``, ``WARNINGS``): the ids of
  the rules the row breaks, one ``VARCHAR[]`` per severity (empty, never NULL, when none);
- ``__reasons`` (``REASONS``): what the member reads, one sentence per broken rule;
- ``__record`` (``RECORD``): the row as received (trimmed text, identifiers as tokens) as JSON
  text, for the quarantine; NULL on a row that breaks no rule.

A row that breaks no error and no fatal rule is accepted (``ACCEPTED``): it is published. Any
other row is quarantined (``QUARANTINED``). Warnings never keep a row out. The two predicates
are SQL over the table's own columns, for ``WHERE`` and ``FILTER`` clauses.
"""

from __future__ import annotations

TABLE = "checked"

ROW = "__row"
ERRORS = "__errors"
FATAL = "__fatal"
WARNINGS = "__warnings"
REASONS = "__reasons"
RECORD = "__record"

# Every rule id a row breaks, whatever the severity (errors, then fatal, then warnings).
RULE_IDS = f"{ERRORS} || {FATAL} || {WARNINGS}"

# The rows that are published, and those that go to the quarantine: each is the other's negation.
ACCEPTED = f"len({ERRORS}) = 0 AND len({FATAL}) = 0"
QUARANTINED = f"len({ERRORS}) > 0 OR len({FATAL}) > 0"
