"""The lake the query tests read: four members' lake with marts and products, built once.

Every query test must leave it as it is (the sandbox tests check so, file by file)."""

from __future__ import annotations

import pytest

from pipelines.config import Settings
from tests.products.conftest import built, small_rows


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> Settings:
    """Four members' lake with marts and products (the product tests' ``small_market``)."""
    return built(tmp_path_factory.mktemp("sandbox") / "home", *small_rows())
