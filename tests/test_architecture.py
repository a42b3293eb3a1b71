"""The layers import only what they may (docs/architecture.md, "Layers and what each may import").

Every module of ``domain/``, ``projections/`` and ``api/`` is parsed (not imported) and
every ``import`` and ``from ... import`` in it, at any depth (inside functions too, and
relative imports resolved), is checked against the rules of its layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("domain", "projections", "api")
FORBIDDEN: dict[str, frozenset[str]] = {
    "domain": frozenset(
        {"fastapi", "pydantic", "pydantic_core", "pydantic_settings", "starlette"}
        | {"api", "projections"}
    ),
    "projections": frozenset({"api", "fastapi", "starlette"}),
    "api": frozenset(),
}


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from . import api` or `from x import y` may name a module as well
            found.extend(
                (node.lineno, f"{target}.{alias.name}".lstrip(".")) for alias in node.names
            )
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The forbidden imports of ``source``, the module ``module`` of one of the layers."""
    layer = module.split(".")[0]
    forbidden = FORBIDDEN[layer]
    out = []
    for line, name in imported_modules(source, module, is_package):
        top = name.split(".")[0]
        if top in forbidden:
            out.append(f"{module}:{line} imports {name} ({layer} may not import {top})")
    return sorted(set(out))


def modules_of(layer: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / layer).rglob("*.py"))


def layer_violations(layer: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in modules_of(layer, root):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        found += violations(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return found


def test_every_layer_has_modules_to_check() -> None:
    assert modules_of("domain"), "the domain package holds modules"
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").exists() or not (ROOT / layer).exists()


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_it_may_not(layer: str) -> None:
    assert layer_violations(layer) == []


def test_a_forbidden_import_added_to_a_module_of_a_layer_is_found(tmp_path: Path) -> None:
    (tmp_path / "domain" / "sub").mkdir(parents=True)
    (tmp_path / "domain" / "__init__.py").write_text("")
    (tmp_path / "domain" / "sub" / "__init__.py").write_text("from ... import api\n")
    (tmp_path / "domain" / "ok.py").write_text("from eventsourcing.domain import Aggregate\n")
    (tmp_path / "domain" / "bad.py").write_text(
        "import json\n\n\ndef schema():\n    from pydantic import BaseModel\n"
    )
    (tmp_path / "projections").mkdir()
    (tmp_path / "projections" / "views.py").write_text("from api.deps import CurrentUser\n")
    assert layer_violations("domain", tmp_path) == [
        "domain.bad:5 imports pydantic (domain may not import pydantic)",
        "domain.bad:5 imports pydantic.BaseModel (domain may not import pydantic)",
        "domain.sub:1 imports api (domain may not import api)",
    ]
    assert layer_violations("projections", tmp_path) == [
        "projections.views:1 imports api.deps (projections may not import api)",
        "projections.views:1 imports api.deps.CurrentUser (projections may not import api)",
    ]


# --- the checker itself, on synthetic sources ----------------------------------------------

BAD_DOMAIN = [
    "import fastapi",
    "from fastapi import HTTPException",
    "import pydantic.v1",
    "from pydantic import BaseModel",
    "from starlette.responses import Response",
    "import api.main",
    "from api import errors",
    "from projections.documents import canonical",
    "from .. import api",
    "from ..projections import views",
    "def f():\n    import fastapi\n    return fastapi",
    "try:\n    from pydantic_settings import BaseSettings\nexcept ImportError:\n    pass",
]
GOOD_DOMAIN = [
    "import json",
    "from eventsourcing.domain import Aggregate",
    "from domain.errors import NotFound",
    "from . import rules",
    "from .errors import NotFound",
    "import apiary",  # a name that merely starts like a forbidden one
    "from domain import api_like",
    "from psycopg.sql import SQL",
]


@pytest.mark.parametrize("source", BAD_DOMAIN)
def test_the_checker_finds_a_forbidden_import_in_the_domain(source: str) -> None:
    assert violations(source, "domain.application") != []


@pytest.mark.parametrize("source", GOOD_DOMAIN)
def test_the_checker_lets_an_allowed_import_in_the_domain_pass(source: str) -> None:
    assert violations(source, "domain.application") == []


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("from api.deps import CurrentUser", False),
        ("import fastapi", False),
        ("from starlette.requests import Request", False),
        ("from ...api import settings", False),
        ("from domain.proposal import Proposal", True),
        ("from eventsourcing.persistence import Tracking", True),
        ("import reportlab", True),
        ("from . import canonical", True),
    ],
)
def test_the_checker_applies_the_rules_of_projections(source: str, allowed: bool) -> None:
    assert (violations(source, "projections.documents.as_html") == []) is allowed


def test_the_checker_resolves_relative_imports_from_a_package_init() -> None:
    # in domain/sub/__init__.py, ".." is the domain package and "..." is above it
    assert violations("from ... import api", "domain.sub", is_package=True) != []
    assert violations("from .. import api", "domain.sub", is_package=True) == []
    assert violations("from . import api", "domain", is_package=True) == []


def test_the_api_may_import_everything() -> None:
    source = "import fastapi\nfrom domain.application import SYSTEM\nfrom projections import x"
    assert violations(source, "api.main") == []
