"""docker-compose.yml has the production shape, as a compose implementation renders it
(Debian's docker-compose, which `config` needs no Docker engine for; .ci/run installs it):
the proxy alone publishes ports, web scales freely, every long-running service has a health
check and a restart policy, migrations run once before the rest. The image runs as an
unprivileged user and leaves secrets and local state out; the Caddyfile is valid."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import _require

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ENV = ROOT / "deploy" / "porchlight.env.example"
LONG_RUNNING = {"proxy", "web", "worker", "beat", "db", "redis"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _require(f"needs {name} (apt-get install {name}; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def compose() -> dict:
    result = subprocess.run(
        [tool("docker-compose"), "--file", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": str(EXAMPLE_ENV)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_it_runs_the_whole_shape(compose):
    assert set(compose["services"]) == LONG_RUNNING | {"migrate"}
    assert set(compose["volumes"]) >= {"pgdata", "media", "caddy_data"}


def test_only_the_proxy_publishes_ports_so_web_scales(compose):
    services = compose["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["proxy"]
    published = {str(p["published"]) for p in services["proxy"]["ports"]}
    assert published == {"80", "443"}
    # A fixed name or host port would stop `--scale web=3`.
    for name in ("web", "worker"):
        assert "container_name" not in services[name]
        assert "ports" not in services[name]


def test_every_long_running_service_has_a_health_check_and_restarts(compose):
    for name in LONG_RUNNING:
        service = compose["services"][name]
        assert service["healthcheck"]["test"], name
        assert service["restart"] in {"always", "unless-stopped"}, name
    web_check = compose["services"]["web"]["healthcheck"]["test"]
    assert web_check == ["CMD", "python", "deploy/healthcheck.py", "web"]
    assert (ROOT / "deploy" / "healthcheck.py").is_file()


def test_migrations_run_once_before_web_worker_and_beat(compose):
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["redis"]["condition"] == "service_healthy", name
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_settings_come_from_the_env_file_and_web_trusts_only_the_proxy(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat", "migrate"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://"), name
        assert environment["REDIS_URL"].startswith("redis://"), name
        assert environment["SITE_URL"].startswith("https://"), name
    proxy_address = services["proxy"]["networks"]["backend"]["ipv4_address"]
    assert services["web"]["environment"]["FORWARDED_ALLOW_IPS"] == proxy_address
    assert "FORWARDED_ALLOW_IPS" not in services["worker"]["environment"]


def test_no_container_can_take_the_proxys_address_before_the_proxy_starts(compose):
    # The engine gives addresses in start order and the proxy starts last: without a range
    # for dynamic addresses, db took 172.30.0.2 and `up` failed on a clean engine.
    proxy_networks = compose["services"]["proxy"]["networks"]
    proxy = ipaddress.ip_address(proxy_networks["backend"]["ipv4_address"])
    (pool,) = compose["networks"]["backend"]["ipam"]["config"]
    assert proxy in ipaddress.ip_network(pool["subnet"])
    assert proxy not in ipaddress.ip_network(pool["ip_range"])


def test_uploads_live_on_a_volume_shared_by_web_and_worker(compose):
    for name in ("web", "worker"):
        mounts = [
            m if isinstance(m, str) else f"{m['source']}:{m['target']}"
            for m in compose["services"][name]["volumes"]
        ]
        assert any(m.startswith("media:/data/media") for m in mounts), mounts


def test_one_beat_and_a_worker_with_the_celery_app(compose):
    services = compose["services"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portal", "beat"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert "deploy" not in services["beat"]  # no replicas


def test_the_worker_runs_as_the_tests_and_benches_start_it(compose):
    # tests/servers.py's CeleryWorker (bench.deliveries, the worker tests) mirrors production.
    from tests.servers import WORKER_CONCURRENCY, WORKER_DATABASE, WORKER_POOL

    worker = compose["services"]["worker"]
    assert f"--pool={WORKER_POOL}" in worker["command"]
    assert f"--concurrency={WORKER_CONCURRENCY}" in worker["command"]
    assert {k: worker["environment"].get(k) for k in WORKER_DATABASE} == WORKER_DATABASE


def test_the_image_runs_as_an_unprivileged_user_and_serves_with_uvicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "collectstatic" in dockerfile
    assert re.search(r'^CMD \["deploy/web.sh"\]', dockerfile, re.MULTILINE)
    web = (ROOT / "deploy" / "web.sh").read_text()
    assert os.access(ROOT / "deploy" / "web.sh", os.X_OK)
    assert "-m uvicorn portal.asgi:application" in web
    assert "--forwarded-allow-ips" in web and "--no-proxy-headers" in web


def test_the_image_leaves_out_secrets_and_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "media", "db.sqlite3*", "*.env"} <= ignored


@pytest.mark.parametrize(
    "env",
    [{}, {"UPSTREAMS": "list", "WEB_UPSTREAMS": "127.0.0.1:8001 127.0.0.1:8002"}],
    ids=["compose", "list"],
)
def test_the_caddyfile_is_valid_for_compose_and_for_a_list_of_upstreams(env, tmp_path):
    result = subprocess.run(
        [tool("caddy"), "adapt", "--config", str(ROOT / "deploy" / "Caddyfile")],
        cwd=tmp_path,
        env={**os.environ, "SITE_ADDRESS": "portal.example.com", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"handler":"reverse_proxy"' in result.stdout
    if env:
        assert '"dial":"127.0.0.1:8001"' in result.stdout
    else:  # every container of the web service, from Docker's DNS
        assert '"dynamic_upstreams":{"name":"web","port":"8000"' in result.stdout
