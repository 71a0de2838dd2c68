"""The storable-text check: NUL and unpaired surrogates anywhere, nesting depth, pointers."""

import json

from hypothesis import given
from hypothesis import strategies as st

from app.core.storable import (
    MAX_JSON_DEPTH,
    all_storable,
    first_problem,
    first_unstorable,
    text_problem,
)


def test_plain_and_non_ascii_text_is_storable() -> None:
    assert text_problem("plain") is None
    assert text_problem("Zürich, 東京, emoji 🐈") is None
    assert first_unstorable({"a": ["x", 1, 2.5, None, True, {"b": "ü"}]}) is None


def test_nul_is_found_in_a_nested_value_with_its_pointer() -> None:
    found = first_unstorable({"ok": "x", "rows": [{"a/b": "fine"}, {"t": "bad\x00"}]})
    assert found is not None
    assert found.pointer == "/rows/1/t"
    assert "U+0000" in found.reason


def test_an_unpaired_surrogate_from_a_json_escape_is_found() -> None:
    value = json.loads('{"text": "\\ud800 alone"}')
    found = first_unstorable(value)
    assert found is not None
    assert found.pointer == "/text"
    assert "surrogate" in found.reason
    assert text_problem(json.loads('"\\ud83d\\udc08"')) is None  # a proper pair is a cat


def test_a_bad_key_is_reported_with_escaped_pointer() -> None:
    found = first_unstorable({"a~b/c": {"k\x00": 1}})
    assert found is not None
    assert found.pointer == "/a~0b~1c/k\x00"
    assert found.reason.startswith("key ")


def test_the_first_bad_string_in_document_order_is_reported() -> None:
    found = first_unstorable(["ok", "\x00one", "\x00two"])
    assert found is not None
    assert found.pointer == "/1"


def test_nesting_beyond_the_limit_is_refused_and_within_it_accepted() -> None:
    def nested(levels: int) -> object:
        value: object = "leaf"
        for _ in range(levels):
            value = [value]
        return value

    assert first_unstorable(nested(MAX_JSON_DEPTH)) is None
    found = first_unstorable(nested(MAX_JSON_DEPTH + 1))
    assert found is not None
    assert found.pointer == "/0" * MAX_JSON_DEPTH
    assert "nested deeper" in found.reason


def test_numbers_json_and_both_databases_hold_are_storable() -> None:
    edges = [-(2**63), 2**63 - 1, 0, -1.5, 1e308, True]
    assert first_unstorable({"n": edges}) is None


def test_integers_beyond_64_bits_and_non_finite_numbers_are_refused_with_a_pointer() -> None:
    # What Python's parser makes of a 24-digit number, of 1e400 and of the NaN/Infinity tokens.
    parsed = json.loads('{"a": [123456789012345678901234, 1e400, NaN, -Infinity]}')
    for index, expected in enumerate(["64-bit", "finite", "finite", "finite"]):
        found = first_unstorable({"a": parsed["a"][index:]})
        assert found is not None
        assert found.pointer == "/a/0"
        assert expected in found.reason
    for beyond in (2**63, -(2**63) - 1):
        found = first_unstorable([beyond])
        assert found is not None
        assert found.pointer == "/0"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.sampled_from(["a", "ü", "\x00", "\ud800", "\udc08", "🐈", "/", "~"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values, st.integers(min_value=1, max_value=6))
def test_the_fast_pass_agrees_with_the_walk_that_locates_problems(
    value: object, depth: int
) -> None:
    assert all_storable(value, depth) == (first_problem(value, depth) is None)


def test_subclasses_of_str_and_int_are_judged_by_the_walk() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    assert first_unstorable({"a": Name("fine"), "b": Count(3)}) is None
    found = first_unstorable({"a": [Name("bad\x00")]})
    assert found is not None
    assert found.pointer == "/a/0"
