"""Case commands: each loads the case, applies one form, and saves it, in one transaction.

`services.cases` works on the unrestricted store (the demo, the tests' set-up). A request uses
`for_agency(agency_id)`: its repository reads and writes through the agency's view of the store
(gateway.store.agency_store), so the case must be one of the agency's (403 otherwise, recorded),
and a referral must put the agency on the team it creates.
"""

import uuid
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Connection

from gateway.cases.repository import CaseRepository
from gateway.domain.case import MultiAgencyCase
from gateway.domain.consent import ConsentRecord
from gateway.domain.forms import Closure, Meeting, Referral, RfiInput
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest
from gateway.domain.safety_plan import SafetyPlanAction
from gateway.domain.summary import CaseSummary, summarise
from gateway.domain.team import Team
from gateway.domain.case import CoordinationNotice
from gateway.domain.vocabulary import Jurisdiction
from gateway.store.agency_store import AgencyStore, Refused
from gateway.store.database import Database


class CaseService:
    def __init__(self, db: Database, repository: CaseRepository, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.db = db
        self.repository = repository
        self.clock = clock

    def for_agency(self, agency_id: str, refused: Refused = lambda reason, detail: None) -> "CaseService":
        """These commands as agency `agency_id`'s systems may use them; `refused(reason, detail)` hears every refusal."""
        return CaseService(self.db, CaseRepository(AgencyStore(self.repository.store, agency_id, refused)), self.clock)

    async def refer(
        self,
        jurisdiction: Jurisdiction,
        referral: Referral,
        people: list[Person],
        team: Team,
        consents: list[ConsentRecord],
        notices: list[CoordinationNotice],
    ) -> MultiAgencyCase:
        case_id = str(uuid.uuid4())

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

    async def request_information(self, case_id: str, requests: list[InformationRequest], inputs: list[RfiInput]) -> MultiAgencyCase:
        def change(conn: Connection, case: MultiAgencyCase) -> None:
            for request in requests:
                self.repository.agency(conn, request.target_agency_id)
                case.request_information(request)
            for item in inputs:
                case.record_rfi_input(item)

        return await self._change(case_id, change)

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
        def job(conn: Connection) -> CaseSummary:
            case = self.repository.load(conn, case_id)
            types = {m.agency_id: self.repository.agency(conn, m.agency_id).type for m in case.team.members}
            return summarise(case, types, self.clock())

        return await self.db.read(job)

    async def _change(self, case_id: str, change: Callable[[Connection, MultiAgencyCase], None]) -> MultiAgencyCase:
        def job(conn: Connection) -> MultiAgencyCase:
            case = self.repository.load(conn, case_id)
            change(conn, case)
            self.repository.save(conn, case)
            return case

        return await self.db.write(job)

