"""Run the service on the test workflows: ``python -m tests.workflow.service.server URL PORT``."""

from __future__ import annotations

import argparse

from tests.workflow.service.apps import all_workflows
from workflow._service import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("port", type=int)
    parser.add_argument("--token")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--adopt-interval", type=float, default=0.5)
    parser.add_argument("--cors", action="append", default=[])
    args = parser.parse_args()

    def svg(wf: object) -> bytes:  # the CLI passes visualize's renderer; any bytes do here
        return f'<svg xmlns="http://www.w3.org/2000/svg"><text>{wf.name}</text></svg>'.encode()  # type: ignore[attr-defined]

    serve(
        all_workflows(),
        store_url=args.store,
        host=args.host,
        port=args.port,
        token=args.token,
        render_svg=svg,
        adopt_interval=args.adopt_interval,
        cors_origins=args.cors,
        max_body_bytes=100_000,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
