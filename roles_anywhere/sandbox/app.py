"""The sandbox's HTTP face: a Flask app that routes every operation of botocore's model, plus CreateSession.

Answers use AWS's rest-json conventions: the model's success status, JSON bodies, and errors as
``{"message": …}`` with the code in ``x-amzn-ErrorType`` (what botocore reads to raise
``ValidationException``, ``ResourceNotFoundException``…).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .api_model import ApiError, flask_rule, operations, parse_input
from .control_plane import HANDLERS, MUTATING
from .policy_gate import MintedSessions
from .sessions import SessionRequest, create_session
from .state import SandboxState

log = logging.getLogger("roles_anywhere.sandbox")


def json_response(document: Any, status: int) -> Response:
    """A JSON answer with the content type AWS uses."""
    return Response(json.dumps(document, default=str), status=status, content_type="application/json")


def error_response(error: ApiError) -> Response:
    """AWS's rest-json error shape."""
    response = json_response({"message": error.message}, error.status)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def _body() -> Any:
    data = request.get_data()
    if not data:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise ApiError("ValidationException", "The request body is not valid JSON") from None


def create_app(state: SandboxState, iam: Any, sts: Any, minted: MintedSessions | None = None) -> Flask:
    """Routes from the service model (unimplemented operations answer 501), and POST /sessions."""
    app = Flask("roles_anywhere.sandbox")

    def control_view(name: str) -> Callable[..., Response]:
        operation = next(op for op in operations() if op.name == name)

        def view(**path_args: str) -> Response:
            handler = HANDLERS.get(name)
            if handler is None:
                raise ApiError("NotImplementedException", f"{name} is not implemented by the sandbox", 501)
            params = parse_input(operation, path_args, request.args, _body())
            with state.lock:
                result = handler(state, params)
                if name in MUTATING:
                    state.save()
                document = json.loads(json.dumps(result))
            return json_response(document, int(operation.http.get("responseCode", 200)))

        return view

    for operation in operations():
        app.add_url_rule(
            flask_rule(operation.http["requestUri"]),
            endpoint=operation.name,
            view_func=control_view(operation.name),
            methods=[operation.http["method"]],
        )

    @app.post("/sessions")
    def sessions() -> Response:
        session_request = SessionRequest(
            method=request.method,
            path=request.path,
            query=request.query_string.decode(),
            headers=dict(request.headers),
            body=request.get_data(),
        )
        return json_response(create_session(session_request, state, iam, sts, minted=minted), 201)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = "UnknownOperationException" if error.code in (404, 405) else "ValidationException"
        return error_response(ApiError(code, error.description or str(error), error.code or 400))

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("sandbox internal error")
        return error_response(
            ApiError("InternalServerException", f"sandbox error: {type(error).__name__}", 500)
        )

    return app
