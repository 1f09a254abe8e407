"""Ansible's `chroot` connection, for the playbooks' proof on a Debian root (docs/fleet.md).

ansible-core ships no chroot connection (community.general does, inside the `ansible` bundle
of every collection): this is the same idea in the few lines it needs. The host's address is
the root's folder; every command runs as `chroot ROOT /bin/sh -c CMD`, and files go in and out
through the root's own `cat`, so a path is resolved inside the root, symbolic links included.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import typing as t

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
    name: chroot
    short_description: run tasks in a folder holding an operating system's root, with chroot
    description:
        - The inventory host's address (ansible_host, else its name) is the root's folder.
        - Needs root on the controller; the root needs /bin/sh, dd, cat and Python.
    author: Anju
    options:
        remote_addr:
            description: the root's folder
            default: inventory_hostname
            vars:
                - name: inventory_hostname
                - name: ansible_host
"""

# What a login on the host would have, not the controller's variables (its PIP_*, its venv).
_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}
_CHUNK_TIMEOUT_S = 600  # one command or one file transfer; pip installs take the longest


class Connection(ConnectionBase):  # type: ignore[misc]
    """Commands and files of one chroot."""

    transport = "chroot"
    has_pipelining = True
    default_user = "root"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = ""
        self.chroot_cmd = shutil.which("chroot") or "/usr/sbin/chroot"

    def _connect(self) -> Connection:
        root = str(self.get_option("remote_addr"))
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure("the chroot connection needs root on the controller")
        if not os.path.isfile(os.path.join(root, "bin", "sh")):
            raise AnsibleConnectionFailure(f"{root} holds no /bin/sh: not an operating system root")
        self.root = root
        self._connected = True
        return self

    def _run(self, argv: list[str], in_data: bytes | None) -> tuple[int, bytes, bytes]:
        done = subprocess.run(  # noqa: S603 - argv built here, the command is the task's
            [self.chroot_cmd, self.root, *argv],
            input=in_data or b"",
            capture_output=True,
            timeout=_CHUNK_TIMEOUT_S,
            env=_ENVIRONMENT,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = False
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if not self._connected:
            self._connect()
        return self._run(["/bin/sh", "-c", cmd], in_data)

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        if not self._connected:
            self._connect()
        with open(in_path, "rb") as source:
            data = source.read()
        rc, _, err = self._run(["/bin/sh", "-c", f"cat > {shlex.quote(out_path)}"], data)
        if rc != 0:
            raise AnsibleError(f"could not put {out_path} in {self.root}: {err.decode()!r}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        if not self._connected:
            self._connect()
        rc, data, err = self._run(["cat", "--", in_path], None)
        if rc != 0:
            raise AnsibleError(f"could not fetch {in_path} from {self.root}: {err.decode()!r}")
        with open(out_path, "wb") as target:
            target.write(data)

    def close(self) -> None:
        self._connected = False
