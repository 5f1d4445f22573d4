"""The code sandbox: each escape attempt is contained and reported, on every backend."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import executors._sandbox_isolation as isolation_module
from builders import WorkflowBuilder
from executors import (
    CodeExecutor,
    CodeResult,
    SandboxConfig,
    SandboxUnavailableError,
    extract_code_blocks,
    run_blocks,
    run_code,
    sandbox_available,
)
from tests.conftest import require_service
from workflow import RunStatus, WorkflowError

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
# none runs the code as uid 65534 on the host file tree: it needs an interpreter that uid
# can read, which the venv's (under /root) is not; unshare mounts it into view.
OUR_PYTHON_UNDER_ROOT = os.path.realpath(sys.executable).startswith("/root/")
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


# The attacks every namespace backend must contain (unshare runs our own interpreter, under
# /root here, through the mounts that show it to the sandbox uid).
NAMESPACED = pytest.mark.parametrize("backend", ["bubblewrap", "unshare"])


def config(backend: str, **kwargs: object) -> SandboxConfig:
    """A config for ``backend``, skipping (or failing in CI) when it is unavailable here."""
    available, reason = sandbox_available(backend)  # type: ignore[arg-type]
    require_service(available, f"sandbox backend {backend!r}: {reason}")
    if backend == "none":
        kwargs.setdefault("python", SYSTEM_PYTHON)
    if backend == "none":
        kwargs.setdefault("network", True)
    return SandboxConfig(isolation=backend, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def work_parent() -> Iterator[str]:
    """A ``work_dir`` the sandbox uid can traverse (pytest's tmp_path is 0700), removed after."""
    parent = tempfile.mkdtemp(prefix="sandbox-parent-")
    os.chmod(parent, 0o755)
    yield parent
    shutil.rmtree(parent)


def pids_matching(needle: str, exclude: int | None = None) -> list[int]:
    """Host processes (but us and ``exclude``) whose command line or environment has ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), exclude):
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle.encode() in (entry / name).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


async def wait_until_gone(needle: str, within: float = 2.0) -> list[int]:
    """Poll briefly: a SIGKILLed process needs a moment to leave the process table."""
    deadline = time.monotonic() + within
    # Polling the process table: the kernel offers no event to wait on here.
    while (left := pids_matching(needle)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.05)
    return left


# --- extract_code_blocks -------------------------------------------------------------


def test_extract_tagged_blocks_only_when_present() -> None:
    text = "Run:\n```python\nprint(1)\n```\nOutput:\n```\n1\n```\n```py\nprint(2)\n```\n"
    assert extract_code_blocks(text) == ["print(1)\n", "print(2)\n"]


def test_extract_untagged_blocks_when_nothing_is_tagged() -> None:
    assert extract_code_blocks("```\nx = 1\n```\ntext\n~~~\ny = 2\n~~~") == ["x = 1\n", "y = 2\n"]


def test_extract_ignores_other_languages_and_handles_fence_details() -> None:
    assert extract_code_blocks("```sh\nrm -rf /\n```\n```json\n{}\n```") == []
    assert extract_code_blocks("````Python title=x\n```\ninner\n```\n````") == ["```\ninner\n```\n"]
    assert extract_code_blocks("  ```python\n  a = 1\n    b = 2\n  ```") == ["a = 1\n  b = 2\n"]
    assert extract_code_blocks("```python\nunclosed = True") == ["unclosed = True\n"]


def test_extract_bare_code_is_one_block() -> None:
    assert extract_code_blocks("print('bare')\n") == ["print('bare')\n"]
    assert extract_code_blocks("  \n") == []


# --- configuration and results -------------------------------------------------------


def test_config_rejects_silent_opt_out_and_bad_values() -> None:
    with pytest.raises(ValueError, match="network=True"):
        SandboxConfig(isolation="none")
    with pytest.raises(ValueError, match="timeout"):
        SandboxConfig(timeout=0)
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxConfig(memory_bytes=-1)
    with pytest.raises(ValueError, match="RLIMIT_NPROC"):
        SandboxConfig(uid=0)
    with pytest.raises(ValueError, match="isolation"):
        SandboxConfig(isolation="docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="privileged helpers"):
        SandboxConfig(env={"LD_PRELOAD": "/workspace/evil.so"})


def test_result_text_reads_well() -> None:
    result = CodeResult(
        exit_code=-9, stdout="partial\n", stderr="", timed_out=True, killed_reason="timeout"
    )
    assert result.text == "exit code: -9 (timed out)\nstdout:\npartial"
    assert "(no output)" in CodeResult(exit_code=0, stdout="", stderr="").text


def helpers_only(directory: Path, *names: str) -> str:
    """A search path holding only the named helper binaries, to simulate a bare machine."""
    for name in names:
        found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
        if found:
            (directory / name).symlink_to(found)
    return str(directory)


@pytest.mark.anyio
async def test_unavailable_isolation_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "no-bwrap").mkdir()
    (tmp_path / "bare").mkdir()
    no_bwrap = helpers_only(tmp_path / "no-bwrap", "prlimit", "setpriv", "timeout", "unshare")
    bare = helpers_only(tmp_path / "bare", "prlimit", "setpriv", "timeout")
    sandbox_available.cache_clear()
    try:
        monkeypatch.setattr(isolation_module, "_SEARCH_PATH", no_bwrap)
        assert sandbox_available("bubblewrap") == (
            False,
            "bwrap not found; install the Debian package 'bubblewrap'",
        )
        with pytest.raises(SandboxUnavailableError, match="install the Debian package 'bubbl"):
            await run_code("print('must not run')", SandboxConfig(isolation="bubblewrap"))
        sandbox_available.cache_clear()
        monkeypatch.setattr(isolation_module, "_SEARCH_PATH", bare)
        with pytest.raises(SandboxUnavailableError, match="no sandbox is available") as info:
            await run_code("print('must not run')")  # auto: never falls back to 'none'
        assert "apt-get install bubblewrap" in str(info.value)
        assert isinstance(info.value, WorkflowError)  # the project's root error...
        assert isinstance(info.value, RuntimeError)  # ...and what it always was
    finally:
        sandbox_available.cache_clear()


@pytest.mark.anyio
async def test_unreadable_interpreter_is_refused() -> None:
    cfg = config("none", python=sys.executable)
    if not IS_ROOT or not OUR_PYTHON_UNDER_ROOT:
        pytest.skip("needs root and an interpreter under /root")
    with pytest.raises(SandboxUnavailableError, match="python='/usr/bin/python3'"):
        await run_code("pass", cfg)


@pytest.mark.anyio
async def test_default_code_executor_runs_our_interpreter_without_bubblewrap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Root, an interpreter under /root, no bwrap: unshare shows the sandbox uid (only) it."""
    if not IS_ROOT or not OUR_PYTHON_UNDER_ROOT:
        pytest.skip("needs root and an interpreter under /root (pyenv), as on the CI machine")
    require_service(sandbox_available("unshare")[0], "sandbox backend 'unshare'")
    (tmp_path / "no-bwrap").mkdir()
    no_bwrap = helpers_only(tmp_path / "no-bwrap", "prlimit", "setpriv", "timeout", "unshare")
    monkeypatch.setattr(isolation_module, "_SEARCH_PATH", no_bwrap)
    sandbox_available.cache_clear()
    secret = Path.home() / f".sandbox-secret-{uuid.uuid4().hex}"
    secret.write_bytes(b"TOP-SECRET")
    base = os.path.realpath(sys.base_prefix)  # noqa: ASYNC240 (a test; no I/O to speak of)
    code = f"""
        import os, sys
        print(os.getuid(), sys.prefix == {sys.prefix!r}, sys.base_prefix == {sys.base_prefix!r})
        import pydantic  # from the venv's site-packages
        print(sorted(os.listdir("/root")) == [{base.split("/")[2]!r}])
        for path, mode in (({str(secret)!r}, "r"), ({base + "/pwned"!r}, "w")):
            try:
                print("opened", open(path, mode))
            except OSError as exc:
                print("denied", exc.errno)
    """
    try:
        assert sandbox_available("bubblewrap")[0] is False
        node = CodeExecutor()  # all defaults: auto isolation, sys.executable
        assert (node.config.isolation, node.config.python) == ("auto", sys.executable)
        run = await WorkflowBuilder(start=node).build().run(textwrap.dedent(code))
        assert run.status is RunStatus.COMPLETED, run.error
        (result,) = run.outputs
        assert result.exit_code == 0, result.text
        # the secret under /root is hidden (ENOENT), the interpreter read-only (EROFS)
        assert result.stdout == "65534 True True\nTrue\ndenied 2\ndenied 30\n"
        assert secret.read_bytes() == b"TOP-SECRET"
        assert oct(os.stat("/root").st_mode & 0o777) == "0o700"  # the host's view is unchanged
    finally:
        secret.unlink()
        sandbox_available.cache_clear()


def test_reveal_plan_covers_each_hiding_directory_and_binds_only_the_prefixes(
    work_parent: str,
) -> None:
    """What unshare mounts: a tmpfs over the outermost closed directory, the prefixes bound."""
    from executors._sandbox_reveal import plan_reveal, reveal_prefix

    base = Path(work_parent)  # world-traversable, like / on the way to /root
    hidden = base / "home"  # like /root
    prefix = hidden / ".pyenv" / "versions" / "3.x"
    (prefix / "bin").mkdir(parents=True)
    (base / "open" / "venv" / "bin").mkdir(parents=True)
    os.chmod(hidden, 0o700)
    venv = str(base / "open" / "venv")
    plan = plan_reveal([venv, str(prefix), str(prefix)], f"{venv}/bin/python", 65534, 65534)
    assert plan.cover == (str(hidden),)
    assert plan.binds == ((str(prefix), str(prefix)),)  # the venv is reachable as it is
    nested = plan_reveal([str(prefix), str(prefix / "lib")], str(prefix / "bin/py"), 1, 1)
    assert nested.binds == ((str(prefix), str(prefix)),)  # one bind covers what is inside
    assert not plan_reveal([venv], f"{venv}/bin/python", 65534, 65534)  # nothing to do
    assert reveal_prefix(plan_reveal([venv], venv, 65534, 65534), "/stage") == []
    script = reveal_prefix(plan, "/stage")[2]
    assert script.startswith("set -e; umask 022; ")
    assert script.endswith('exec "$@"')
    assert script.index("--bind -o ro") < script.index("-t tmpfs") < script.index("--move")


@pytest.mark.anyio
async def test_empty_blocks_are_rejected() -> None:
    with pytest.raises(ValueError, match="no code blocks"):
        await run_blocks([])


# --- normal runs ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["bubblewrap", "unshare", "none"])
async def test_prints_and_exits_zero(backend: str) -> None:
    result = await run_code("import os\nprint('hello', os.getuid())", config(backend))
    assert result.exit_code == 0
    # As root we drop to uid 65534; otherwise a user namespace maps us to it (not for none).
    uid = 65534 if IS_ROOT or backend != "none" else os.getuid()
    assert result.stdout == f"hello {uid}\n"
    assert (result.stderr, result.timed_out, result.truncated) == ("", False, False)


@pytest.mark.anyio
async def test_interpreter_under_tmp_is_not_hidden_by_the_sandbox_tmpfs(work_parent: str) -> None:
    """A checkout (and its venv) under /tmp must stay visible below the sandbox's own /tmp."""
    cfg = config("bubblewrap")
    venv = Path(tempfile.mkdtemp(prefix="sandbox-venv-", dir="/tmp"))
    try:
        os.chmod(venv, 0o755)
        await anyio.run_process([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        python = str(venv / "bin" / "python")
        result = await run_code(
            "import sys\nprint(sys.prefix)",
            SandboxConfig(isolation="bubblewrap", python=python, work_dir=work_parent),
        )
        assert result.exit_code == 0, result.text
        assert result.stdout.strip() == str(venv)
        assert cfg.isolation == "bubblewrap"
    finally:
        shutil.rmtree(venv)


@pytest.mark.anyio
async def test_nonzero_exit_and_traceback_are_reported() -> None:
    result = await run_code("print('before')\n1 / 0\n", config("bubblewrap"))
    assert result.exit_code == 1
    assert result.stdout == "before\n"
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert 'File "/workspace/block_1.py", line 2' in result.stderr
    assert result.killed_reason is None
    assert "exit code: 1" in result.text
    assert "ZeroDivisionError" in result.text


@pytest.mark.anyio
async def test_blocks_share_a_workspace_and_stop_at_the_first_failure() -> None:
    blocks = [
        "open('helper.py', 'w').write('VALUE = 42\\n')\nprint('one')",
        "import helper\nprint('two', helper.VALUE)",
        "raise SystemExit(3)",
        "print('never')",
    ]
    result = await run_blocks(blocks, config("bubblewrap"))
    assert result.stdout == "one\ntwo 42\n"
    assert result.exit_code == 3


# --- containment ---------------------------------------------------------------------


@pytest.mark.anyio
@NAMESPACED
async def test_execution_directory_is_removed_even_when_locked_down(
    backend: str, work_parent: str
) -> None:
    code = "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a', 0)"
    result = await run_code(code, config(backend, work_dir=work_parent))
    assert result.exit_code == 0, result.text
    assert os.listdir(work_parent) == []


@pytest.mark.anyio
@NAMESPACED
async def test_infinite_loop_times_out_promptly(backend: str) -> None:
    result = await run_code("print('started')\nwhile True: pass", config(backend, timeout=1))
    assert result.timed_out
    assert result.killed_reason == "timeout"
    assert result.exit_code != 0
    assert result.stdout == "started\n"  # output before the kill is kept
    assert "timed out" in result.text


@pytest.mark.anyio
@NAMESPACED
async def test_cpu_limit_stops_a_busy_loop(backend: str) -> None:
    result = await run_code("while True: pass", config(backend, timeout=20, cpu_seconds=1))
    assert result.killed_reason == "cpu"
    assert not result.timed_out


@pytest.mark.anyio
@NAMESPACED
async def test_process_count_is_bounded(backend: str) -> None:
    code = """
        import os, time
        children = 0
        try:
            while children < 1000:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
        except OSError as exc:
            print("fork refused after", children, exc.errno)
    """
    result = await run_code(textwrap.dedent(code), config(backend, max_processes=16))
    assert result.stdout.startswith("fork refused after")
    assert int(result.stdout.split()[3]) < 16


@pytest.mark.anyio
@NAMESPACED
async def test_fork_bomb_is_contained(backend: str) -> None:
    marker = uuid.uuid4().hex
    code = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result = await run_code(code, config(backend, timeout=2, env={"MARK": marker}))
    assert result.timed_out
    assert await wait_until_gone(marker) == []


@pytest.mark.anyio
@NAMESPACED
async def test_memory_bomb_is_stopped(backend: str) -> None:
    code = "hog = []\nwhile True:\n    hog.append(bytearray(16 * 2**20))\n"
    result = await run_code(code, config(backend, memory_bytes=256 * 2**20))
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr
    assert result.killed_reason == "memory"


@pytest.mark.anyio
@NAMESPACED
async def test_output_flood_is_capped(backend: str) -> None:
    code = "import sys\nchunk = 'x' * 2**20\nfor _ in range(100):\n    sys.stdout.write(chunk)\n"
    result = await run_code(code, config(backend, output_limit_bytes=2**20))
    assert result.truncated
    assert result.killed_reason == "output"
    assert len(result.stdout) == 2**20
    assert "output truncated" in result.text


@pytest.mark.anyio
@NAMESPACED
async def test_big_file_write_is_stopped_by_file_size_limit(backend: str) -> None:
    code = """
        import os
        try:
            with open("big.bin", "wb") as fh:
                for _ in range(100):
                    fh.write(b"x" * 2**20)
        except OSError as exc:
            print(exc.errno, os.path.getsize("big.bin"))
            raise
    """
    cfg = config(backend, file_size_bytes=10 * 2**20)
    result = await run_code(textwrap.dedent(code), cfg)
    errno, size = map(int, result.stdout.split())
    assert errno == 27
    assert size <= 10 * 2**20
    assert result.killed_reason == "file_size"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["bubblewrap", "unshare", "none"])
async def test_secrets_in_our_environment_do_not_leak(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-do-not-leak")
    code = "import os\nprint(os.environ.get('OPENAI_API_KEY'))\nprint(sorted(os.environ))"
    result = await run_code(code, config(backend, env={"EXTRA": "yes"}))
    assert result.stdout.startswith("None\n")
    assert "sk-test-do-not-leak" not in result.stdout
    assert "'EXTRA'" in result.stdout


@pytest.mark.anyio
@NAMESPACED
async def test_files_outside_the_workspace_are_invisible(backend: str) -> None:
    home_secret = Path.home() / f".sandbox-secret-{uuid.uuid4().hex}"
    home_secret.write_bytes(b"TOP-SECRET")
    try:
        targets = [str(home_secret), str(REPO / "pyproject.toml"), "/etc/shadow"]
        pwned = REPO / f"pwned-{uuid.uuid4().hex}"
        code = f"""
            for path in {targets!r}:
                try:
                    print(open(path).read())
                except OSError as exc:
                    print("denied", type(exc).__name__)
            try:
                open({str(pwned)!r}, "w").write("x")
                print("wrote")
            except OSError:
                print("denied write")
        """
        result = await run_code(textwrap.dedent(code), config(backend))
        # unshare keeps the host's tree: the world-readable checkout is readable there.
        assert result.stdout.count("denied") == (4 if backend == "bubblewrap" else 3)
        assert "TOP-SECRET" not in result.stdout
        assert not pwned.exists()
    finally:
        home_secret.unlink()


@pytest.mark.anyio
@NAMESPACED
async def test_network_is_off_unless_enabled(backend: str) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
                print("connected")
            except OSError as exc:
                print("blocked", type(exc).__name__)
        """
        blocked = await run_code(textwrap.dedent(code), config(backend))
        assert blocked.stdout.startswith("blocked")
        with pytest.raises(BlockingIOError):
            server.accept()
        # The positive control: the same code does connect when network=True.
        allowed = await run_code(textwrap.dedent(code), config(backend, network=True))
        assert allowed.stdout == "connected\n"


ORPHAN = """
    import os, sys
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.setsid()  # leave the process group, too
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.write(write_end, b"x")
            script = "import sys, time; time.sleep(1); open(sys.argv[1], 'w').write('alive')"
            os.execv(sys.executable, [sys.executable, "-c", script, {marker!r}, {token!r}])
        os._exit(0)
    os.close(write_end)
    os.read(read_end, 1)
    print("spawned")
"""


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["bubblewrap", "unshare", "none"])
async def test_orphaned_background_process_does_not_survive(backend: str) -> None:
    cfg = config(backend)
    token = uuid.uuid4().hex
    shared = tempfile.mkdtemp(prefix="sandbox-marker-")
    try:
        os.chmod(shared, 0o777)  # reachable by the sandbox uid when the file tree is shared
        marker = os.path.join(shared, "marker")
        code = textwrap.dedent(ORPHAN.format(marker=marker, token=token))
        result = await run_code(code, cfg)
        assert result.stdout == "spawned\n", result.text
        assert await wait_until_gone(token) == []
        await anyio.sleep(1.5)
        assert not await anyio.Path(marker).exists()
    finally:
        shutil.rmtree(shared)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["bubblewrap", "unshare", "none"])
async def test_cancellation_kills_the_tree(backend: str, work_parent: str) -> None:
    cfg = config(backend, work_dir=work_parent)
    token = uuid.uuid4().hex
    code = f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {token!r}])
        time.sleep(60)
    """
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_code, textwrap.dedent(code), cfg)
            while not pids_matching(token):  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    assert await wait_until_gone(token) == []
    assert os.listdir(work_parent) == []  # the execution directory was removed, too


@pytest.mark.parametrize("backend", ["bubblewrap", "unshare"])
def test_killed_engine_leaves_no_sandbox_behind(backend: str, work_parent: str) -> None:
    cfg = config(backend)
    token = uuid.uuid4().hex
    code = f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {token!r}])
        time.sleep(60)
    """
    parent = work_parent  # the killed engine cannot remove its execution directory
    engine = textwrap.dedent(f"""
        import anyio
        from executors import SandboxConfig, run_code
        config = SandboxConfig(isolation={backend!r}, python={cfg.python!r}, work_dir={parent!r})
        anyio.run(run_code, {textwrap.dedent(code)!r}, config)
    """)
    proc = subprocess.Popen([sys.executable, "-c", engine], cwd=REPO, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30  # a busy machine can take long to import the engine
        # The engine's own command line holds the token too: wait for the sandboxed process.
        while not pids_matching(token, exclude=proc.pid) and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"engine exited early: {proc.communicate()[1].decode()}")
            time.sleep(0.05)
        # The code runs, so the sandbox is set up and tied to the engine (bwrap arms its
        # parent-death signals during set-up: see lifetime_prefix).
        assert pids_matching(token, exclude=proc.pid), "the sandboxed code never started"
    finally:
        proc.send_signal(signal.SIGKILL)  # no cleanup code of ours runs
        proc.communicate()
    deadline = time.monotonic() + 10  # the kernel reaps a dead namespace's processes
    while pids_matching(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids_matching(token) == []
