"""``dump_spec``: a built ``Workflow`` back to spec data (a dict ``load_spec`` accepts).

The workflow is read, not its builder: the team kind is recognised from the nodes the
builders make (a Magentic orchestrator, a group-chat manager, conversation participants),
so a team written in Python dumps as well as one loaded from a spec. Functions are written
by name, with their import path under ``imports`` when they have one (``load_spec`` uses it
only with ``allow_imports=True``). A key is never written: only the name of the environment
variable it comes from, and a workflow whose key cannot be traced to one is refused.
"""

from __future__ import annotations

from typing import Any

from workflow import Workflow

from ._spec_dump_parts import Parts
from ._spec_schema import SpecError

__all__ = ("dump_spec",)


def dump_spec(wf: Workflow) -> dict[str, Any]:
    """The spec of ``wf``: ``load_spec(dump_spec(wf), functions=...)`` runs and draws like it.

    Raises:
        SpecError: Something in ``wf`` has no spec form (a lambda, a custom client or
            executor class, an API key in no environment variable); the message says which.
    """
    return _Dumper(wf).dump()


class _Dumper(Parts):
    def dump(self) -> dict[str, Any]:
        from executors import MagenticOrchestrator

        from ._concurrent import _Dispatch
        from ._group_chat import GroupChatManager
        from ._handoff import _Handoff
        from ._participant_node import Participant
        from ._sequential import _PassAlong

        wf = self.wf
        start = wf.executors[wf.start_executor_id]
        nodes = list(wf.executors.values())
        if isinstance(start, MagenticOrchestrator):
            body = self._magentic(start)
        elif isinstance(start, GroupChatManager):
            body = self._group_chat(start)
        elif isinstance(start, _Dispatch):
            body = self._concurrent()
        elif nodes and all(isinstance(n, Participant) for n in nodes):
            policies = {type(n.policy) for n in nodes if isinstance(n, Participant)}
            if policies == {_PassAlong}:
                body = self._sequential()
            elif policies == {_Handoff}:
                body = self._handoff()
            else:
                raise SpecError(
                    "kind",
                    f"workflow {wf.name!r} is a conversation of no spec kind (a two-agent chat?); "
                    "a group_chat with the round_robin selector and max_rounds describes the "
                    "same exchange",
                )
        else:
            body = self._graph()
        doc: dict[str, Any] = {"kind": body.pop("kind"), "name": wf.name}
        description = getattr(wf, "description", "")
        if description:
            doc["description"] = description
        for key, value in (
            ("imports", self.imports),
            ("clients", self.clients),
            ("agents", self.agents),
            ("executors", self.executors),
        ):
            if value:
                doc[key] = value
        doc.update(body)
        return doc

    # -- names -------------------------------------------------------------------------------
    def nested(self, wf: Workflow) -> dict[str, Any]:
        return _Dumper(wf).dump()

    def _supersteps(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.wf.max_supersteps != 1000:
            body["max_supersteps"] = self.wf.max_supersteps
        return body

    # -- kinds -------------------------------------------------------------------------------
    def _participants(self, skip: set[str], *, strip_handoffs: bool = False) -> list[str]:
        from ._participant_node import Participant

        names: list[str] = []
        for node_id, node in self.wf.executors.items():
            if node_id in skip or not isinstance(node, Participant):
                continue
            path = f"participants[{len(names)}]"
            names.append(self.node(node.inner, path, strip_handoffs=strip_handoffs))
        return names

    def _magentic(self, orchestrator: Any) -> dict[str, Any]:
        from executors import AgentExecutor, StandardMagenticManager

        participants = []
        for i, node in enumerate(n for n in self.wf.executors.values() if n is not orchestrator):
            name = self.node(node, f"participants[{i}]")
            participants.append(name)
            if not isinstance(node, AgentExecutor):
                self.executors[name]["description"] = orchestrator.team[name]
        manager = orchestrator.manager
        if isinstance(manager, StandardMagenticManager):
            spec: dict[str, Any] = {
                "client": self.client(manager.chat_client, "manager.client", "manager")
            }
            if manager.max_ledger_retries != 3:
                spec["max_ledger_retries"] = manager.max_ledger_retries
        else:
            given = manager if self.spec_name(manager) else type(manager)
            spec = {"function": self.function(given, "manager.function")}
        body: dict[str, Any] = {"kind": "magentic", "participants": participants, "manager": spec}
        for key in ("max_round_count", "max_stall_count", "max_reset_count"):
            body[key] = getattr(orchestrator, key)
        for key in ("plan_review", "human_guidance_on_stall"):
            if getattr(orchestrator, key):
                body[key] = True
        for key in ("token_budget", "time_budget"):
            if getattr(orchestrator, key) is not None:
                body[key] = getattr(orchestrator, key)
        return body

    def _group_chat(self, manager: Any) -> dict[str, Any]:
        from ._group_chat import LLMSelector, _FunctionSelector, _RoundRobin

        if manager.candidate_filter is not None:
            raise SpecError("selector", "candidate_filter has no spec form yet")
        participants = self._participants({manager.id})
        body: dict[str, Any] = {"kind": "group_chat", "participants": participants}
        chosen = manager.selector
        if isinstance(chosen, LLMSelector):
            body["selector"] = {
                "client": self.client(chosen.client, "selector.client", "selector"),
                "attempts": chosen.attempts,
                "allow_repeated_speaker": chosen.allow_repeated_speaker,
                "history_window": chosen.history_window,
            }
        elif isinstance(chosen, _FunctionSelector):
            body["selector"] = {"function": self.function(chosen.fn, "selector.function")}
        elif not isinstance(chosen, _RoundRobin):
            raise SpecError(
                "selector",
                f"{chosen!r} has no spec form; use round_robin, a client or a function",
            )
        if manager.termination is not None:
            body["termination"] = self.termination(manager.termination, "termination")
        if manager.max_rounds is not None:
            body["max_rounds"] = manager.max_rounds
        if manager.id != "manager":
            body["manager_name"] = manager.id
        return self._supersteps(body)

    def _sequential(self) -> dict[str, Any]:
        return {"kind": "sequential", "participants": self._participants(set())}

    def _concurrent(self) -> dict[str, Any]:
        from ._concurrent import _Collect, _FinalMessage
        from ._participant_node import Participant

        aggregator: str | None = None
        skip = {"dispatcher", "collector", "gather"}
        for node in self.wf.executors.values():
            if isinstance(node, Participant) and isinstance(node.policy, _FinalMessage):
                skip.add(node.id)
                aggregator = self.node(node.inner, "aggregator")
            elif isinstance(node, _Collect) and node.aggregator is not None:
                aggregator = self.function(node.aggregator, "aggregator")
        body: dict[str, Any] = {"kind": "concurrent", "participants": self._participants(skip)}
        if aggregator is not None:
            body["aggregator"] = aggregator
        return body

    def _handoff(self) -> dict[str, Any]:
        from ._participant_node import Participant

        participants = self._participants(set(), strip_handoffs=True)
        handoffs: dict[str, list[str]] = {}
        termination: Any = None
        for node in self.wf.executors.values():
            assert isinstance(node, Participant)
            policy: Any = node.policy
            termination = policy.termination
            if policy.targets:
                handoffs[node.name] = list(policy.targets)
        body: dict[str, Any] = {"kind": "handoff", "participants": participants}
        if handoffs:
            body["handoffs"] = handoffs
        first = self.wf.executors[self.wf.start_executor_id]
        if isinstance(first, Participant) and first.name != participants[0]:
            body["start"] = first.name
        if termination is not None:
            body["termination"] = self.termination(termination, "termination")
        return self._supersteps(body)

    def _graph(self) -> dict[str, Any]:
        graph = self.wf.graph
        refs = {i: self.node(node, f"executors.{i}") for i, node in graph.executors.items()}
        edges: list[dict[str, Any]] = []
        for i, group in enumerate(graph.groups):
            where = f"edges[{i}]"
            src = [refs[s] for s in group.sources]
            dst = [refs[t] for t in group.targets]
            edge: dict[str, Any]
            if group.kind == "switch":
                cases = []
                for j, (target, cond) in enumerate(zip(dst, group.conditions, strict=True)):
                    case = {"to": target}
                    if cond is not None:
                        case = {"when": self.function(cond, f"{where}.cases[{j}].when"), **case}
                    cases.append(case)
                edge = {"from": src[0], "cases": cases}
            elif group.kind == "fan_in":
                edge = {"from": src, "to": dst[0]}
            elif group.kind == "fan_out":
                edge = {"from": src[0], "to": dst}
                if group.selector is not None:
                    edge["select"] = self.function(group.selector, f"{where}.select")
            else:
                edge = {"from": src[0], "to": dst[0]}
                condition = group.conditions[0] if group.conditions else None
                if condition is not None:
                    edge["when"] = self.function(condition, f"{where}.when")
            edges.append(edge)
        body: dict[str, Any] = {"kind": "graph", "start": refs[graph.start], "edges": edges}
        if self.wf.scheduling != "superstep":
            body["scheduling"] = self.wf.scheduling
        return self._supersteps(body)
