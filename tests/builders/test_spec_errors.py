"""Bad specs: each is refused with a ``SpecError`` naming the place in the document and the
fix, and nothing in a spec is ever imported or evaluated unless the caller allows it."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from builders import SpecError, WorkflowBuilder, dump_spec, load_spec
from executors import ChatAgent, ScriptedChatClient
from workflow import GraphValidationError


def up(text: str) -> str:
    return text.upper()


def down(text: str) -> str:
    return text.lower()


def yes(text: str) -> bool:
    return True


def team(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "group_chat",
        "name": "chat",
        "clients": {"script": {"type": "scripted", "replies": ["hi"]}},
        "agents": {
            "coder": {"instructions": "Code.", "client": "script"},
            "critic": {"instructions": "Review.", "client": "script"},
        },
        "termination": {"max_messages": 4},
    }
    spec.update(changes)
    return spec


def refused(spec: Any, **options: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec(spec, **options)
    assert isinstance(caught.value, GraphValidationError)  # the contract's error family
    return caught.value


def test_a_good_spec_loads() -> None:
    assert load_spec(team()).name == "chat"


def test_unknown_or_missing_kind() -> None:
    error = refused(team(kind="swarm"))
    assert error.path == "kind"
    assert "unknown kind 'swarm'" in str(error)
    assert "group_chat" in str(error)
    spec = team()
    del spec["kind"]
    assert "missing" in str(refused(spec))


def test_unknown_client_names_the_agent_and_the_known_clients() -> None:
    spec = team()
    spec["agents"]["coder"]["client"] = "gpt"
    error = refused(spec)
    assert str(error).startswith("agents.coder.client: unknown client 'gpt'")
    assert "known: 'script'" in str(error)


def test_unknown_participant_and_agent() -> None:
    error = refused(team(participants=["coder", "tester"]))
    assert str(error).startswith("participants[1]: unknown participant 'tester'")
    graph = {
        "kind": "graph",
        "name": "g",
        "executors": {"a": {"agent": "nobody"}},
        "start": "a",
    }
    assert str(refused(graph)).startswith("executors.a.agent: unknown agent 'nobody'")


def test_unknown_function_names_the_fix() -> None:
    spec = team()
    spec["agents"]["coder"]["tools"] = ["search_docs"]
    error = refused(spec, functions={"search_doc": len})
    assert error.path == "agents.coder.tools[0]"
    assert "unknown function 'search_docs'" in str(error)
    assert "did you mean 'search_doc'" in str(error)
    assert "functions={'search_docs': ...}" in str(error)


def test_unknown_edge_target() -> None:
    graph = {
        "kind": "graph",
        "name": "g",
        "executors": {"a": {"function": "f"}},
        "start": "a",
        "edges": [{"from": "a", "to": "b"}],
    }
    error = refused(graph, functions={"f": up})
    assert str(error).startswith("edges[0].to: unknown executor 'b'")


def test_a_key_in_place_of_the_variable_name_is_refused_without_echoing_it() -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    spec = team(clients={"gpt": {"type": "openai", "model": "m", "api_key_env": key}})
    error = refused(spec)
    assert error.path == "clients.gpt.api_key_env"
    assert "looks like a key" in str(error)
    assert key not in str(error)
    spec = team(clients={"gpt": {"type": "openai", "model": "m", "api_key": key}})
    error = refused(spec)
    assert error.path == "clients.gpt.api_key"
    assert "api_key_env" in str(error)
    assert key not in str(error)
    spec = team(clients={"gpt": {"type": "openai", "model": "m", "api_key_env": "no spaces!"}})
    error = refused(spec)
    assert error.path == "clients.gpt.api_key_env"
    assert "no spaces" not in str(error)


def test_wrong_types_name_their_place() -> None:
    error = refused(team(max_rounds="ten"))
    assert error.path == "max_rounds"
    assert "integer" in str(error)
    spec = team()
    spec["agents"]["coder"]["tools"] = "search"
    assert refused(spec).path == "agents.coder.tools"
    error = refused(team(clients={"script": {"type": "scripted", "replies": [3]}}))
    assert error.path == "clients.script.replies[0]"
    error = refused(team(termination={"max_messages": 3, "text_mention": "DONE"}))
    assert error.path == "termination"
    assert "exactly one" in str(error)
    error = refused(team(agents=[]))
    assert error.path == "agents"


def test_unknown_keys_suggest_the_right_one() -> None:
    error = refused(team(selektor="round_robin"))
    assert error.path == "selektor"
    assert "did you mean 'selector'" in str(error)
    spec = team()
    spec["agents"]["coder"]["instruction"] = "typo"
    error = refused(spec)
    assert error.path == "agents.coder.instruction"
    assert "did you mean 'instructions'" in str(error)
    error = refused(team(termination={"any": [{"max_mesages": 4}]}))
    assert error.path == "termination.any[0].max_mesages"
    assert "did you mean 'max_messages'" in str(error)


def test_a_mistake_inside_a_choice_is_reported_where_it_is() -> None:
    # selector is 'round_robin' or a mapping: the mapping's bad field is the place to fix
    error = refused(team(selector={"client": "script", "attempts": 0}))
    assert error.path == "selector.attempts"
    assert "greater than or equal to 1" in str(error)


def test_bad_documents() -> None:
    assert "not valid YAML" in str(refused("kind: [graph\n  name"))
    assert "a spec is a mapping" in str(refused("- just\n- a list\n"))
    assert "cannot read spec" in str(refused("missing/team.yaml"))


def test_a_group_chat_of_agents_that_never_ends_is_refused() -> None:
    spec = team()
    del spec["termination"]
    error = refused(spec)
    assert error.path == "termination"
    assert "never ends" in str(error)
    assert load_spec(team(termination=None, max_rounds=3)).name == "chat"


def test_an_unguarded_cycle_of_agents_is_refused() -> None:
    graph = {
        "kind": "graph",
        "name": "loop",
        "clients": {"script": {"type": "scripted", "replies": ["x"]}},
        "agents": {
            "writer": {"client": "script"},
            "critic": {"client": "script"},
        },
        "start": "writer",
        "edges": [{"from": "writer", "to": "critic"}, {"from": "critic", "to": "writer"}],
    }
    error = refused(graph)
    assert error.path == "edges"
    assert "writer -> critic -> writer" in str(error)
    graph["edges"][1]["when"] = "needs_work"
    wf = load_spec(graph, functions={"needs_work": lambda r: False})
    assert wf.name == "loop"


def test_switch_cases_need_exactly_one_default() -> None:
    graph = {
        "kind": "graph",
        "name": "g",
        "executors": {"a": {"function": "f"}, "b": {"function": "f2"}},
        "start": "a",
        "edges": [{"from": "a", "cases": [{"when": "yes", "to": "b"}]}],
    }
    functions = {"f": up, "f2": down, "yes": yes}
    error = refused(graph, functions=functions)
    assert error.path == "edges[0].cases"
    assert "default" in str(error)


def test_imports_load_only_when_allowed() -> None:
    spec = team(imports={"danger": "tests.builders.spec_danger:tool"})
    spec["agents"]["coder"]["tools"] = ["danger"]
    sys.modules.pop("tests.builders.spec_danger", None)
    error = refused(spec)
    assert error.path == "agents.coder.tools[0]"
    assert "allow_imports=True" in str(error)
    assert "tests.builders.spec_danger" not in sys.modules  # nothing was imported
    error = refused(spec, allow_imports=True)
    assert error.path == "imports.danger"
    assert "cannot import" in str(error)
    spec["imports"] = {"danger": "tests.builders.test_spec:shout"}
    wf = load_spec(spec, allow_imports=True)
    assert wf.name == "chat"


def test_nothing_in_a_spec_is_evaluated() -> None:
    # YAML tags that build Python objects are refused by the safe loader
    text = "kind: graph\nname: !!python/object/apply:os.system ['echo pwned']\nstart: a\n"
    assert "not valid YAML" in str(refused(text))
    # a condition is a name to look up, never code
    graph = {
        "kind": "graph",
        "name": "g",
        "executors": {"a": {"function": "f"}, "b": {"function": "f"}},
        "start": "a",
        "edges": [{"from": "a", "to": "b", "when": "__import__('os').system('x')"}],
    }
    assert refused(graph, functions={"f": up}).path == "edges[0].when"


def test_dump_refuses_what_has_no_spec_form() -> None:
    wf = WorkflowBuilder(start=up, name="g").add_edge(up, down, condition=lambda s: True).build()
    with pytest.raises(SpecError) as caught:
        dump_spec(wf)
    assert caught.value.path == "edges[0].when"
    assert "lambda" in str(caught.value)

    class Custom:
        async def get_response(self, messages: Any, **options: Any) -> Any: ...

    from builders import SequentialBuilder

    agent = ChatAgent("solo", "", "", Custom())  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="no spec form"):
        dump_spec(SequentialBuilder([agent]).build())
    ok = ChatAgent("solo", "", "", ScriptedChatClient(["x"]))
    assert dump_spec(SequentialBuilder([ok]).build())["kind"] == "sequential"


def test_dump_names_a_replacement_for_a_two_agent_chat() -> None:
    from builders import two_agent_workflow

    a = ChatAgent("a", "", "", ScriptedChatClient(["x"]))
    b = ChatAgent("b", "", "", ScriptedChatClient(["y"]))
    with pytest.raises(SpecError) as caught:
        dump_spec(two_agent_workflow(a, b, max_turns=2))
    assert caught.value.path == "kind"
    assert "group_chat with the round_robin selector" in str(caught.value)
