"""The OpenAPI 3.1 description of the guard's JSON API, built from the engine's limits and
the reference's features (so that a fuzzer knows what a valid instance looks like)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelshield._version import __version__

if TYPE_CHECKING:
    from modelshield.guard.engine import Guard

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "decision": {"type": "string"},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
}


_TIME = {
    "type": "string",
    "description": "A duration before now (24h, 7d) or a UTC time (2024-05-01T12:00:00Z); "
    "the server also takes any ISO 8601 time Python reads",
    # Years 0001-9999 (there is no year 0 in ISO dates as Python reads them).
    "pattern": r"^([0-9]{1,4}[smhdw]|([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    r"-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)?)?$",
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _feature_schema(kind: str, feature: Any) -> dict[str, Any]:
    if kind in ("numeric", "integer"):
        schema: dict[str, Any] = {"type": "integer" if kind == "integer" else "number"}
        if feature.low is not None:
            schema["minimum"] = feature.low
        if feature.high is not None:
            schema["maximum"] = feature.high
    elif kind == "boolean":
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
        if feature.categories:
            schema["enum"] = list(feature.categories)
    if feature.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def spec(guard: Guard) -> dict[str, Any]:
    """The OpenAPI document."""
    s = guard.settings
    features = guard.reference.features
    instance = {
        "type": "object",
        "properties": {f.name: _feature_schema(f.kind, f) for f in features},
        "required": [f.name for f in features if f.required and not f.nullable],
        "additionalProperties": s.schema.allow_unknown_fields,
        "maxProperties": s.max_fields,
    }
    errors = {
        "400": _error("Malformed JSON"),
        "401": _error("Missing or wrong token"),
        "403": _error("Blocked by a screening check (ood, adversarial, extraction)"),
        "413": _error("Body larger than max_body_bytes"),
        "422": _error(
            "JSON of the wrong shape (unknown keys, nesting, too many instances or fields, "
            "long strings), or blocked by the schema check"
        ),
        "429": _error("Blocked by the client's rate limit"),
        "500": _error("The hosted model failed"),
        "502": _error("The upstream answered something else than KServe v1 JSON"),
        "503": _error("The decision log is full, or a check failed closed"),
        "504": _error("The upstream did not answer in time"),
    }
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelshield guard",
            "version": __version__,
            "description": "A firewall and monitor in front of a model: KServe v1 JSON.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Instance": instance,
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "additionalProperties": False,
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": s.max_instances,
                            "items": {"$ref": "#/components/schemas/Instance"},
                        }
                    },
                },
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions", "decision", "reasons", "request_id"],
                    "properties": {
                        "predictions": {"type": "array"},
                        "decision": {"enum": ["allow", "flag"]},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "request_id": {"type": "string"},
                    },
                },
                "Feedback": {
                    "type": "object",
                    "required": ["labels"],
                    "additionalProperties": False,
                    "properties": {
                        "labels": {
                            "type": "array",
                            "maxItems": 10_000,
                            "items": {
                                "type": "object",
                                "required": ["request_id", "label"],
                                "additionalProperties": False,
                                "properties": {
                                    "request_id": {"type": "string", "maxLength": 36},
                                    "index": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "maximum": 2**31 - 1,
                                    },
                                    "label": {"type": ["string", "number", "boolean"]},
                                },
                            },
                        }
                    },
                },
            },
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Screen, predict, decide and log",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Predictions (decision allow or flag)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/PredictResponse"}
                                }
                            },
                        },
                        **errors,
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "Labels of earlier requests",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Feedback"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Accepted",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["accepted"],
                                        "properties": {"accepted": {"type": "integer"}},
                                    }
                                }
                            },
                        },
                        "400": errors["400"],
                        "401": errors["401"],
                        "413": errors["413"],
                        "422": errors["422"],
                    },
                }
            },
            "/api/summary": {
                "get": {
                    "summary": "The governance summary (docs/guard.md)",
                    "security": bearer,
                    "parameters": [
                        {"name": "since", "in": "query", "schema": _TIME},
                        {"name": "until", "in": "query", "schema": _TIME},
                    ],
                    "responses": {
                        "200": {
                            "description": "The summary",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": errors["401"],
                        "422": _error("A time that is neither ISO 8601 nor a duration"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness and the decision log's state",
                    "responses": {
                        "200": {
                            "description": "Alive",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
