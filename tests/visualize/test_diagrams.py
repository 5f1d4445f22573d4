"""DOT and Mermaid output: golden files, determinism, escaping, edge kinds, nesting.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/visualize`` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require_service
from visualize import to_dot, to_mermaid
from workflow import Workflow

from . import graphs

GOLDEN = Path(__file__).parent / "golden"
WORKFLOWS: dict[str, Callable[[], Workflow]] = {
    "pipeline": graphs.pipeline,
    "nested": graphs.nested,
    "awkward": graphs.awkward,
    "selected": graphs.selected,
}


def check_golden(name: str, text: str) -> None:
    """Compare with ``golden/name``; ``UPDATE_GOLDEN=1`` rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"golden file {name} is missing; create it with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed; if intended, regenerate with UPDATE_GOLDEN=1 and review the diff"
    )


def dot_check(source: str) -> None:
    """``dot`` must parse ``source`` without a single warning."""
    require_service(shutil.which("dot") is not None, "Graphviz `dot` is not installed")
    done = subprocess.run(
        ["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode() == "", done.stderr.decode()


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_dot_golden(name: str) -> None:
    check_golden(f"{name}.dot", to_dot(WORKFLOWS[name]()).source)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_mermaid_golden(name: str) -> None:
    check_golden(f"{name}.mmd", to_mermaid(WORKFLOWS[name]()))


def test_left_to_right_golden() -> None:
    check_golden("pipeline_lr.mmd", to_mermaid(graphs.pipeline(), direction="LR"))
    assert "rankdir=LR" in to_dot(graphs.pipeline(), direction="LR").source


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_same_workflow_same_bytes(name: str) -> None:
    """Built twice from scratch, drawn twice: identical output."""
    first, second = WORKFLOWS[name](), WORKFLOWS[name]()
    assert to_dot(first).source == to_dot(second).source == to_dot(first).source
    assert to_mermaid(first) == to_mermaid(second) == to_mermaid(first)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_dot_parses_without_warnings(name: str) -> None:
    dot_check(to_dot(WORKFLOWS[name]()).source)


def test_start_node_and_kind_shapes() -> None:
    source = to_dot(graphs.pipeline()).source
    assert re.search(r"\tstart \[[^\]]*shape=circle", source)
    assert "start -> parse" in source
    assert re.search(r"\twriter \[[^\]]*shape=ellipse", source)
    assert re.search(r"\tsearch \[[^\]]*shape=component", source)
    assert re.search(r"\tapprove \[[^\]]*shape=trapezium", source)
    assert re.search(r"\tparse \[[^\]]*shape=box", source)


def test_switch_cases_and_conditions_are_labelled() -> None:
    source = to_dot(graphs.pipeline()).source
    assert "score -> publish [label=<case 1: is_long>" in source
    assert "score -> approve [label=<case 2: lambda n: n &lt; 5>" in source
    assert re.search(r"score -> fix \[label=<default>[^\]]*style=dashed", source)
    assert "reviewer -> parse [label=<lambda text: text.endswith(&quot;again!&quot;)>" in source
    mermaid = to_mermaid(graphs.pipeline())
    assert 'n_score -->|"case 1: is_long"| n_publish' in mermaid
    assert 'n_score -.->|"default"| n_fix' in mermaid


def test_fan_in_goes_through_a_join_point() -> None:
    source = to_dot(graphs.pipeline()).source
    assert "writer -> join_merge" in source
    assert "search -> join_merge" in source
    assert "join_merge -> merge" in source
    assert "\twriter -> merge" not in source
    assert 'n_join_merge(("join"))' in to_mermaid(graphs.pipeline())


def test_fan_out_with_selector_goes_through_a_decision() -> None:
    source = to_dot(graphs.selected()).source
    assert re.search(r"select_source \[[^\]]*label=<route>[^\]]*shape=diamond", source)
    assert "select_source -> left" in source
    assert "select_source -> right" in source


def test_sub_workflows_are_nested_clusters_with_namespaced_ids() -> None:
    source = to_dot(graphs.nested()).source
    assert "subgraph cluster_write {" in source
    assert "\t\tsubgraph cluster_write_refine {" in source
    assert "write_refine_draft [label=<draft>" in source
    assert 'tooltip="write/refine/draft (function, start)' in source
    assert "first -> write_intro [lhead=cluster_write" in source
    assert "write_outro -> last [ltail=cluster_write" in source
    assert "compound=true" in source
    mermaid = to_mermaid(graphs.nested())
    assert "subgraph n_cluster_write[" in mermaid
    assert "n_first --> n_cluster_write" in mermaid
    assert "n_cluster_write --> n_last" in mermaid
    assert mermaid.count("\n        end\n") == 1
    assert mermaid.count("\n    end\n") == 1


def test_awkward_ids_are_escaped() -> None:
    wf = graphs.awkward()
    source = to_dot(wf).source
    names = re.findall(r"^\t(\S+) \[label=", source, flags=re.MULTILINE)
    assert len(names) == len(graphs.AWKWARD_IDS) + 1  # and the start marker
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r'[A-Za-z0-9_]+|"[a-z]+"', n) for n in names), names
    assert "label=<&lt;b&gt;bold&lt;/b&gt;>" in source
    assert "label=<say &quot;hi&quot;>" in source
    assert "label=<back\\slash\\>" in source
    mermaid = to_mermaid(wf)
    ids = re.findall(r"^    (\S+?)[\[(]", mermaid, flags=re.MULTILINE)
    assert all(re.fullmatch(r"n_[A-Za-z0-9_]+", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert 'n_say_hi("say #quot;hi#quot;")' in mermaid
    assert '("#lt;b#gt;bold#lt;/b#gt;")' in mermaid
    assert '("a#124;b")' in mermaid
    assert '("#35;hash;")' in mermaid
    assert '("back#92;slash#92;")' in mermaid
    assert '("élan ✍")' in mermaid
    for line in mermaid.splitlines():  # every label is one balanced quoted string
        if line.startswith("    n_") and "-->" not in line:
            assert line.count('"') == 2, line


def test_awkward_ids_render_through_dot() -> None:
    dot_check(to_dot(graphs.awkward()).source)


def test_not_a_workflow() -> None:
    with pytest.raises(TypeError, match="expected a built Workflow"):
        to_dot(object())
    with pytest.raises(ValueError, match="direction must be"):
        to_mermaid(graphs.selected(), direction="BT")  # type: ignore[arg-type]
