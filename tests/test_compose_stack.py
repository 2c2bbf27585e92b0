"""The Docker deployment (``Dockerfile``, ``docker-compose.yml``) checked without a container
engine: the files read statically, then the compose stack's three services run natively on
127.0.0.1 with the commands and environment taken from those files.

- Static: every ``COPY`` source exists, the pins are installed with ``constraints.txt``, the
  image ends as a non-root user it created, the CMD's options exist on ``cryptoai serve`` and
  its variables have ``ENV`` defaults, the ports agree, the services are postgres -> mlflow ->
  api, and every published port binds 127.0.0.1 only.
- Native stack (slow): a real PostgreSQL server (`pg_support`, password auth as the
  ``postgres`` image) with the role and database of the postgres service's environment; the
  mlflow service's ``command`` as a subprocess (its host, port, ``postgres:5432`` and volume
  path mapped to 127.0.0.1, free ports and a temporary folder); a model trained and registered
  through it over HTTP (artifacts through its proxy, ``mlflow-artifacts:``); then the
  Dockerfile's CMD under ``sh -c`` with the image's ``ENV`` and the api service's
  ``environment``. What the API answers must equal ``cryptoai.predict`` in this process.

What these tests cannot see: the image build itself (base image, apt and pip inside it), the
container network's DNS and volume permissions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from pg_support import free_port, running_server

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent
#: The variable compose refuses to start without (``${CRYPTOAI_API_KEYS:?...}``).
KEYS = "stack-key-1,stack-key-2"
#: How long one service may take to answer ``/health`` (polled every 0.1 s).
READY_S = 90.0


# --------------------------------------------------------------------- reading the files


class ComposeError(ValueError):
    """A compose variable that must be set is not (``${VAR:?message}``)."""


_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""

    def sub(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        name, op = m["braced"] or m["named"], m["op"]
        value = env.get(name)
        if op is None:
            return value or ""
        missing = not value if op.startswith(":") else value is None
        if not missing:
            return value
        if op.endswith("-"):
            return m["arg"]
        raise ComposeError(f"{name}: {m['arg']}")

    return _VAR.sub(sub, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolated(v, env) for k, v in node.items()}
    return node


def compose_file(env: Mapping[str, str] | None = None) -> dict:
    """docker-compose.yml with its variables substituted from ``env`` (not this process's
    environment: the file's defaults are what the tests exercise)."""
    return _interpolated(
        yaml.safe_load(COMPOSE.read_text()), {"CRYPTOAI_API_KEYS": KEYS} | (env or {})
    )


def service_environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    out, buf = [], None
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (buf is None and not line):
            continue
        if buf is not None and not line:
            continue
        buf = line if buf is None else f"{buf} {line}"
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        word, _, args = buf.partition(" ")
        out.append((word.upper(), args.strip()))
        buf = None
    assert buf is None, "the Dockerfile ends inside a continued line"
    return out


def instructions(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def dockerfile_env() -> dict[str, str]:
    """Every ``ENV`` of the final image, later ones overriding earlier."""
    env: dict[str, str] = {}
    for args in instructions("ENV"):
        words = shlex.split(args)
        if all("=" in w for w in words):
            env.update(w.split("=", 1) for w in words)
        else:  # the legacy ``ENV KEY value with spaces`` form
            env[words[0]] = " ".join(words[1:])
    return env


def shell_or_exec(args: str) -> list[str]:
    """A CMD/RUN argument as argv: the JSON exec form, else the shell form under /bin/sh."""
    return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]


def image_cmd() -> list[str]:
    cmds = instructions("CMD")
    assert cmds, "the Dockerfile has no CMD"
    return shell_or_exec(cmds[-1])


def serve_script() -> str:
    """The shell line the image runs (``sh -c LINE``)."""
    cmd = image_cmd()
    assert cmd[0] in ("sh", "/bin/sh") and cmd[1] == "-c" and len(cmd) == 3, cmd
    return cmd[2]


def serve_argv() -> list[str]:
    """The ``cryptoai serve ...`` words of the CMD's shell line."""
    words = shlex.split(serve_script())
    assert "cryptoai" in words, f"the CMD does not run cryptoai: {words}"
    at = words.index("cryptoai")
    return words[at:]


def option(argv: list[str], name: str) -> str:
    for i, word in enumerate(argv):
        if word == name:
            return argv[i + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def replaced(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new``; ``old`` must be there (a file that changed
    shape should fail here, by name, not later as a server that never answers)."""
    assert old in text, f"expected {old!r} in {text!r}"
    return text.replace(old, new)


def container_port(service: dict) -> int:
    """The container side of the service's one published port."""
    (mapping,) = service["ports"]
    return int(str(mapping).rsplit(":", 1)[1].split("/", 1)[0])


# --------------------------------------------------------------------- static checks


def test_every_copy_source_exists():
    copies = instructions("COPY") + instructions("ADD")
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if args.startswith("["):
            words = json.loads(args)
        assert not any(w.startswith("--from") for w in shlex.split(args)), args
        *sources, _dest = words
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_pins_are_installed_with_the_constraints():
    """``pip install -r requirements.txt -c constraints.txt``, after both were copied in;
    the package itself without dependencies (they are the pins)."""
    steps = dockerfile()
    copied: set[str] = set()
    pinned = package = False
    for word, args in steps:
        if word == "COPY":
            copied.update(shlex.split(args)[:-1])
        if word == "RUN" and "pip install" in args:
            words = shlex.split(args)
            if "-r" in words and option(words, "-r") == "requirements.txt":
                assert option(words, "-c") == "constraints.txt", args
                assert {"requirements.txt", "constraints.txt"} <= copied, copied
                pinned = True
            if "." in words:
                assert "--no-deps" in words and pinned, args  # after the pins, adds none
                package = True
    assert pinned and package
    for name in ("requirements.txt", "constraints.txt"):
        assert (REPO / name).is_file()


def test_the_image_ends_as_the_non_root_user_it_creates():
    users = instructions("USER")
    assert users, "no USER: the service would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), user
    created = [
        a for a in instructions("RUN") if re.search(rf"\b(useradd|adduser)\b.*\b{user}\b", a)
    ]
    assert created, f"USER {user} is never created"
    last_user = max(i for i, (w, _) in enumerate(dockerfile()) if w == "USER")
    later_runs = [a for w, a in dockerfile()[last_user:] if w == "RUN"]
    assert not later_runs, f"RUN after USER {user}: {later_runs}"


def test_cmd_options_exist_and_its_variables_have_defaults():
    from typer.main import get_command

    import cryptoai.cli as cli

    argv = serve_argv()
    assert argv[1] == "serve", argv
    cli._register()
    serve = get_command(cli.app).commands["serve"]
    known = {opt for param in serve.params for opt in param.opts}
    used = {w.split("=", 1)[0] for w in argv[2:] if w.startswith("-")}
    assert used, argv
    assert used <= known, f"cryptoai serve has no {sorted(used - known)} (it has {sorted(known)})"
    assert serve_script().startswith("exec "), "without exec, sh (PID 1) swallows SIGTERM"
    variables = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", serve_script()))
    assert variables and variables <= set(dockerfile_env()), (variables, dockerfile_env())


def test_ports_agree():
    """The CMD's --port is what the image exposes, the health check polls and compose
    publishes; the api's tracking URI names the mlflow service's port."""
    port = int(option(serve_argv(), "--port"))
    assert [int(p.split("/", 1)[0]) for p in instructions("EXPOSE")] == [port]
    (health,) = instructions("HEALTHCHECK")
    assert f"127.0.0.1:{port}/health" in health, health
    services = compose_file()["services"]
    assert container_port(services["api"]) == port
    mlflow_port = int(option(shlex.split(services["mlflow"]["command"]), "--port"))
    assert container_port(services["mlflow"]) == mlflow_port
    uri = service_environment(services["api"])["MLFLOW_TRACKING_URI"]
    assert uri == f"http://mlflow:{mlflow_port}", uri


def test_services_start_in_order_and_publish_on_loopback_only():
    services = compose_file()["services"]
    assert set(services) == {"postgres", "mlflow", "api"}
    assert set(services["api"]["depends_on"]) == {"mlflow"}
    assert set(services["mlflow"]["depends_on"]) == {"postgres"}
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
        for mapping in service.get("ports", []):
            host_ip = mapping.get("host_ip") if isinstance(mapping, dict) else None
            if host_ip is None:
                parts = str(mapping).split(":")
                assert len(parts) == 3, f"{name} publishes {mapping} on every interface"
                host_ip = parts[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {mapping} beyond loopback"
    assert "ports" not in services["postgres"]  # the database stays on the compose network


def test_mlflow_command_matches_the_database_and_the_volume():
    from sqlalchemy.engine import make_url

    services = compose_file({"MLFLOW_DB_PASSWORD": "s3cret"})["services"]
    db = service_environment(services["postgres"])
    argv = shlex.split(services["mlflow"]["command"])
    url = make_url(option(argv, "--backend-store-uri"))
    assert (url.host, url.port or 5432) == ("postgres", 5432)
    assert (url.username, url.password, url.database) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )
    assert db["POSTGRES_PASSWORD"] == "s3cret"
    assert "--serve-artifacts" in argv
    mounts = [v.split(":")[1] for v in services["mlflow"]["volumes"]]
    assert option(argv, "--artifacts-destination") in mounts  # artifacts outlive the container


def test_compose_refuses_to_start_without_api_keys():
    with pytest.raises(ComposeError, match="CRYPTOAI_API_KEYS"):
        compose_file({"CRYPTOAI_API_KEYS": ""})


# --------------------------------------------------------------------- the stack, natively


def _base_env(home: Path) -> dict[str, str]:
    """A container's environment is its image's and its service's, not this process's: start
    from nothing but a PATH that finds this environment's ``mlflow`` and ``cryptoai``."""
    return {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


class Service:
    """A service's command as a subprocess in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.log_path = name, cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_healthy(self, url: str) -> None:
        """Poll ``url`` until it answers 200, the process exits, or `READY_S` pass."""
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)  # the next poll, or the exit seen at once
        raise AssertionError(f"{self.name} did not answer {url} in {READY_S} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


def _candles(df) -> list[dict]:
    cols = df[["open", "high", "low", "close", "volume"]].to_dict("records")
    stamps = [ts.isoformat().replace("+00:00", "Z") for ts in df.index]
    return [{"timestamp": ts, **row} for ts, row in zip(stamps, cols, strict=True)]


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path


@contextlib.contextmanager
def _services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        with contextlib.ExitStack() as stack:  # every one stopped, even if one stop fails
            for service in started:
                stack.callback(service.stop)


@pytest.mark.slow
def test_compose_stack_runs_natively_and_serves_the_champion(stack_dir, monkeypatch):
    from mlflow.tracking import MlflowClient
    from serve_support import train_config

    import cryptoai
    from cryptoai.modeling.training import load_training_data, train
    from cryptoai.serve.runtime import clear_cache
    from cryptoai.tracking.registry import register_model

    services = compose_file()["services"]
    base = _base_env(stack_dir / "home")
    for exe in ("mlflow", "cryptoai"):
        assert (VENV_BIN / exe).is_file(), f"{exe} is not installed beside {sys.executable}"

    with running_server(host_auth="scram-sha-256") as pg, _services() as started:
        # postgres: the role and database the image would create from its environment
        db = service_environment(services["postgres"])
        pg.create_owned_database(db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], db["POSTGRES_DB"])

        # mlflow: the service's command, mapped onto this machine
        mlflow_svc = services["mlflow"]
        inner = container_port(mlflow_svc)
        port = free_port()
        artifacts = stack_dir / "mlartifacts"
        artifacts.mkdir()
        (volume,) = [v.split(":")[1] for v in mlflow_svc["volumes"]]
        command = mlflow_svc["command"]
        command = replaced(command, "--host 0.0.0.0", "--host 127.0.0.1")
        command = replaced(command, f"--port {inner}", f"--port {port}")
        command = replaced(command, "@postgres:5432/", f"@127.0.0.1:{pg.port}/")
        command = replaced(command, f" {volume} ", f" {artifacts} ")
        env = base | service_environment(mlflow_svc)
        mlflow = Service("mlflow", shlex.split(command), env, stack_dir)
        started.append(mlflow)
        mlflow_url = f"http://127.0.0.1:{port}"
        mlflow.wait_healthy(f"{mlflow_url}/health")
        check = mlflow_svc["healthcheck"]["test"]
        assert check[0] == "CMD", check
        check = [replaced(w, f":{inner}/", f":{port}/") if ":" in w else w for w in check[1:]]
        done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"mlflow's healthcheck fails: {done.stderr}"

        # the Host headers the server will see: the api container's (the service name) and a
        # client's on this machine (the published port); MLflow refuses hosts it does not allow
        api_svc = services["api"]
        api_env = service_environment(api_svc)
        tracking = httpx.URL(api_env["MLFLOW_TRACKING_URI"])
        published = str(mlflow_svc["ports"][0]).rsplit(":", 1)[0]
        for host in (f"{tracking.host}:{tracking.port}", published):
            r = httpx.get(
                f"{mlflow_url}/api/2.0/mlflow/registered-models/search",
                headers={"Host": host},
                timeout=30,
            )
            assert r.status_code == 200, f"mlflow refuses Host {host}: {r.status_code} {r.text}"

        # a client trains and registers the champion over HTTP
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
        model_uri = api_env["CRYPTOAI_MODEL"]
        found = re.fullmatch(r"models:/([^@/]+)@([^@/]+)", model_uri)
        assert found, f"CRYPTOAI_MODEL {model_uri} is not models:/NAME@ALIAS"
        name, alias = found.groups()
        cfg = train_config(
            stack_dir / "raw", stack_dir / "runs", tracking={"experiment": "compose-stack"}
        )
        result = train(cfg, progress=False)
        version = register_model(result.model_uri, name, alias=alias)
        client = MlflowClient(mlflow_url)
        stored_at = client.get_model_version_download_uri(name, str(version))
        assert stored_at.startswith("mlflow-artifacts:"), stored_at  # through the proxy
        assert list(artifacts.rglob("MLmodel")), "the server wrote no model into its volume"

        # api: the image's CMD with the image's ENV and the service's environment
        api_port = free_port()
        script = serve_script()
        script = replaced(script, "--host 0.0.0.0", "--host 127.0.0.1")
        script = replaced(script, f"--port {container_port(api_svc)}", f"--port {api_port}")
        env = base | dockerfile_env() | api_env
        env["MLFLOW_TRACKING_URI"] = replaced(
            env["MLFLOW_TRACKING_URI"], f"{tracking.host}:{tracking.port}", f"127.0.0.1:{port}"
        )
        api = Service("api", ["sh", "-c", script], env, stack_dir)
        started.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        api.wait_healthy(f"{api_url}/health")
        (health,) = instructions("HEALTHCHECK")
        health = replaced(health, f"127.0.0.1:{container_port(api_svc)}/", f"127.0.0.1:{api_port}/")
        check = shell_or_exec(health.split(" CMD ", 1)[1])
        done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"the image's HEALTHCHECK fails: {done.stderr}"

        df = load_training_data(cfg.data).iloc[-60:]
        body = {"candles": _candles(df)}
        with httpx.Client(base_url=api_url, timeout=60) as http:
            r = http.get("/health")
            assert r.status_code == 200
            assert r.json()["model"] == {"name": name, "version": version, "alias": alias}
            assert http.post("/predict", json=body).status_code == 401
            r = http.post("/predict", json=body, headers={"X-API-Key": KEYS.split(",")[-1]})
            assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        expected = cryptoai.predict(df, model=model_uri)
        clear_cache()
        assert [p["timestamp"] for p in got] == [c["timestamp"] for c in body["candles"]]
        for column in expected.columns:
            values = [np.nan if p[column] is None else p[column] for p in got]
            assert np.array_equal(values, expected[column].to_numpy(), equal_nan=True), column
        assert np.isfinite(expected["proba_up"].to_numpy()[-30:]).all()
    for service in started:
        assert service.proc.returncode is not None, f"{service.name} still running"
