"""How list routes narrow a query to the caller's properties: one filter, one query parameter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from cloud.api.deps import require_property
from cloud.api.paging import MAX_ID
from cloud.security.authz import Principal

PropertyQ = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this property.")]


def scope_filter(me: Principal, column: Any, property_id: int | None) -> Any:
    """The WHERE for list routes: the caller's properties, or the one asked for if visible."""
    if property_id is not None:
        require_property(me, property_id)
        return column == property_id
    return column.in_(sorted(me.property_ids))
