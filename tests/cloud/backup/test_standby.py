"""Off-site disaster recovery: a private primary streams to a private standby configured by
the Ansible role's own templates; the standby is promoted and holds every committed row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloud import migrate
from cloud.db import make_engine, make_sessionmaker
from cloud.security.crypto import FieldKeys, generate_key
from tests.cloud.backup import pg_cluster
from tests.cloud.backup.drill import (
    create_data,
    digests,
    more_readings,
    more_tenants,
    revealed_pii,
)
from tests.cloud.backup.pg_cluster import (
    PG_BIN,
    Cluster,
    cluster_home,
    make_cluster,
    run,
    set_local,
    stopped_at_exit,
    workspace,
)
from tests.test_ansible import role_tasks

STANDBY = "cloud-dr-1"  # the example inventory's standby
SLOT = "anju_cloud_dr_1"
PASSWORD = "drill-replica-password-0123"
pytestmark = pytest.mark.timeout(180)  # two clusters and two Ansible runs on 2 cores


def render(tmp_path: Path, host: str, tasks: str, cluster: Cluster, **extra: object) -> None:
    common = {
        "anju_pg_user": pg_cluster.OWNER,
        "anju_pg_data": str(cluster.data),
        "anju_pg_conf_dir": str(cluster.data),
        "anju_replication_sslmode": "disable",  # a private cluster has no certificate
    }
    result = role_tasks(tmp_path, host, "anju_cloud", tasks, {**common, **extra})
    assert result.returncode == 0, result.stdout + result.stderr


def wait_streaming(primary: Cluster, sync_state: str, timeout_s: float = 30.0) -> None:
    """Until the standby streams from the primary in `sync_state` (a standby counts for
    synchronous commit once it has reported a flush position)."""
    deadline = time.monotonic() + timeout_s
    query = "SELECT state, sync_state FROM pg_stat_replication"
    while (seen := primary.sql(query, database="postgres").strip()) != f"streaming|{sync_state}":
        if time.monotonic() > deadline:
            raise AssertionError(f"the standby is {seen!r}, not streaming|{sync_state}")
        time.sleep(0.1)  # another process connects: nothing here to drive


@pytest.mark.parametrize("synchronous", [True, False], ids=["synchronous", "asynchronous"])
def test_promoted_standby_has_every_committed_row(tmp_path: Path, synchronous: bool) -> None:
    pg_cluster.require_postgres()
    keys = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())
    with workspace() as work:
        primary, standby = make_cluster(work, "primary"), cluster_home(work, "standby")
        with stopped_at_exit(primary, standby):
            primary.start()
            primary.sql(f"CREATE ROLE anju_replica WITH REPLICATION LOGIN PASSWORD '{PASSWORD}'",
                        database="postgres")  # fmt: skip
            primary.sql(f"SELECT pg_create_physical_replication_slot('{SLOT}')", "postgres")
            render(tmp_path, "cloud-1", "replication_primary_config", primary,
                   anju_pg_hba_file=str(primary.data / "pg_hba.conf"),
                   anju_pg_listen_addresses="127.0.0.1", anju_standby_names=[STANDBY],
                   anju_standby_addresses=["127.0.0.1"],
                   anju_replication_synchronous=synchronous)  # fmt: skip
            primary.ctl("restart")
            login = f"host=127.0.0.1 port={primary.port} user=anju_replica password={PASSWORD}"
            run(
                PG_BIN / "pg_basebackup",
                "-D",
                standby.data,
                "-X",
                "stream",
                "-S",
                SLOT,
                "-d",
                login,
            )
            # The primary's own settings live outside its data folder on a real host (Debian:
            # /etc/postgresql), so a base backup does not bring them; here they came along.
            (standby.conf_d / "anju-replication.conf").unlink()
            set_local(standby)
            render(tmp_path, STANDBY, "standby_config", standby,
                   anju_primary_address="127.0.0.1", anju_primary_port=primary.port,
                   anju_replication_password=PASSWORD,
                   anju_replication_passfile=str(standby.socket_dir / "pgpass"))  # fmt: skip
            standby.start()
            wait_streaming(primary, "quorum" if synchronous else "async")

            primary.sql("CREATE DATABASE anju", database="postgres")
            migrate.upgrade(primary.url)
            engine = make_engine(primary.url)
            try:
                with make_sessionmaker(engine)() as session:
                    create_data(session, keys)
                    more_tenants(session, keys, 1)
                    more_readings(session, "Last Minute", days=3, first_seq=5000)
            finally:
                engine.dispose()
            before, people = digests(primary.url), revealed_pii(primary.url, keys)
            # Synchronous: the primary dies at once; each commit returned only once the standby
            # had it. Asynchronous: a planned switchover; the primary sends its WAL, then stops.
            primary.stop("immediate" if synchronous else "fast")
            standby.ctl("promote")
            standby.wait_writable()
            assert digests(standby.url) == before
            assert revealed_pii(standby.url, keys) == people
            standby.sql("INSERT INTO organisations (name) VALUES ('written after failover')")
