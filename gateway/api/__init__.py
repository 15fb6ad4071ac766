"""HTTP surface: FastAPI routers, request parsing, error rendering."""
