"""Builders for billing tests: a property with units, meters, leases and readings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cloud.billing.service.terms import day_start
from cloud.models import (
    Building,
    Gateway,
    Lease,
    LeaseStatus,
    Meter,
    MeterKind,
    Organisation,
    Property,
    Reading,
    Tariff,
    TariffKind,
    Tenant,
    Unit,
    Utility,
)

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")  # ANJU_TIMEZONE's default


class World:
    def __init__(
        self, session: Session, name: str = "Billing Org", *, org: Organisation | None = None
    ) -> None:
        """A property of a new organisation, or of `org`."""
        self.s = session
        self.seq = count(1)
        if org is None:
            org = Organisation(name=name)
            session.add(org)
            session.flush()
        self.org = org
        self.prop = Property(org_id=org.id, name=f"{name} P", city="Shenzhen")
        session.add(self.prop)
        session.flush()
        self.building = Building(property_id=self.prop.id, name="A", floors=10)
        session.add(self.building)
        # the property's gateway: its meters are bound to it
        self.gateway = f"gw-billing-{self.prop.id}"
        session.add(Gateway(id=self.gateway, name="billing tests", property_id=self.prop.id))
        session.flush()

    def unit(self, code: str, area: str, *, rent: int = 200000) -> Unit:
        unit = Unit(
            property_id=self.prop.id,
            building_id=self.building.id,
            code=code,
            floor=1,
            area_m2=Decimal(area),
            base_rent_fen=rent,
        )
        self.s.add(unit)
        self.s.flush()
        return unit

    def meter(
        self,
        meter_id: str,
        unit: Unit | None = None,
        *,
        digits: int | None = 5,
        utility: Utility = Utility.ELECTRICITY,
    ) -> Meter:
        meter = Meter(
            org_id=self.org.id,
            code=meter_id,
            property_id=self.prop.id,
            building_id=self.building.id,
            unit_id=unit.id if unit else None,
            kind=MeterKind.SUBMETER if unit else MeterKind.MASTER,
            utility=utility,
            profile="eastron-sdm120",
            gateway_id=self.gateway,
            digits=digits,
        )
        self.s.add(meter)
        self.s.flush()
        return meter

    def tenant(self, name: str) -> Tenant:
        tenant = Tenant(
            org_id=self.org.id,
            property_id=self.prop.id,
            name=name,
            id_number_enc=b"test",
            id_number_bidx=f"bidx-{name}-{next(self.seq)}",
            created_at=NOW,
        )
        self.s.add(tenant)
        self.s.flush()
        return tenant

    def lease(
        self,
        unit: Unit,
        start: date,
        end: date,
        *,
        rent: int,
        deposit: int | None = None,
        cycle: int = 1,
        occupants: int = 1,
        status: LeaseStatus = LeaseStatus.ACTIVE,
    ) -> Lease:
        lease = Lease(
            org_id=self.prop.org_id,
            property_id=self.prop.id,
            unit_id=unit.id,
            primary_tenant_id=self.tenant(f"T{unit.code}-{start}").id,
            status=status,
            start_date=start,
            end_date=end,
            occupant_count=occupants,
            rent_fen=rent,
            deposit_fen=rent if deposit is None else deposit,
            payment_cycle_months=cycle,
            created_at=NOW,
        )
        self.s.add(lease)
        self.s.flush()
        return lease

    def tariff(
        self,
        tiers: list[dict[str, str]],
        *,
        kind: TariffKind = TariffKind.TIERED,
        effective: date = date(2025, 1, 1),
        common_price: str = "0",
        common_basis: str = "area",
        utility: Utility = Utility.ELECTRICITY,
        owner_share_bp: int = 0,
    ) -> Tariff:
        tariff = Tariff(
            property_id=self.prop.id,
            utility=utility,
            effective_from=effective,
            kind=kind,
            tiers=tiers,
            point="import_energy",
            common_basis=common_basis,
            common_price=common_price,
            owner_share_bp=owner_share_bp,
        )
        self.s.add(tariff)
        self.s.flush()
        return tariff

    def read(
        self,
        meter: Meter | str,
        day: date,
        value: float,
        point: str = "import_energy",
        *,
        gateway: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """A reading one minute before local midnight starting `day` (so it counts for `day`),
        or `at`, sent by the property's gateway unless another is named."""
        meter_id = meter if isinstance(meter, str) else meter.code
        self.s.add(
            Reading(
                gateway_id=gateway or self.gateway,
                seq=next(self.seq),
                meter_id=meter_id,
                point=point,
                value=value,
                unit="kWh",
                ts=at or day_start(day, TZ) - timedelta(minutes=1),
            )
        )
