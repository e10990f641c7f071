"""The OpenAPI document and the docs pages: the request-body schemas (the bodies are decoded by hand, by
``codec``, so Litestar cannot derive them), the error answers of each route, and the Swagger UI assets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from election_api import __version__
from election_api.codec import valid_range
from election_api.errors import ErrorBody
from election_assets.core.data_modes import DataMode

ADMIN_SECURITY = "AdminToken"
# Swagger UI's files, served from the installed swagger-ui-bundle-v2 package: the docs page needs no CDN.
DOCS_ASSETS = "/schema/assets"
_ERROR_REASONS = {
    400: "Malformed JSON (including NaN/Infinity tokens) or an invalid query parameter",
    401: "Missing or wrong bearer token (ELECTION_API_ADMIN_TOKEN)",
    413: (
        "Body larger than ELECTION_API_MAX_BODY_BYTES, more rows than ELECTION_API_MAX_BATCH_ROWS, or more than "
        "ELECTION_API_MAX_EXPLAIN_ROWS with explain=true"
    ),
    415: "Content-Type is not application/json",
    422: "A field is missing, unknown, of the wrong type or out of range; or the batch is empty",
    503: "No valid model is loaded yet; or (batches) too many large batches at once: retry after Retry-After",
}
# The election-night routes (``/live/*``) answer these instead.
_LIVE_ERROR_REASONS = {
    404: "Not the postal code of one of the 50 states or DC",
    503: (
        "No live data to serve yet: NATS cannot be reached, the key-value bucket (ELECTION_LIVE_BUCKET) does not "
        "exist or is empty, or (a state) the state has no record yet; the detail says which. Retry after Retry-After"
    ),
}

# The request example of each mode, shown by the docs page and its "Try it out": realistic rows, which a model
# answers with a real probability (left to itself, Swagger UI would send every field's extreme value).
REQUEST_EXAMPLES: dict[str, dict[str, float]] = {
    # The README's region: a close race that Candidate A leads in the polls.
    "synthetic": {
        "population": 52_000,
        "median_age": 41.5,
        "median_income": 61_250.0,
        "education_rate": 0.31,
        "urban_ratio": 0.62,
        "prev_election_turnout": 0.58,
        "prev_winner_margin": 0.04,
        "voter_registration_rate": 0.71,
        "social_sentiment_score": 0.12,
        "candidate_a_favorability": 0.47,
        "candidate_b_favorability": 0.44,
        "poll_candidate_a": 0.46,
        "poll_candidate_b": 0.43,
        "undecided_rate": 0.11,
    },
    # Maricopa County, Arizona, before the 2020 election, from the shipped sources: MEDSL results of 2016 and 2012
    # (county and state), ERS education 2014-18, its 2013 rural-urban code, unemployment 2019 and 2015, and
    # Arizona's 2020 polls, about 51 % Democratic of the two parties.
    "real": {
        "prev_dem_share": 0.4847,
        "prev2_dem_share": 0.4454,
        "state_prev_dem_share": 0.4811,
        "state_prev2_dem_share": 0.4539,
        "prev_total_votes": 1_567_834,
        "prev2_total_votes": 1_376_558,
        "bachelor_rate": 0.32,
        "less_hs_rate": 0.126,
        "rural_urban_code": 1,
        "unemployment_rate": 4.0,
        "prev_unemployment_rate": 5.0,
        "poll_dem_share": 0.51,
    },
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ResponseSpec(data_container=ErrorBody, description=_ERROR_REASONS[code]) for code in codes}


def live_error_responses(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ResponseSpec(data_container=ErrorBody, description=_LIVE_ERROR_REASONS[code]) for code in codes}


def row_schema(mode: DataMode) -> Schema:
    properties: dict[str, Any] = {}
    for spec in mode.input_fields:
        kind = OpenAPIType.INTEGER if spec.kind == "int" else OpenAPIType.NUMBER
        optional = spec.name in mode.optional_fields
        description = f"{spec.description}: {valid_range(spec)}"
        properties[spec.name] = Schema(
            type=[kind, OpenAPIType.NULL] if optional else kind,
            description=f"{description} (optional: leave out or send null)" if optional else description,
            minimum=None if spec.exclusive_minimum else spec.minimum,
            exclusive_minimum=spec.minimum if spec.exclusive_minimum else None,
            maximum=spec.maximum,
        )
    optional_note = f"; optional: {', '.join(sorted(mode.optional_fields))}" if mode.optional_fields else ""
    return Schema(
        title="PredictRequest",
        type=OpenAPIType.OBJECT,
        properties=properties,
        required=list(mode.required_field_names),
        additional_properties=False,
        example=REQUEST_EXAMPLES[mode.name],
        description=(
            f"One {mode.unit}'s {len(mode.input_fields)} input fields ({mode.name} mode{optional_note}); "
            "unknown fields are rejected."
        ),
    )


def batch_schema(row: Schema, max_rows: int) -> Schema:
    return Schema(
        title="BatchRequest",
        type=OpenAPIType.OBJECT,
        properties={"rows": Schema(type=OpenAPIType.ARRAY, items=row, min_items=1, max_items=max_rows)},
        required=["rows"],
        additional_properties=False,
        example={"rows": [row.example]},
    )


def operation_with_body(schema: Schema, description: str) -> type[Operation]:
    """An ``operation_class`` that documents ``schema`` as the JSON request body of the route."""

    @dataclass
    class OperationWithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)}, required=True, description=description
            )

    return OperationWithBody


def docs_assets_router() -> Any:
    return create_static_files_router(
        path=DOCS_ASSETS, directories=[swagger_ui_path], include_in_schema=False, name="docs_assets"
    )


def openapi_config(mode: DataMode) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Election forecasting API",
        version=__version__,
        description=(
            f"Predicts the winner of a {mode.unit} ({mode.name} mode, ELECTION_API_MODE) with the champion model "
            "of the election forecasting pipeline. "
            "Errors share one shape: {status_code, detail, errors: [{field, reason}], request_id}. "
            "On election night (unless ELECTION_API_LIVE=false), /live/* serves the live estimate the updater keeps "
            "in a NATS JetStream key-value bucket (ELECTION_NATS_URL, ELECTION_LIVE_BUCKET), and /live is its page."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                ADMIN_SECURITY: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="POST /admin/reload only; the token is ELECTION_API_ADMIN_TOKEN",
                )
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon="",
            ),
            # No ReDoc page: ReDoc has no packaged build, and its page would be blank without internet.
        ],
    )
