"""The OpenAPI 3.1 document of ``/v1/openapi.json``, built from the route table that the app
mounts (so the two cannot drift apart; tests check both directions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_SCHEMA = Path(__file__).resolve().parents[2] / "spec" / "resolution.schema.json"
ERROR = {"type": "object", "required": ["error", "status", "message"],
         "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                        "message": {"type": "string"}, "parameter": {"type": "string"},
                        "key": {"type": ["string", "null"]}, "identifier": {"type": "string"},
                        "dns_status": {"type": "string"}}}


def _resolution_schema() -> dict[str, Any]:
    try:
        schema = json.loads(_SCHEMA.read_text(encoding="utf-8"))
    except OSError:  # installed without spec/: refer to it instead
        return {"type": "object", "description": "spec/resolution.schema.json"}
    schema.pop("$schema", None)
    schema.pop("$id", None)
    defs = schema.pop("$defs", {})
    text = json.dumps(schema).replace("#/$defs/", "#/components/schemas/")
    return {"Resolution": json.loads(text), **defs}


def document(routes: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """``routes``: (method, path, operation) as mounted."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation in routes:
        op = dict(operation)
        op.setdefault("responses", {})
        op["responses"].setdefault("4XX", {"description": "client error",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        paths.setdefault(path, {})[method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "cid resolver HTTP API", "version": "1",
                     "description": "spec/service.md, HTTP API"},
            "paths": paths,
            "components": {"schemas": {**_resolution_schema(), "Error": ERROR}}}
