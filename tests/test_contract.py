"""The public contract (../shared/API.md) imports, and the packages keep their layering."""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib
import re

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


# A dotted name in a string: ``importlib.import_module("workflow._runner")`` and the like.
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.\w+)+")


def _is_module(dotted: str, root: pathlib.Path = ROOT) -> bool:
    """Whether ``dotted`` names a module or package of this checkout (not a class or function)."""
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _prose(tree: ast.AST) -> set[int]:
    """ids of the strings in ``tree`` that are statements of their own (docstrings and the
    like): prose may name a private module, code may not."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


@functools.cache
def _references(path: pathlib.Path) -> tuple[tuple[int, str], ...]:
    """``(line, dotted name)`` for every way ``path`` reaches into another package.

    - each absolute import (``import a.b``, ``from a.b import n`` also gives ``a.b.n``: ``n``
      may be a module or a private name of a public one);
    - attribute chains on names bound to a package's modules (``import workflow`` then
      ``workflow._runner``; ``from workflow import events`` then ``events._x``; aliases such
      as ``import workflow.events as ev``), and ``getattr`` on them with a literal name;
    - dotted names inside string literals other than docstrings and other prose
      (``importlib.import_module("workflow._runner")``).

    Parsed once per file for every check.
    """
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    bound: dict[str, str] = {}  # local name -> the module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name))
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                found.append((node.lineno, dotted))
                if _is_module(dotted):
                    bound[alias.asname or alias.name] = dotted
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    prose = _prose(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            chain: list[str] = []
            base: ast.expr = node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                found.append((node.lineno, ".".join([bound[base.id], *reversed(chain)])))
        elif (  # getattr(workflow, "_runner")
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in bound
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            found.append((node.lineno, f"{bound[node.args[0].id]}.{node.args[1].value}"))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        ):
            found += [(node.lineno, m) for m in _DOTTED.findall(node.value)]
    return tuple(sorted(set(found)))


def _private_core_imports(
    path: pathlib.Path, root: pathlib.Path = ROOT, package: str = "workflow"
) -> list[str]:
    """Every ``package._*`` module or private name (``package.mod._x``) ``path`` reaches."""
    found = []
    for line, dotted in _references(path):
        parts = dotted.split(".")
        if parts[0] == package and any(
            part.startswith("_") and not part.startswith("__") for part in parts[1:]
        ):
            found.append(f"{path.relative_to(root)}:{line} imports {dotted}")
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


# Each form of reaching into the core's private parts, one a line (the reviewer's probe
# included), then forms that are fine; the check must flag exactly the first group.
BAD_FORMS = (
    "import workflow._runner",
    "from workflow._graph import build_graph",
    "from workflow import _serde",
    "def f():\n    from workflow._durable import registry_for",
    "from workflow.authoring import _secret",
    "from workflow.events import _Base",
    "m = importlib.import_module('workflow._runner')",
    "x = workflow._runner",
    "y = workflow.events._Base.kind",
    "z = events._WaveOne",
    "w = ev._Base",
    "__import__('workflow._stores._sqlite')",
    "import workflow._runner as runner",
    "v = getattr(workflow, '_durable', None)",
)
GOOD_FORMS = (
    "import importlib",
    "import workflow",
    "from workflow import Workflow, events",
    "import workflow.events as ev",
    "from workflow.authoring import HandlerSpec",
    "n = workflow.__name__ + workflow.events.__doc__",
    "wf = Workflow._private_of_a_class",  # a class, not a module: not this check's business
    '"""A docstring may say workflow._runner does it."""',
    "t = 'workflow.events and workflow.authoring'",
)


def test_private_import_check_catches_each_form(tmp_path: pathlib.Path) -> None:
    """Every bad form is flagged on its own line and no good form is: it cannot pass vacuously."""
    bad = tmp_path / "bad.py"
    bad.write_text("\n".join([*GOOD_FORMS[:4], *BAD_FORMS, *GOOD_FORMS[4:]]) + "\n")
    found = _private_core_imports(bad, root=tmp_path)
    flagged = {int(entry.split(":")[1].split()[0]) for entry in found}
    expected: set[int] = set()
    line = len(GOOD_FORMS[:4]) + 1
    for form in BAD_FORMS:  # one form spans two lines: its import is on the second
        expected.add(line + form.count("\n"))
        line += form.count("\n") + 1
    assert flagged == expected, "\n".join(found)
    header = "import importlib\nimport workflow\nfrom workflow import events\n"
    header += "import workflow.events as ev\n"
    for n, form in enumerate(BAD_FORMS):  # and each alone, flagged for its own sake
        alone = tmp_path / f"alone{n}.py"
        alone.write_text(header + form + "\n")
        assert _private_core_imports(alone, root=tmp_path), form
    good = tmp_path / "good.py"
    good.write_text("\n".join(GOOD_FORMS) + "\n")
    assert _private_core_imports(good, root=tmp_path) == []


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
