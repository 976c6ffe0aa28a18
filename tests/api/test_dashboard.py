"""The web dashboard over real HTTP (uvicorn subprocess): sign-in, scoping, roles, CSRF, pages, assets."""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from test_api import World, submit, tiny_csv, world

__all__ = ["world"]  # the module-scoped server fixture of test_api, started again for this module

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextlib.contextmanager
def sign_in(world: World, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.server.base_url, follow_redirects=False, timeout=60) as client:
        form = client.get("/ui/login")
        token = CSRF.search(form.text)
        assert token is not None
        answer = client.post("/ui/login", data={"api_key": world.keys[key], "csrf_token": token.group(1)})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/batches", answer.text
        yield client


def csrf_of(client: httpx.Client, page: str) -> str:
    found = CSRF.search(client.get(page).text)
    assert found is not None
    return found.group(1)


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_without_a_session_every_page_redirects_to_login(world: World) -> None:
    with httpx.Client(base_url=world.server.base_url, follow_redirects=False) as client:
        for page in ("/", "/ui/batches", "/ui/batches/b-0000000000000000", "/ui/lookup", "/ui/ledger", "/ui/keys"):
            answer = client.get(page)
            assert answer.status_code == 303 and answer.headers["location"] == "/ui/login", page
        # A bearer key is not a session: the dashboard signs in through its form only.
        answer = client.get("/ui/batches", headers={"Authorization": f"Bearer {world.keys['ice_requester']}"})
        assert answer.status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_and_checks_the_form(world: World) -> None:
    with httpx.Client(base_url=world.server.base_url, follow_redirects=False) as client:
        form = client.get("/ui/login")
        assert form.status_code == 200 and 'name="api_key"' in form.text
        token = CSRF.search(form.text)
        assert token is not None
        refused = httpx.post(world.server.base_url + "/ui/login", data={"api_key": world.keys["ice_requester"]})
        assert refused.status_code == 403  # no CSRF token, no login cookie
        wrong = client.post("/ui/login", data={"api_key": "tm_nope_nope", "csrf_token": token.group(1)})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        token = CSRF.search(wrong.text)
        assert token is not None
        answer = client.post("/ui/login", data={"api_key": world.keys["ice_requester"], "csrf_token": token.group(1)})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/batches"
        cookie = next(value for value in answer.headers.get_list("set-cookie") if value.startswith("taxmatch_session="))
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags and "samesite=strict" in flags
        assert world.keys["ice_requester"].split("_", 2)[2] not in cookie
        assert client.get("/").headers["location"] == "/ui/batches"


def test_batches_page_lists_the_agencys_cli_and_api_batches_only(world: World) -> None:
    api_batch = submit(world, "ice_requester", tiny_csv(world)).json()["batch_id"]
    foreign = submit(world, "cbp_requester", tiny_csv(world)).json()["batch_id"]
    world.wait_done(api_batch)
    cli_batch = json.loads((world.expected_dir / "manifest.json").read_text())["batch_id"]
    with sign_in(world, "ice_requester") as client:
        page = client.get("/ui/batches")
        assert page.status_code == 200
        assert api_batch in page.text and cli_batch in page.text and foreign not in page.text
        for asset in re.findall(r"""(?:href|src)="([^"]+)\"""", page.text):
            if asset.startswith("/ui/static/"):
                assert client.get(asset).status_code == 200
            assert not asset.startswith(("http:", "https:", "//")), asset
        assert "default-src 'none'" in page.headers["content-security-policy"]
    with sign_in(world, "cbp_requester") as client:
        for path in (f"/ui/batches/{api_batch}", f"/ui/batches/{cli_batch}", f"/ui/batches/{api_batch}/requests/x"):
            assert client.get(path).status_code == 404, path
        assert client.get("/ui/batches/b-ffffffffffffffff").status_code == 404


