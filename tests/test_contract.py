"""The public contract (../shared/API.md) imports, and the packages keep their layering."""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "contract.txt"
# Wave 2 names that have landed; ../shared/contract-next.txt lists those still promised.
WAVE2 = ROOT / "tests" / "contract_wave2.txt"


def _promised() -> list[tuple[str, list[str]]]:
    if not CONTRACT.exists():
        pytest.skip(f"{CONTRACT} not present")
    found = []
    for path in (CONTRACT, WAVE2):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                module, _, names = line.partition(":")
                found.append((module.strip(), names.split()))
    return found


def test_every_promised_name_imports_and_is_exported() -> None:
    missing = []
    for module_name, names in _promised():
        module = importlib.import_module(module_name)
        exported = set(getattr(module, "__all__", ()))
        for name in names:
            if not hasattr(module, name):
                missing.append(f"{module_name}.{name} (missing)")
            elif module_name != "workflow.events" and name not in exported and name != "events":
                missing.append(f"{module_name}.{name} (not in __all__)")
    assert not missing, "\n".join(missing)


def test_all_is_a_tuple_of_importable_names() -> None:
    for package in ("workflow", "builders", "executors", "visualize"):
        module = importlib.import_module(package)
        assert isinstance(module.__all__, tuple), package
        for name in module.__all__:
            assert hasattr(module, name), f"{package}.{name}"


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("workflow", {"builders", "executors", "visualize"}),
        ("executors", {"builders", "visualize"}),
        ("visualize", {"builders"}),
    ],
)
def test_layering(package: str, forbidden: set[str]) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "workflow" and path.relative_to(ROOT / package).parts[0] == "cli":
            continue  # the one place that wires everything together
        bad = _imports(path) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


# Outside ``workflow/`` only its public modules may be imported: the package itself,
# ``workflow.events``, ``workflow.authoring`` (the seam for node authors) and the CLI.
OUTSIDE_CORE = ("builders", "executors", "visualize", "examples", "benchmarks")
# Files allowed to import private core modules (none: the nested-workflow executor now uses
# workflow.authoring.ChildRun).
PRIVATE_ALLOWED: set[str] = set()


@functools.cache
def _absolute_imports(path: pathlib.Path) -> tuple[tuple[int, str], ...]:
    """``(line, module)`` for each absolute import in ``path``; ``from pkg import n`` also gives
    ``pkg.n`` (``n`` may be a module). Parsed once per file for every check."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if "." not in node.module:
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return tuple(found)


def _private_core_imports(
    path: pathlib.Path, root: pathlib.Path = ROOT, package: str = "workflow"
) -> list[str]:
    """Every ``package._*`` module (or ``_name`` from ``package``) that ``path`` imports."""
    found = []
    for line, module in _absolute_imports(path):
        parts = module.split(".")
        if parts[0] == package and any(part.startswith("_") for part in parts[1:]):
            found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def _outside_core() -> list[pathlib.Path]:
    return [path for top in OUTSIDE_CORE for path in sorted((ROOT / top).rglob("*.py"))]


def test_other_packages_use_only_the_public_core() -> None:
    paths = _outside_core()
    assert len(paths) > 50, "the packages, examples and benchmarks were not found"
    offenders = [
        line
        for path in paths
        if path.relative_to(ROOT).as_posix() not in PRIVATE_ALLOWED
        for line in _private_core_imports(path)
    ]
    assert not offenders, (
        "use the names in workflow.__all__ or workflow.authoring (make a name public there "
        "if node authors need it):\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize("package", ["builders", "executors", "visualize"])
def test_packages_use_each_others_public_names_only(package: str) -> None:
    """Only the CLI, which wires the packages together, may reach into their modules."""
    paths = [
        path
        for top in ("workflow", *OUTSIDE_CORE)
        if top != package
        for path in sorted((ROOT / top).rglob("*.py"))
        if "cli" not in path.relative_to(ROOT).parts[:2]
    ]
    offenders = [line for path in paths for line in _private_core_imports(path, package=package)]
    assert not offenders, f"use the names in {package}.__all__:\n" + "\n".join(offenders)


def test_private_import_check_catches_each_form(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import workflow._runner\n"
        "from workflow._graph import build_graph\n"
        "from workflow import _serde\n"
        "def f():\n    from workflow._durable import registry_for\n"
        "from workflow import Workflow, events\n"
        "from workflow.authoring import HandlerSpec\n"
    )
    found = _private_core_imports(bad, root=tmp_path)
    assert [line.split(" imports ")[1] for line in found] == [
        "workflow._runner",
        "workflow._graph",
        "workflow._serde",
        "workflow._durable",
    ]


def test_allow_listed_private_imports_are_still_needed() -> None:
    for name in PRIVATE_ALLOWED:
        assert _private_core_imports(ROOT / name), (
            f"{name} no longer imports private core modules: remove it from PRIVATE_ALLOWED"
        )


def test_authoring_module_exports_what_it_documents() -> None:
    import workflow.authoring as authoring

    assert isinstance(authoring.__all__, tuple)
    for name in authoring.__all__:
        assert hasattr(authoring, name), name
        assert name in (authoring.__doc__ or ""), f"{name} is exported but not documented"
