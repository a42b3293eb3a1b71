"""Forwarded outcomes over HTTP: versions, signatures, changes and the ministerial compilation.

A forwarded version is stored whole in its event: downloaded after the meeting changed, and
from a new app over the same files, it is the same bytes in every format. Its signature
verifies with the published key. The changes between two versions name exactly what
changed; the ministerial compilation holds each meeting's latest version as forwarded.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.application import SYSTEM
from tests.e2e.conftest import assert_problem, client_for
from tests.e2e.test_documents_http import (
    FORMATS,
    Demo,
    Doc,
    Page,
    Rec,
    assert_download_headers,
    assert_holds,
    csv_rows,
    docx_paragraphs,
    markdown_html,
    norm,
    open_demo,
    recommendations,
    seal_of,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TECH_TRAINING = "Technology training partnerships for contributing countries"
SITUATIONAL = "Shared situational-awareness platform for field missions"
EARLY_WARNING = "Data-driven early warning with safeguards for civilians"
CASEVAC = "Casualty evacuation within the 10-1-2 standard"
COUNTER_IED = "Regional counter-IED training hubs"
FINANCING = "Predictable financing of AU-led peace support operations"
NEW_FINANCING = (
    "Member States should implement Security Council resolution 2719 (2023) without delay, "
    "so that AU-led peace support operations receive assessed contributions."
)


# --- the world ----------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    yield from open_demo(tmp_path / "data")


@pytest.fixture
async def client(demo: Demo) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(demo.app) as c:
        yield c


def meeting_path(demo: Demo, tail: str = "") -> str:
    return f"/api/v1/meetings/{demo.meeting}{tail}"


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text[:1000]}"
    body: dict[str, Any] = response.json()
    return body


async def proposal_ids(client: httpx.AsyncClient, demo: Demo) -> dict[str, str]:
    page = await ok(
        await client.get(
            meeting_path(demo, "/proposals"), params={"limit": 200}, headers=demo.auth("observer")
        )
    )
    return {p["title"]: p["id"] for p in page["items"]}


async def close(client: httpx.AsyncClient, demo: Demo) -> None:
    closed = await ok(
        await client.post(meeting_path(demo, "/close"), headers=demo.auth("secretariat"))
    )
    assert closed["status"] == "closed"


async def forward(client: httpx.AsyncClient, demo: Demo, version: int) -> dict[str, Any]:
    response = await client.post(meeting_path(demo, "/forward"), headers=demo.auth("secretariat"))
    record = await ok(response, 201)
    assert response.headers["location"] == meeting_path(demo, f"/outcome/versions/{version}")
    assert record["version"] == version
    return record


async def reopen(client: httpx.AsyncClient, demo: Demo) -> None:
    reopened = await client.post(
        meeting_path(demo, "/reopen"),
        json={"reason": "The Berlin team asked for a change"},
        headers=demo.auth("secretariat"),
    )
    assert (await ok(reopened))["status"] == "closed"


async def decide(
    client: httpx.AsyncClient, demo: Demo, chair: str, pid: str, action: str, **body: Any
) -> int:
    """A chair's decision on a proposal; the position it recorded."""
    response = await client.post(
        f"/api/v1/proposals/{pid}/{action}", json=body, headers=demo.auth(chair)
    )
    return int((await ok(response))["position"])


async def version(
    client: httpx.AsyncClient, demo: Demo, n: int, fmt: str = "json", handle: str = "berlin"
) -> httpx.Response:
    response = await client.get(
        meeting_path(demo, f"/outcome/versions/{n}"),
        params={"format": fmt},
        headers=demo.auth(handle),
    )
    assert response.status_code == 200, response.text[:1000]
    return response


async def every_format(client: httpx.AsyncClient, demo: Demo, n: int) -> dict[str, bytes]:
    return {fmt: (await version(client, demo, n, fmt)).content for fmt in FORMATS}


async def public_key(client: httpx.AsyncClient) -> Ed25519PublicKey:
    response = await client.get("/api/v1/signing-key")  # anyone: no token
    info = await ok(response)
    assert info["algorithm"] == "Ed25519"
    key = serialization.load_pem_public_key(info["pem"].encode())
    assert isinstance(key, Ed25519PublicKey)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64decode(info["raw_base64"]) == raw
    return key