def test_batch_page_counts_by_outcome_and_reason_as_the_files(world: World) -> None:
    cli_batch = json.loads((world.expected_dir / "manifest.json").read_text())["batch_id"]
    expected_reasons: Counter[str] = Counter()
    for name in ("rejected.csv", "unmatched.csv"):
        for row in rows_of(world.expected_dir / name):
            expected_reasons.update(row["reason_codes"].split(";"))
    with sign_in(world, "ice_requester") as client:
        page = client.get(f"/ui/batches/{cli_batch}")
        assert page.status_code == 200
        shown = {
            code: int(count.replace(",", "")) for code, count in re.findall(r'data-reason="(\w+)">([\d,]+)<', page.text)
        }
        assert shown == dict(expected_reasons)
        outcomes = {key: int(n.replace(",", "")) for key, n in re.findall(r'data-outcome="(\w+)">([\d,]+)<', page.text)}
        assert outcomes == {
            "disclosed": len(rows_of(world.expected_dir / "disclosed.csv")),
            "rejected": len(rows_of(world.expected_dir / "rejected.csv")),
            "unmatched": len(rows_of(world.expected_dir / "unmatched.csv")),
        }
        assert "<svg" in page.text  # the charts are inline SVG, no script
        disclosed = rows_of(world.expected_dir / "disclosed.csv")
        for chart in ("outcomes", "reasons", "probability", "states", "tax-years"):
            assert re.search(rf'data-chart="{chart}">.*?<svg.*?<rect', page.text, re.S), chart
        states = Counter(row["state"] for row in disclosed)
        years = Counter(row["tax_year"] for row in disclosed)
        section = re.search(r'data-chart="states">(.*?)</section>', page.text, re.S).group(1)  # type: ignore[union-attr]
        state, count = states.most_common(1)[0]
        assert f">{state}</text>" in section and f">{count:,}</text>" in section
        section = re.search(r'data-chart="tax-years">(.*?)</section>', page.text, re.S).group(1)  # type: ignore[union-attr]
        assert all(f">{year}</text>" in section and f">{n:,}</text>" in section for year, n in years.items())
        section = re.search(r'data-chart="probability">(.*?)</section>', page.text, re.S).group(1)  # type: ignore[union-attr]
        shown = sum(int(n.replace(",", "")) for n in re.findall(r"<title>[\d.]+: ([\d,]+) DISCLOSED</title>", section))
        assert shown == len(disclosed)
        unmatched = client.get(f"/ui/batches/{cli_batch}?outcome=NOT_MATCHED")
        listed = re.findall(r'/requests/([^"]+)"', unmatched.text)
        assert listed and set(listed) <= {row["request_id"] for row in rows_of(world.expected_dir / "unmatched.csv")}


def test_request_page_shows_outcome_codes_and_probability(world: World) -> None:
    batch_id = submit(world, "ice_requester", (world.data / "requests.csv").read_bytes()).json()["batch_id"]
    world.wait_done(batch_id)
    disclosed = rows_of(world.home / "batches" / batch_id / "disclosed.csv")[0]
    unmatched = rows_of(world.home / "batches" / batch_id / "unmatched.csv")[0]
    with sign_in(world, "ice_requester") as client:
        page = client.get(f"/ui/batches/{batch_id}/requests/{disclosed['request_id']}")
        assert page.status_code == 200
        assert 'data-outcome="DISCLOSED"' in page.text
        assert re.search(r"data-probability>([^<]*)<", page.text).group(1) == disclosed["match_probability"]  # type: ignore[union-attr]
        page = client.get(f"/ui/batches/{batch_id}/requests/{unmatched['request_id']}")
        assert 'data-outcome="NOT_MATCHED"' in page.text and unmatched["reason_codes"] in page.text
        probability = re.search(r"data-probability>([^<]*)<", page.text).group(1)  # type: ignore[union-attr]
        assert probability in unmatched["reasons"]
        assert "Deciding rule" in page.text and "unexplained" not in page.text
        assert re.search(r"Candidate A.*?<svg class=\"chart waterfall\"", page.text, re.S)


def test_batch_requests_are_explained_from_how_they_were_decided(world: World) -> None:
    """From the CLI's batch and an HTTP batch: the candidates, their waterfalls and the deciding rule."""
    cli_batch = json.loads((world.expected_dir / "manifest.json").read_text())["batch_id"]
    api_batch = submit(world, "ice_requester", (world.data / "requests.csv").read_bytes()).json()["batch_id"]
    world.wait_done(api_batch)
    with sign_in(world, "ice_requester") as client:
        for batch_id, directory in ((cli_batch, world.expected_dir), (api_batch, world.home / "batches" / api_batch)):
            for row in rows_of(directory / "disclosed.csv")[:3]:
                page = client.get(f"/ui/batches/{batch_id}/requests/{row['request_id']}").text
                assert "confident_match" in page and "Candidate A (chosen)" in page, row["request_id"]
                assert f"the return of tax year {row['tax_year']}" in page
                assert page.count('<svg class="chart waterfall"') >= 1
            for row in rows_of(directory / "unmatched.csv")[:5]:
                page = client.get(f"/ui/batches/{batch_id}/requests/{row['request_id']}").text
                rule = re.search(r"Deciding rule:</strong> <code>(\w+)</code>", page)
                assert rule is not None and rule.group(1) not in ("confident_match", "unexplained"), row["request_id"]
            # (A repeated id's page is its first request's: the one decided.)
            rejected_rows = rows_of(directory / "rejected.csv")
            rejected = next(row for row in rejected_rows if "DUPLICATE" not in row["reason_codes"])
            page = client.get(f"/ui/batches/{batch_id}/requests/{rejected['request_id']}").text
            assert "<code>validation</code>" in page and "Candidate A" not in page
        assert client.get(f"/ui/batches/{batch_id}/requests/no-such-request").status_code == 404


