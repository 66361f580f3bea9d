"""Demo data: a small sales team and its book of business, the same on every run (seeded random).

:func:`build` is pure: given the staff ids and the current time it returns the rows to insert, with
dates placed relative to ``now`` so the dashboard always has something to show (deals won this
month, activities due today and overdue). :func:`load` inserts them on one connection, after the
staff logins have been created through a caller-supplied function (the auth library owns users).

All names are invented; e-mail domains use the reserved ``.example`` TLD and phone numbers the
fictional 555-01xx range, so nothing here can reach a real person.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from wexlot.crm import tables as t

SEED = 20_261_125
DEMO_PASSWORD = "wexlot-demo"
DEMO_DOMAIN = "wexlot.demo"

Row = dict[str, Any]


@dataclass(frozen=True)
class StaffMember:
    key: str
    full_name: str
    email: str
    role: str
    title: str
    phone: str


STAFF = (
    StaffMember("admin", "Alex Morgan", f"admin@{DEMO_DOMAIN}", "admin", "Operations Director", "+1 555 0100"),
    StaffMember("manager", "Priya Shah", f"priya.shah@{DEMO_DOMAIN}", "manager", "Sales Manager", "+1 555 0101"),
    StaffMember("diego", "Diego Alvarez", f"diego.alvarez@{DEMO_DOMAIN}", "rep", "Account Executive", "+1 555 0102"),
    StaffMember("hannah", "Hannah Becker", f"hannah.becker@{DEMO_DOMAIN}", "rep", "Account Executive", "+1 555 0103"),
    StaffMember("kenji", "Kenji Watanabe", f"kenji.watanabe@{DEMO_DOMAIN}", "rep", "Sales Rep", "+1 555 0104"),
)
OWNERS = ("diego", "hannah", "kenji", "manager")  # who owns companies, round robin

# name, kind, url
PLATFORMS = (
    ("Email", "email", None),
    ("Phone", "phone", None),
    ("LinkedIn", "social", "https://www.linkedin.com"),
    ("WhatsApp", "chat", "https://www.whatsapp.com"),
    ("Website", "web", None),
)
PLATFORM_KIND = {"Email": "email", "Phone": "call", "LinkedIn": "social", "WhatsApp": "chat", "Website": "other"}

# name, domain stem, industry, size, city
COMPANIES = (
    ("Brightlane Logistics", "brightlane", "Logistics", "201-500", "Columbus, OH"),
    ("Northwind Outfitters", "northwind-outfitters", "Retail", "51-200", "Portland, OR"),
    ("Cobalt Ridge Energy", "cobaltridge", "Energy", "501-1000", "Denver, CO"),
    ("Harbor & Finch Legal", "harborfinch", "Legal services", "11-50", "Boston, MA"),
    ("Meridian Health Partners", "meridianhealth", "Healthcare", "1001-5000", "Nashville, TN"),
    ("Quillstone Publishing", "quillstone", "Media", "51-200", "Brooklyn, NY"),
    ("Tallgrass Foods", "tallgrassfoods", "Food & beverage", "201-500", "Omaha, NE"),
    ("Vantage Point Analytics", "vantagepoint", "Software", "11-50", "Austin, TX"),
    ("Silverbirch Dental Group", "silverbirch", "Healthcare", "51-200", "Madison, WI"),
    ("Ironclad Manufacturing", "ironclad-mfg", "Manufacturing", "501-1000", "Toledo, OH"),
    ("Bluewater Marine Supply", "bluewatermarine", "Wholesale", "11-50", "Tampa, FL"),
    ("Copperleaf Architects", "copperleaf", "Architecture", "11-50", "Seattle, WA"),
    ("Summit Peak Fitness", "summitpeak", "Fitness", "51-200", "Salt Lake City, UT"),
    ("Juniper Street Bakery", "juniperstreet", "Food & beverage", "1-10", "Asheville, NC"),
    ("Lumen Solar Co-op", "lumensolar", "Energy", "11-50", "Albuquerque, NM"),
    ("Redwood Property Management", "redwoodpm", "Real estate", "51-200", "Sacramento, CA"),
    ("Atlas Freight Brokers", "atlasfreight", "Logistics", "201-500", "Memphis, TN"),
    ("Greenfield Agritech", "greenfield-agri", "Agriculture", "51-200", "Des Moines, IA"),
    ("Orchard Lane Schools", "orchardlane", "Education", "201-500", "Ann Arbor, MI"),
    ("Pinecrest Insurance Agency", "pinecrest", "Insurance", "11-50", "Charlotte, NC"),
)
PRIVATE_COMPANIES = (7, 15)  # Vantage Point (diego's), Redwood (diego's): rep-owned, private

FIRST_NAMES = (
    "Maria", "James", "Aisha", "Tom", "Elena", "Marcus", "Sofia", "Daniel", "Grace", "Omar", "Lucia", "Ben",
    "Chloe", "Ravi", "Nina", "Samuel", "Fatima", "Lars", "Mei", "Patrick", "Amara", "Jonas", "Carmen", "Ethan",
    "Yuki", "Noah", "Isabel", "Kwame", "Olivia", "Mateo", "Zara", "Henry", "Leila", "Victor", "Rosa", "Owen",
    "Ingrid", "Tariq", "Hana", "Luke", "Beatriz", "Caleb", "Anya", "Felix", "Naomi", "Arjun", "Sienna", "Paul",
    "Dana", "Rafael",
)  # fmt: skip
LAST_NAMES = (
    "Lopez", "Carter", "Bello", "Nguyen", "Petrova", "Reed", "Rossi", "Kim", "O'Neill", "Haddad", "Fernandez",
    "Walsh", "Dubois", "Iyer", "Novak", "Brooks", "Rahman", "Eriksen", "Chen", "Murphy", "Okafor", "Weber",
    "Ortiz", "Hughes", "Sato", "Fischer", "Morales", "Mensah", "Bennett", "Silva", "Khan", "Foster", "Nasser",
    "Popescu", "Alvarado", "Price", "Larsen", "Aziz", "Park", "Sullivan", "Costa", "Hayes", "Volkova", "Wagner",
    "Cohen", "Menon", "Clarke", "Gallagher", "Rivera", "Moreau",
)  # fmt: skip
TITLES = (
    "CEO", "COO", "Head of Operations", "Procurement Manager", "IT Director", "Office Manager", "CFO",
    "Marketing Lead", "Operations Analyst", "Founder", "VP Sales", "Purchasing Coordinator",
)  # fmt: skip
SOURCES = ("Website", "Referral", "LinkedIn", "Trade show", "Cold outreach", "Webinar")
TAGS = ("decision-maker", "champion", "budget-holder", "technical", "newsletter", "vip", "renewal")

DEAL_PRODUCTS = (
    "Annual platform license", "Onboarding package", "Support renewal", "Pilot expansion", "Fleet rollout",
    "Multi-site upgrade", "Premium support tier", "Data migration project", "Team seats add-on", "Training program",
)  # fmt: skip
# stage → (count, probability); 30 deals in all, won split into this month and earlier.
STAGE_PLAN = (
    ("lead", 5, 10),
    ("qualified", 5, 25),
    ("proposal", 5, 50),
    ("negotiation", 4, 75),
    ("won", 7, 100),
    ("lost", 4, 0),
)
WON_THIS_MONTH = 4

ACTIVITY_SUBJECTS = {
    "call": ("Call {first} about {deal}", "Check in with {first} on budget", "Follow-up call with {first}"),
    "meeting": ("Discovery meeting with {company}", "Demo for the {company} team", "Contract review with {first}"),
    "task": ("Send proposal to {first}", "Prepare quote for {company}", "Update pricing sheet for {deal}"),
    "email": ("Email {first} the case study", "Send recap to {first}", "Reply to {first}'s questions"),
}
INTERACTION_SUMMARIES = {
    "email": ("Sent the pricing sheet", "Replied to questions about the onboarding timeline", "Shared a case study"),
    "call": ("Discussed renewal terms (20 min)", "Walked through the proposal line by line", "Left a voicemail"),
    "social": ("Connected on LinkedIn", "Commented on their product launch post", "Sent a LinkedIn message"),
    "chat": ("Quick WhatsApp check-in about the delivery date", "Confirmed tomorrow's meeting time"),
    "other": ("Submitted the contact form asking for a demo", "Downloaded the pricing guide"),
}

# How many activities of each kind (all relative to ``now``).
ACTIVITY_PLAN = (("due_today", 6), ("overdue", 6), ("completed", 14), ("upcoming", 14))
INTERACTION_COUNT = 60

COUNTS = {
    "staff": len(STAFF),
    "platforms": len(PLATFORMS),
    "companies": len(COMPANIES),
    "contacts": len(FIRST_NAMES),
    "deals": sum(n for _, n, _ in STAGE_PLAN),
    "activities": sum(n for _, n in ACTIVITY_PLAN),
    "interactions": INTERACTION_COUNT,
}
"""Rows per table after a demo load (the tests hold the loader to these)."""


@dataclass
class DemoRows:
    """The CRM rows to insert, per table, in an order that satisfies the foreign keys."""

    platforms: list[Row] = field(default_factory=list)
    companies: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    deals: list[Row] = field(default_factory=list)
    activities: list[Row] = field(default_factory=list)
    interactions: list[Row] = field(default_factory=list)

    def tables(self) -> list[tuple[str, list[Row]]]:
        return [
            ("platforms", self.platforms),
            ("companies", self.companies),
            ("contacts", self.contacts),
            ("deals", self.deals),
            ("activities", self.activities),
            ("interactions", self.interactions),
        ]


CreateLogin = Callable[[Connection, StaffMember], str]
"""Create the auth user and staff row for one member on ``conn``; return the staff id."""


def load(conn: Connection, create_login: CreateLogin, now: dt.datetime | None = None) -> dict[str, int]:
    """Create the staff logins, then insert every demo row; return rows inserted per table."""
    staff_ids = {member.key: create_login(conn, member) for member in STAFF}
    existing = dict(conn.execute(select(t.platforms.c.name, t.platforms.c.id)).all())
    rows = build(staff_ids, now or dt.datetime.now(dt.UTC), existing_platforms=existing)
    inserted = {"staff": len(staff_ids)}
    for name, table_rows in rows.tables():
        if table_rows:
            conn.execute(t.CRM_TABLES[name].insert(), table_rows)
        inserted[name] = len(table_rows)
    return inserted


def build(
    staff_ids: Mapping[str, str],
    now: dt.datetime,
    existing_platforms: Mapping[str, str] | None = None,
    seed: int = SEED,
) -> DemoRows:
    """Every demo row but staff; ``staff_ids`` maps :data:`STAFF` keys to their staff ids.

    Platforms already present (by name) are reused instead of inserted again.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _Builder(staff_ids, now, dict(existing_platforms or {}), random.Random(seed)).run()


