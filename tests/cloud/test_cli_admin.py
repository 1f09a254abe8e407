"""`anju cloud seed-demo | user add | rotate-keys | import` against a real migrated database."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from anju.cli import cli
from cloud.app import field_keys_for
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.importer import load
from cloud.models import (
    AuditEvent,
    Building,
    Gateway,
    Lease,
    LeaseStatus,
    Meter,
    MeterKind,
    Organisation,
    Property,
    Tenant,
    Unit,
    User,
    Utility,
)
from cloud.security import crypto, pii, tokens
from cloud.security.passwords import verify_password
from tests.cloud.billing.world import World
from tests.cloud.world import cn_id


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ANJU_ENV": "development",
        "ANJU_DATABASE_URL": database_url,
        "ANJU_DATA_DIR": str(tmp_path / "data"),
        "ANJU_FIELD_KEYS": "",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["cloud", *args], env=env, input=stdin)


def a_property(url: str, org: str, name: str) -> int:
    """A new organisation with one property; its id."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            owner = Organisation(name=org)
            s.add(owner)
            s.flush()
            prop = Property(org_id=owner.id, name=name)
            s.add(prop)
            s.flush()
            return prop.id
    finally:
        engine.dispose()


def count(url: str, *where: object, model: type = Unit) -> int:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0
    finally:
        engine.dispose()


def test_seed_demo_once(env: dict[str, str]) -> None:
    r = run(env, "seed-demo")
    assert r.exit_code == 0, r.output
    url = env["ANJU_DATABASE_URL"]
    assert count(url) == 120
    assert count(url, model=Meter) == 243  # 3 master + 2 per unit
    for status in LeaseStatus:
        assert count(url, Lease.status == status, model=Lease) > 0, status
    assert count(url, Lease.renewed_from_id.is_not(None), model=Lease) == 3
    assert count(url, model=User) == 7
    again = run(env, "seed-demo")
    assert again.exit_code == 0
    assert "exists already; nothing to do" in again.output
    assert count(url) == 120


def test_seed_demo_refused_in_production(env: dict[str, str]) -> None:
    """The demo logins' password is published: production never gets them."""
    key = base64.b64encode(crypto.generate_key()).decode()
    prod = {**env, "ANJU_ENV": "production", "ANJU_SECRET_KEY": secrets.token_hex(32),
            "ANJU_FIELD_KEYS": f"k1:{key}", "ANJU_INDEX_KEY": key}  # fmt: skip
    r = run(prod, "seed-demo")
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert lines == [
        "Error: seed-demo creates logins with a published password: it runs only with"
        " ANJU_ENV=development"
    ]
    assert count(env["ANJU_DATABASE_URL"], model=User) == 0
    assert count(env["ANJU_DATABASE_URL"], model=Organisation) == 0
    assert not Path(env["ANJU_DATA_DIR"]).exists()


def test_user_add_then_duplicate_refused(env: dict[str, str]) -> None:
    r = run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
            stdin="a long password\na long password\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "created in Acme" in r.output
    r = run(env, "user", "add", "boss", "--role", "admin", "--password", "another long one")
    assert r.exit_code == 1
    assert "taken" in r.output
    r = run(env, "user", "add", "shorty", "--role", "admin", "--password", "short")
    assert "at least 10 characters" in r.output


