"""JSON serde: exact round trips, errors that name the path, and refusal of foreign types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import math
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow._errors import CheckpointError, WorkflowError
from workflow._serde import (
    SerializationError,
    TypeRegistry,
    decode,
    dumps,
    encode,
    loads,
    pack,
    unpack,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Author:
    name: str
    tags: tuple[str, ...] = ()
    color: Color = Color.RED


class Doc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)

    title: str
    author: Author
    score: float
    blob: bytes
    meta: dict[str, Any] = {}
    path: Path | None = None


class Aliased(pydantic.BaseModel):
    kind: str = pydantic.Field(alias="type")


@dataclasses.dataclass
class Unregistered:
    x: int


class Opaque:
    """Neither dataclass nor model: never serializable."""


def registry() -> TypeRegistry:
    return TypeRegistry([Doc, Aliased])


def roundtrip(value: Any, reg: TypeRegistry | None = None) -> Any:
    reg = reg or registry()
    return decode(loads(dumps(encode(value, reg))), reg)


def same(a: Any, b: Any) -> bool:
    """Exact equality: types match, NaN equals NaN, -0.0 differs from 0.0, dict order counts."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, set | frozenset):
        return bool(a == b)
    if isinstance(a, pydantic.BaseModel):
        return all(same(getattr(a, f), getattr(b, f)) for f in type(a).model_fields)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)


# --------------------------------------------------------------------------- round trips

chars = st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"]))
text = st.text(chars, max_size=12)
dollar_text = st.one_of(
    text, text.map(lambda s: "$" + s), st.sampled_from(["$type", "$blob", "$$"])
)
big_ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**3000), max_value=2**3000),
    st.integers(-3, 3).map(lambda k: k * 10**5000 + k),  # beyond the 4300-digit str limit
)
floats = st.floats(allow_nan=True, allow_infinity=True)
hashable = st.one_of(st.none(), st.booleans(), big_ints, text, st.binary(max_size=8))
leaves = st.one_of(
    hashable,
    floats,
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.UTC))),
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(Color),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(dollar_text, children, max_size=4),
        st.dictionaries(st.one_of(big_ints, st.sampled_from(Color)), children, max_size=3),
        st.frozensets(hashable, max_size=4),
        st.sets(hashable, max_size=4),
        st.builds(Author, text, st.lists(text, max_size=3).map(tuple), st.sampled_from(Color)),
    )


values = st.recursive(leaves, containers, max_leaves=25)
docs = st.builds(
    Doc,
    title=text,
    author=st.builds(Author, text),
    score=floats,
    blob=st.binary(max_size=16),
    meta=st.dictionaries(dollar_text, values, max_size=3),
    path=st.one_of(st.none(), st.just(Path("/tmp/x"))),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, docs, st.lists(docs, max_size=2)))
def test_hypothesis_roundtrip_is_exact(value: Any) -> None:
    back = roundtrip(value)
    assert same(back, value)
    assert dumps(encode(back, registry())) == dumps(encode(value, registry()))


def test_hard_values_roundtrip() -> None:
    hard: dict[Any, Any] = {
        "surrogate": "a\ud800b\udfff",
        "nan": float("nan"),
        "inf": [float("inf"), float("-inf"), -0.0],
        "huge": 10**10000,
        "tuple": (1, (2, 3), []),
        "bytes": b"\x00\xff",
        ("tuple", "key"): {1: "int key", None: "none key"},
        "sets": [{1, 2}, frozenset({"a"})],
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "money": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=7),
    }
    assert same(roundtrip(hard), hard)


def test_plain_json_stays_plain() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert encode(value, TypeRegistry()) == value


def test_dict_insertion_order_survives_storage() -> None:
    value = {"zeta": 1, "alpha": 2}
    assert list(roundtrip(value)) == ["zeta", "alpha"]


def test_dollar_keys_are_escaped_and_roundtrip() -> None:
    value = {"$": {"$y": 2}, "$$x": 1, "$blob": "0" * 64, "$type": "os:system"}  # sorted
    encoded = encode(value, TypeRegistry())
    assert list(encoded) == ["$$", "$$$x", "$$blob", "$$type"]
    assert encoded["$$"] == {"$$y": 2}
    assert roundtrip(value) == value
    packed, blobs = pack(encoded, min_blob_bytes=1)
    assert decode(unpack(loads(dumps(packed)), blobs.__getitem__), TypeRegistry()) == value


def test_models_and_dataclasses_rebuild_as_their_types() -> None:
    doc = Doc(title="t", author=Author("ann", ("x",), Color.BLUE), score=1.5, blob=b"\x01")
    back = roundtrip({"docs": [doc]})
    assert back == {"docs": [doc]}
    assert type(back["docs"][0].author.color) is Color
    assert roundtrip(Aliased(type="k")) == Aliased(type="k")


def test_registering_a_model_registers_its_field_types() -> None:
    reg = TypeRegistry([Doc])
    assert Author in reg
    assert Color in reg
    assert reg.name_of(Author) == f"{__name__}:Author"
    assert reg.resolve(f"{__name__}:Color") is Color


# --------------------------------------------------------------------------- errors


def test_error_names_the_path_and_the_fix() -> None:
    @dataclasses.dataclass
    class Holder:
        author: Any

    reg = TypeRegistry([Holder])
    state = {"docs": [1, 2, 3, Holder(author=Opaque())]}
    with pytest.raises(SerializationError) as err:
        encode(state, reg, path="state")
    message = str(err.value)
    assert message.startswith(
        "state['docs'][3].author: type Opaque is not serializable; "
        "make it a dataclass or pydantic model"
    )
    assert isinstance(err.value, TypeError)
    assert isinstance(err.value, WorkflowError)


