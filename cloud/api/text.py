"""Text the databases can store, checked once per request before any route runs, by the
rule both halves share (`protocols.text.text_fault`).

PostgreSQL refuses NUL in text, and neither driver can encode a lone surrogate (half of a
UTF-16 pair); either reached the database as a 500. `refuse_unstorable_text`, a dependency of
the whole app, answers 422 naming the first field that holds one:
- query and path from their raw bytes, so percent-encoded bytes that are not UTF-8 (such as an
  encoded surrogate, `%ED%A0%80`) are refused instead of silently becoming U+FFFD;
- every header value (the token and cookie we read among them);
- every string and key of a JSON body (Python's decoder turns `\\ud800`, and UTF-8-encoded
  surrogates, into lone surrogates).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request

from cloud.api.problems import ProblemError
from protocols.text import text_fault

Loc = list[str | int]


def _bytes_fault(raw: bytes) -> str | None:
    """Why percent-encoded `raw` is not storable text, or None."""
    try:
        return text_fault(unquote_to_bytes(raw).decode("utf-8"))
    except UnicodeDecodeError:
        return "is not valid UTF-8"


def _query_fault(query: bytes) -> tuple[Loc, str] | None:
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.replace(b"+", b" ").partition(b"=")
        name_fault = _bytes_fault(raw_name)
        if name_fault:
            return ["query"], f"a parameter name {name_fault}"
        value_fault = _bytes_fault(raw_value)
        if value_fault:
            return ["query", unquote_to_bytes(raw_name).decode()], value_fault
    return None


def _path_fault(request: Request) -> tuple[Loc, str] | None:
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    segments = raw.split(b"?", 1)[0].split(b"/")
    # The route's template may lack the router's prefix: align the two from the end.
    template = str(getattr(request.scope.get("route"), "path", "")).split("/")
    template = [""] * (len(segments) - len(template)) + template
    for segment, part in zip(segments, template, strict=False):
        fault = _bytes_fault(segment)
        if fault:
            named = part.startswith("{")
            return (["path", part.strip("{}").split(":")[0]] if named else ["path"]), fault
    return None


def _header_fault(request: Request) -> tuple[Loc, str] | None:
    for name, value in request.scope["headers"]:
        if b"\x00" in value:
            return ["header", name.decode("latin-1")], "holds a NUL character"
    return None


def json_fault(data: Any) -> tuple[Loc, str] | None:
    """Where parsed JSON (or values of its shapes: dicts, lists, tuples) breaks the rule."""
    stack: list[tuple[Any, Loc]] = [(data, ["body"])]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            fault = text_fault(value)
            if fault:
                return loc, fault
        elif isinstance(value, dict):
            for key, item in value.items():
                fault = text_fault(key)
                if fault:
                    return loc, f"a key {fault}"
                stack.append((item, [*loc, key]))
        elif isinstance(value, list | tuple):
            stack.extend((item, [*loc, i]) for i, item in enumerate(value))
    return None


async def _body_fault(request: Request) -> tuple[Loc, str] | None:
    if not await request.body():
        return None
    try:
        data = await request.json()  # already parsed (and cached) for routes with a body
    except ValueError:
        return None  # not JSON: the route's own validation answers
    return json_fault(data)


async def refuse_unstorable_text(request: Request) -> None:
    found = (
        _query_fault(request.scope["query_string"])
        or _path_fault(request)
        or _header_fault(request)
        or await _body_fault(request)
    )
    if found is None:
        return
    loc, reason = found
    field = ".".join(str(part) for part in loc[1:]) or loc[0]
    raise ProblemError(
        422,
        f"{field} {reason}",
        field=field,
        errors=[{"loc": loc, "msg": reason, "type": "unstorable_text"}],
    )
