"""Bad input gets a 4xx with a machine-readable body naming the field and the reason; never a 5xx."""

from __future__ import annotations

import json

import pytest

from election_api_tests.conftest import VALID_ROW, make_client


def row(**changes):
    return {**VALID_ROW, **changes}


def without(name):
    return {k: v for k, v in VALID_ROW.items() if k != name}


def raw_row(name, token):
    """A JSON body whose ``name`` value is the raw token (e.g. NaN), which json.dumps cannot write."""
    return json.dumps(row(**{name: 12345.678})).replace("12345.678", token)


BAD_SINGLE = [
    # (case, body bytes or object, status, field, reason fragment)
    ("missing field", without("urban_ratio"), 422, "$.urban_ratio", "missing required field"),
    ("unknown field", row(turnout=0.5), 422, "$.turnout", "unknown field"),
    ("string for float", row(education_rate="0.3"), 422, "$.education_rate", "Expected `float`, got `str`"),
    ("float for int", row(population=1000.5), 422, "$.population", "Expected `int`, got `float`"),
    ("bool for float", row(urban_ratio=True), 422, "$.urban_ratio", "got `bool`"),
    ("null", row(median_age=None), 422, "$.median_age", "got `null`"),
    ("above max", row(education_rate=1.5), 422, "$.education_rate", "<= 1.0"),
    ("below min", row(median_age=3), 422, "$.median_age", ">= 16.0"),
    ("zero population", row(population=0), 422, "$.population", ">= 1"),
    ("negative income", row(median_income=-5.0), 422, "$.median_income", "> 0.0"),
    ("NaN token", raw_row("poll_candidate_a", "NaN"), 400, "$.poll_candidate_a", "NaN and Infinity"),
    ("Infinity token", raw_row("median_income", "Infinity"), 400, "$.median_income", "NaN and Infinity"),
    ("-Infinity token", raw_row("prev_winner_margin", "-Infinity"), 400, "$.prev_winner_margin", "NaN and Infinity"),
    ("huge float", raw_row("median_age", "1e400"), 422, "$.median_age", "out of range"),
    ("huge int", raw_row("population", "1" + "0" * 400), 422, "$.population", ""),
    ("population 2**70", row(population=2**70), 422, "$.population", "must be an integer > 0 and <= 50,000,000"),
    ("population above its bound", row(population=50_000_001), 422, "$.population", "<= 50000000:"),
    ("income above its bound", row(median_income=1e7), 422, "$.median_income", "a number > 0 and <= 1,000,000"),
    ("array body", [VALID_ROW], 422, "$", "Expected `object`, got `array`"),
    ("malformed JSON", '{"population": 5,', 400, "$", "truncated"),
    ("not UTF-8 JSON", b"\xff\xfe", 400, "$", "malformed"),
    ("empty body", b"", 400, "$", "empty"),
]