def test_user_passwd_deactivate_revoke_sessions(env: dict[str, str]) -> None:
    """The shell's equivalents of the account API: each ends sessions and is audited."""
    url = env["ANJU_DATABASE_URL"]
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:

        def issue() -> str:
            with make_sessionmaker(engine)() as s:
                user = s.scalars(select(User).where(User.username == "boss")).one()
                token, _ = tokens.issue(s, user.id, "bearer", now)
                s.commit()
                return token

        def signed_in(token: str) -> bool:
            with make_sessionmaker(engine)() as s:
                return tokens.lookup(s, token, now) is not None

        token = issue()
        r = run(env, "user", "passwd", "boss", stdin="another passphrase\nanother passphrase\n")
        assert r.exit_code == 0, r.output
        assert "1 session(s) revoked" in r.output
        assert not signed_in(token)
        with make_sessionmaker(engine)() as s:
            stored = s.scalars(select(User.password_hash).where(User.username == "boss")).one()
        assert verify_password(stored, "another passphrase")
        token = issue()
        r = run(env, "user", "deactivate", "boss")
        assert "deactivated; 1 session(s) revoked" in r.output
        assert not signed_in(token)
        assert count(url, User.active.is_(False), model=User) == 1
        assert run(env, "user", "activate", "boss").exit_code == 0
        assert count(url, User.active.is_(True), model=User) == 1
        first, second = issue(), issue()
        r = run(env, "user", "revoke-sessions", "boss")
        assert "2 session(s) of boss revoked" in r.output
        assert (signed_in(first), signed_in(second)) == (False, False)
        with make_sessionmaker(engine)() as s:
            actions = s.execute(
                select(AuditEvent.action, AuditEvent.username).order_by(AuditEvent.id)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(a) for a in actions] == [
        ("user.create", "cli"),
        ("user.password", "cli"),
        ("user.deactivate", "cli"),
        ("user.activate", "cli"),
        ("user.revoke_sessions", "cli"),
    ]
    r = run(env, "user", "deactivate", "nobody")
    assert r.exit_code == 1
    assert "no user named 'nobody'" in r.output
    r = run(env, "user", "passwd", "boss", "--password", "short")
    assert r.exit_code == 1
    assert "at least 10 characters" in r.output


def test_rotate_keys_reencrypts_and_lookups_still_work(env: dict[str, str]) -> None:
    assert run(env, "seed-demo").exit_code == 0
    url = env["ANJU_DATABASE_URL"]
    dev = crypto.development_keys()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        first = s.scalars(select(Tenant).order_by(Tenant.id)).first()
        assert first is not None
        before = {f: pii.reveal(first, dev, f) for f in pii.PII_FIELDS}
    r = run(env, "rotate-keys", "--new-key")
    assert r.exit_code == 0, r.output
    assert "envelopes under older keys: 0" in r.output
    keys = field_keys_for(Settings(**{k.removeprefix("ANJU_").lower(): v for k, v in env.items()}))
    assert keys.current != "dev"
    with make_sessionmaker(engine)() as s:
        tenants = s.scalars(select(Tenant)).all()
        assert {crypto.key_id_of(t.id_number_enc) for t in tenants} == {keys.current}
        again = s.get_one(Tenant, first.id)
        assert {f: pii.reveal(again, keys, f) for f in pii.PII_FIELDS} == before
        # The blind index moved off the public development key and still finds the person.
        bidx = pii.index_of(keys, "id_number", str(before["id_number"]))
        assert s.scalars(select(Tenant.id).where(Tenant.id_number_bidx == bidx)).all() == [first.id]
    engine.dispose()
    # A second rotation with a new key re-encrypts again; the old key stays to read backups.
    r = run(env, "rotate-keys", "--new-key")
    assert "envelopes under older keys: 0" in r.output


UNITS_CSV = """property,building,code,floor,area_m2,base_rent,layout
南山公寓,A栋,A-101,1,35.5,"1,800.00",1室1厅
南山公寓,A栋,A-102,1,28,1500,开间
南山公寓,B栋,B-101,1,60.25,3200.5,2室1厅
"""
TENANTS_CSV = f"""external_ref,property,name,id_number,phone,bank_card
T-1,南山公寓,张三,{cn_id(1)},138 0013 8000,
T-2,南山公寓,李四,{cn_id(2)[:17]}0,13900000000,
T-3,南山公寓,王五,{cn_id(3)},12ab,6222020200112233445
T-4,南山公寓,赵六,{cn_id(4)},13700000000,
"""
LEASES_CSV = """external_ref,property,building,unit,tenant_ref,start_date,end_date,rent,deposit,\
status,payment_cycle_months
L-1,南山公寓,A栋,A-101,T-1,2026-01-01,2026-12-31,1800,1800,active,3
L-2,南山公寓,A栋,A-101,T-4,2026-06-01,2027-05-31,1800,1800,signed,1
L-3,南山公寓,A栋,A-102,T-9,2026-01-01,2026-12-31,1500,1500,active,1
L-4,南山公寓,B栋,B-101,T-4,2026-01-01,2026-12-31,3200.50,3200.555,active,1
"""


