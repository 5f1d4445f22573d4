"""Find the Python code in a markdown message, the way a chat agent writes it.

Rules (CommonMark fences, backticks or tildes, any indentation up to three spaces):

* Blocks tagged ``python``, ``py`` or ``python3`` are code (only the first word of the
  info string counts, case-insensitive: ``Python title=x`` is Python).
* Untagged blocks count only when the message has no Python-tagged block at all: models
  often fence program output or prose without a tag next to a tagged program, but a message
  holding only untagged fences almost always means "run this".
* Blocks tagged with another language (``sh``, ``json``, ``text``...) are never code.
* A message without any fence is bare code: one block (if not blank).
"""

from __future__ import annotations

import re

__all__ = ("extract_code_blocks",)

_PYTHON_TAGS = frozenset({"python", "py", "python3"})
_OPEN_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def extract_code_blocks(text: str) -> list[str]:
    """Return the Python blocks of a markdown message, in order.

    Args:
        text: A chat message: markdown with fenced blocks, or bare code.

    Returns:
        The code of each Python block (tagged ones; untagged ones only when no block is
        tagged Python), or ``[text]`` when the message has no fence and is not blank.
    """
    tagged: list[str] = []
    untagged: list[str] = []
    found_fence = False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN_FENCE.match(lines[i])
        if match is None or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        found_fence = True
        fence, indent = match["fence"], len(match["indent"])
        words = match["info"].strip().split(maxsplit=1)
        tag = words[0].lower() if words else ""
        body, i = _read_fenced_body(lines, i + 1, fence, indent)
        if tag in _PYTHON_TAGS:
            tagged.append(body)
        elif not tag:
            untagged.append(body)
    if not found_fence:
        return [text] if text.strip() else []
    return tagged or untagged


def _read_fenced_body(lines: list[str], start: int, fence: str, indent: int) -> tuple[str, int]:
    """Collect lines up to the closing fence (or the end, as CommonMark says).

    Returns the body and the index of the line after the closing fence.
    """
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    body: list[str] = []
    i = start
    while i < len(lines):
        if closing.match(lines[i]):
            return "\n".join(body) + ("\n" if body else ""), i + 1
        body.append(_strip_indent(lines[i], indent))
        i += 1
    return "\n".join(body) + ("\n" if body else ""), i


def _strip_indent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces, as CommonMark does inside an indented fence."""
    removable = len(line) - len(line.lstrip(" "))
    return line[min(indent, removable) :]
