from __future__ import annotations

import types

import durable
import durable.testing


def test_all_is_sorted_and_complete() -> None:
    assert durable.__all__ == sorted(durable.__all__)
    public = {
        name
        for name, value in vars(durable).items()
        if name.isidentifier()  # (not pytest's assertion-rewriting helpers)
        and not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # (durable.testing, once imported)
    }
    assert set(durable.__all__) == public


def test_the_testing_kit_has_a_sorted_complete_all_of_its_own() -> None:
    testing = durable.testing
    assert testing.__all__ == sorted(testing.__all__)
    public = {
        name
        for name, value in vars(testing).items()
        if name.isidentifier()
        and not name.startswith("_")
        and not isinstance(value, types.ModuleType)
    }
    assert set(testing.__all__) == public
    for name in testing.__all__:
        value = getattr(testing, name)
        if isinstance(value, type | types.FunctionType):  # (Scenario is a type alias)
            assert value.__module__ in {"durable.testing", "durable"}, name


def test_public_names_belong_to_durable() -> None:
    for name in durable.__all__:
        assert getattr(durable, name).__module__ == "durable", name


def test_every_error_is_a_durable_error() -> None:
    errors = [getattr(durable, name) for name in durable.__all__]
    errors = [value for value in errors if isinstance(value, type) and issubclass(value, Exception)]
    assert len(errors) > 5
    assert all(issubclass(error, durable.DurableError) for error in errors)
