"""Isolation of what a handler reads: committed state and delivered messages.

A handler may mutate a value it got from ``ctx.get_state``, ``ctx.get_executor_state`` or as
a message without changing committed state or another executor's view, and if it then
fails the committed state is exactly as before (API.md, "Streams, errors, state"). The
cheapest correct way: values of immutable types pass through as they are (the hot path's
ints and strings cost one set lookup), tuples and frozensets of them too, and anything else
is deep-copied as it is handed over. A value that cannot be copied (a lock, a live client)
passes through: it cannot be checkpointed either, so only an in-memory run carries one.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import enum
import fractions
import uuid
from typing import Any

__all__ = ("IMMUTABLE", "isolated")

IMMUTABLE: frozenset[type] = frozenset(
    {
        str,
        int,
        float,
        bool,
        bytes,
        complex,
        type(None),
        range,
        decimal.Decimal,
        fractions.Fraction,
        dt.datetime,
        dt.date,
        dt.time,
        dt.timedelta,
        uuid.UUID,
    }
)


def isolated(value: Any) -> Any:
    """``value`` itself when nothing in it can change, else a deep copy of it.

    Plain containers (dict, list, and tuples holding them) are copied by hand, about ten
    times faster than ``copy.deepcopy`` for the small ones messages usually are; anything
    else goes through ``deepcopy``. (Like JSON, the hand copy does not keep two references
    to one object as one; a cycle falls back to ``deepcopy``.)
    """
    tp = type(value)
    if tp in IMMUTABLE:
        return value
    if tp is dict or tp is list or tp is tuple:
        try:
            return _plain(value)
        except RecursionError:  # a cycle: deepcopy keeps it one
            pass
    elif tp is frozenset:
        for item in value:
            if type(item) not in IMMUTABLE:
                break
        else:
            return value
    elif isinstance(value, (enum.Enum, type)):
        return value
    try:
        return copy.deepcopy(value)
    except (TypeError, copy.Error):  # e.g. a lock: not isolatable, and not checkpointable
        return value


def _plain(value: Any) -> Any:
    tp = type(value)
    if tp in IMMUTABLE:
        return value
    if tp is dict:
        return {k: _plain(v) for k, v in value.items()}
    if tp is list:
        return [_plain(v) for v in value]
    if tp is tuple:
        items = [_plain(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value  # nothing in it can change: the tuple itself
        return tuple(items)
    return isolated(value)
