"""Validation stage: contract rules as DuckDB SQL (exact, per row) and as a GX suite (the oracle)."""
