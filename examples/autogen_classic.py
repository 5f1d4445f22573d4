"""The classic AutoGen 0.2 example, with only its import line changed.

Below the marked line is the AutoGen script as it is usually written: an assistant that
writes Python and a user proxy that runs it and reports back, until the assistant says
TERMINATE. The only change is ``from autogen import ...`` -> ``from executors import ...``.
The proxy runs the code in Ledgerflow's sandbox (no network, resource limits, a fresh
workspace under ``coding/`` per reply) instead of on the bare machine::

    .venv/bin/python examples/autogen_classic.py

Offline by default: without ``OPENAI_API_KEY`` the few lines above the marked line set
``LEDGERFLOW_SCRIPTED_REPLIES``, which makes every ``AssistantAgent`` replay these replies
instead of calling a model (the AutoGen script itself is untouched). With
``OPENAI_API_KEY`` set, the assistant talks to the real model named in ``config_list``.
Code execution needs a sandbox backend (bubblewrap or unshare); without one the chat stops
with an error saying why.
"""

import json
import os

if not os.environ.get("OPENAI_API_KEY") and not os.environ.get("LEDGERFLOW_SCRIPTED_REPLIES"):
    os.environ["LEDGERFLOW_SCRIPTED_REPLIES"] = json.dumps(
        [
            "Here is an iterative Fibonacci function with a few tests:\n\n"
            "```python\n"
            "def fibonacci(n: int) -> int:\n"
            '    """Return the n-th Fibonacci number (fibonacci(0) == 0)."""\n'
            "    if n < 0:\n"
            '        raise ValueError("n must be non-negative")\n'
            "    a, b = 0, 1\n"
            "    for _ in range(n):\n"
            "        a, b = b, a + b\n"
            "    return a\n"
            "\n"
            "assert [fibonacci(i) for i in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\n"
            "assert fibonacci(50) == 12586269025\n"
            'print("all tests passed; fibonacci(30) =", fibonacci(30))\n'
            "```",
            "The tests passed: fibonacci(30) is 832040 and the edge cases hold. TERMINATE",
        ]
    )

# ---- the AutoGen 0.2 script; only the import line differs ---------------------------------
from executors import AssistantAgent, UserProxyAgent  # was: from autogen import ...

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
