"""Case commands: each loads the case, applies one form, and saves it, in one transaction.

`services.cases` works on the unrestricted store (the demo, the tests' set-up). A request uses
`for_agency(agency_id)`: its repository reads and writes through the agency's view of the store
(gateway.store.agency_store), so the case must be one of the agency's (403 otherwise, recorded),
and a referral must put the agency on the team it creates.
"""

from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Connection

from gateway.cases.information_requests import InformationRequests
from gateway.cases.record_release import AgencyRelease, RecordRelease
from gateway.cases.repository import CaseRepository
from gateway.domain.case import MultiAgencyCase
from gateway.domain.consent import ConsentRecord
from gateway.domain.forms import Closure, Meeting, Referral, RfiInput
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest
from gateway.domain.safety_plan import SafetyPlanAction
from gateway.domain.summary import CaseSummary, Withholding, summarise
from gateway.domain.team import Team
from gateway.domain.case import CoordinationNotice
from gateway.domain.vocabulary import Jurisdiction
from gateway.errors import Forbidden, NotFound
from gateway.fhir.ids import new_id
from gateway.store.agency_store import AgencyStore, Refused
from gateway.store.database import Database


class CaseService:
    def __init__(
        self, db: Database, repository: CaseRepository, rfis: InformationRequests,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), agency_id: str | None = None,
        release: RecordRelease | None = None, screen: AgencyRelease | None = None,
    ):
        self.db = db
        self.repository = repository
        self.rfis = rfis  # RFIs take the one brokered path: checked, consent-decided, audited, sent
        self.clock = clock
        self.agency_id = agency_id  # whose systems use this service; None: unrestricted
        self.release = release  # the release check, which makes each agency's `screen`
        self.screen = screen  # what this agency's summary may show; None: everything (the gateway itself)

    def for_agency(self, agency_id: str, refused: Refused = lambda reason, detail: None) -> "CaseService":
        """These commands as agency `agency_id`'s systems may use them; `refused(reason, detail)` hears every refusal."""
        store = AgencyStore(self.repository.store, agency_id, refused)
        screen = self.release.for_agency(agency_id) if self.release is not None else None
        return CaseService(self.db, CaseRepository(store), self.rfis, self.clock, agency_id, self.release, screen)

    async def require_case(self, case_id: str) -> None:
        """NotFound unless the case exists; for an agency's service, Forbidden (recorded) unless the
        agency is on its team. The native API checks every case route with it first, whatever path
        the command then takes (RFIs are routed by the unrestricted brokering path)."""

        def job(conn: Connection) -> None:
            if self.repository.store.current(conn, "EpisodeOfCare", case_id) is None:
                raise NotFound(f"Case {case_id} does not exist")

        await self.db.read(job)

    async def refer(
        self,
        jurisdiction: Jurisdiction,
        referral: Referral,
        people: list[Person],
        team: Team,
        consents: list[ConsentRecord],
        notices: list[CoordinationNotice],
    ) -> MultiAgencyCase:
        case_id = new_id()

        def job(conn: Connection) -> MultiAgencyCase:
            for member in team.members:
                self.repository.agency(conn, member.agency_id)  # every team agency is registered
            case = MultiAgencyCase.refer(case_id, jurisdiction, referral, people, team)
            for record in consents:
                case.record_consent(record)
            for notice in notices:
                case.record_notice(notice)
            self.repository.save(conn, case)
            return case

        return await self.db.write(job)

    async def request_information(self, case_id: str, requests: list[InformationRequest], inputs: list[RfiInput]) -> list[str]:
        """Record the inputs (3A Part 2) and route each request; return what became of each request."""
        for i, request in enumerate(requests):
            if self.agency_id is not None and request.requester_agency_id != self.agency_id:
                raise Forbidden.at(f"requests[{i}].requester", f"Agency {self.agency_id} can send RFIs in its own name only")

        def job(conn: Connection) -> list[str]:
            if inputs:
                case = self.repository.load(conn, case_id)
                for item in inputs:
                    case.record_rfi_input(item)
                self.repository.save(conn, case)
            memo: dict = {}
            return [self.rfis.route(conn, request, case_id, None, memo) for request in requests]

        return await self.db.write(job)

    async def record_meeting(
        self, case_id: str, meeting: Meeting, actions: list[SafetyPlanAction], notices: list[CoordinationNotice]
    ) -> MultiAgencyCase:
        def change(conn: Connection, case: MultiAgencyCase) -> None:
            case.record_meeting(meeting)
            for action in actions:
                case.add_action(action)
            for notice in notices:
                case.record_notice(notice)

        return await self._change(case_id, change)

    async def close(self, case_id: str, closure: Closure) -> MultiAgencyCase:
        return await self._change(case_id, lambda conn, case: case.close(closure))

    async def summary(self, case_id: str) -> CaseSummary:
        """The case as this service's agency may see it: what the release check withholds from a
        read of the records behind it is left out here too, and recorded the same way."""

        def job(conn: Connection) -> CaseSummary:
            case = self.repository.load(conn, case_id)
            types = {m.agency_id: self.repository.agency(conn, m.agency_id).type for m in case.team.members}
            withholding = self.screen.withholding(conn, case) if self.screen is not None else Withholding()
            return summarise(case, types, self.clock(), withholding)

        async with self.screen.recorded(self.db, "read") if self.screen is not None else nullcontext():
            return await self.db.read(job)

    async def _change(self, case_id: str, change: Callable[[Connection, MultiAgencyCase], None]) -> MultiAgencyCase:
        def job(conn: Connection) -> MultiAgencyCase:
            case = self.repository.load(conn, case_id)
            change(conn, case)
            self.repository.save(conn, case)
            return case

        return await self.db.write(job)

