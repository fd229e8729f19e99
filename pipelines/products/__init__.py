"""Data products: one read-only DuckDB file per audience, holding only what it may see.

``build_products`` (``insurshare products build``, the ``build_products`` DAG) writes them
after every mart build, with disclosure control (``pipelines.products.disclosure``) applied to every
industry aggregate; ``query_product`` (``insurshare query --as``) reads one as its audience.

The flow: ``cells`` (the industry units and their additive relations) -> ``control``
(primary and secondary suppression, the published industry tables) -> ``catalog`` (each
audience's tables) -> ``build`` (files, audit entry, atomic rename) -> ``query`` (read).
"""

from pipelines.products.build import ProductsResult, build_products, product_path, products_dir
from pipelines.products.query import Audience, describe_product, list_products, open_product, query_product

__all__ = ["Audience", "ProductsResult", "build_products", "describe_product", "list_products", "open_product", "product_path",
           "products_dir", "query_product"]
