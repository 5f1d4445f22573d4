"""``ledgerflow serve``: workflows as an HTTP service (Starlette on uvicorn).

Core-only: this package imports nothing from ``builders``, ``executors`` or ``visualize``; the
CLI hands it the loaded workflows and a diagram renderer. It needs the ``serve`` extra
(``pip install ledgerflow[serve]``) and is imported only when serving.
"""

from __future__ import annotations

from ._app import DEFAULT_MAX_BODY, create_app
from ._errors import ApiError
from ._eventlog import EventLog, eventlog_for_url
from ._server import serve

__all__ = ("DEFAULT_MAX_BODY", "ApiError", "EventLog", "create_app", "eventlog_for_url", "serve")
