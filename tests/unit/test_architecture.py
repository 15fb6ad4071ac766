"""The dependency rules of DESIGN.md section 2, checked on the source."""

import ast
import sys
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"


def imports_of(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (GATEWAY / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(GATEWAY))] = names
    return found


def test_domain_imports_only_the_standard_library_itself_and_errors():
    allowed_own = ("gateway.domain", "gateway.errors")
    for module, names in imports_of("domain").items():
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith(allowed_own), f"{module} imports {name}"


def test_fhir_and_store_never_import_the_web_layer():
    for package in ("fhir", "store", "domain"):
        for module, names in imports_of(package).items():
            assert not any(n.startswith(("fastapi", "starlette", "gateway.api")) for n in names), module
