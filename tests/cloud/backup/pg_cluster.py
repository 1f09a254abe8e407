"""Private PostgreSQL clusters for one test: initdb in a temporary folder, a free port, stopped
and removed at the end even on failure. Never the shared server of ANJU_TEST_DATABASE_URL.

PostgreSQL refuses to run as root, so as root (CI) every server-side command runs as the
`postgres` OS user in a folder that user owns; another user runs them as itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
PG_BIN = PG_BINS[-1].parent if PG_BINS else Path("/usr/lib/postgresql/15/bin")
PGBACKREST = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
COMMAND_TIMEOUT_S = 60
OWNER = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def require_postgres(*, pgbackrest: bool = False) -> None:
    """A skip here means the machine lacks a package `make install` provides (a defect there)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql)")
    if pgbackrest and not Path(PGBACKREST).exists():
        pytest.skip("pgBackRest is missing: `make install` installs it (as root)")


def as_owner(*cmd: str | Path) -> list[str]:
    prefix = ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []
    return [*prefix, *map(str, cmd)]


def run(*cmd: str | Path, check: bool = True) -> str:
    """Run as the clusters' owner; on failure the error carries the command's output."""
    done = subprocess.run(
        as_owner(*cmd), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")  # fmt: skip
    return done.stdout


@contextmanager
def workspace() -> Iterator[Path]:
    """A folder the clusters' owner can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="anju-pg-"))
    try:
        shutil.chown(path, OWNER, OWNER)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Cluster:
    data: Path
    port: int
    socket_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/anju"

    @property
    def conf_d(self) -> Path:
        return self.data / "conf.d"  # inside the data folder: backed up and restored with it

    def ctl(self, *args: str) -> str:
        log = self.socket_dir / "server.log"
        return run(PG_BIN / "pg_ctl", "-D", self.data, "-l", log, "-w", "-t", "30", *args)

    def start(self) -> None:
        try:
            self.ctl("start")
        except AssertionError as exc:
            log = self.socket_dir / "server.log"
            raise AssertionError(f"{exc}\n{log.read_text() if log.exists() else ''}") from None

    def stop(self, mode: str = "fast") -> None:
        self.ctl("stop", "-m", mode)

    def running(self) -> bool:
        status = as_owner(PG_BIN / "pg_ctl", "-D", self.data, "status")
        done = subprocess.run(status, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False)
        return done.returncode == 0

    def wait_writable(self, timeout_s: float = 60.0) -> None:
        """Until recovery (WAL replay) has ended and the cluster accepts writes."""
        deadline = time.monotonic() + timeout_s
        while self.sql("SELECT pg_is_in_recovery()", database="postgres") != "f\n":
            if time.monotonic() > deadline:
                raise AssertionError(f"still in recovery after {timeout_s} s")
            time.sleep(0.1)  # another process replays: nothing here to drive

    def sql(self, statement: str, database: str = "anju") -> str:
        return run(PG_BIN / "psql", "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres",
                   "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", statement)  # fmt: skip


def cluster_home(work: Path, name: str) -> Cluster:
    """A folder and a port for a cluster; its data folder not made yet."""
    home = work / name
    run("mkdir", "-m", "0700", home)
    return Cluster(home / "data", free_port(), home)


def make_cluster(work: Path, name: str) -> Cluster:
    """initdb (trust, loopback only), conf.d included; not started."""
    cluster = cluster_home(work, name)
    run(PG_BIN / "initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust", "--no-sync",
        "-E", "UTF8", "--locale=C")  # fmt: skip
    run("mkdir", cluster.conf_d)
    with (cluster.data / "postgresql.conf").open("a") as fh:
        fh.write("include_dir = 'conf.d'\n")
    set_local(cluster)
    return cluster


def set_local(cluster: Cluster) -> None:
    """This cluster's own port and socket, read last (a base backup copies the primary's)."""
    local = cluster.conf_d / "zz-local.conf"
    local.write_text(
        f"port = {cluster.port}\n"
        f"unix_socket_directories = '{cluster.socket_dir}'\n"
        "fsync = off\n"  # a test cluster never outlives a crash of the machine anyway
    )
    shutil.chown(local, OWNER, OWNER)


@contextmanager
def stopped_at_exit(*clusters: Cluster) -> Iterator[None]:
    """Stop every running cluster when the block ends, however it ends."""
    try:
        yield
    finally:
        for cluster in clusters:
            if cluster.data.exists() and cluster.running():
                cluster.stop("immediate")