def test_unregistered_dataclass_says_how_to_register() -> None:
    with pytest.raises(SerializationError, match=r"not registered.*types=\[Unregistered\]"):
        encode({"x": Unregistered(1)}, registry())


def test_cycles_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"value\[0\]: cyclic"):
        encode(loop, TypeRegistry())


@pytest.mark.parametrize("name", ["os:system", "builtins:eval", "subprocess:Popen", "pickle:loads"])
def test_foreign_type_names_are_refused(name: str) -> None:
    with pytest.raises(CheckpointError, match=name):
        decode({"x": {"$type": name, "args": ["echo pwned"]}}, registry())
    with pytest.raises(CheckpointError, match=name):
        registry().resolve(name)


def test_decoding_never_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "lf_side_effect_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CheckpointError, match="lf_side_effect_mod:Thing"):
        decode({"$type": "lf_side_effect_mod:Thing"}, registry())
    assert not marker.exists()
    assert "lf_side_effect_mod" not in sys.modules


def test_pickle_payload_is_refused() -> None:
    payload = pickle.dumps({"x": Opaque()})
    with pytest.raises(CheckpointError, match="not canonical JSON"):
        loads(payload)
    # pickle bytes smuggled in as data stay inert bytes
    assert roundtrip({"raw": payload}) == {"raw": payload}


@pytest.mark.parametrize(
    "data",
    [
        {"$type": "builtins:float", "value": "1e9999"},
        {"$type": "builtins:tuple", "items": "abc"},
        {"$type": "builtins:bytes", "base64": "!!"},
        {"$type": "builtins:int"},
        {"$type": 3},
        {"$x": 1},
    ],
)
def test_malformed_tagged_objects_are_checkpoint_errors(data: Any) -> None:
    with pytest.raises(CheckpointError):
        decode(data, registry())


def test_model_that_fails_validation_names_the_type() -> None:
    name = f"{__name__}:Doc"
    with pytest.raises(CheckpointError, match=f"cannot rebuild {name}"):
        decode({"$type": name, "title": "t"}, registry())


# --------------------------------------------------------------------------- type names


@pytest.mark.parametrize(
    "tp",
    [
        int,
        str,
        dict,
        list,
        bool,
        float,
        bytes,
        type(None),
        Any,
        list[int],
        dict[str, Doc],
        tuple[int, ...],
        int | None,
        list[Author | Color],
        Author,
    ],
)
def test_response_type_names_roundtrip(tp: Any) -> None:
    reg = registry()
    name = reg.type_to_name(tp)
    assert reg.name_to_type(name) == tp


def test_response_type_names_are_stable_strings() -> None:
    reg = registry()
    assert reg.type_to_name(int) == "builtins:int"
    assert reg.type_to_name(dict[str, int]) == "builtins:dict[builtins:str, builtins:int]"
    with pytest.raises(SerializationError, match="not registered"):
        reg.type_to_name(Unregistered)
    with pytest.raises(CheckpointError, match="os:system"):
        reg.name_to_type("builtins:list[os:system]")


# --------------------------------------------------------------------------- bytes & blobs


def test_dumps_is_canonical_ascii() -> None:
    assert dumps({"b": 1, "a": "é\ud800"}) == b'{"a":"\\u00e9\\ud800","b":1}'
    assert loads(dumps({"b": 1})) == {"b": 1}
    with pytest.raises(SerializationError):
        dumps({"x": float("nan")})


def test_pack_stores_a_large_string_once_and_keeps_small_dicts_inline() -> None:
    big = "x" * 100_000
    all_blobs: dict[str, bytes] = {}
    for n in range(100):
        tree = {"messages": [{"text": big, "n": n}], "n": n}
        packed, blobs = pack(tree)
        assert packed["messages"][0]["n"] == n  # the small dict stayed inline
        assert set(packed["messages"][0]["text"]) == {"$blob"}
        all_blobs.update(blobs)
        assert unpack(packed, blobs.__getitem__) == tree
    assert len(all_blobs) == 1
    assert sum(map(len, all_blobs.values())) < 100_100


def test_pack_nests_blobs_post_order() -> None:
    tree = {"outer": [{"k": "y" * 600, "j": "z" * 600}]}
    packed, blobs = pack(tree, min_blob_bytes=1000)
    assert len(blobs) == 1  # the list holding the two 600-byte strings, not the strings
    assert unpack(packed, blobs.__getitem__) == tree


def test_unpack_detects_tampered_and_missing_blobs() -> None:
    packed, blobs = pack({"a": "q" * 5000})
    (digest,) = blobs
    tampered = {digest: blobs[digest].replace(b"q", b"r", 1)}
    with pytest.raises(CheckpointError, match=f"blob {digest} fails its sha256"):
        unpack(packed, tampered.__getitem__)
    nothing: dict[str, bytes] = {}
    with pytest.raises(CheckpointError, match="missing"):
        unpack(packed, nothing.__getitem__)
    assert hashlib.sha256(blobs[digest]).hexdigest() == digest


@pytest.mark.parametrize("bad", [{"t": (1, 2)}, {1: "x"}, {"f": float("inf")}, {"s": {1}}])
def test_pack_accepts_only_strict_json(bad: Any) -> None:
    with pytest.raises(SerializationError, match="encode"):
        pack(bad)
