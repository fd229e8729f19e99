"""The core: the words every stage shares, and nothing else.

Every stage may import the core; the core imports no stage (only ``pipelines.errors`` and
``pipelines.config``). ``tests/test_imports.py`` holds it to that.

- ``sql``: ``ident()`` and ``literal()``, the one way to put a name or a value into SQL text;
- ``domain``: ``Period``, ``SubmissionStatus``, ``RuleKind``;
- ``checked``: the columns validation adds to the ``checked`` table and the accepted/quarantined
  predicates that the publisher and the reports read;
- ``secrets``: reading and writing the platform's key files (owner-only, never overwritten);
- ``tables``: tables for a terminal (every missing value shown as ``NULL``, reasons never cut).
"""
