"""AutoGen faces: configuration, the classic script offline, human input modes, code replies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import GroupChatBuilder
from executors import (
    AssistantAgent,
    ChatConfigError,
    ChatMessage,
    ChatResult,
    HumanExecutor,
    ScriptedChatClient,
    UserProxyAgent,
    sandbox_available,
)
from tests.conftest import require_service
from workflow import RunStatus, WorkflowError

REPO = Path(__file__).resolve().parents[2]

FIB_CODE = """Here is the function with a test:

```python
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

assert [fib(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]
print("fib(20) =", fib(20))
```"""
DONE = "The test passed and fib(20) is 6765. TERMINATE"

# The classic AutoGen 0.2 example, only its import line changed.
CLASSIC = """\
import os
from executors import AssistantAgent, UserProxyAgent

config_list = [{"model": "gpt-4", "api_key": os.environ.get("OPENAI_API_KEY")}]

assistant = AssistantAgent("assistant", llm_config={"config_list": config_list})
user_proxy = UserProxyAgent(
    "user_proxy",
    human_input_mode="NEVER",
    max_consecutive_auto_reply=10,
    is_termination_msg=lambda x: x.get("content", "").rstrip().endswith("TERMINATE"),
    code_execution_config={"work_dir": "coding", "use_docker": False},
)
user_proxy.initiate_chat(
    assistant,
    message="Write a Python function to calculate Fibonacci numbers and test it.",
)
"""


def need_sandbox() -> None:
    available, reason = sandbox_available("auto")
    require_service(available, f"code sandbox: {reason}")


@pytest.fixture
def work_dir() -> Iterator[str]:
    """A directory the sandbox can reach (pytest's tmp_path is 0700), removed after."""
    parent = tempfile.mkdtemp(prefix="autogen-")
    os.chmod(parent, 0o755)
    yield parent
    shutil.rmtree(parent)


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LEDGERFLOW_SCRIPTED_REPLIES"):
        monkeypatch.delenv(name, raising=False)


def assistant(replies: list[str], name: str = "assistant") -> AssistantAgent:
    return AssistantAgent(name, llm_config={"client": ScriptedChatClient(replies)})


def proxy(work_dir: str | None = None, **options: object) -> UserProxyAgent:
    options.setdefault("human_input_mode", "NEVER")
    code = {"work_dir": work_dir, "use_docker": False} if work_dir else False
    options.setdefault("code_execution_config", code)
    return UserProxyAgent("user_proxy", **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- configuration


def test_docker_is_refused_with_a_pointer_to_the_sandbox() -> None:
    with pytest.raises(ValueError, match="does not use; code already runs in its own sandbox"):
        UserProxyAgent("p", code_execution_config={"use_docker": True})
    with pytest.raises(ValueError, match="unsupported key"):
        UserProxyAgent("p", code_execution_config={"executor": "x", "use_docker": False})
    with pytest.raises(ValueError, match="not supported"):
        UserProxyAgent("p", llm_config={"config_list": []})
    with pytest.raises(ValueError, match="human_input_mode"):
        UserProxyAgent("p", human_input_mode="SOMETIMES")  # type: ignore[arg-type]


def test_model_configuration_and_offline_switches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ChatConfigError, match="LEDGERFLOW_SCRIPTED_REPLIES"):
        AssistantAgent("a", llm_config={"config_list": [{"model": "gpt-4", "api_key": None}]})
    with pytest.raises(ChatConfigError, match="needs an llm_config"):
        AssistantAgent("a")
    with pytest.raises(ChatConfigError, match="names no model"):
        AssistantAgent("a", llm_config={"config_list": [{}]})
    real = AssistantAgent("a", llm_config={"config_list": [{"model": "m", "api_key": "sk-test"}]})
    assert type(real.client).__name__ == "OpenAIChatClient"
    local = AssistantAgent("a", llm_config={"model": "m", "base_url": "http://127.0.0.1:9/v1"})
    assert getattr(local.client, "base_url", None) == "http://127.0.0.1:9/v1"

    monkeypatch.setenv("LEDGERFLOW_SCRIPTED_REPLIES", json.dumps(["hi"]))
    scripted = AssistantAgent("a", llm_config={"config_list": [{"model": "gpt-4"}]})
    assert isinstance(scripted.client, ScriptedChatClient)
    assert scripted.client.remaining == 1
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps({"a": ["one", "two"], "b": ["x"]}))
    monkeypatch.setenv("LEDGERFLOW_SCRIPTED_REPLIES", f"@{replies}")
    by_name = AssistantAgent("a", llm_config={"config_list": [{"model": "gpt-4"}]})
    assert isinstance(by_name.client, ScriptedChatClient)
    assert by_name.client.remaining == 2
    monkeypatch.setenv("LEDGERFLOW_SCRIPTED_REPLIES", "not json")
    with pytest.raises(ChatConfigError, match="not JSON"):
        AssistantAgent("a", llm_config={"config_list": [{"model": "gpt-4"}]})


# --------------------------------------------------------------------------- chats


def test_the_classic_script_runs_offline_with_only_its_import_changed(work_dir: str) -> None:
    need_sandbox()
    script = Path(work_dir) / "classic.py"
    script.write_text(CLASSIC)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LEDGERFLOW_SCRIPTED_REPLIES": json.dumps([FIB_CODE, DONE]),
    }
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("user_proxy (to assistant):\n\nWrite a Python function") < out.index(
        "assistant (to user_proxy):\n\nHere is the function"
    )
    assert "exitcode: 0 (execution succeeded)\nCode output: fib(20) = 6765" in out
    assert out.rstrip().endswith(f"assistant (to user_proxy):\n\n{DONE}\n\n{'-' * 80}")
    assert (Path(work_dir) / "coding").is_dir()


