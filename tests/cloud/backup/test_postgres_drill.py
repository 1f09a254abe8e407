"""The pgBackRest restore drill on a private cluster, configured by the Ansible role's own
templates: full backup, more business, incremental backup, more business, the cluster lost,
restored; every row back (the rows after the last backup through the archived WAL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from tests.cloud.backup.pg_cluster import Cluster, make_cluster, run, stopped_at_exit, workspace
from tests.test_ansible import role_tasks

STANZA = "anju"
pytestmark = pytest.mark.timeout(180)  # two backups, a restore and a WAL replay on 2 cores


@pytest.fixture
def keys() -> FieldKeys:
    return FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    """A private cluster archiving its WAL to pgBackRest, as the cloud role configures it;
    yields it and the pgBackRest configuration file."""
    pg_cluster.require_postgres(pgbackrest=True)
    with workspace() as work:
        cluster = make_cluster(work, "primary")
        conf = work / "pgbackrest" / "pgbackrest.conf"
        extra = {
            "anju_pg_user": pg_cluster.OWNER,
            "anju_pg_data": str(cluster.data),
            "anju_pg_conf_dir": str(cluster.data),
            "anju_pg_port": cluster.port,
            "anju_pg_socket_dir": str(cluster.socket_dir),
            "anju_pgbackrest_conf": str(conf),
            "anju_pgbackrest_repo_path": str(work / "repo"),
            "anju_pgbackrest_log_path": str(work / "log"),
            "anju_pgbackrest_lock_path": str(work / "lock"),
            "anju_pgbackrest_stanza": STANZA,
            "anju_pgbackrest_cipher_pass": "drill-cipher-passphrase-0123456789",
        }
        result = role_tasks(tmp_path, "cloud-1", "anju_cloud", "pgbackrest_config", extra)
        assert result.returncode == 0, result.stdout + result.stderr
        with stopped_at_exit(cluster):
            cluster.start()
            cluster.sql("CREATE DATABASE anju", database="postgres")
            yield cluster, conf


def pgbackrest(conf: Path, *args: str) -> str:
    return run(pg_cluster.PGBACKREST, f"--config={conf}", f"--stanza={STANZA}", *args)


def test_pgbackrest_full_incr_restore(primary: tuple[Cluster, Path], keys: FieldKeys) -> None:
    cluster, conf = primary
    migrate.upgrade(cluster.url)
    engine = make_engine(cluster.url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            create_data(session, keys)
        pgbackrest(conf, "stanza-create")
        pgbackrest(conf, "check")
        pgbackrest(conf, "--type=full", "backup")
        with sessions() as session:  # the week goes on
            more_tenants(session, keys, 1)
            more_readings(session, "After Full", days=10, first_seq=1000)
        pgbackrest(conf, "--type=incr", "backup")
        with sessions() as session:  # after the last backup: only the archived WAL has it
            more_tenants(session, keys, 2)
            more_readings(session, "After Incr", days=5, first_seq=2000)
    finally:
        engine.dispose()
    pgbackrest(conf, "check")  # switches to a new WAL segment and waits until it is archived
    before, people = digests(cluster.url), revealed_pii(cluster.url, keys)
    assert before["tenants"][0] == 5  # three sites, one after each backup
    assert before["invoices"][0] >= 5

    cluster.stop("immediate")  # the host dies
    run("rm", "-rf", cluster.data)
    run("mkdir", "-m", "0700", cluster.data)
    pgbackrest(conf, "restore")
    cluster.start()
    cluster.wait_writable()  # the archived WAL replayed to its end

    assert digests(cluster.url) == before
    assert revealed_pii(cluster.url, keys) == people
    info = json.loads(pgbackrest(conf, "info", "--output=json"))
    assert [b["type"] for b in info[0]["backup"]] == ["full", "incr"]
    assert info[0]["cipher"] == "aes-256-cbc"
