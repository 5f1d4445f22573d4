"""The packages consume run streams with ``async with``, never the plain ``async for`` form.

``async for e in wf.run_stream(x)`` without ``async with`` parks a helper thread per running
stream (``workflow/_stream.py``); that form is for users. This test reads the source of
``workflow``, ``builders``, ``executors`` and ``visualize`` (docstrings and comments are not
code, so they may show the plain form) and accepts a ``run_stream(...)`` or
``resume_stream(...)`` call only when:

* it is the context expression of an ``async with`` item;
* or it is assigned to a name that its function only ever enters with ``async with NAME``;
* or it is a ``lambda``'s body (a stream factory handed on, as the service does) in a module
  that enters a factory's result (``async with PARAM()``) and never iterates one directly.

Anything else (iterated, wrapped in ``aclosing``, passed on, returned, bound with
``functools.partial``) is reported with its place.
"""

from __future__ import annotations

import ast
import pathlib
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("workflow", "builders", "executors", "visualize")
METHODS = frozenset({"run_stream", "resume_stream"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, _FUNCTIONS):
            return node
    return None


def _entered(expr: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether ``expr`` is the context expression of an ``async with`` item."""
    item = parents.get(expr)
    return (
        isinstance(item, ast.withitem)
        and item.context_expr is expr
        and isinstance(parents.get(item), ast.AsyncWith)
    )


def _name_only_entered(name: str, scope: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    loads = [
        node
        for node in ast.walk(scope)
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
    ]
    return bool(loads) and all(_entered(node, parents) for node in loads)


def _factories_entered(tree: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """The module enters a factory parameter's result and never iterates one directly."""
    params = {
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, _FUNCTIONS)
        for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
    }
    entered = iterated = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in params:
                if _entered(node, parents):
                    entered = True
                elif isinstance(parents.get(node), ast.AsyncFor):
                    iterated = True
    return entered and not iterated


def plain_stream_uses(source: str, where: str = "<source>") -> list[str]:
    """``"where:line: why"`` for each run stream the source does not consume with async with."""
    tree = ast.parse(source, where)
    parents = _parents(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in METHODS):
            continue
        call = parents.get(node)
        if not (isinstance(call, ast.Call) and call.func is node):
            if isinstance(call, ast.Call) and node in call.args:
                callee = call.func
                called = (
                    callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
                )
                if called == "partial":
                    found.append(f"{where}:{node.lineno}: {node.attr} bound with partial")
            continue
        holder = parents.get(call)
        if _entered(call, parents):
            continue
        if (
            isinstance(holder, ast.Assign)
            and len(holder.targets) == 1
            and isinstance(holder.targets[0], ast.Name)
        ):
            scope = _enclosing_function(holder, parents) or tree
            if _name_only_entered(holder.targets[0].id, scope, parents):
                continue
            found.append(
                f"{where}:{call.lineno}: {node.attr}() assigned to "
                f"{holder.targets[0].id!r}, which is not only entered with async with"
            )
            continue
        if isinstance(holder, ast.Lambda) and holder.body is call:
            if _factories_entered(tree, parents):
                continue
            found.append(
                f"{where}:{call.lineno}: {node.attr}() in a factory whose result this module "
                "does not enter with async with"
            )
            continue
        found.append(f"{where}:{call.lineno}: {node.attr}() not entered with async with")
    return found


def test_packages_consume_run_streams_with_async_with() -> None:
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += plain_stream_uses(path.read_text(encoding="utf-8"), rel)
    assert found == [], (
        "use `async with wf.run_stream(...) as events:` (the plain form parks a helper "
        "thread per running stream; it is for users):\n" + "\n".join(found)
    )


# -- the check itself ----------------------------------------------------------------------


def _uses(source: str) -> list[str]:
    return plain_stream_uses(textwrap.dedent(source))


def test_check_flags_the_plain_forms() -> None:
    assert _uses(
        """
        async def f(wf):
            async for e in wf.run_stream(1):
                pass
        """
    ) == ["<source>:3: run_stream() not entered with async with"]
    assert _uses(
        """
        async def f(wf):
            stream = wf.resume_stream("r")
            async with stream as events:
                pass
            async for e in stream:
                pass
        """
    ) == [
        "<source>:3: resume_stream() assigned to 'stream', which is not only entered with "
        "async with"
    ]
    assert len(_uses("async def f(wf):\n    s = wf.run_stream(1)\n    await g(s)\n")) == 1
    assert _uses(
        """
        import contextlib
        async def f(wf):
            async with contextlib.aclosing(wf.run_stream(1)) as s:
                pass
        """
    ) == ["<source>:4: run_stream() not entered with async with"]
    assert _uses("async def f(wf):\n    await g(wf.resume_stream('r'))\n") == [
        "<source>:2: resume_stream() not entered with async with"
    ]
    assert _uses("import functools\nagain = functools.partial(wf.resume_stream, 'r')\n") == [
        "<source>:2: resume_stream bound with partial"
    ]
    assert _uses(
        """
        def spawn(wf):
            go(lambda: wf.run_stream(1))
        async def drive(stream):
            async for e in stream():
                pass
        """
    ) == [
        "<source>:3: run_stream() in a factory whose result this module does not enter with "
        "async with"
    ]


def test_check_accepts_async_with_and_docstrings() -> None:
    assert (
        _uses(
            '''
        async def f(wf):
            """Not this: ``async for e in wf.run_stream(x)``."""
            async with wf.run_stream(1) as events:
                async for e in events:
                    pass
            stream = wf.resume_stream("r")
            async with stream as running:
                async for e in running:
                    pass
        def spawn(wf):
            go(lambda: wf.run_stream(1))
        async def drive(stream):
            async with stream() as events:
                async for e in events:
                    pass
        def signature(wf):
            return inspect.signature(wf.resume_stream)
        '''
        )
        == []
    )
