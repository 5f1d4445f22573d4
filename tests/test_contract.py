"""The public contract (../shared/API.md) imports, and the packages keep their layering."""

from __future__ import annotations

import ast
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
