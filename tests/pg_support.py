"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder,
listening on 127.0.0.1 only, on a free port, stopped at the end.

Used by the Optuna-on-PostgreSQL tests and the native compose-stack test. The server binaries
come from PATH or Debian's ``/usr/lib/postgresql/*/bin``; `running_server` skips the test when
they (or the psycopg2 driver) are missing (Debian/Ubuntu: ``apt-get install postgresql``; the
driver is pinned in requirements.txt).

Local (Unix socket) connections are always trusted, which is how the helpers here administer
the server; TCP connections use ``host_auth`` (``trust``, or ``scram-sha-256`` to check
passwords as the ``postgres`` image does).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SUPERUSER = "postgres"
#: pg_isready attempts after ``pg_ctl start -w`` returned (each waits up to 2 s for the server).
READY_ATTEMPTS = 15


def server_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, else Debian's layout."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []

    def version(folder: Path) -> int:
        return int(folder.parent.name) if folder.parent.name.isdigit() else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if all((folder / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL cluster in a temporary folder; as root, run by the ``postgres`` user
    (the server refuses to run as root)."""

    def __init__(self, bin_dir: Path, root: Path, host_auth: str = "trust") -> None:
        self.bin, self.root = bin_dir, root
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = free_port()
        self.host_auth = host_auth
        self.as_user = SUPERUSER if os.geteuid() == 0 else None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.as_user, "--", *cmd]
            else:
                cmd = ["su", self.as_user, "-c", shlex.join(cmd)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self.sockets.mkdir()
        if self.as_user is not None:
            import pwd

            pw = pwd.getpwnam(self.as_user)
            for path in (self.root, self.sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth-local", "trust",
            "--auth-host", self.host_auth, "-E", "UTF8",
        )  # fmt: skip
        opts = f"-k {self.sockets} -h 127.0.0.1 -p {self.port} -c fsync=off"
        started = self.run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
            "-o", opts, check=False,
        )  # fmt: skip
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}{log}")
        self.wait_ready()

    def wait_ready(self) -> None:
        """``pg_ctl -w`` already waited; confirm over TCP, a bounded number of times."""
        isready = self.bin / "pg_isready"
        for _ in range(READY_ATTEMPTS):
            if isready.is_file():
                cmd = [str(isready), "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"]
                if subprocess.run(cmd, capture_output=True).returncode == 0:
                    return
            else:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
        raise RuntimeError(f"PostgreSQL on 127.0.0.1:{self.port} is not accepting connections")

    def create_database(self, name: str) -> str:
        """A new database owned by the superuser; its URL (TCP, no password: ``trust`` only)."""
        self.run("createdb", "-h", str(self.sockets), "-p", str(self.port), "-U", SUPERUSER, name)
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def execute(self, *statements, dbname: str = "postgres") -> None:
        """Run SQL statements (``str`` or ``psycopg2.sql`` objects) as the superuser over the
        trusted Unix socket, each in its own transaction (``CREATE DATABASE`` needs that)."""
        import psycopg2

        conn = psycopg2.connect(
            host=str(self.sockets), port=self.port, user=SUPERUSER, dbname=dbname
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def create_owned_database(self, user: str, password: str, name: str) -> None:
        """A login role with a password and a database it owns, as the ``postgres`` image
        sets up from ``POSTGRES_USER`` / ``POSTGRES_PASSWORD`` / ``POSTGRES_DB``."""
        from psycopg2 import sql

        self.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            ),
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(user)
            ),
        )

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data), check=False)


@contextlib.contextmanager
def running_server(host_auth: str = "trust") -> Iterator[Server]:
    """A started `Server`, stopped and removed on exit; skips the test where PostgreSQL's
    server binaries or psycopg2 are missing. For a fixture::

        @pytest.fixture(scope="module")
        def postgres():
            with running_server() as server:
                yield server

    Its folder is a fresh ``/tmp`` directory rather than pytest's ``tmp_path``: as root the
    server runs as ``postgres``, which cannot enter pytest's root-only base folder."""
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2-binary is missing")
    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in"
            " /usr/lib/postgresql/*/bin: apt-get install postgresql"
        )
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="cryptoai-pg-"))
    server = Server(bin_dir, root, host_auth=host_auth)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
