"""What an agency's developer needs, over real HTTP: batch list, Location, manifest, formats, polls, /docs offline."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re

import pyarrow.parquet as pq
import pytest

from test_api import World, submit, tiny_csv, world

__all__ = ["world"]  # the module-scoped server fixture of test_api, started again for this module


def test_202_carries_location_and_the_list_pages_through_own_batches(world: World) -> None:
    submitted = []
    for _ in range(3):
        answer = submit(world, "ice_requester", tiny_csv(world))
        assert answer.status_code == 202
        assert answer.headers["Location"] == answer.json()["status_url"] == f"/v1/batches/{answer.json()['batch_id']}"
        submitted.append(answer.json()["batch_id"])
    foreign = submit(world, "cbp_requester", tiny_csv(world)).json()["batch_id"]
    for batch_id in submitted:
        world.wait_done(batch_id)
    seen: list[str] = []
    url: str | None = "/v1/batches?limit=2"
    while url is not None:
        page = world.call("GET", url, "ice_requester")
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["batches"]) <= 2 and body["limit"] == 2
        seen += [batch["batch_id"] for batch in body["batches"]]
        url = body["next"]
    assert set(submitted) <= set(seen) and foreign not in seen
    assert len(seen) == len(set(seen)) == body["total"]
    created = [
        batch["created"] for batch in world.call("GET", "/v1/batches?limit=100", "ice_requester").json()["batches"]
    ]
    assert created == sorted(created, reverse=True)
    assert world.call("GET", "/v1/batches?limit=0", "ice_requester").status_code == 422
    assert world.call("GET", "/v1/batches", "ice_auditor").status_code == 403
    assert world.call("GET", "/v1/batches").status_code == 401


def test_the_agencys_command_line_batches_are_listed_and_served_too(world: World) -> None:
    """`taxmatch batch run --agency ICE --out DIR` is ICE's batch: listed, its status, manifest and files."""
    manifest = json.loads((world.expected_dir / "manifest.json").read_text(encoding="utf-8"))
    cli_batch = manifest["batch_id"]
    listed = world.call("GET", "/v1/batches?limit=100", "ice_requester").json()["batches"]
    (entry,) = [batch for batch in listed if batch["batch_id"] == cli_batch]
    status = world.call("GET", f"/v1/batches/{cli_batch}", "ice_requester")
    assert status.status_code == 200 and status.json() == entry
    assert entry["status"] == "done" and entry["as_of"] == manifest["as_of"] and entry["format"] == "csv"
    counts = manifest["counts"]
    assert entry["counts"] == {key: counts[key] for key in ("disclosed", "rejected", "unmatched")}
    assert entry["processed"] == entry["total"] == counts["total"]
    assert world.call("GET", f"/v1/batches/{cli_batch}/manifest.json", "ice_requester").json() == manifest
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        got = world.call("GET", f"/v1/batches/{cli_batch}/{name}", "ice_requester")
        assert got.status_code == 200 and got.content == (world.expected_dir / name).read_bytes(), name
    # Another agency's: as if there were none.
    assert cli_batch not in {
        batch["batch_id"] for batch in world.call("GET", "/v1/batches", "cbp_requester").json()["batches"]
    }
    for path in (
        f"/v1/batches/{cli_batch}",
        f"/v1/batches/{cli_batch}/manifest.json",
        f"/v1/batches/{cli_batch}/disclosed.csv",
    ):
        assert world.call("GET", path, "cbp_requester").status_code == 404, path


def test_manifest_is_downloadable_and_names_the_files(world: World) -> None:
    batch_id = submit(world, "ice_requester", tiny_csv(world)).json()["batch_id"]
    world.wait_done(batch_id)
    manifest = world.call("GET", f"/v1/batches/{batch_id}/manifest.json", "ice_requester")
    assert manifest.status_code == 200 and manifest.headers["content-type"].startswith("application/json")
    body = manifest.json()
    assert body["batch_id"] == batch_id and body["agency"] == "ICE"
    for name, digest in body["outputs"].items():
        content = world.call("GET", f"/v1/batches/{batch_id}/{name}", "ice_requester").content
        assert hashlib.sha256(content).hexdigest() == digest
    assert world.call("GET", f"/v1/batches/{batch_id}/manifest.json", "cbp_requester").status_code == 404


