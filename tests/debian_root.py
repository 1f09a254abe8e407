"""A Debian 12 root and a wheelhouse for the playbooks' proof (tests/test_ansible_root.py).

Both are built once into a cache folder outside the clone (`ANJU_ROOT_CACHE`, default
/var/cache/anju), named by what they hold, so a later run reuses them; each test works in its
own copy-on-write view of the root (overlayfs, or a full copy where it cannot mount one), so the
cached root stays as debootstrap left it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("ANJU_ROOT_CACHE", "/var/cache/anju"))
MIRROR = os.environ.get("ANJU_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# A bare Debian with what the playbooks need before they can install anything: Python for
# Ansible's modules, python3-apt for its apt tasks, sudo for `become_user`, systemd for
# `systemctl enable`; and what their first apt task installs (so a run needs no mirror).
BASE_PACKAGES = ("python3", "python3-apt", "sudo", "systemd", "python3-venv", "python3-packaging")
# What a cloud host has before the play (its apt tasks then find them installed): installed
# with a policy-rc.d that refuses every service start, kept in the root for the same reason.
SERVICE_PACKAGES = ("mosquitto", "nginx", "postgresql-15", "pgbackrest")
_RECIPE = 1  # bump when the way the root is made changes


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder at a time per cached thing (pytest-xdist workers, two checkouts)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def mirror_answers(timeout_s: float = 10.0) -> bool:
    """Whether the Debian mirror serves the suite (debootstrap needs it only for a new root)."""
    try:
        with urllib.request.urlopen(f"{MIRROR}/dists/{SUITE}/Release", timeout=timeout_s) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def root_dir() -> Path:
    return CACHE / f"debian-{SUITE}-{_key(_RECIPE, BASE_PACKAGES, SERVICE_PACKAGES)}"


def cached_root() -> Path:
    """The pristine root, debootstrapped on first use (a few minutes) and reused after."""
    root = root_dir()
    with _locked(root.name):
        if (root / "etc" / "debian_version").exists():
            return root
        work = root.with_name(root.name + ".building")
        shutil.rmtree(work, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(work), MIRROR], timeout=1500)  # fmt: skip
        policy = work / "usr" / "sbin" / "policy-rc.d"
        policy.write_text(
            "#!/bin/sh\n# Nothing starts in this root: it is never booted.\nexit 101\n"
        )
        policy.chmod(0o755)
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        run(["chroot", str(work), "apt-get", "install", "-y", "-q", "--no-install-recommends",
             *SERVICE_PACKAGES], timeout=900, env=env)  # fmt: skip
        run(["chroot", str(work), "apt-get", "clean"], timeout=60, env=env)
        work.rename(root)
    return root


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return sorted({*project["dependencies"], *extras["edge"], *extras["cloud"]})


def cached_wheelhouse() -> Path:
    """Wheels of every dependency of anju[edge] and anju[cloud], for this Python."""
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    house = CACHE / f"wheelhouse-{tag}-{_key(_requirements())}"
    with _locked(house.name):
        if (house / ".complete").exists():
            return house
        shutil.rmtree(house, ignore_errors=True)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(house),
             *_requirements()], timeout=1500)  # fmt: skip
        (house / ".complete").touch()
    return house


def anju_wheel(into: Path) -> Path:
    """This checkout's anju as a wheel, built from a copy (no build/ left in the clone)."""
    source = into / "source"
    for name in ("anju", "edge", "cloud", "protocols", "runtime", "firmware-configs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(into), str(source)], timeout=300)  # fmt: skip
    (wheel,) = into.glob("anju-*.whl")
    return wheel


@contextlib.contextmanager
def root_copy(where: Path) -> Iterator[Path]:
    """A writable view of the cached root with /proc, taken down afterwards."""
    lower = cached_root()
    upper, work, merged = where / "upper", where / "work", where / "root"
    for folder in (upper, work, merged):
        folder.mkdir(parents=True)
    overlay = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    if overlay.returncode != 0:  # no overlayfs here: a full copy
        merged.rmdir()
        run(["cp", "-a", str(lower), str(merged)], timeout=600)
    mounted = [merged] if overlay.returncode == 0 else []
    try:  # debootstrap made /dev's few nodes; the gateway's health reads /proc
        run(["mount", "-t", "proc", "proc", str(merged / "proc")], timeout=30)
        mounted.append(merged / "proc")
        yield merged
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(point)], timeout=30, check=False)


def run(
    argv: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
