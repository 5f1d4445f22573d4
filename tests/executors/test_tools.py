"""``@tool``: schema from hints and docstrings, validation fed back as text, safe invocation."""

from __future__ import annotations

import dataclasses
import threading
from typing import Literal

import anyio
import anyio.lowlevel
import pydantic
import pytest

from executors import Tool, ToolOutcome, tool


class Address(pydantic.BaseModel):
    city: str
    zip_code: str | None = None


@dataclasses.dataclass
class Point:
    x: int
    y: int


@tool
def ship(address: Address, weight_kg: float, speed: Literal["slow", "fast"] = "slow") -> str:
    """Ship a parcel to an address.

    The courier picks it up within a day.

    Args:
        address: Where the parcel goes.
        weight_kg (float): Parcel weight in
            kilograms, rounded up.
        speed: Delivery speed.

    Returns:
        The tracking number.
    """
    return f"{address.city}:{weight_kg}:{speed}"


def test_schema_comes_from_hints_and_docstring() -> None:
    params = ship.parameters
    assert ship.name == "ship"
    assert ship.description == "Ship a parcel to an address."
    assert params["type"] == "object"
    assert params["required"] == ["address", "weight_kg"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["weight_kg"] == {
        "type": "number",
        "description": "Parcel weight in kilograms, rounded up.",
    }
    assert props["speed"]["enum"] == ["slow", "fast"]
    assert props["speed"]["default"] == "slow"
    assert props["address"]["description"] == "Where the parcel goes."
    assert params["$defs"]["Address"]["required"] == ["city"]
    assert "title" not in params  # pydantic's titles are noise to a model


def test_summary_ending_in_a_colon_is_not_a_section() -> None:
    @tool
    def plan(goal: str) -> str:
        """Plan the following:

        Args:
            goal: What to achieve.
        """
        return goal

    assert plan.description == "Plan the following:"
    assert plan.parameters["properties"]["goal"]["description"] == "What to achieve."


def test_docstring_forms_a_model_reads_well() -> None:
    @tool
    def search(query: str, limit: int = 5, *, site: str = "") -> list[str]:
        """Search the web for pages
        that match a query.

        Returns at most ``limit`` URLs.

        Parameters:
            query: Words to look for.

                Quoted phrases match exactly.
            limit (int): How many results.
            site: Restrict to this host.

        Raises:
            query: not a parameter, a Raises entry that must not leak into the schema.
        """
        return [query][:limit]

    @tool
    def bare(x: int) -> int:
        return x

    assert search.description == "Search the web for pages that match a query."
    props = search.parameters["properties"]
    assert props["query"]["description"] == "Words to look for. Quoted phrases match exactly."
    assert props["limit"]["description"] == "How many results."
    assert props["site"]["description"] == "Restrict to this host."
    assert bare.description == ""
    assert "description" not in bare.parameters["properties"]["x"]


def test_to_openai_shape() -> None:
    entry = ship.to_openai()
    assert entry["type"] == "function"
    assert entry["function"]["name"] == "ship"
    assert entry["function"]["description"] == ship.description
    assert entry["function"]["parameters"] == ship.parameters
    assert ship.spec.to_openai() == entry


def test_decorated_function_stays_callable() -> None:
    assert isinstance(ship, Tool)
    assert ship(Address(city="Oslo"), 2.0) == "Oslo:2.0:slow"
    assert ship.__doc__ is not None
    assert ship.__name__ == "ship"


def test_options_override_name_description_and_policy() -> None:
    @tool(name="lookup-v2", description="Find things.", approval_mode="always_require")
    def lookup(q: str) -> str:
        """Ignored docstring."""
        return q

    assert (lookup.name, lookup.description) == ("lookup-v2", "Find things.")
    assert lookup.approval_mode == "always_require"
    assert ship.approval_mode == "never_require"


def test_parameter_names_that_shadow_basemodel_attributes() -> None:
    # filterwarnings=error turns pydantic's "shadows an attribute" warning into a failure.
    @tool
    def query(json: str, schema: str, model_config: int = 0) -> str:
        """Run a query."""
        return f"{json}|{schema}|{model_config}"

    assert set(query.parameters["properties"]) == {"json", "schema", "model_config"}


def test_invalid_definitions_fail_at_decoration() -> None:
    with pytest.raises(ValueError, match="pass name="):
        tool(lambda x: x)
    with pytest.raises(TypeError, match="named parameters only"):

        @tool
        def many(*items: int) -> int:
            return sum(items)

    with pytest.raises(ValueError, match="approval_mode"):
        tool(approval_mode="sometimes")(ship.fn)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="type hints"):

        @tool
        def broken(x: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
            """Unresolvable."""


@pytest.mark.anyio
async def test_invoke_validates_and_runs() -> None:
    outcome = await ship.invoke('{"address": {"city": "Rome"}, "weight_kg": "1.5"}')
    assert outcome == ToolOutcome(text="Rome:1.5:slow", is_error=False)


@pytest.mark.anyio
async def test_invalid_arguments_come_back_as_text_for_the_model() -> None:
    outcome = await ship.invoke('{"address": {}, "weight_kg": "heavy", "color": "red"}')
    assert outcome.is_error
    text = outcome.text
    assert "tool 'ship'" in text
    assert "address.city: Field required" in text
    assert "weight_kg: Input should be a valid number" in text
    assert "'heavy'" in text
    assert "color: Extra inputs are not permitted" in text


@pytest.mark.anyio
async def test_bad_json_and_non_objects_are_errors_not_exceptions() -> None:
    bad = await ship.invoke('{"address": ')
    assert bad.is_error
    assert "not valid JSON" in bad.text
    listed = await ship.invoke("[1, 2]")
    assert listed.is_error
    assert "must be a JSON object" in listed.text


@pytest.mark.anyio
async def test_empty_arguments_mean_no_arguments() -> None:
    @tool
    def ping() -> str:
        """Check liveness."""
        return "pong"

    assert (await ping.invoke("")).text == "pong"


@pytest.mark.anyio
async def test_tool_exceptions_are_captured() -> None:
    @tool
    def explode(n: int) -> int:
        """Fail."""
        raise ValueError(f"bad n {n}")

    outcome = await explode.invoke('{"n": 3}')
    assert outcome == ToolOutcome(text="Error: ValueError('bad n 3')", is_error=True)


@pytest.mark.anyio
async def test_async_tool_and_json_results() -> None:
    @tool
    async def locate(name: str) -> Point:
        """Locate a landmark."""
        await anyio.lowlevel.checkpoint()
        return Point(x=len(name), y=2)

    @tool
    def info(flag: bool) -> dict[str, object]:
        """Return a mapping."""
        return {"flag": flag, "where": Address(city="Lima")}

    @tool
    def nothing() -> None:
        """Do nothing."""

    assert (await locate.invoke('{"name": "abc"}')).text == '{"x":3,"y":2}'
    assert (await info.invoke('{"flag": true}')).text == (
        '{"flag":true,"where":{"city":"Lima","zip_code":null}}'
    )
    assert (await nothing.invoke("{}")).text == "null"


@pytest.mark.anyio
async def test_sync_tool_runs_off_the_event_loop() -> None:
    entered, released = threading.Event(), threading.Event()

    @tool
    def wait_for_release() -> bool:
        """Block until released."""
        entered.set()
        return released.wait(timeout=5)

    async def release_soon() -> None:
        # resumes (and releases) only if the loop is free while the tool blocks
        assert await anyio.to_thread.run_sync(entered.wait, 5)
        released.set()

    with anyio.fail_after(3):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_soon)
            outcome = await wait_for_release.invoke("{}")
    assert outcome.text == "true"


@pytest.mark.anyio
async def test_output_is_capped_with_a_marker() -> None:
    @tool(max_output_chars=10)
    def dump(n: int) -> str:
        """Return n x's."""
        return "x" * n

    short = await dump.invoke('{"n": 10}')
    assert short.text == "x" * 10
    long = await dump.invoke('{"n": 25}')
    assert long.text == "x" * 10 + "…[truncated 15 chars]"
    assert not long.is_error
