"""GET /openapi.json (the spec) and GET /docs (the same spec as a server-rendered page).

The page is plain HTML from a Jinja template shipped in this package, with no script and no
CDN, so it works offline and under the app's strict Content-Security-Policy.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from backend.api.openapi import build_spec

bp = Blueprint("docs", __name__, template_folder="templates")


def spec() -> dict:
    engine = current_app.extensions.get("engine")
    if engine is None:
        return build_spec()
    return build_spec(engine.info["name"], engine.info["vocab_size"], current_app.extensions["generation_defaults"])


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(spec())


def resolve(schema: dict, document: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return document["components"]["schemas"][name]
    return schema


def type_text(schema: dict) -> str:
    if "oneOf" in schema:
        return " | ".join(type_text(option) for option in schema["oneOf"])
    if "enum" in schema:
        return " | ".join("null" if v is None else repr(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    kind = " | ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in schema:
        kind = f"array of {type_text(schema['items'])}"
    return kind


def bounds_text(schema: dict) -> str:
    """The constraints of a field in words, e.g. '> 0, <= 1' or '1 to 20000 characters'."""
    parts = []
    for key, word in (("exclusiveMinimum", ">"), ("minimum", ">="), ("maximum", "<=")):
        if key in schema:
            parts.append(f"{word} {schema[key]:g}" if isinstance(schema[key], float) else f"{word} {schema[key]}")
    if "maxLength" in schema:
        parts.append(f"{schema.get('minLength', 0)} to {schema['maxLength']} characters")
    if "maxItems" in schema:
        parts.append(f"at most {schema['maxItems']} items")
    for option in schema.get("oneOf", []):
        if bounds_text(option):
            parts.append(bounds_text(option))
    if "items" in schema and bounds_text(schema["items"]):
        parts.append("each " + bounds_text(schema["items"]))
    return "; ".join(parts)


def operations(document: dict) -> list[dict]:
    """Each endpoint with its request fields and responses, flattened for the template."""
    out = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            fields = []
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schema = resolve(body["schema"], document)
                for name, field in schema["properties"].items():
                    fields.append(
                        {
                            "name": name,
                            "type": type_text(field),
                            "bounds": bounds_text(field),
                            "default": field.get("default"),
                            "has_default": "default" in field,
                            "required": name in schema.get("required", []),
                            "description": field.get("description", ""),
                        }
                    )
            responses = [
                {"status": status, "description": r["description"], "media": ", ".join(r.get("content", {}))}
                for status, r in operation["responses"].items()
            ]
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "fields": fields,
                    "responses": responses,
                }
            )
    return out


@bp.get("/docs")
def docs_page():
    document = spec()
    return render_template("docs.html", info=document["info"], operations=operations(document))
