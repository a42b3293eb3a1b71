"""The Islamabad 2025 demo meeting: its people, themes and a dozen proposals in every state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.application import SYSTEM, PreparatoryMeetings

DEMO_KEY = "demo-islamabad-2025"

MEETING: dict[str, Any] = {
    "title": "Third UN Peacekeeping Ministerial Preparatory Meeting: Towards a Safer and More "
    "Effective Peacekeeping: Use of Technology and Integrated Approach",
    "venue": "Centre for International Peace and Stability (CIPS), NUST, Islamabad",
    "starts_on": "2025-04-15",
    "ends_on": "2025-04-16",
    "hosts": ["Pakistan", "Republic of Korea"],
    "ministerial": "berlin-2025",
    "themes": [
        {"key": "technology", "title": "Use of technology in peacekeeping"},
        {"key": "safety-security", "title": "Safety and security of peacekeepers"},
        {
            "key": "regional-cooperation",
            "title": "Cooperation between regional organizations and the UN",
        },
    ],
}

# handle: (name, delegation, global role, meeting role, themes)
PEOPLE: dict[str, tuple[str, str, str | None, str | None, list[str]]] = {
    "secretariat": ("Amina Qureshi", "UN Department of Peace Operations", "secretariat", None, []),
    "berlin": ("Jonas Becker", "Germany (Berlin ministerial team)", "ministerial", None, []),
    "chair-tech": ("Ayesha Malik", "Pakistan", None, "chair", ["technology"]),
    "chair-safety": ("Min-jun Park", "Republic of Korea", None, "chair", ["safety-security"]),
    "chair-regional": ("Fatima Diallo", "African Union", None, "chair", ["regional-cooperation"]),
    "rapporteur-tech": ("Rahul Banerjee", "Bangladesh", None, "rapporteur", ["technology"]),
    "rapporteur-safety": ("Grace Mukamana", "Rwanda", None, "rapporteur", ["safety-security"]),
    "rapporteur-regional": (
        "Lucía Fernández",
        "Uruguay",
        None,
        "rapporteur",
        ["regional-cooperation"],
    ),
    "rapporteur-indonesia": (
        "Siti Rahayu",
        "Indonesia",
        None,
        "rapporteur",
        ["technology", "safety-security", "regional-cooperation"],
    ),
    "observer": ("Elena Rossi", "European Union", None, "observer", []),
}


@dataclass
class Proposal:
    handle: str
    rapporteur: str
    theme: str
    title: str
    text: str
    outcome: str
    final_text: str | None = None
    reason: str | None = None
    into: str | None = None
    endorse: tuple[str, ...] = ()


PROPOSALS: list[Proposal] = [
    Proposal(
        "situational-awareness",
        "rapporteur-tech",
        "technology",
        "Shared situational-awareness platform for field missions",
        "Missions should adopt a common, secure situational-awareness platform that brings "
        "together patrol reports, sensor feeds and incident data, so that commanders and "
        "civilian components work from the same picture.",
        "approved",
        final_text="Member States and the Secretariat should accelerate the roll-out of a "
        "common, secure situational-awareness platform across field missions, with "
        "interoperability standards agreed with troop- and police-contributing countries.",
        endorse=("rapporteur-indonesia",),
    ),
    Proposal(
        "early-warning",
        "rapporteur-indonesia",
        "technology",
        "Data-driven early warning with safeguards for civilians",
        "Early-warning analytics should inform protection-of-civilians planning, subject to "
        "data-protection and human-rights due-diligence safeguards.",
        "approved",
    ),
    Proposal(
        "digital-literacy",
        "rapporteur-tech",
        "technology",
        "Technology training partnerships for contributing countries",
        "Establish triangular partnerships in which Member States with advanced capabilities "
        "train and equip contributing countries in the use of new technologies.",
        "submitted",
    ),
    Proposal(
        "tech-training-duplicate",
        "rapporteur-indonesia",
        "technology",
        "Training on digital tools before deployment",
        "Contributing countries should receive pre-deployment training on the digital tools "
        "used in missions.",
        "merged",
        into="digital-literacy",
        reason="Covered by the proposal on technology training partnerships.",
    ),
    Proposal(
        "casevac",
        "rapporteur-safety",
        "safety-security",
        "Casualty evacuation within the 10-1-2 standard",
        "Every mission should meet the 10-1-2 casualty-evacuation standard, with night-flying "
        "capable aviation assets and trained medical teams at company operating bases.",
        "approved",
        endorse=("rapporteur-indonesia",),
    ),
    Proposal(
        "counter-ied",
        "rapporteur-indonesia",
        "safety-security",
        "Regional counter-IED training hubs",
        "Set up counter-IED training hubs in regional peacekeeping training centres, drawing on "
        "lessons from missions facing explosive threats.",
        "approved",
        endorse=("rapporteur-safety",),
    ),
    Proposal(
        "mental-health",
        "rapporteur-safety",
        "safety-security",
        "Mental-health support for deployed and returning personnel",
        "Provide psychological support before, during and after deployment.",
        "revision_requested",
        reason="Please specify who provides and funds the support after repatriation.",
    ),
    Proposal(
        "vehicle-pool",
        "rapporteur-safety",
        "safety-security",
        "A global pool of armoured vehicles",
        "Create a Secretariat-owned pool of armoured vehicles to be lent to contingents.",
        "rejected",
        reason="Contingent-owned equipment arrangements already cover this; no support for "
        "a Secretariat-owned pool.",
    ),
    Proposal(
        "joint-planning",
        "rapporteur-regional",
        "regional-cooperation",
        "Joint AU–UN planning for mission transitions",
        "The African Union and the United Nations should plan transitions together from the "
        "outset, with joint benchmarks and a shared analysis of the conflict.",
        "approved",
        endorse=("rapporteur-indonesia",),
    ),
    Proposal(
        "financing-2719",
        "rapporteur-indonesia",
        "regional-cooperation",
        "Predictable financing of AU-led peace support operations",
        "Implement Security Council resolution 2719 (2023) so that AU-led peace support "
        "operations receive predictable, sustainable and flexible financing.",
        "approved",
    ),
    Proposal(
        "planning-duplicate",
        "rapporteur-indonesia",
        "regional-cooperation",
        "Common AU–UN planning cell",
        "Create a standing AU–UN planning cell.",
        "merged",
        into="joint-planning",
        reason="Merged into the proposal on joint AU–UN transition planning.",
    ),
    Proposal(
        "liaison-officers",
        "rapporteur-regional",
        "regional-cooperation",
        "Exchange of liaison officers with sub-regional organizations",
        "Missions should exchange liaison officers with ECOWAS, SADC and IGAD.",
        "draft",
    ),
    Proposal(
        "women-peacekeepers",
        "rapporteur-regional",
        "regional-cooperation",
        "Regional rosters of women peacekeepers",
        "Regional organizations should keep rosters of trained women peacekeepers.",
        "withdrawn",
        reason="To be raised at the women, peace and security session instead.",
    ),
]


def load_demo(app: PreparatoryMeetings) -> dict[str, Any]:
    """Load the demo meeting once; every run prints fresh tokens for the demo users."""
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}
    for handle, (name, delegation, global_role, _, _) in PEOPLE.items():
        result = app.create_user(
            SYSTEM,
            name,
            delegation,
            secretariat=global_role == "secretariat",
            ministerial=global_role == "ministerial",
            idempotency_key=f"{DEMO_KEY}:{handle}",
        )
        users[handle] = result.state
        token = result.extra["token"] or app.issue_token(SYSTEM, result.state["id"]).extra["token"]
        tokens[handle] = token
    meeting = app.schedule_meeting(SYSTEM, idempotency_key=DEMO_KEY, **MEETING)
    meeting_id = meeting.state["id"]
    if meeting.created:
        _populate(app, meeting_id, users)
    return {"meeting_id": meeting_id, "users": users, "tokens": tokens}


def _populate(app: PreparatoryMeetings, meeting_id: str, users: dict[str, Any]) -> None:
    def uid(handle: str) -> str:
        return str(users[handle]["id"])

    for handle, (_, _, _, role, themes) in PEOPLE.items():
        if role is not None:
            app.enrol_participant(SYSTEM, meeting_id, uid(handle), role, themes)
    app.open_meeting(SYSTEM, meeting_id)
    chairs = {
        "technology": "chair-tech",
        "safety-security": "chair-safety",
        "regional-cooperation": "chair-regional",
    }
    ids: dict[str, str] = {}
    for p in PROPOSALS:
        submit = p.outcome != "draft"
        result = app.draft_proposal(
            uid(p.rapporteur), meeting_id, p.theme, p.title, p.text, submit=submit
        )
        ids[p.handle] = pid = result.state["id"]
        for endorser in p.endorse:
            app.endorse_proposal(uid(endorser), pid, users[endorser]["delegation"])
        chair = uid(chairs[p.theme])
        if p.outcome == "approved":
            app.approve_proposal(chair, pid, final_text=p.final_text)
        elif p.outcome == "rejected":
            app.reject_proposal(chair, pid, p.reason or "")
        elif p.outcome == "revision_requested":
            app.request_revision(chair, pid, p.reason or "")
        elif p.outcome == "merged":
            app.merge_proposal(chair, pid, ids[p.into or ""], p.reason or "")
        elif p.outcome == "withdrawn":
            app.withdraw_proposal(uid(p.rapporteur), pid, p.reason)
    app.comment_on_proposal(
        uid("chair-safety"),
        ids["mental-health"],
        "A costed proposal would help the Fifth Committee discussion.",
    )
    app.order_theme(
        uid("chair-safety"), meeting_id, "safety-security", [ids["counter-ied"], ids["casevac"]]
    )