def test_chat_result_history_summary_and_cost(work_dir: str) -> None:
    need_sandbox()
    result = proxy(work_dir, max_consecutive_auto_reply=10).initiate_chat(
        assistant([FIB_CODE, DONE]), message="Fibonacci, please.", silent=True
    )
    assert isinstance(result, ChatResult)
    assert [(h["role"], h["name"]) for h in result.chat_history] == [
        ("assistant", "user_proxy"),
        ("user", "assistant"),
        ("assistant", "user_proxy"),
        ("user", "assistant"),
    ]
    assert result.chat_history[2]["content"].startswith("exitcode: 0 (execution succeeded)")
    assert result.summary == "The test passed and fib(20) is 6765."
    assert result.cost["total_tokens"] > 0
    assert result.status == "completed"
    assert result.human_input == []


def test_failing_code_reports_its_error_and_the_fix_runs(work_dir: str) -> None:
    need_sandbox()
    broken = "```python\nprint(1 / 0)\n```"
    fixed = "```python\nprint('fixed')\n```"
    result = proxy(work_dir).initiate_chat(
        assistant([broken, fixed, "TERMINATE"]), message="go", silent=True
    )
    replies = [h["content"] for h in result.chat_history if h["name"] == "user_proxy"][1:]
    assert replies[0].startswith("exitcode: 1 (execution failed)")
    assert "ZeroDivisionError" in replies[0]
    assert replies[1] == "exitcode: 0 (execution succeeded)\nCode output: fixed\n"


def test_prose_without_code_gets_the_default_reply_and_the_limit_ends_it() -> None:
    user = proxy(default_auto_reply="Please go on.", max_consecutive_auto_reply=2)
    result = user.initiate_chat(assistant(["one", "two", "three"]), message="go", silent=True)
    assert [h["content"] for h in result.chat_history] == [
        "go",
        "one",
        "Please go on.",
        "two",
        "Please go on.",
        "three",
    ]


def test_always_mode_asks_the_person_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    prompts: list[str] = []
    answers = iter(["", "exit"])  # enter: use the auto-reply; then end the chat

    def person(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    user = proxy(human_input_mode="ALWAYS", default_auto_reply="auto", input_func=person)
    result = user.initiate_chat(assistant(["first", "second"]), message="hello")
    assert [h["content"] for h in result.chat_history] == ["hello", "first", "auto", "second"]
    assert result.human_input == ["", "exit"]
    assert len(prompts) == 2
    assert "Press enter to skip" in prompts[0]
    printed = capsys.readouterr().out
    assert "user_proxy (to assistant):\n\nauto\n" in printed


def test_terminate_mode_asks_only_at_the_end() -> None:
    asked: list[str] = []

    async def person(prompt: str) -> str:
        asked.append(prompt)
        return "one more thing" if len(asked) == 1 else ""

    user = proxy(human_input_mode="TERMINATE", default_auto_reply="ok", input_func=person)
    chat = assistant(["a", "b TERMINATE", "c TERMINATE"])
    result = user.initiate_chat(chat, message="start", silent=True)
    assert [h["content"] for h in result.chat_history] == [
        "start",
        "a",
        "ok",
        "b TERMINATE",
        "one more thing",
        "c TERMINATE",
    ]
    assert result.summary == "c"
    assert result.human_input == ["one more thing", ""]


def test_max_turns_and_a_custom_termination_message() -> None:
    user = proxy(
        default_auto_reply="more",
        is_termination_msg=lambda m: m.get("content") == "STOP",
    )
    limited = user.initiate_chat(assistant(["1", "2", "3"]), message="go", max_turns=2, silent=True)
    assert [h["content"] for h in limited.chat_history] == ["go", "1", "more", "2"]
    assert limited.status == RunStatus.MAX_SUPERSTEPS.value
    stopped = user.initiate_chat(assistant(["1", "STOP"]), message="go", silent=True)
    assert stopped.chat_history[-1]["content"] == "STOP"


def test_a_failing_chat_raises() -> None:
    with pytest.raises(WorkflowError, match="ran out of replies"):
        proxy(default_auto_reply="more").initiate_chat(assistant(["only one"]), message="go")


@pytest.mark.anyio
async def test_async_chat_and_the_faces_as_group_chat_participants() -> None:
    result = await proxy(default_auto_reply="ok", max_consecutive_auto_reply=1).a_initiate_chat(
        assistant(["hi", "bye"]), message="hello", silent=True
    )
    assert [h["content"] for h in result.chat_history] == ["hello", "hi", "ok", "bye"]
    user = proxy(default_auto_reply="noted")
    assert isinstance(user.as_executor(), HumanExecutor)
    wf = GroupChatBuilder([assistant(["plan", "done"], "planner"), user], max_rounds=3).build()
    chat = await wf.run("task")
    assert chat.status is RunStatus.COMPLETED, chat.error
    (conversation,) = chat.outputs
    assert [(m.author, m.text) for m in conversation] == [
        (None, "task"),
        ("planner", "plan"),
        ("user_proxy", "noted"),
        ("planner", "done"),
    ]
    assert isinstance(conversation[0], ChatMessage)


def test_the_example_runs_offline(work_dir: str) -> None:
    need_sandbox()
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "autogen_classic.py")],
        cwd=work_dir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Code output: all tests passed; fibonacci(30) = 832040" in done.stdout
    assert done.stdout.rstrip().endswith(f"TERMINATE\n\n{'-' * 80}")
