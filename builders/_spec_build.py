"""From a validated spec (``_spec_schema`` models) to a ``Workflow``, through the builders:
one method per kind, on top of the references of ``_spec_refs``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflow import Case, Default, GraphValidationError, Workflow

from . import _spec_schema as s
from ._spec_refs import References
from ._spec_schema import SpecError

if TYPE_CHECKING:
    from ._spec_load import _Names

__all__ = ("build_workflow",)


def build_workflow(spec: Any, names: _Names) -> Workflow:
    """The workflow ``spec`` describes; raises ``SpecError`` naming the place of a problem."""
    return _Builder(spec, names).build()


class _Builder(References):
    def build(self) -> Workflow:
        spec = self.spec
        try:
            return getattr(self, f"_build_{spec.kind}")()  # type: ignore[no-any-return]
        except SpecError:
            raise
        except GraphValidationError as exc:
            raise SpecError("", f"{spec.kind} spec {spec.name!r} is invalid: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise SpecError("", f"{spec.kind} spec {spec.name!r}: {exc}") from None

    def _options(self) -> dict[str, Any]:
        limit = getattr(self.spec, "max_supersteps", None)
        return {} if limit is None else {"max_supersteps": limit}

    def _build_magentic(self) -> Workflow:
        from executors import MagenticManager, StandardMagenticManager

        from ._magentic import MagenticBuilder

        spec = self.spec
        if spec.manager.client is not None:
            manager: Any = StandardMagenticManager(
                self.client(spec.manager.client, "manager.client"),
                max_ledger_retries=spec.manager.max_ledger_retries,
            )
        else:
            manager = self.names.get(spec.manager.function, "manager.function")
            if not isinstance(manager, MagenticManager) and callable(manager):
                manager = manager()
            if not isinstance(manager, MagenticManager):
                raise SpecError(
                    "manager.function",
                    f"{spec.manager.function!r} is not a MagenticManager (nor a function of no "
                    "arguments returning one)",
                )
        members = self.participants()
        named = spec.participants if spec.participants is not None else list(spec.executors)
        descriptions = {
            n: spec.executors[n].description
            for n in named
            if n in spec.executors and spec.executors[n].description
        }
        return MagenticBuilder(
            members,
            manager,
            max_round_count=spec.max_round_count,
            max_stall_count=spec.max_stall_count,
            max_reset_count=spec.max_reset_count,
            plan_review=spec.plan_review,
            human_guidance_on_stall=spec.human_guidance_on_stall,
            token_budget=spec.token_budget,
            time_budget=spec.time_budget,
            descriptions=descriptions,
            name=spec.name,
        ).build()

    def _build_group_chat(self) -> Workflow:
        from ._group_chat import GroupChatBuilder, LLMSelector

        spec = self.spec
        selector: Any = "round_robin"
        if isinstance(spec.selector, s.SelectorSpec):
            chosen = spec.selector
            if chosen.client is not None:
                selector = LLMSelector(
                    self.client(chosen.client, "selector.client"),
                    attempts=chosen.attempts,
                    allow_repeated_speaker=chosen.allow_repeated_speaker,
                    history_window=chosen.history_window,
                )
            else:
                selector = self.names.get(str(chosen.function), "selector.function")
                if not callable(selector) and not callable(getattr(selector, "select", None)):
                    raise SpecError("selector.function", f"{chosen.function!r} is not a function")
        members = self.participants()
        termination = self.termination(spec.termination, "termination")
        if termination is None and spec.max_rounds is None and not _has_person(members):
            raise SpecError(
                "termination",
                "a group chat of agents with neither termination nor max_rounds never ends "
                "(it loops until max_supersteps); add termination: {max_messages: 20} or "
                "max_rounds: 10",
            )
        return GroupChatBuilder(
            members,
            selector,
            termination,
            spec.max_rounds,
            manager_name=spec.manager_name,
            name=spec.name,
            **self._options(),
        ).build()

    def _build_sequential(self) -> Workflow:
        from ._sequential import SequentialBuilder

        return SequentialBuilder(self.participants(), name=self.spec.name).build()

    def _build_concurrent(self) -> Workflow:
        from ._concurrent import ConcurrentBuilder

        name = self.spec.aggregator
        aggregator: Any = None
        if name is not None:
            if name in self.spec.agents:
                aggregator = self.agent(name, "aggregator")
            else:
                aggregator = self.names.get(name, "aggregator")
        members = self.participants(exclude=name)
        return ConcurrentBuilder(members, aggregator, name=self.spec.name).build()

    def _build_handoff(self) -> Workflow:
        from ._handoff import HandoffBuilder

        spec = self.spec
        return HandoffBuilder(
            self.participants(),
            spec.handoffs,
            start=spec.start,
            termination=self.termination(spec.termination, "termination"),
            name=spec.name,
            **self._options(),
        ).build()

    def _build_graph(self) -> Workflow:
        from ._workflow_builder import WorkflowBuilder

        spec = self.spec
        builder = WorkflowBuilder(
            start=self.executor(spec.start, "start"),
            name=spec.name,
            scheduling=spec.scheduling,
            **self._options(),
        )
        for name, node_spec in spec.executors.items():
            node = self.executor(name, f"executors.{name}")
            retry = None
            if node_spec.retry is not None:
                from workflow import RetryPolicy

                retry = RetryPolicy(**node_spec.retry.model_dump())
            builder.add_executor(node, timeout=node_spec.timeout, retry=retry)
        guarded: set[tuple[str, str]] = set()
        plain: set[tuple[str, str]] = set()
        for i, edge in enumerate(spec.edges):
            where = f"edges[{i}]"
            if edge.cases is not None:
                source = self.executor(edge.from_, f"{where}.from")
                branches: list[Case | Default] = []
                for j, case in enumerate(edge.cases):
                    target = self.executor(case.to, f"{where}.cases[{j}].to")
                    guarded.add((source.id, target.id))
                    if case.when is None:
                        branches.append(Default(target))
                    else:
                        fn = self.names.get(case.when, f"{where}.cases[{j}].when")
                        branches.append(Case(fn, target))
                defaults = sum(1 for c in edge.cases if c.when is None)
                if defaults != 1:
                    raise SpecError(
                        f"{where}.cases",
                        f"has {defaults} cases without when; exactly one (the last, usually) "
                        "is the default",
                    )
                builder.add_switch_case_edge_group(source, branches)
            elif isinstance(edge.from_, list):
                sources = [self.executor(n, f"{where}.from[{j}]") for j, n in enumerate(edge.from_)]
                assert isinstance(edge.to, str)
                target = self.executor(edge.to, f"{where}.to")
                builder.add_fan_in_edges(sources, target)
                plain.update((src.id, target.id) for src in sources)
            elif isinstance(edge.to, list):
                source = self.executor(edge.from_, f"{where}.from")
                targets = [self.executor(n, f"{where}.to[{j}]") for j, n in enumerate(edge.to)]
                select = (
                    None if edge.select is None else self.names.get(edge.select, f"{where}.select")
                )
                builder.add_fan_out_edges(source, targets, selection_func=select)
                (guarded if select else plain).update((source.id, t.id) for t in targets)
            else:
                assert edge.to is not None
                source = self.executor(edge.from_, f"{where}.from")
                target = self.executor(edge.to, f"{where}.to")
                when = None if edge.when is None else self.names.get(edge.when, f"{where}.when")
                builder.add_edge(source, target, condition=when)
                (guarded if when else plain).add((source.id, target.id))
        self._check_agent_cycles(plain)
        return builder.build()

    def _check_agent_cycles(self, plain: set[tuple[str, str]]) -> None:
        """Agents always answer, so a cycle of agents joined by unconditional edges never ends."""
        import networkx as nx

        from executors import AgentExecutor

        agents = {n for n, ex in self._executors.items() if isinstance(ex, AgentExecutor)}
        graph: Any = nx.DiGraph()
        graph.add_edges_from((a, b) for a, b in plain if a in agents and b in agents)
        order = list(self._executors)
        for cycle in nx.simple_cycles(graph):
            first = min(range(len(cycle)), key=lambda i: order.index(cycle[i]))
            cycle = cycle[first:] + cycle[:first]
            loop = " -> ".join([*cycle, cycle[0]])
            raise SpecError(
                "edges",
                f"the agents loop {loop} with no condition, and agents always answer, so a run "
                "would go round until max_supersteps; add when: to one of its edges, or put a "
                "function or a person in the loop that decides when to stop",
            )


def _has_person(members: list[Any]) -> bool:
    return any(getattr(m, "kind", None) == "human" for m in members)