def canonical(doc: Doc) -> bytes:
    body = {k: v for k, v in doc.items() if k not in ("sha256", "signature")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify(key: Ed25519PublicKey, doc: Doc) -> None:
    key.verify(base64.b64decode(doc["signature"], validate=True), canonical(doc))


# --- forwarding -----------------------------------------------------------------------------


async def test_forward_records_a_sealed_and_signed_version_of_the_closed_document(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    await close(client, demo)
    closed = await client.get(meeting_path(demo, "/recommendations"), headers=demo.auth("observer"))
    live: Doc = closed.json()
    assert live["status"] == "closed" and live["outcome_version"] is None

    response = await client.post(meeting_path(demo, "/forward"), headers=demo.auth("secretariat"))
    record = await ok(response, 201)
    assert response.headers["location"] == meeting_path(demo, "/outcome/versions/1")
    assert set(record) == {
        "version", "sha256", "document_position", "forwarded_at", "forwarded_by", "position",
    }  # fmt: skip
    assert record["version"] == 1 and HEX64.match(record["sha256"])
    assert record["document_position"] == live["position"] < record["position"]
    assert record["position"] == demo.core.last_position()
    assert RFC3339_UTC.match(record["forwarded_at"])
    assert record["forwarded_by"] == demo.uid("secretariat")
    meeting = await ok(await client.get(meeting_path(demo), headers=demo.auth("observer")))
    assert response.headers["etag"] == f'"{meeting["version"]}"'
    assert meeting["status"] == "forwarded"
    assert meeting["outcome_versions"] == [{k: v for k, v in record.items() if k != "position"}]

    download = await version(client, demo, 1)
    doc: Doc = download.json()
    assert doc["status"] == "forwarded" and doc["outcome_version"] == 1
    assert doc["sha256"] == record["sha256"] == seal_of(doc)
    assert doc["position"] == record["document_position"]
    # the closed document as it was, but for status, version, seal and signature
    unchanged = ("sha256", "signature", "status", "outcome_version")
    assert {k: v for k, v in doc.items() if k not in unchanged} == {
        k: v for k, v in live.items() if k not in unchanged
    }
    assert_download_headers(download, "json", doc["meeting"]["title"], doc["position"])

    key = await public_key(client)
    verify(key, doc)
    tampered = json.loads(json.dumps(doc))
    tampered["themes"][0]["recommendations"][0]["text"] += " Amended."
    with pytest.raises(InvalidSignature):
        verify(key, tampered)

    for fmt in FORMATS:
        response = await version(client, demo, 1, fmt, handle="observer")
        assert_holds(fmt, response.content, recommendations(doc))
        assert_download_headers(response, fmt, doc["meeting"]["title"], doc["position"])
    html = Page((await version(client, demo, 1, "html")).content.decode())
    facts = dict(zip(html.texts("dt"), html.texts("dd"), strict=True))
    assert facts["Version"] == "Outcome version 1" and facts["Status"] == "Forwarded"
    assert facts["SHA-256"] == doc["sha256"] and facts["Signature (Ed25519)"] == doc["signature"]


async def test_forward_is_refused_for_an_open_meeting_and_for_anyone_but_the_secretariat(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    path = meeting_path(demo, "/forward")
    before = demo.core.last_position()
    body = assert_problem(await client.post(path, headers=demo.auth("secretariat")), 409)
    assert "open" in body["detail"]
    assert demo.core.last_position() == before
    outsider = demo.core.create_user(SYSTEM, "Pierre Martin", "France")
    outsider_auth = {"Authorization": f"Bearer {outsider.extra['token']}"}
    await close(client, demo)
    closed_at = demo.core.last_position()
    for handle in ("chair-tech", "rapporteur-tech", "observer", "berlin"):
        assert_problem(await client.post(path, headers=demo.auth(handle)), 403)
    assert_problem(await client.post(path), 401)
    assert_problem(await client.post(path, headers=outsider_auth), 404)
    assert demo.core.last_position() == closed_at  # no refusal recorded anything

    await forward(client, demo, 1)
    assert_problem(await client.post(path, headers=demo.auth("secretariat")), 409)
    # the versions: readers and the ministerial team; nobody else
    for handle in ("observer", "chair-safety", "berlin", "secretariat"):
        listed = await client.get(
            meeting_path(demo, "/outcome/versions"), headers=demo.auth(handle)
        )
        assert [v["version"] for v in (await ok(listed))["items"]] == [1]
    assert_problem(
        await client.get(meeting_path(demo, "/outcome/versions"), headers=outsider_auth), 404
    )
    assert_problem(
        await client.get(meeting_path(demo, "/outcome/versions/1"), headers=outsider_auth), 404
    )
    assert_problem(
        await client.get(meeting_path(demo, "/outcome/versions/2"), headers=demo.auth("berlin")),
        404,
    )
    assert_problem(
        await client.get(
            meeting_path(demo, "/outcome/versions/1"),
            headers={**demo.auth("berlin"), "Accept": "image/png"},
        ),
        406,
    )


async def test_a_forwarded_version_is_the_same_bytes_after_the_meeting_changed_and_a_restart(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    ids = await proposal_ids(client, demo)
    await close(client, demo)
    first = await forward(client, demo, 1)
    at_forward = await every_format(client, demo, 1)
    v1 = json.loads(at_forward["json"])

    await reopen(client, demo)
    await decide(client, demo, "chair-regional", ids[FINANCING], "reconsider", reason="Reword")
    await decide(
        client, demo, "chair-regional", ids[FINANCING], "approve", final_text=NEW_FINANCING
    )
    second = await forward(client, demo, 2)
    assert second["document_position"] > first["document_position"]

    demo.forget_renders()
    assert await every_format(client, demo, 1) == at_forward
    v2 = (await version(client, demo, 2)).json()
    assert v2["outcome_version"] == 2 and v2["sha256"] == second["sha256"] == seal_of(v2)
    assert v2["sha256"] != v1["sha256"]
    assert dict((t, w) for _, t, w in recommendations(v2))[FINANCING] == NEW_FINANCING
    assert dict((t, w) for _, t, w in recommendations(v1))[FINANCING] != NEW_FINANCING
    verify(await public_key(client), v2)

    listed = await ok(
        await client.get(meeting_path(demo, "/outcome/versions"), headers=demo.auth("berlin"))
    )
    assert listed == {
        "items": [
            {k: v for k, v in record.items() if k != "position"} for record in (first, second)
        ],
        "next_cursor": None,
    }
    page = await ok(
        await client.get(
            meeting_path(demo, "/outcome/versions"),
            params={"limit": 1},
            headers=demo.auth("observer"),
        )
    )
    assert [v["version"] for v in page["items"]] == [1] and page["next_cursor"]
    rest = await ok(
        await client.get(
            meeting_path(demo, "/outcome/versions"),
            params={"limit": 1, "cursor": page["next_cursor"]},
            headers=demo.auth("observer"),
        )
    )
    assert [v["version"] for v in rest["items"]] == [2] and rest["next_cursor"] is None

    # another app over the same files: nothing cached, the same bytes
    data_dir = demo.app.state.container.settings.data_dir
    demo.app.state.container.close()
    reopened = open_demo(data_dir)
    again = next(reopened)
    try:
        async with client_for(again.app) as other:
            assert again.meeting == demo.meeting  # the demo is loaded once only
            assert await every_format(other, again, 1) == at_forward
            assert (await version(other, again, 2)).json() == v2
    finally:
        reopened.close()


# --- changes ----------------------------------------------------------------------------


async def changes(
    client: httpx.AsyncClient, demo: Demo, start: str | int, end: str | int = "live", **extra: Any
) -> httpx.Response:
    response = await client.get(
        meeting_path(demo, "/outcome/changes"),
        params={"from": str(start), "to": str(end), **extra},
        headers=demo.auth("observer"),
    )
    assert response.status_code == 200, response.text[:1000]
    return response


async def test_changes_name_each_kind_of_change_alone(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    ids = await proposal_ids(client, demo)
    empty: dict[str, list[Any]] = {"added": [], "removed": [], "reworded": [], "renumbered": []}
    start = demo.core.last_position()
    assert (await changes(client, demo, start)).json() == {
        "from": str(start),
        "to": "live",
        **empty,
    }

    # added: a submitted proposal approved
    added_at = await decide(client, demo, "chair-tech", ids[TECH_TRAINING], "approve")
    assert (await changes(client, demo, start, added_at)).json() == {
        "from": str(start),
        "to": str(added_at),
        **empty,
        "added": [{"proposal_id": ids[TECH_TRAINING], "number": "1.3", "title": TECH_TRAINING}],
    }

    # removed: the last of a theme reconsidered (nothing after it to renumber)
    removed_at = await decide(
        client, demo, "chair-regional", ids[FINANCING], "reconsider", reason="Reword it"
    )
    assert (await changes(client, demo, added_at, removed_at)).json() == {
        "from": str(added_at),
        "to": str(removed_at),
        **empty,
        "removed": [{"proposal_id": ids[FINANCING], "number": "3.2", "title": FINANCING}],
    }

    # reworded: approved again with the chair's wording, at the same number
    then = await client.get(
        meeting_path(demo, "/recommendations"),
        params={"as_of": str(added_at)},
        headers=demo.auth("observer"),
    )
    before = {title: wording for _, title, wording in recommendations(then.json())}
    reworded_at = await decide(
        client, demo, "chair-regional", ids[FINANCING], "approve", final_text=NEW_FINANCING
    )
    assert (await changes(client, demo, added_at, reworded_at)).json() == {
        "from": str(added_at),
        "to": str(reworded_at),
        **empty,
        "reworded": [
            {
                "proposal_id": ids[FINANCING],
                "number": "3.2",
                "before": before[FINANCING],
                "after": NEW_FINANCING,
            }
        ],
    }

    # renumbered: the chair orders the theme anew
    ordered = await client.put(
        meeting_path(demo, "/themes/safety-security/order"),
        json={"proposal_ids": [ids[CASEVAC], ids[COUNTER_IED]]},
        headers=demo.auth("chair-safety"),
    )
    renumbered_at = (await ok(ordered))["position"]
    assert (await changes(client, demo, reworded_at, renumbered_at)).json() == {
        "from": str(reworded_at),
        "to": str(renumbered_at),
        **empty,
        "renumbered": [
            {"proposal_id": ids[CASEVAC], "before": "2.2", "after": "2.1"},
            {"proposal_id": ids[COUNTER_IED], "before": "2.1", "after": "2.2"},
        ],
    }
    # and to "live" (the default) is the same as to the last position
    assert (await changes(client, demo, reworded_at)).json()["renumbered"] == (
        await changes(client, demo, reworded_at, renumbered_at)
    ).json()["renumbered"]


async def scripted_versions(
    client: httpx.AsyncClient, demo: Demo
) -> tuple[dict[str, str], Doc, Doc]:
    """v1 as the demo stands; v2 after one change of every kind."""
    ids = await proposal_ids(client, demo)
    await close(client, demo)
    await forward(client, demo, 1)
    await reopen(client, demo)
    # removed: 1.1; so the early warning moves up from 1.2 to 1.1
    await decide(client, demo, "chair-tech", ids[SITUATIONAL], "reconsider", reason="Not agreed")
    # added: the training partnerships, after it as 1.2
    await decide(client, demo, "chair-tech", ids[TECH_TRAINING], "approve")
    # reworded: financing, still 3.2
    await decide(client, demo, "chair-regional", ids[FINANCING], "reconsider", reason="Reword")
    await decide(
        client, demo, "chair-regional", ids[FINANCING], "approve", final_text=NEW_FINANCING
    )
    # renumbered: the safety theme ordered the other way round
    ordered = await client.put(
        meeting_path(demo, "/themes/safety-security/order"),
        json={"proposal_ids": [ids[CASEVAC], ids[COUNTER_IED]]},
        headers=demo.auth("chair-safety"),
    )
    await ok(ordered)
    await forward(client, demo, 2)
    v1 = (await version(client, demo, 1)).json()
    v2 = (await version(client, demo, 2)).json()
    return ids, v1, v2


async def test_changes_between_two_versions_list_exactly_what_changed(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    ids, v1, v2 = await scripted_versions(client, demo)
    words = dict((t, w) for _, t, w in recommendations(v1))
    assert [(n, t) for n, t, _ in recommendations(v2)] == [
        ("1.1", EARLY_WARNING),
        ("1.2", TECH_TRAINING),
        ("2.1", CASEVAC),
        ("2.2", COUNTER_IED),
        ("3.1", "Joint AU–UN planning for mission transitions"),
        ("3.2", FINANCING),
    ]
    expected = {
        "from": "v1",
        "to": "v2",
        "added": [{"proposal_id": ids[TECH_TRAINING], "number": "1.2", "title": TECH_TRAINING}],
        "removed": [{"proposal_id": ids[SITUATIONAL], "number": "1.1", "title": SITUATIONAL}],
        "reworded": [
            {
                "proposal_id": ids[FINANCING],
                "number": "3.2",
                "before": words[FINANCING],
                "after": NEW_FINANCING,
            }
        ],
        "renumbered": [
            {"proposal_id": ids[EARLY_WARNING], "before": "1.2", "after": "1.1"},
            {"proposal_id": ids[CASEVAC], "before": "2.2", "after": "2.1"},
            {"proposal_id": ids[COUNTER_IED], "before": "2.1", "after": "2.2"},
        ],
    }
    assert (await changes(client, demo, "v1", "v2")).json() == expected
    # the other way round: added and removed change places, the numbers swap
    back = (await changes(client, demo, "v2", "v1")).json()
    assert (back["added"], back["removed"]) == (expected["removed"], expected["added"])
    assert back["reworded"] == [
        {"proposal_id": ids[FINANCING], "number": "3.2", "before": NEW_FINANCING,
         "after": words[FINANCING]}
    ]  # fmt: skip
    assert sorted((r["before"], r["after"]) for r in back["renumbered"]) == [
        ("1.1", "1.2"), ("2.1", "2.2"), ("2.2", "2.1"),
    ]  # fmt: skip
    # a version and the position it was compiled at are the same document
    by_position = (await changes(client, demo, v1["position"], "v2")).json()
    assert {**by_position, "from": "v1"} == expected
    nothing = (await changes(client, demo, "v2")).json()  # forwarded: nothing changed since
    assert [nothing[k] for k in ("added", "removed", "reworded", "renumbered")] == [[]] * 4
    assert_problem(
        await client.get(
            meeting_path(demo, "/outcome/changes"),
            params={"from": "v9"},
            headers=demo.auth("observer"),
        ),
        404,
    )
    for bad in ("yesterday", "v", "-3"):
        response = await client.get(
            meeting_path(demo, "/outcome/changes"),
            params={"from": bad},
            headers=demo.auth("observer"),
        )
        assert_problem(response, 422)

    # the redline, as HTML and as Markdown
    html = await changes(client, demo, "v1", "v2", format="html")
    assert html.headers["content-type"].startswith("text/html")
    accepted = await client.get(
        meeting_path(demo, "/outcome/changes"),
        params={"from": "v1", "to": "v2"},
        headers={**demo.auth("berlin"), "Accept": "text/html"},
    )
    assert accepted.content == html.content
    assert_redline(Page(html.text), html.text, ids, words[FINANCING])
    md = await changes(client, demo, "v1", "v2", format="md")
    assert md.headers["content-type"].startswith("text/markdown")
    rendered = markdown_html(md.content)
    assert_redline(Page(rendered), rendered, ids, words[FINANCING])
    assert_problem(await changes_with(client, demo, format="pdf"), 422)
    assert_problem(await changes_with(client, demo, accept="application/pdf"), 406)


async def changes_with(
    client: httpx.AsyncClient, demo: Demo, format: str | None = None, accept: str | None = None
) -> httpx.Response:
    params = {"from": "v1", "to": "v2"} | ({"format": format} if format else {})
    headers = demo.auth("observer") | ({"Accept": accept} if accept else {})
    return await client.get(meeting_path(demo, "/outcome/changes"), params=params, headers=headers)


def assert_redline(page: Page, html: str, ids: dict[str, str], old_wording: str) -> None:
    sections = page.texts("h3")
    assert sections == ["Added", "Removed", "Reworded", "Renumbered"]
    items = page.texts("li")
    assert f"1.2 {TECH_TRAINING}" in items and f"1.1 {SITUATIONAL}" in items
    assert "1.2 → 1.1" in items and "2.2 → 2.1" in items and "2.1 → 2.2" in items
    (reworded,) = [item for item in items if item.startswith("3.2:")]
    # every word of both wordings is shown; deleted words struck through, new ones marked
    deleted = norm(" ".join(re.findall(r"<(?:del|s)>(.*?)</(?:del|s)>", html, re.S)))
    inserted = norm(" ".join(re.findall(r"<(?:ins|strong)>(.*?)</(?:ins|strong)>", html, re.S)))
    assert deleted and inserted
    assert "without delay" in inserted and "assessed contributions" in inserted
    assert "predictable, sustainable and flexible financing" in deleted
    for word in set(old_wording.split()) | set(NEW_FINANCING.split()):
        assert word.strip(".,") in reworded


# --- the ministerial compilation -----------------------------------------------------------


async def schedule_forwarded(
    client: httpx.AsyncClient,
    head: dict[str, str],
    title: str,
    starts_on: str,
    ministerial: str,
    recommendations: list[tuple[str, str]],
) -> tuple[str, Doc]:
    """A meeting scheduled, held and forwarded through the API; its forwarded document."""

    async def user(name: str, delegation: str) -> tuple[str, dict[str, str]]:
        body = await ok(
            await client.post(
                "/api/v1/users", json={"name": name, "delegation": delegation}, headers=head
            ),
            201,
        )
        return body["id"], {"Authorization": f"Bearer {body['token']}"}

    meeting = await ok(
        await client.post(
            "/api/v1/meetings",
            json={
                "title": title,
                "venue": "Palacio Legislativo, Montevideo",
                "starts_on": starts_on,
                "ends_on": starts_on,
                "hosts": ["Uruguay"],
                "ministerial": ministerial,
                "themes": [{"key": "wps", "title": "Women, peace and security"}],
            },
            headers=head,
        ),
        201,
    )
    mid = meeting["id"]
    chair, as_chair = await user("Valentina Silva", "Uruguay")
    rapporteur, as_rapporteur = await user("Amara Okafor", "Nigeria")
    for uid, role in ((chair, "chair"), (rapporteur, "rapporteur")):
        await ok(
            await client.post(
                f"/api/v1/meetings/{mid}/participants",
                json={"user_id": uid, "role": role, "themes": ["wps"]},
                headers=head,
            ),
            201,
        )
    await ok(await client.post(f"/api/v1/meetings/{mid}/open", headers=head))
    for title_, text in recommendations:
        drafted = await ok(
            await client.post(
                f"/api/v1/meetings/{mid}/proposals",
                json={"theme": "wps", "title": title_, "text": text, "submit": True},
                headers=as_rapporteur,
            ),
            201,
        )
        await ok(
            await client.post(
                f"/api/v1/proposals/{drafted['id']}/approve", json={}, headers=as_chair
            )
        )
    await ok(await client.post(f"/api/v1/meetings/{mid}/close", headers=head))
    await ok(await client.post(f"/api/v1/meetings/{mid}/forward", headers=head), 201)
    doc = await client.get(f"/api/v1/meetings/{mid}/outcome/versions/1", headers=head)
    return mid, doc.json()


async def test_the_ministerial_compilation_holds_each_meetings_latest_forwarded_version(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    head = demo.auth("secretariat")
    montevideo, earlier = await schedule_forwarded(
        client, head, "Preparatory Meeting on Women, Peace and Security", "2025-02-24",
        "berlin-2025",
        [("Women in uniformed leadership", "Set targets for women commanders by 2028."),
         ("Gender-responsive camps", "Design every new camp with the needs of women in mind.")],
    )  # fmt: skip
    await schedule_forwarded(
        client, head, "A meeting for another ministerial", "2025-01-10", "accra-2027",
        [("Elsewhere", "Not for Berlin.")],
    )  # fmt: skip
    unforwarded = await ok(
        await client.post(
            "/api/v1/meetings",
            json={"title": "Not yet forwarded", "venue": "Geneva", "starts_on": "2025-01-01",
                  "ends_on": "2025-01-02", "hosts": ["Switzerland"], "ministerial": "berlin-2025",
                  "themes": [{"key": "t", "title": "T"}]},
            headers=head,
        ),
        201,
    )  # fmt: skip
    _, _, islamabad_v2 = await scripted_versions(client, demo)
    assert islamabad_v2["outcome_version"] == 2

    path = "/api/v1/ministerials/berlin-2025/recommendations"
    response = await client.get(path, headers=demo.auth("berlin"))
    assert response.status_code == 200, response.text
    comp: Doc = response.json()
    assert set(comp) == {"ministerial", "meetings", "sha256"}
    assert comp["ministerial"] == "berlin-2025" and comp["sha256"] == seal_of(comp)
    # by start date, each the latest version exactly as forwarded, signature included
    assert comp["meetings"] == [earlier, islamabad_v2]
    assert [m["meeting"]["id"] for m in comp["meetings"]] == [montevideo, demo.meeting]
    assert unforwarded["id"] not in response.text
    key = await public_key(client)
    for doc in comp["meetings"]:
        assert doc["status"] == "forwarded" and doc["sha256"] == seal_of(doc)
        verify(key, doc)

    recs: list[Rec] = recommendations(earlier) + recommendations(islamabad_v2)
    titles = [earlier["meeting"]["title"], islamabad_v2["meeting"]["title"]]
    first: dict[str, bytes] = {}
    for fmt in FORMATS:
        got = await client.get(path, params={"format": fmt}, headers=demo.auth("secretariat"))
        assert got.status_code == 200, got.text[:500]
        first[fmt] = got.content
        assert_holds(fmt, got.content, recs, depth=1)
        disposition = got.headers["content-disposition"]
        assert re.fullmatch(
            rf'attachment; filename="berlin-2025-recommendations-[0-9a-f]+\.{fmt}"', disposition
        ), disposition
        by_accept = await client.get(
            path, headers={**demo.auth("berlin"), "Accept": got.headers["content-type"]}
        )
        assert by_accept.content == got.content
    parts = [f"Part {n}: {title}" for n, title in enumerate(titles, start=1)]
    assert Page(first["html"].decode()).texts("h2") == parts
    assert Page(markdown_html(first["md"])).texts("h2") == parts
    assert [text for style, text in docx_paragraphs(first["docx"]) if style == "Heading 1"] == parts
    assert [row["meeting_id"] for row in csv_rows(first["csv"])] == [montevideo] * 2 + [
        demo.meeting
    ] * len(recommendations(islamabad_v2))
    demo.forget_renders()
    assert {
        fmt: (await client.get(path, params={"format": fmt}, headers=demo.auth("berlin"))).content
        for fmt in FORMATS
    } == first

    for handle in ("observer", "chair-tech", "rapporteur-safety"):
        assert_problem(await client.get(path, headers=demo.auth(handle)), 403)
    assert_problem(await client.get(path), 401)
    empty = await ok(
        await client.get("/api/v1/ministerials/nobody-2030/recommendations", headers=head)
    )
    assert empty["meetings"] == [] and empty["sha256"] == seal_of(empty)


async def test_the_redline_shows_hostile_wording_as_text(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    ids = await proposal_ids(client, demo)
    start = demo.core.last_position()
    hostile = (
        "<script>alert(1)</script> [x](http://evil.example) ![i](http://evil.example/i.png) "
        '=HYPERLINK("http://x") <img src=x onerror=alert(2)>'
    )
    await decide(client, demo, "chair-regional", ids[FINANCING], "reconsider", reason="<b>Why</b>")
    await decide(client, demo, "chair-regional", ids[FINANCING], "approve", final_text=hostile)
    for fmt in ("html", "md"):
        body = (await changes(client, demo, start, format=fmt)).text
        html = body if fmt == "html" else markdown_html(body.encode())
        assert not re.search(r"<\s*(script|img|a|iframe)\b", html, re.I), html
        page = Page(html)
        assert {tag for tag, _ in page.tags} <= {
            "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "ul", "li",
            "p", "del", "ins", "s", "strong",
        }  # fmt: skip
        (item,) = [text for text in page.texts("li") if text.startswith("3.2:")]
        assert "<script>alert(1)</script>" in item and "[x](http://evil.example)" in item
