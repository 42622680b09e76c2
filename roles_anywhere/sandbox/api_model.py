"""botocore's ``rolesanywhere`` service model as the sandbox's contract: routes, input parsing, validation.

Every control-plane route, every input member's location (URI, query string, JSON body) and every
constraint (required, types, lengths, ranges, patterns, enums) comes from the model that boto3
itself uses, so a request boto3 can send is parsed exactly as it was meant, and a request AWS
would refuse is refused with a ``ValidationException``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

SERVICE = "rolesanywhere"


class ApiError(Exception):
    """An error answer in AWS's rest-json shape: status, ``x-amzn-ErrorType`` code, message."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or error_status(code)


@functools.cache
def service_model() -> ServiceModel:
    """The model boto3 ships for IAM Roles Anywhere."""
    return botocore.session.get_session().get_service_model(SERVICE)


def error_status(code: str) -> int:
    """The HTTP status the model gives an error code (500 for unknown codes)."""
    try:
        shape = service_model().shape_for(code)
    except Exception:  # noqa: BLE001 - botocore raises its own NoShapeFoundError
        return 500
    return int(shape.metadata.get("error", {}).get("httpStatusCode", 500))


def operations() -> Iterator[OperationModel]:
    """Every control-plane operation in the model."""
    model = service_model()
    for name in model.operation_names:
        yield model.operation_model(name)


def flask_rule(request_uri: str) -> str:
    """``/trustanchor/{trustAnchorId}`` → ``/trustanchor/<path:trustAnchorId>`` (query part dropped).

    ``path:`` because an id may be given as its ARN, whose ``/`` botocore sends percent-encoded and the
    server decodes before routing.
    """
    path = request_uri.split("?", 1)[0]
    return re.sub(r"\{([A-Za-z0-9_]+)\+?\}", r"<path:\1>", path)


def parse_input(
    operation: OperationModel, path_args: Mapping[str, str], query: Mapping[str, str], body: Any
) -> dict[str, Any]:
    """The operation's input as boto3 built it, from the URI, the query string and the JSON body."""
    shape = operation.input_shape
    if shape is None:
        return {}
    if body is not None and not isinstance(body, dict):
        raise ApiError("ValidationException", "The request body must be a JSON object")
    body = body or {}
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            value: Any = path_args.get(wire_name)
        elif location == "querystring":
            value = _scalar(query.get(wire_name), member, wire_name)
        elif location in ("header", "headers"):
            continue
        else:
            value = body.get(wire_name)
        if value is not None:
            params[name] = value
    known = {
        m.serialization.get("name", n)
        for n, m in shape.members.items()
        if not m.serialization.get("location")
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError("ValidationException", f"Unknown field(s) in request body: {', '.join(unknown)}")
    validate(params, shape)
    return params


def _scalar(text: str | None, member: Shape, name: str) -> Any:
    if text is None:
        return None
    if member.type_name == "integer":
        if not text.lstrip("-").isdigit():
            raise ApiError("ValidationException", f"{name} must be an integer")
        return int(text)
    if member.type_name == "boolean":
        return text.lower() == "true"
    return text


def validate(params: Mapping[str, Any], shape: Shape) -> None:
    """Botocore's own checks (required, types, minimums) plus the maximums, patterns and enums it skips."""
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        raise ApiError("ValidationException", " ".join(report.generate_report().splitlines()))
    problem = next(_limit_problems(params, shape, ""), None)
    if problem:
        raise ApiError("ValidationException", problem)


def _limit_problems(value: Any, shape: Shape, path: str) -> Iterator[str]:  # noqa: PLR0912 - one branch per shape type
    where = path or "input"
    metadata = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if isinstance(value, Mapping) and name in value:
                yield from _limit_problems(value[name], member, f"{path}.{name}" if path else name)
    elif shape.type_name == "list":
        if "max" in metadata and len(value) > metadata["max"]:
            yield f"{where} has {len(value)} items; at most {metadata['max']} are allowed"
        for index, item in enumerate(value):
            yield from _limit_problems(item, shape.member, f"{where}[{index}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            yield from _limit_problems(item, shape.value, f"{where}.{key}")
    elif shape.type_name == "string":
        if "max" in metadata and len(value) > metadata["max"]:
            yield f"{where} is {len(value)} characters; at most {metadata['max']} are allowed"
        if shape.enum and value not in shape.enum:
            yield f"{where} must be one of {', '.join(shape.enum)}, got {value!r}"
        pattern = metadata.get("pattern")
        if pattern and not _full_match(pattern, value):
            yield f"{where} does not match the pattern {pattern}"
    elif shape.type_name in ("integer", "long") and "max" in metadata and value > metadata["max"]:
        yield f"{where} is {value}; at most {metadata['max']} is allowed"


def _full_match(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value, re.DOTALL) is not None
    except re.error:
        return True  # a pattern Python cannot compile is not ours to enforce