def test_roles_open_only_their_pages(world: World) -> None:
    with sign_in(world, "ice_requester") as client:
        assert client.get("/ui/ledger").status_code == 403
        assert client.get("/ui/keys").status_code == 403
        assert client.get("/ui/lookup").status_code == 200
    with sign_in(world, "ice_auditor") as client:
        assert client.get("/ui/batches").status_code == 403
        assert client.get("/ui/lookup").status_code == 403
        ledger = client.get("/ui/ledger")
        assert ledger.status_code == 200 and 'data-ledger-ok="true"' in ledger.text
    with sign_in(world, "ice_admin") as client:
        keys = client.get("/ui/keys")
        assert keys.status_code == 200
        # A key is tm_<id>_<secret>, and a secret may hold "_" itself: split twice at most.
        for key in world.keys.values():
            _, key_id, secret = key.split("_", 2)
            assert key_id in keys.text and secret not in keys.text
        assert client.get("/ui/batches").status_code == 200 and client.get("/ui/ledger").status_code == 200


def test_ledger_page_accounts_by_agency_statute_and_month_with_charts(world: World) -> None:
    cli_batch = json.loads((world.expected_dir / "manifest.json").read_text())["batch_id"]
    with sign_in(world, "ice_auditor") as client:
        page = client.get("/ui/ledger").text
    for chart in ("agency", "statute", "month", "outcome"):
        section = re.search(rf'data-chart="{chart}">(.*?)</section>', page, re.S)
        assert section is not None and "<svg" in section.group(1) and "<rect" in section.group(1), chart
    month = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
    assert f"<title>{month}: " in page  # this month has its column
    assert ">ICE<" in page and "8 U.S.C. 1326" in page
    assert cli_batch not in page  # a summary: no request-level detail


def test_forms_need_the_sessions_csrf_token(world: World) -> None:
    with sign_in(world, "ice_requester") as client:
        assert client.post("/ui/logout").status_code == 403
        assert client.post("/ui/logout", data={"csrf_token": "forged"}).status_code == 403
        assert client.get("/ui/batches").status_code == 200  # still signed in
        assert client.post("/ui/lookup", data={"first_name": "Ana"}).status_code == 403
        token = csrf_of(client, "/ui/batches")
        answer = client.post("/ui/logout", data={"csrf_token": token})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        assert client.get("/ui/batches").status_code == 303


def test_lookup_page_explains_the_decision(world: World) -> None:
    disclosed = rows_of(world.expected_dir / "disclosed.csv")
    request = next(
        row for row in rows_of(world.data / "requests.csv") if row["request_id"] == disclosed[0]["request_id"]
    )
    request.pop("request_id")
    with sign_in(world, "ice_requester") as client:
        token = csrf_of(client, "/ui/lookup")
        page = client.post("/ui/lookup", data={**request, "csrf_token": token})
        assert page.status_code == 200
        assert 'data-outcome="DISCLOSED"' in page.text
        assert "Deciding rule" in page.text and "confident_match" in page.text and "Candidate A" in page.text


def test_a_revoked_key_ends_its_sessions(world: World) -> None:
    command = (sys.executable, "-m", "taxmatch.api.cli", "--home", str(world.home), "keys")
    created = subprocess.run([*command, "create", "--agency", "ICE", "--role", "requester"], env=world.env,
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    world.keys["revocable"] = created
    with sign_in(world, "revocable") as client:
        assert client.get("/ui/batches").status_code == 200
        subprocess.run([*command, "revoke", created.split("_")[1]], env=world.env, capture_output=True, check=True)
        assert client.get("/ui/batches").status_code == 303


@pytest.mark.parametrize("page", ["/ui/login", "/docs"])
def test_pages_load_nothing_from_elsewhere(world: World, page: str) -> None:
    text = httpx.get(world.server.base_url + page).text
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", text)
