"""Loading a target: ``FILE.py[:ATTR]`` (a module that builds a workflow) or a spec file
(``team.yaml``, ``.yml``, ``.json``: see ``builders.load_spec``)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workflow._workflow import Workflow

from ._common import UsageError

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def split_target(target: str) -> tuple[Path, str | None]:
    """``"dir/app.py:build"`` -> ``(Path("dir/app.py"), "build")``; the ATTR is optional."""
    if Path(target).is_file():  # a file whose name has a colon
        return Path(target), None
    path, sep, attr = target.rpartition(":")
    if sep and path and attr and all(part.isidentifier() for part in attr.split(".")):
        return Path(path), attr
    return Path(target), None


def _import(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"no such file: {str(path)!r}; pass FILE.py[:ATTR]")
    resolved = path.resolve()
    # The module name is part of each executor class's name, which the graph hash covers:
    # it must not change between `run` and `resume`, so derive it from the file name only.
    stem = re.sub(r"\W", "_", resolved.stem)
    name = stem if stem.isidentifier() and stem not in sys.modules else f"_ledgerflow_{stem}"
    loader = importlib.machinery.SourceFileLoader(name, str(resolved))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(resolved.parent))  # let it import its sibling modules
    try:
        loader.exec_module(module)
    except SystemExit as exc:
        raise UsageError(f"importing {str(path)!r} called exit({exc.code!r})") from None
    except BaseException as exc:
        if os.environ.get("LEDGERFLOW_TRACEBACK") == "1":
            raise
        raise UsageError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from None
    return module


async def load_workflow(target: str) -> Workflow:
    """Load ``FILE.py[:ATTR]``: ATTR names a Workflow or a zero-argument function returning one
    (sync or async); without ATTR, the module's only Workflow.

    A target ending in ``.yaml``, ``.yml`` or ``.json`` is a spec (see ``load_spec_file``).

    Raises:
        UsageError: the file, attribute or workflow is missing, or there are several, or
            the spec is malformed (the message names the place in it).
    """
    if Path(target).suffix.lower() in SPEC_SUFFIXES:
        return load_spec_file(Path(target))
    path, attr = split_target(target)
    module = _import(path)
    if attr is None:
        return _only_workflow(module, path)
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise UsageError(f"{str(path)!r} has no attribute {attr!r}")
        value = getattr(value, part)
    if isinstance(value, Workflow):
        return value
    if not callable(value):
        raise UsageError(f"{attr!r} in {str(path)!r} is a {type(value).__name__}, not a Workflow")
    try:
        inspect.signature(value).bind()
    except TypeError:
        raise UsageError(
            f"{attr!r} in {str(path)!r} takes arguments; name a Workflow or a function that "
            "takes none"
        ) from None
    except ValueError:
        pass  # no signature to check (a builtin): just call it
    try:
        built = value()
        if inspect.isawaitable(built):
            built = await built
    except Exception as exc:
        raise UsageError(f"{attr}() in {str(path)!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(built, Workflow):
        raise UsageError(
            f"{attr}() in {str(path)!r} returned a {type(built).__name__}, not a Workflow "
            "(did you forget .build()?)"
        )
    return built


def _only_workflow(module: Any, path: Path) -> Workflow:
    found: dict[int, tuple[str, Workflow]] = {}
    for name, value in vars(module).items():
        if isinstance(value, Workflow) and not name.startswith("_"):
            found.setdefault(id(value), (name, value))
    nested = {id(child) for _, wf in found.values() for child in _children(wf)}
    if len(found) > 1 and len(found.keys() - nested) == 1:  # the others are its sub-workflows
        found = {k: v for k, v in found.items() if k not in nested}
    if len(found) == 1:
        return next(iter(found.values()))[1]
    if found:
        names = ", ".join(name for name, _ in found.values())
        first = next(iter(found.values()))[0]
        raise UsageError(
            f"{str(path)!r} defines several workflows ({names}); pick one: {path}:{first}"
        )
    builders = [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and _no_args(value)
    ]
    hint = f" (functions that might build one: {', '.join(builders)})" if builders else ""
    raise UsageError(
        f"{str(path)!r} defines no Workflow; pass FILE.py:ATTR naming a Workflow or a function "
        f"returning one{hint}"
    )


def _children(wf: Workflow, depth: int = 0) -> list[Workflow]:
    """Workflows nested in ``wf`` as sub-workflow nodes, at any depth."""
    found: list[Workflow] = []
    for ex in wf.executors.values():
        child = getattr(ex, "workflow", None)
        if isinstance(child, Workflow) and depth < 16:
            found += [child, *_children(child, depth + 1)]
    return found


def _no_args(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind()
    except (TypeError, ValueError):
        return False
    return True


def load_spec_file(path: Path) -> Workflow:
    """A workflow from a spec file named on the command line.

    The person running ``ledgerflow`` chose the file, as they would a ``FILE.py`` that runs
    anyway, so the spec's ``imports`` load (``allow_imports=True``), and the spec's directory
    is importable for them, as a script's siblings are.
    """
    from builders import SpecError, load_spec

    if not path.is_file():
        raise UsageError(f"no such file: {str(path)!r}; pass a spec file or FILE.py[:ATTR]")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return load_spec(path, allow_imports=True)
    except SpecError as exc:
        raise UsageError(f"{str(path)!r}: {exc}") from None