def _send(client, path, body, content_type="application/json", params=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return client.post(path, content=body, headers={"Content-Type": content_type}, params=params)


def _assert_error(response, status, field, reason):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["errors"], body
    assert body["errors"][0]["field"] == field, body
    assert reason in body["errors"][0]["reason"], body


@pytest.mark.parametrize(("case", "body", "status", "field", "reason"), BAD_SINGLE, ids=[c[0] for c in BAD_SINGLE])
def test_bad_single_row(client, case, body, status, field, reason):
    _assert_error(_send(client, "/predict", body), status, field, reason)


BAD_BATCH = [
    ("empty batch", {"rows": []}, 422, "$.rows", "at least one row"),
    ("missing rows", {}, 422, "$.rows", "missing required field"),
    ("unknown top-level field", {"rows": [VALID_ROW], "extra": 1}, 422, "$.extra", "unknown field"),
    ("rows not a list", {"rows": VALID_ROW}, 422, "$.rows", "Expected `array`"),
    (
        "bad row names its index",
        {"rows": [VALID_ROW, VALID_ROW, row(education_rate=2.0)]},
        422,
        "$.rows[2].education_rate",
        "<= 1.0",
    ),
    (
        "missing field in a row",
        {"rows": [VALID_ROW, without("population")]},
        422,
        "$.rows[1].population",
        "missing required field",
    ),
    (
        "fractional int in a row",
        {"rows": [VALID_ROW, row(population=52000.5)]},
        422,
        "$.rows[1].population",
        "Expected `int`, got `float` with a fractional part",
    ),
    (
        "NaN in a row",
        '{"rows": [' + json.dumps(VALID_ROW) + "," + raw_row("urban_ratio", "NaN") + "]}",
        400,
        "$.rows[1].urban_ratio",
        "NaN and Infinity",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "field", "reason"), BAD_BATCH, ids=[c[0] for c in BAD_BATCH])
def test_bad_batch(client, case, body, status, field, reason):
    _assert_error(_send(client, "/predict/batch", body), status, field, reason)


def test_an_integral_float_for_an_int_field_is_accepted(client):
    # JSON Schema's "integer" (the OpenAPI type of population) includes 52000.0, and a client holding its rows in
    # a float column sends it so: the schemathesis run found it refused, against the documented schema.
    whole = _send(client, "/predict", row(population=52000.0))
    assert whole.status_code == 200 and whole.json() == _send(client, "/predict", VALID_ROW).json()
    batch = _send(client, "/predict/batch", {"rows": [row(population=52000.0), VALID_ROW]})
    assert batch.status_code == 200 and batch.json()["count"] == 2


def test_batch_over_the_row_limit_is_413(settings, champion):
    with make_client(settings, max_batch_rows=3) as client:
        assert _send(client, "/predict/batch", {"rows": [VALID_ROW] * 3}).status_code == 200
        _assert_error(
            _send(client, "/predict/batch", {"rows": [VALID_ROW] * 4}), 413, "$.rows", "exceed the limit of 3"
        )


def test_body_over_the_byte_limit_is_413(settings, champion):
    with make_client(settings, max_body_bytes=2048) as client:
        response = _send(client, "/predict/batch", {"rows": [VALID_ROW] * 20})
        _assert_error(response, 413, "$", "larger than 2048 bytes (ELECTION_API_MAX_BODY_BYTES)")
        # A client that lies about the length is cut off at the limit just the same.
        lying = client.post(
            "/predict", content=b"{" * 5000, headers={"Content-Type": "application/json", "Content-Length": "10"}
        )
        assert lying.status_code in (400, 413) and lying.json()["errors"], lying.text
        assert _send(client, "/predict", VALID_ROW).status_code == 200  # and the server goes on serving


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_415(client, content_type):
    _assert_error(_send(client, "/predict", VALID_ROW, content_type=content_type), 415, "content-type", "expected")


def test_json_content_type_with_charset_is_accepted(client):
    assert _send(client, "/predict", VALID_ROW, content_type="application/json; charset=utf-8").status_code == 200


@pytest.mark.parametrize("params", [{"explain": "maybe"}, {"explain": "true", "top": "0"}, {"top": "x"}])
def test_bad_query_parameters_are_400(client, params):
    response = _send(client, "/predict", VALID_ROW, params=params)
    assert response.status_code == 400 and response.json()["errors"], response.text


def test_no_bad_input_yields_a_5xx(client):
    bodies = [case[1] for case in BAD_SINGLE] + [case[1] for case in BAD_BATCH]
    garbage = [
        b"null",
        b"0",
        b'"text"',
        b"[]",
        b"{}",
        b'{"rows": null}',
        b"\x00" * 10,
        b"{" * 10_000,
        b"[" * 10_000,
        b'{"population": 1e999999}',
        '{"population": "\ud800"}'.encode("utf-8", "surrogatepass"),
    ]
    for path in ("/predict", "/predict/batch"):
        for body in bodies + garbage:
            response = _send(client, path, body)
            assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
            assert response.json()["errors"], (path, body)


@pytest.mark.parametrize("mode", ["synthetic", "real"])
def test_every_numeric_field_has_a_documented_range(settings, mode):
    """The OpenAPI schema bounds every input field on both sides and its description says the range."""
    from election_api.codec import valid_range
    from election_assets.core.data_modes import DATA_MODES

    data_mode = DATA_MODES[mode]
    with make_client(settings, data_mode=data_mode) as client:
        schema = client.get("/schema/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        properties = body["properties"] if path == "/predict" else body["properties"]["rows"]["items"]["properties"]
        assert list(properties) == list(data_mode.input_field_names)
        for spec in data_mode.input_fields:
            documented = properties[spec.name]
            assert spec.maximum is not None and documented["maximum"] == spec.maximum, spec.name
            assert ("exclusiveMinimum" if spec.exclusive_minimum else "minimum") in documented, spec.name
            assert valid_range(spec) in documented["description"], spec.name
