"""Hypothesis over the pooler API's request models (:mod:`kalepool.wire.pooler`): any
JSON body is either refused with a ``ValidationError`` or accepted with every value inside
what its column and the chain can hold; valid bodies are accepted and survive a round trip.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kalepool.wire import pooler as s

U32, I32, U64 = 2**32 - 1, 2**31 - 1, 2**64 - 1

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from([0, 1, U32, U32 + 1, I32, I32 + 1, U64, U64 + 1, -1, 1e3, 3.0, "3", "1", ""])
    | st.text(max_size=80)
    | st.uuids().map(str)
    | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _near(fields: list[str], children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with (some of) the model's own keys, any values: deeper than random keys get."""
    return st.fixed_dictionaries({}, optional={f: children for f in fields}) | st.dictionaries(
        st.sampled_from(fields) | st.text(max_size=8), children, max_size=6
    )


work_result = _near(list(s.WorkResult.model_fields), json_values)
harvest_block = _near(list(s.HarvestBlock.model_fields), json_values | st.lists(scalars, max_size=3))
BODIES: dict[type[BaseModel], st.SearchStrategy[Any]] = {
    s.HeartbeatRequest: json_values | _near(list(s.HeartbeatRequest.model_fields), json_values),
    s.PlantRequest: json_values | _near(list(s.PlantRequest.model_fields), json_values),
    s.WorkCompleteRequest: _near(
        list(s.WorkCompleteRequest.model_fields), json_values | st.lists(work_result, max_size=3)
    ),
    s.HarvestRequest: _near(
        list(s.HarvestRequest.model_fields), json_values | st.lists(harvest_block, max_size=3)
    ),
}


def _is_json_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_accepted(body: dict[str, Any], model: BaseModel) -> None:
    """What an accepted body may hold: integers sent as JSON integers and in their bounds,
    finite numbers, text without control characters, bounded lists."""
    if isinstance(model, s.HeartbeatRequest):
        for name in ("current_block", "farmers_mining"):
            if body.get(name) is not None:
                assert _is_json_int(body[name])
        assert model.current_block is None or 0 <= model.current_block <= U32
        assert model.farmers_mining is None or 0 <= model.farmers_mining <= I32
        assert model.hash_rate is None or (math.isfinite(model.hash_rate) and model.hash_rate >= 0)
        for text in (model.status, model.version):
            assert text is None or not any(ord(c) < 32 or ord(c) == 127 for c in text)
    elif isinstance(model, s.PlantRequest):
        assert _is_json_int(body["block_index"]) and 0 <= model.block_index <= U32
        capacity = body.get("max_farmers_capacity")
        assert capacity is None or (_is_json_int(capacity) and 1 <= capacity <= I32)
    elif isinstance(model, s.WorkCompleteRequest):
        assert _is_json_int(body["block_index"]) and 0 <= model.block_index <= U32
        assert len(model.work_results) <= s.MAX_ITEMS
        for raw, result in zip(body["work_results"], model.work_results, strict=True):
            assert _is_json_int(raw["nonce"]) and 0 <= result.nonce <= U64
            assert _is_json_int(raw["zeros"]) and 0 <= result.zeros <= 64
            assert raw.get("gap") is None or (_is_json_int(raw["gap"]) and 0 <= raw["gap"] <= I32)
            assert len(bytes.fromhex(result.hash)) == 32
    elif isinstance(model, s.HarvestRequest):
        assert 1 <= sum(len(b.farmer_ids) for b in model.harvest_blocks) <= s.MAX_ITEMS
        for raw, block in zip(body["harvest_blocks"], model.harvest_blocks, strict=True):
            assert _is_json_int(raw["block_index"]) and 0 <= block.block_index <= U32


@pytest.mark.parametrize("model", list(BODIES), ids=lambda m: m.__name__)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_is_refused_cleanly_or_accepted_within_bounds(
    model: type[BaseModel], data: st.DataObject
) -> None:
    body = data.draw(BODIES[model])
    try:
        parsed = model.model_validate(body)
    except ValidationError:
        return  # the API answers 422 with the first error's field
    _check_accepted(body, parsed)
    assert model.model_validate(parsed.model_dump(mode="json")) == parsed


hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
ids = st.uuids().map(str)
valid_bodies: dict[type[BaseModel], st.SearchStrategy[dict[str, Any]]] = {
    s.HeartbeatRequest: st.fixed_dictionaries(
        {"pooler_id": ids},
        optional={
            # text a UTF-8 JSON body can carry: no control character, no lone surrogate
            "status": st.text(
                st.characters(codec="utf-8", min_codepoint=32, exclude_characters="\x7f"), max_size=64
            ),
            "hash_rate": st.floats(min_value=0, max_value=1e18) | st.integers(0, 10**12),
            "current_block": st.integers(0, U32),
            "farmers_mining": st.integers(0, I32),
        },
    ),
    s.PlantRequest: st.fixed_dictionaries(
        {"pooler_id": ids, "block_index": st.integers(0, U32)},
        optional={"max_farmers_capacity": st.integers(1, I32)},
    ),
    s.WorkCompleteRequest: st.fixed_dictionaries(
        {
            "pooler_id": ids,
            "block_index": st.integers(0, U32),
            "work_results": st.lists(
                st.fixed_dictionaries(
                    {
                        "farmer_id": ids,
                        "nonce": st.integers(0, U64),
                        "hash": hex32,
                        "zeros": st.integers(0, 64),
                    },
                    optional={"gap": st.integers(0, I32), "tx_hash": hex32},
                ),
                max_size=5,
            ),
        }
    ),
    s.HarvestRequest: st.fixed_dictionaries(
        {
            "pooler_id": ids,
            "harvest_blocks": st.lists(
                st.fixed_dictionaries(
                    {"block_index": st.integers(0, U32), "farmer_ids": st.lists(ids, min_size=1, max_size=5)}
                ),
                min_size=1,
                max_size=5,
            ),
        }
    ),
}


@pytest.mark.parametrize("model", list(valid_bodies), ids=lambda m: m.__name__)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_valid_bodies_are_accepted_and_round_trip(model: type[BaseModel], data: st.DataObject) -> None:
    body = data.draw(valid_bodies[model])
    parsed = model.model_validate(body)
    _check_accepted(body, parsed)
    assert model.model_validate(parsed.model_dump(mode="json")) == parsed
    assert str(uuid.UUID(body["pooler_id"])) == str(parsed.pooler_id)  # type: ignore[attr-defined]