@pytest.mark.parametrize("output_format", ["ndjson", "parquet"])
def test_outcome_files_in_the_requested_format(world: World, output_format: str) -> None:
    body = tiny_csv(world)
    as_csv = submit(world, "ice_requester", body).json()["batch_id"]
    # The same body again is the same batch (409): asked for in another format, it is a re-run.
    answer = world.call(
        "POST", f"/v1/batches?format={output_format}&rerun=true", "ice_requester", content=body,
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert answer.status_code == 202
    batch_id = answer.json()["batch_id"]
    assert world.wait_done(batch_id)["format"] == output_format
    world.wait_done(as_csv)
    for stem in ("disclosed", "rejected", "unmatched"):
        csv_text = world.call("GET", f"/v1/batches/{as_csv}/{stem}.csv", "ice_requester").text
        expected = list(csv.DictReader(csv_text.splitlines()))
        response = world.call("GET", f"/v1/batches/{batch_id}/{stem}.{output_format}", "ice_requester")
        assert response.status_code == 200
        if output_format == "parquet":
            rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
        else:
            rows = [json.loads(line) for line in response.text.splitlines()]
        as_text = [
            {key: f"{value:.6f}" if key == "match_probability" else str(value) for key, value in row.items()}
            for row in rows
        ]
        assert as_text == expected
        assert world.call("GET", f"/v1/batches/{batch_id}/{stem}.csv", "ice_requester").status_code == 404
    refused = world.call("POST", "/v1/batches?format=xlsx", "ice_requester", content=body,
                         headers={"Content-Type": "text/csv"})  # fmt: skip
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"].endswith("format")


def test_docs_work_offline_from_packaged_assets(world: World) -> None:
    for page in ("/docs", "/redoc"):
        html = world.call("GET", page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text) + re.findall(
            r"""url: ?["']([^"']+)["']""", html.text
        )
        assert urls, html.text[:500]
        for url in urls:
            assert not url.startswith(("http:", "https:", "//")), f"{page} loads {url} from the network"
            assert world.call("GET", url).status_code == 200, url
    assert "cdn" not in world.call("GET", "/docs").text.lower()


def test_openapi_describes_and_exemplifies_every_field(world: World) -> None:
    document = world.call("GET", "/openapi.json").json()
    for name, schema in document["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
            assert "examples" in spec or "example" in spec, f"{name}.{field} has no example"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description") or operation.get("summary"), (method, path)
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (path, parameter["name"])
                assert "examples" in parameter["schema"] or "example" in parameter, (path, parameter["name"])
    text = json.dumps(document)
    assert "DESIGN.md" not in text
    for path in ("/v1/batches", "/v1/batches/{batch_id}/manifest.json"):
        assert "get" in document["paths"][path]
    assert "Location" in document["paths"]["/v1/batches"]["post"]["responses"]["202"]["headers"]


def test_old_error_shape_is_not_documented(world: World) -> None:
    # 422 answers are {detail: [{field, message, type}]}: the document must say that, not FastAPI's default.
    document = world.call("GET", "/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problems = world.call("POST", "/v1/lookup", "ice_requester", json={"nope": 1}).json()["detail"]
    assert set(problems[0]) == {"field", "message", "type"}


def test_polling_a_batch_does_not_use_up_the_request_allowance(world: World) -> None:
    """Last in the module: restarts the server with a small request allowance, then as it was."""
    batch_id = submit(world, "ice_requester", tiny_csv(world)).json()["batch_id"]
    world.wait_done(batch_id)
    world.server.stop()
    world.server.start({"TAXMATCH_API_RATE_LIMIT_PER_MINUTE": "20"})
    try:
        polls = [world.call("GET", f"/v1/batches/{batch_id}", "ice_requester").status_code for _ in range(60)]
        assert set(polls) == {200}, polls
        others = [world.call("GET", "/v1/batches", "ice_requester").status_code for _ in range(21)]
        assert others[:20] == [200] * 20 and others[20] == 429
        # Spending the request allowance leaves the polls their own.
        assert world.call("GET", f"/v1/batches/{batch_id}", "ice_requester").status_code == 200
    finally:
        world.server.stop()
        world.server.start()


def test_lookup_explains_only_when_asked(world: World) -> None:
    rows = list(csv.DictReader((world.data / "requests.csv").read_text(encoding="utf-8").splitlines()))
    disclosed = (world.expected_dir / "disclosed.csv").read_text(encoding="utf-8").splitlines()
    expected = {row["request_id"]: row for row in csv.DictReader(disclosed)}
    request = next(row for row in rows if row["request_id"] in expected)
    plain = world.call("POST", "/v1/lookup", "ice_requester", json=request).json()
    assert "explanation" not in plain
    answer = world.call("POST", "/v1/lookup?explain=true", "ice_requester", json=request)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {key: body[key] for key in plain if key != "request_id"} == {
        key: plain[key] for key in plain if key != "request_id"
    }
    explanation = body["explanation"]
    assert explanation["deciding_rule"]["rule"] == "confident_match"
    chosen = [candidate for candidate in explanation["candidates"] if candidate["chosen"]]
    assert len(chosen) == 1 and explanation["disclosed"]["candidate"] == chosen[0]["candidate"]
    assert explanation["probability"] == body["disclosure"]["match_probability"]
    assert body["disclosure"]["tin_last4"] not in json.dumps(explanation["candidates"])
    assert world.call("POST", "/v1/lookup?explain=maybe", "ice_requester", json=request).status_code == 422


def test_405_names_every_method_of_the_path(world: World) -> None:
    # GET and POST /v1/batches come from two routers; Starlette alone would say "Allow: POST".
    answer = world.call("DELETE", "/v1/batches", "ice_requester")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
    assert world.call("PUT", "/v1/lookup", "ice_requester").headers["allow"] == "POST"


def test_csv_batch_schema_states_the_header(world: World) -> None:
    document = world.call("GET", "/openapi.json").json()
    content = document["paths"]["/v1/batches"]["post"]["requestBody"]["content"]
    pattern = re.compile(content["text/csv"]["schema"]["pattern"])
    example = content["text/csv"]["example"]
    assert pattern.match(example)
    answer = world.call("POST", "/v1/batches", "ice_requester", content=example.encode(),
                        headers={"Content-Type": "text/csv"})  # fmt: skip
    assert answer.status_code == 202
    assert not pattern.match("")  # an empty body is refused (422), and the schema says so
