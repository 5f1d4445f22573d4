"""Serving the app with uvicorn: bind checks, the store and its event log, shutdown."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from workflow._errors import WorkflowError
from workflow._workflow import Workflow

from ._app import DEFAULT_MAX_BODY, SvgRenderer, create_app
from ._eventlog import eventlog_for_url

__all__ = ("check_bind", "serve")


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if token:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise WorkflowError(
            f"refusing to serve on {host!r} without a token: anyone who can reach it could run "
            "workflows; pass --token T (clients send 'Authorization: Bearer T') or bind 127.0.0.1"
        )


def serve(
    workflows: Mapping[str, Workflow] | Sequence[Workflow],
    *,
    store_url: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    render_svg: SvgRenderer | None = None,
    cors_origins: Sequence[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY,
    adopt_interval: float | None = 5.0,
    log_level: str = "info",
    route_factories: Sequence[Any] = (),
) -> None:
    """Serve ``workflows`` until interrupted (blocks); runs are kept in ``store_url``."""
    check_bind(host, token)
    import uvicorn

    from workflow._stores import store_from_url

    store: Any = store_from_url(store_url)
    app = create_app(
        workflows,
        store,
        events=eventlog_for_url(store_url),
        token=token,
        cors_origins=cors_origins,
        max_body_bytes=max_body_bytes,
        render_svg=render_svg,
        adopt_interval=adopt_interval,
        close_store=True,
        route_factories=route_factories,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=5,
        # longer than clients' pools keep idle connections: fewer reuse-after-close races
        timeout_keep_alive=75,
        server_header=False,
    )
    uvicorn.Server(config).run()
