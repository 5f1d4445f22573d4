"""``render``: the suffix picks the format; a missing ``dot`` is a clear, named error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import require_service
from visualize import DotNotFoundError, render, to_dot, to_mermaid

from . import graphs
from .test_overlay import OVERLAY


def needs_dot() -> None:
    require_service(shutil.which("dot") is not None, "Graphviz `dot` is not installed")


def test_text_formats(tmp_path: Path) -> None:
    wf = graphs.pipeline()
    assert render(wf, tmp_path / "g.dot").read_text() == to_dot(wf).source
    assert render(wf, tmp_path / "g.gv").read_text() == to_dot(wf).source
    assert render(wf, str(tmp_path / "g.mmd")).read_text() == to_mermaid(wf)
    assert render(wf, tmp_path / "G.MMD", run=OVERLAY).read_text() == to_mermaid(wf, run=OVERLAY)


def test_unknown_suffix_lists_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown suffix '\.jpg'; use one of .svg, .png, .pdf"):
        render(graphs.pipeline(), tmp_path / "g.jpg")
    with pytest.raises(ValueError, match=r"unknown suffix '\(none\)'"):
        render(graphs.pipeline(), tmp_path / "graph")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")]
)
def test_image_formats(tmp_path: Path, suffix: str, magic: bytes) -> None:
    needs_dot()
    path = render(graphs.nested(), tmp_path / f"g{suffix}", run={"status": {"first": "failed"}})
    assert path.read_bytes().startswith(magic)


def test_svg_is_deterministic_and_carries_tooltips(tmp_path: Path) -> None:
    needs_dot()
    first = render(graphs.pipeline(), tmp_path / "a.svg", run=OVERLAY).read_bytes()
    second = render(graphs.pipeline(), tmp_path / "b.svg", run=OVERLAY).read_bytes()
    assert first == second
    svg = first.decode()
    assert "error: ValueError(&#39;cannot fix 6&#39;)" in svg or "cannot fix 6" in svg
    assert "waiting for input" in svg


def test_missing_dot_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DotNotFoundError, match=r"apt-get install graphviz") as info:
        render(graphs.pipeline(), tmp_path / "g.png")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert isinstance(info.value, RuntimeError)
    render(graphs.pipeline(), tmp_path / "g.dot")  # text formats need no dot
    assert not (tmp_path / "g.png").exists()