def _status_after(status: str, stage: str) -> str:
    """A contact's status once one of its deals is at ``stage`` (never downgrades a customer)."""
    if status == "customer" or stage == "won":
        return "customer"
    return "prospect" if stage in ("proposal", "negotiation") and status == "lead" else status


class _Builder:
    def __init__(self, staff_ids: Mapping[str, str], now: dt.datetime, platforms: dict[str, str], rng: random.Random):
        self.staff = staff_ids
        self.now = now
        # "Today" and "this month" as the person running the demo sees them.
        local = now.astimezone()
        self.today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self.month_start = self.today.replace(day=1)
        self.platform_ids = platforms
        self.rng = rng
        self.out = DemoRows()

    def run(self) -> DemoRows:
        self._platforms()
        self._companies()
        self._contacts()
        self._deals()
        self._activities()
        self._interactions()
        self._backdate_parents()
        return self.out

    # -- helpers -------------------------------------------------------------------------------

    def _days_ago(self, low: float, high: float) -> dt.datetime:
        return self.now - dt.timedelta(days=self.rng.uniform(low, high))

    @staticmethod
    def _record(created: dt.datetime, **values: Any) -> Row:
        return {"id": str(uuid.uuid4()), "created_at": created, "updated_at": created, **values}

    def _backdate_parents(self) -> None:
        """Move each parent's creation before its earliest child's, children first."""
        by_id = {row["id"]: row for _, rows in self.out.tables() for row in rows}
        parents = {
            "interactions": ("contact_id",),
            "activities": ("deal_id", "contact_id", "company_id"),
            "deals": ("contact_id", "company_id"),
            "contacts": ("company_id",),
        }
        for table, columns in parents.items():
            for row in getattr(self.out, table):
                for column in columns:
                    parent = by_id.get(row[column])
                    limit = row["created_at"] - dt.timedelta(hours=self.rng.uniform(1, 72))
                    if parent is not None and parent["created_at"] > limit:
                        parent["created_at"] = parent["updated_at"] = limit

    # -- tables --------------------------------------------------------------------------------

    def _platforms(self) -> None:
        for name, kind, url in PLATFORMS:
            if name in self.platform_ids:
                continue
            row = self._record(self.now - dt.timedelta(days=180), name=name, kind=kind, url=url, is_active=True)
            self.platform_ids[name] = row["id"]
            self.out.platforms.append(row)

    def _companies(self) -> None:
        for i, (name, stem, industry, size, city) in enumerate(COMPANIES):
            private = i in PRIVATE_COMPANIES
            owner = "diego" if private else OWNERS[i % len(OWNERS)]
            self.out.companies.append(
                self._record(
                    self._days_ago(90, 240),
                    name=name,
                    domain=f"{stem}.example",
                    industry=industry,
                    size=size,
                    website=f"https://www.{stem}.example",
                    phone=f"+1 555 01{10 + i:02d}",
                    address=city,
                    notes="Key account: pricing discussed only with the owner." if private else None,
                    owner_id=self.staff[owner],
                    visibility="private" if private else "team",
                )
            )

    def _contacts(self) -> None:
        companies = self.out.companies
        for i, (first, last) in enumerate(zip(FIRST_NAMES, LAST_NAMES, strict=True)):
            # 45 contacts spread over the 20 companies (2-3 each), the last 5 independent.
            company = companies[i % len(companies)] if i < 45 else None
            stem = company["domain"] if company else "gmail.example"
            owner_id = company["owner_id"] if company else self.staff[OWNERS[i % len(OWNERS)]]
            private = bool(company and company["visibility"] == "private") or i == 47
            if i == 47:
                owner_id = self.staff["hannah"]
            handle = f"{first}.{last}".lower().replace("'", "")
            self.out.contacts.append(
                self._record(
                    self._days_ago(20, 120),
                    first_name=first,
                    last_name=last,
                    email=f"{handle}@{stem}",
                    phone=f"+1 555 01{50 + i:02d}",
                    title=self.rng.choice(TITLES),
                    company_id=company["id"] if company else None,
                    owner_id=owner_id,
                    status=self.rng.choice(("lead", "lead", "lead", "prospect", "churned")),
                    source=self.rng.choice(SOURCES),
                    tags=sorted(self.rng.sample(TAGS, self.rng.randint(0, 2))),
                    notes=None,
                    visibility="private" if private else "team",
                )
            )

    def _deals(self) -> None:
        with_company = [c for c in self.out.contacts if c["company_id"]]
        companies = {c["id"]: c for c in self.out.companies}
        won_seen = 0
        n = 0
        for stage, count, probability in STAGE_PLAN:
            for position in range(count):
                contact = with_company[(n * 7) % len(with_company)]
                company = companies[contact["company_id"]]
                n += 1
                closed_at = None
                if stage == "won" and won_seen < WON_THIS_MONTH:
                    won_seen += 1
                    closed_at = self.month_start + (self.now - self.month_start) * self.rng.uniform(0.05, 0.95)
                    created = closed_at - dt.timedelta(days=self.rng.uniform(20, 80))
                elif stage in t.CLOSED_STAGES:
                    closed_at = self.month_start - dt.timedelta(days=self.rng.uniform(3, 120))
                    created = closed_at - dt.timedelta(days=self.rng.uniform(20, 80))
                else:
                    created = self._days_ago(5, 100)
                close_date = (
                    closed_at.date() if closed_at else (self.today + dt.timedelta(days=self.rng.randint(7, 90))).date()
                )
                contact["status"] = _status_after(contact["status"], stage)
                amount = Decimal(self.rng.randrange(40, 2400) * 50) + Decimal(self.rng.choice((0, 0, 0, 99))) / 100
                self.out.deals.append(
                    self._record(
                        created,
                        title=f"{company['name']}: {self.rng.choice(DEAL_PRODUCTS)}",
                        amount=amount,
                        currency="USD",
                        stage=stage,
                        probability=probability,
                        expected_close_date=close_date,
                        closed_at=closed_at,
                        position=float((position + 1) * 1000),
                        contact_id=contact["id"],
                        company_id=company["id"],
                        owner_id=company["owner_id"],
                        visibility=company["visibility"],
                    )
                )

    def _activities(self) -> None:
        open_deals = [d for d in self.out.deals if d["stage"] not in t.CLOSED_STAGES]
        contacts = {c["id"]: c for c in self.out.contacts}
        companies = {c["id"]: c for c in self.out.companies}
        types = tuple(ACTIVITY_SUBJECTS)
        n = 0
        for bucket, count in ACTIVITY_PLAN:
            for i in range(count):
                deal = open_deals[(n * 5) % len(open_deals)]
                n += 1
                contact = contacts[deal["contact_id"]]
                kind = types[n % len(types)]
                subject = self.rng.choice(ACTIVITY_SUBJECTS[kind]).format(
                    first=contact["first_name"],
                    company=companies[deal["company_id"]]["name"],
                    deal=deal["title"].split(": ", 1)[1].lower(),
                )
                completed_at = None
                if bucket == "due_today":
                    due = self.today + dt.timedelta(hours=9 + i * 1.5)
                    created = self._days_ago(1, 7)
                elif bucket == "overdue":
                    due = self.today - dt.timedelta(days=1 + i * 2, hours=-10)
                    created = due - dt.timedelta(days=self.rng.uniform(2, 10))
                elif bucket == "completed":
                    due = self._days_ago(1, 45)
                    completed_at = min(due + dt.timedelta(hours=self.rng.uniform(-3, 20)), self.now)
                    created = due - dt.timedelta(days=self.rng.uniform(2, 10))
                else:
                    due = self.today + dt.timedelta(days=1 + i * 1.5, hours=10)
                    created = self._days_ago(0, 5)
                # Now and then the manager sets a task for the deal owner.
                owner = deal["owner_id"]
                by_manager = kind == "task" and deal["visibility"] == "team" and i % 3 == 0
                self.out.activities.append(
                    self._record(
                        min(created, self.now),
                        type=kind,
                        subject=subject,
                        description=None,
                        due_at=due,
                        completed=completed_at is not None,
                        completed_at=completed_at,
                        contact_id=contact["id"],
                        company_id=deal["company_id"],
                        deal_id=deal["id"],
                        assigned_to=owner,
                        owner_id=self.staff["manager"] if by_manager else owner,
                    )
                )

    def _interactions(self) -> None:
        contacts = self.out.contacts
        names = [name for name, _, _ in PLATFORMS]
        for i in range(INTERACTION_COUNT):
            contact = contacts[(i * 11) % len(contacts)]
            platform = names[i % len(names)]
            kind = PLATFORM_KIND[platform]
            occurred = self._days_ago(0.05, 60)
            self.out.interactions.append(
                self._record(
                    occurred,
                    contact_id=contact["id"],
                    platform_id=self.platform_ids[platform],
                    kind=kind,
                    direction="inbound" if kind == "other" else self.rng.choice(("inbound", "outbound")),
                    summary=self.rng.choice(INTERACTION_SUMMARIES[kind]),
                    occurred_at=occurred,
                    staff_id=contact["owner_id"],
                )
            )