def test_import_gbk_units_twice_creates_no_duplicates(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    path = tmp_path / "units.csv"
    path.write_bytes(UNITS_CSV.encode("gbk"))
    r = run(env, "import", "units", str(path))
    assert r.exit_code == 0, r.output
    assert "3 rows, 0 bad, 3 new" in r.output
    r = run(env, "import", "units", str(path))
    assert "0 new, 3 already there" in r.output
    assert count(env["ANJU_DATABASE_URL"]) == 3
    assert count(env["ANJU_DATABASE_URL"], Unit.base_rent_fen == 320050) == 1


def test_import_reports_every_bad_row_and_imports_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    (tmp_path / "u.csv").write_text(UNITS_CSV, encoding="utf-8-sig")
    assert run(env, "import", "units", str(tmp_path / "u.csv")).exit_code == 0
    tenants = tmp_path / "t.csv"
    tenants.write_text(TENANTS_CSV, encoding="utf-8")
    url = env["ANJU_DATABASE_URL"]
    dry = run(env, "import", "tenants", str(tenants), "--dry-run")
    assert "line 3, id_number: resident ID check character does not match" in dry.output
    assert "line 4, phone: phone must be 6-15 digits" in dry.output
    assert "4 rows, 2 bad" in dry.output
    assert count(url, model=Tenant) == 0
    r = run(env, "import", "tenants", str(tenants))
    assert r.exit_code == 1
    assert count(url, model=Tenant) == 0
    r = run(env, "import", "tenants", str(tenants), "--skip-bad")
    assert r.exit_code == 0
    assert "2 new" in r.output
    assert count(url, model=Tenant) == 2
    leases = tmp_path / "l.csv"
    leases.write_text(LEASES_CSV, encoding="utf-8")
    r = run(env, "import", "leases", str(leases), "--skip-bad")
    assert "line 3, unit: already let by lease L-1 then" in r.output
    assert "line 4, tenant_ref: no tenant with external_ref 'T-9'" in r.output
    assert "line 5, deposit: '3200.555' must be a non-negative amount" in r.output
    assert count(url, model=Lease) == 1
    assert count(url, Unit.status == "occupied") == 1
    r = run(env, "import", "leases", str(leases), "--skip-bad")
    assert "0 new, 1 already there" in r.output
    assert count(url, model=Lease) == 1


def test_import_wrong_header_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    path = tmp_path / "x.csv"
    path.write_text("property,building\nP,B\n")
    r = run(env, "import", "units", str(path))
    assert r.exit_code == 1
    assert "missing column(s): area_m2, base_rent, code, floor" in r.output


def test_gateway_add_places_it_in_a_property(env: dict[str, str]) -> None:
    url = env["ANJU_DATABASE_URL"]
    r = run(env, "gateway", "add", "gw-x", "--property", "999", "--no-credential")
    assert r.exit_code == 2
    assert "no property 999" in r.output
    assert count(url, model=Gateway) == 0
    property_id = a_property(url, "Acme", "East")
    r = run(env, "gateway", "add", "gw-x", "--property", str(property_id), "--no-credential")
    assert r.exit_code == 0, r.output
    r = run(env, "gateway", "add", "gw-x", "--name", "renamed", "--no-credential")
    assert r.exit_code == 0, r.output  # updating the name keeps the property
    assert count(url, Gateway.property_id == property_id, model=Gateway) == 1


def _two_orgs_with_units(env: dict[str, str], tmp_path: Path) -> None:
    """Acme and Beta, each with the same units file imported into its own property."""
    for org in ("Acme", "Beta"):
        assert run(env, "user", "add", f"boss-{org}", "--role", "admin", "--org", org,
                   "--password", "a long password").exit_code == 0  # fmt: skip
        path = tmp_path / f"units-{org}.csv"
        path.write_text(UNITS_CSV.replace("南山公寓", f"{org}公寓"), encoding="utf-8")
        r = run(env, "import", "units", str(path), "--org", org)
        assert r.exit_code == 0, r.output


def test_import_refs_stay_inside_the_importing_organisation(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Beta's files reuse Acme's old-system ids: Beta gets its own rows, never Acme's."""
    _two_orgs_with_units(env, tmp_path)
    url = env["ANJU_DATABASE_URL"]
    acme_tenants = tmp_path / "acme-t.csv"
    acme_tenants.write_text(f"external_ref,property,name,id_number\nT-1,Acme公寓,张三,{cn_id(1)}\n")
    assert run(env, "import", "tenants", str(acme_tenants), "--org", "Acme").exit_code == 0
    acme_leases = tmp_path / "acme-l.csv"
    acme_leases.write_text("external_ref,property,building,unit,tenant_ref,start_date,end_date,"
                           "rent,deposit\nL-1,Acme公寓,A栋,A-101,T-1,2026-01-01,2026-12-31,1800,"
                           "1800\n")  # fmt: skip
    assert run(env, "import", "leases", str(acme_leases), "--org", "Acme").exit_code == 0

    # Beta names T-1 before it has a T-1 of its own: refused, Acme's person is not attached.
    beta_leases = tmp_path / "beta-l.csv"
    beta_leases.write_text(acme_leases.read_text().replace("Acme", "Beta"))
    r = run(env, "import", "leases", str(beta_leases), "--org", "Beta")
    assert r.exit_code == 1
    assert "line 2, tenant_ref: no tenant with external_ref 'T-1'" in r.output
    # Beta's own T-1 is created, not skipped as "already there".
    beta_tenants = tmp_path / "beta-t.csv"
    beta_tenants.write_text(f"external_ref,property,name,id_number\nT-1,Beta公寓,李四,{cn_id(2)}\n")
    r = run(env, "import", "tenants", str(beta_tenants), "--org", "Beta")
    assert "1 rows, 0 bad, 1 new, 0 already there; imported" in r.output, r.output
    # Beta's L-1 is created too, and binds Beta's T-1.
    r = run(env, "import", "leases", str(beta_leases), "--org", "Beta")
    assert "1 rows, 0 bad, 1 new, 0 already there; imported" in r.output, r.output
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            for org in ("Acme", "Beta"):
                lease = s.scalars(
                    select(Lease).join(Organisation, Organisation.id == Lease.org_id)
                    .where(Organisation.name == org, Lease.external_ref == "L-1")
                ).one()  # fmt: skip
                tenant = s.get_one(Tenant, lease.primary_tenant_id)
                assert (tenant.org_id, s.get_one(Property, lease.property_id).org_id) == (
                    lease.org_id,
                    lease.org_id,
                )
                assert tenant.name == {"Acme": "张三", "Beta": "李四"}[org]
    finally:
        engine.dispose()


GOOD_TENANTS = [("T-1", "张三", cn_id(1)), ("T-3", "王五", cn_id(3))]
SECRET_ID = cn_id(2)


def _tenants_file(env: dict[str, str], tmp_path: Path, bad_row: bytes) -> Path:
    """A UTF-8 tenants file whose line 3 is `bad_row`, between two good rows (lines 2 and 4)."""
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    (tmp_path / "u.csv").write_text(UNITS_CSV, encoding="utf-8")
    assert run(env, "import", "units", str(tmp_path / "u.csv")).exit_code == 0
    good = [f"{ref},南山公寓,{name},{number}\n".encode() for ref, name, number in GOOD_TENANTS]
    path = tmp_path / "t.csv"
    path.write_bytes(b"external_ref,property,name,id_number\n" + good[0] + bad_row + good[1])
    return path


def _import_all_or_nothing(env: dict[str, str], path: Path, line: str, secrets: list[str]) -> None:
    """Without --skip-bad nothing is kept; with it the two good rows are; both times the bad row
    is one clear line, and nothing of the person in it (name, number, blind index) is shown."""
    url = env["ANJU_DATABASE_URL"]
    bidx = pii.index_of(crypto.development_keys(), "id_number", SECRET_ID)
    for args, exit_code, kept in (((), 1, 0), (("--skip-bad",), 0, 2)):
        r = run(env, "import", "tenants", str(path), *args)
        assert r.exit_code == exit_code, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert [x for x in r.output.splitlines() if x.startswith("line ")] == [line], r.output
        for secret in [*secrets, SECRET_ID, bidx]:
            assert secret not in r.output
        assert count(url, model=Tenant) == kept
    assert count(url, Tenant.name.in_([n for _, n, _ in GOOD_TENANTS]), model=Tenant) == 2


def test_import_a_value_over_128_kb_is_one_bad_row(env: dict[str, str], tmp_path: Path) -> None:
    name = "张" * 140_000
    path = _tenants_file(env, tmp_path, f"T-2,南山公寓,{name},{SECRET_ID}\n".encode())
    _import_all_or_nothing(env, path, "line 3: a value is longer than 128 KB", [name[:50]])


def test_import_a_row_with_an_extra_value_is_one_bad_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = _tenants_file(env, tmp_path, f"T-2,南山公寓,李四,{SECRET_ID},13800138000\n".encode())
    _import_all_or_nothing(env, path, "line 3: 5 values, the header has 4", ["李四"])


def test_import_one_gbk_row_in_a_utf8_file_is_one_bad_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = _tenants_file(env, tmp_path, f"T-2,南山公寓,李四,{SECRET_ID}\n".encode("gbk"))
    _import_all_or_nothing(
        env, path, "line 3: not valid utf-8 (the file is read as utf-8)", ["李四"]
    )


def test_import_a_nul_byte_is_one_bad_row(env: dict[str, str], tmp_path: Path) -> None:
    """PostgreSQL cannot store NUL in text: the row is refused before the database sees it."""
    path = _tenants_file(env, tmp_path, f"T-2,南山公寓,李\x00四,{SECRET_ID}\n".encode())
    _import_all_or_nothing(env, path, "line 3, name: contains a NUL character", ["李"])


def test_import_a_value_too_long_for_its_column_is_one_bad_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    name = "李" * 101
    path = _tenants_file(env, tmp_path, f"T-2,南山公寓,{name},{SECRET_ID}\n".encode())
    _import_all_or_nothing(env, path, "line 3, name: is longer than 100 characters", [name])


def test_import_an_amount_beyond_the_billing_bounds_is_one_bad_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`1e400` is a finite Decimal: without the bound it became a 400-digit rent."""
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    path = tmp_path / "u.csv"
    rows = ["南山公寓,A栋,A-103,1,28,1e400", "南山公寓,A栋,A-104,1,28,20000000.01"]
    path.write_text(UNITS_CSV + "\n".join(rows) + "\n")
    r = run(env, "import", "units", str(path))
    assert r.exit_code == 1
    assert "line 5, base_rent: '1e400' is more than 20,000,000 yuan" in r.output
    assert "line 6, base_rent: '20000000.01' is more than 20,000,000 yuan" in r.output
    assert count(env["ANJU_DATABASE_URL"]) == 0


def test_import_finds_repeats_across_chunks_without_keeping_rows(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go in 2 at a time: a repeat inside a chunk names its line, one in a later chunk is
    found in the database (written earlier by this import, not there before)."""
    monkeypatch.setattr(load, "CHUNK", 2)
    assert run(env, "user", "add", "boss", "--role", "admin", "--org", "Acme",
               "--password", "a long password").exit_code == 0  # fmt: skip
    path = tmp_path / "u.csv"
    more = [f"南山公寓,A栋,{code},1,28,1500" for code in ("A-103", "A-104", "A-104", "A-101")]
    path.write_text(UNITS_CSV + "\n".join(more) + "\n")
    url = env["ANJU_DATABASE_URL"]
    dry = run(env, "import", "units", str(path), "--dry-run")
    assert "line 7, code: repeats line 6" in dry.output
    assert "line 8, code: repeats an earlier row of the file" in dry.output
    assert "7 rows, 2 bad, 5 new, 0 already there; nothing imported" in dry.output
    assert count(url) == 0
    r = run(env, "import", "units", str(path), "--skip-bad")
    assert "7 rows, 2 bad, 5 new, 0 already there; imported" in r.output
    r = run(env, "import", "units", str(path), "--skip-bad")
    assert "7 rows, 1 bad, 0 new, 6 already there; imported" in r.output
    assert count(url) == 5


def test_gateway_meters_binds_its_propertys_meters_and_checks_its_config(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Only meters of the gateway's property bind to it (another property's or organisation's
    id is refused alike); its config must name exactly the meters bound to it."""
    url = env["ANJU_DATABASE_URL"]
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            props = []
            for org_name, names in (("Acme", ("East", "West")), ("Other", ("North",))):
                org = Organisation(name=org_name)
                s.add(org)
                s.flush()
                for name in names:
                    prop = Property(org_id=org.id, name=name)
                    s.add(prop)
                    s.flush()
                    building = Building(property_id=prop.id, name="A")
                    s.add(building)
                    s.flush()
                    code = {"East": "m-1", "West": "m-2", "North": "m-b"}[name]
                    s.add(Meter(org_id=org.id, code=code, property_id=prop.id,
                                building_id=building.id, kind=MeterKind.MASTER,
                                utility=Utility.WATER, profile="p"))  # fmt: skip
                    props.append(prop.id)
    finally:
        engine.dispose()
    assert run(env, "gateway", "add", "gw-x", "--no-credential").exit_code == 0
    r = run(env, "gateway", "meters", "gw-x", "--bind", "m-1")
    assert (r.exit_code, r.output.strip()) == (1, "Error: gateway 'gw-x' is in no property "
                                                  "(gateway add --property)")  # fmt: skip
    r = run(env, "gateway", "add", "gw-x", "--property", str(props[0]), "--no-credential")
    assert r.exit_code == 0, r.output
    for foreign in ("m-2", "m-b", "m-nobody"):
        r = run(env, "gateway", "meters", "gw-x", "--bind", "m-1", "--bind", foreign)
        assert r.exit_code == 1
        assert f"no meter {foreign!r} in property {props[0]}" in r.output
    assert run(env, "gateway", "meters", "gw-x").output == ""  # nothing bound by a refusal
    r = run(env, "gateway", "meters", "gw-x", "--bind", "m-1")
    assert (r.exit_code, r.output) == (0, "m-1\n")
    config = tmp_path / "gw-x.yaml"
    body = (
        "gateway_id: gw-x\ndevelopment: true\nmqtt: {url: 'mqtt://127.0.0.1:1883'}\n"
        "buses:\n  - {name: b, tcp: '127.0.0.1:502', devices: [%s]}\n"
    )
    device = "{id: %s, unit_id: %d, profile: eastron-sdm120}"
    config.write_text(body % ", ".join(device % (m, i) for i, m in enumerate(["m-1", "m-2"], 1)))
    r = run(env, "gateway", "meters", "gw-x", "--config", str(config))
    assert r.exit_code == 1
    assert "in the config, not bound to it (their readings count for no meter): m-2" in r.output
    config.write_text(body % (device % ("m-1", 1)))
    r = run(env, "gateway", "meters", "gw-x", "--config", str(config))
    assert r.exit_code == 0, r.output
    assert "its 1 meters are the ones bound to gw-x" in r.output
    r = run(env, "gateway", "meters", "gw-x", "--unbind", "m-1", "--config", str(config))
    assert (r.exit_code, "bound to it, not in the config" in r.output) == (1, False)
    assert "not bound to it (their readings count for no meter): m-1" in r.output


def test_bill_lists_what_the_run_skipped(env: dict[str, str]) -> None:
    """A lease dated 2000 to 9999 written straight to the database: `bill` bills one back
    month (ANJU_BILLING_MAX_BACK_MONTHS=1) and says what it held and why."""
    engine = make_engine(env["ANJU_DATABASE_URL"])
    try:
        with make_sessionmaker(engine)() as s:
            w = World(s)
            w.lease(w.unit("A-101", "50"), date(2000, 1, 1), date(9999, 12, 31), rent=200000)
            pid = w.prop.id
            s.commit()
    finally:
        engine.dispose()
    r = run({**env, "ANJU_BILLING_MAX_BACK_MONTHS": "1"}, "bill", str(pid), "2027-01")
    assert r.exit_code == 0, r.output
    assert f"billing run {pid} 2027-01: 3 invoices, 4 lines, 1 skipped" in r.output
    assert "back rent: 323 rent period(s) 2000-01-01 to 2026-11-30" in r.output
    bad = run(env, "bill", str(pid), "2027-13")
    assert bad.exit_code == 1
    assert "not YYYY-MM" in bad.output
