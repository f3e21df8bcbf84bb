"""One notion of an interaction's time: the same half-hour call, and the same meeting, logged in two or three
CRMs the way each vendor stores it, land at the same moment — their start — on the unified timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from sandbox.dynamics import DynamicsData
from sandbox.hubspot import HubSpotData
from sandbox.runtime import Sandbox
from sandbox.salesforce import SalesforceData
from sandbox.world.generator import World
from tests.e2e.hub import engine_of, hub_environment, pull, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
START = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)       # the call and the meeting begin here, 30 minutes each
END = START + timedelta(minutes=30)
CREATED = START - timedelta(days=30)
CONTACT = "5f0c9a1e-0000-4000-8000-000000000001"


def hs(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def sf(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def dv(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def one_person_world() -> World:
    """Dana, known in every CRM: a logged call in HubSpot and in Dataverse, a meeting in all three."""
    email = "dana.cohen@example.co.il"
    created, later = hs(CREATED), hs(END + timedelta(hours=1))
    engagement = {"createdAt": created, "updatedAt": later, "archived": False}
    hubspot = HubSpotData(objects={
        "contacts": [{"id": "101", "properties": {"email": email, "firstname": "Dana", "lastname": "Cohen"},
                      "createdAt": created, "updatedAt": created, "archived": False}],
        # HubSpot: hs_timestamp is the call's time on the timeline (its start); the duration is separate
        "calls": [{"id": "201", "properties": {"hs_timestamp": hs(START), "hs_call_duration": str(30 * 60_000),
                                               "hs_call_direction": "INBOUND", "hs_call_status": "COMPLETED",
                                               "hs_call_title": "Pricing question"}, **engagement}],
        "meetings": [{"id": "301", "properties": {"hs_timestamp": hs(START), "hs_meeting_start_time": hs(START),
                                                  "hs_meeting_end_time": hs(END), "hs_meeting_outcome": "COMPLETED",
                                                  "hs_meeting_title": "Demo"}, **engagement}]},
        associations=[("calls", "201", "contacts", "101", 194), ("meetings", "301", "contacts", "101", 200)])
    contact_id = "003000000000001AAA"
    salesforce = SalesforceData(records={
        "Contact": [{"Id": contact_id, "FirstName": "Dana", "LastName": "Cohen", "Email": email,
                     "CreatedDate": sf(CREATED), "LastModifiedDate": sf(CREATED), "SystemModstamp": sf(CREATED)}],
        "Event": [{"Subject": "Demo", "WhoId": contact_id, "StartDateTime": sf(START), "EndDateTime": sf(END),
                   "ActivityDateTime": sf(START), "DurationInMinutes": 30, "CreatedDate": sf(CREATED),
                   "LastModifiedDate": sf(END), "SystemModstamp": sf(END)}]})
    row = {"createdon": dv(CREATED), "modifiedon": dv(END + timedelta(hours=1))}
    dynamics = DynamicsData(rows={
        "contacts": [{"contactid": CONTACT, "firstname": "Dana", "lastname": "Cohen", "emailaddress1": email,
                      "createdon": dv(CREATED), "modifiedon": dv(CREATED)}],
        # Dataverse: a completed call's actualstart is its start, actualend its end
        "phonecalls": [{"activityid": "5f0c9a1e-0000-4000-8000-000000000002", "subject": "Pricing question",
                        "directioncode": False, "statecode": 1, "statuscode": 4, "actualstart": dv(START),
                        "actualend": dv(END), "scheduledstart": dv(START), "scheduledend": dv(END),
                        "actualdurationminutes": 30, "_regardingobjectid_value": CONTACT, **row}],
        "appointments": [{"activityid": "5f0c9a1e-0000-4000-8000-000000000003", "subject": "Demo", "statecode": 1,
                          "statuscode": 3, "scheduledstart": dv(START), "scheduledend": dv(END),
                          "actualstart": dv(START), "actualend": dv(END), "_regardingobjectid_value": CONTACT,
                          **row}]})
    return World(hubspot=hubspot, salesforce=salesforce, dynamics=dynamics, truth={"persons": []})


def timeline(engine: Engine) -> dict[tuple[str, str], set[datetime]]:
    with engine.connect() as connection:
        customers = connection.execute(text("SELECT COUNT(*) FROM customer_360")).scalar_one()
        assert customers == 1, "Dana is one customer across the three CRMs"
        rows = connection.execute(text("SELECT system, kind, occurred_at FROM unified_timeline "
                                       "WHERE kind IN ('call', 'meeting')")).all()
    found: dict[tuple[str, str], set[datetime]] = {}
    for system, kind, occurred in rows:
        moment = occurred if isinstance(occurred, datetime) else datetime.fromisoformat(str(occurred))
        found.setdefault((kind, system), set()).add(moment.astimezone(UTC))
    return found


def test_the_same_call_and_meeting_land_at_their_start_in_every_crm(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with Sandbox(world=one_person_world(), anchor=ANCHOR, limits=False) as sandbox, \
            hub_environment(sandbox.env, url) as settings:
        assert all(sync.status in ("succeeded", "partial") and not sync.error for sync in pull(settings))
        tag(settings, ANCHOR)
        found = timeline(engine_of(settings))
    assert found == {("call", "hubspot"): {START}, ("call", "dynamics"): {START},
                     ("meeting", "hubspot"): {START}, ("meeting", "salesforce"): {START},
                     ("meeting", "dynamics"): {START}}
