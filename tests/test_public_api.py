from __future__ import annotations

import durable


def test_all_is_sorted_and_complete() -> None:
    assert durable.__all__ == sorted(durable.__all__)
    public = {name for name in dir(durable) if not name.startswith("_")}
    assert set(durable.__all__) == public


def test_public_names_belong_to_durable() -> None:
    for name in durable.__all__:
        assert getattr(durable, name).__module__ == "durable", name


def test_every_error_is_a_durable_error() -> None:
    errors = [getattr(durable, name) for name in durable.__all__]
    errors = [value for value in errors if isinstance(value, type) and issubclass(value, Exception)]
    assert len(errors) > 5
    assert all(issubclass(error, durable.DurableError) for error in errors)
