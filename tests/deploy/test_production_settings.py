"""The production environment, as deploy/porchlight.env.example describes it, passes Django's
deployment checks at warning level and turns on what HTTPS behind a proxy needs; without a
configured proxy, nobody's forwarded headers are believed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "porchlight.env.example"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The example env file with real secrets, as a new deployment would have it, plus what
    the image and docker-compose.yml set."""
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    values["SECRET_KEY"] = secrets.token_urlsafe(50)
    values["STATIC_ROOT"] = str(tmp_path / "static")
    values["MEDIA_ROOT"] = str(tmp_path / "media")
    values["FORWARDED_ALLOW_IPS"] = "172.30.0.2"
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    return {**base, **values, "PORCHLIGHT_ENV_FILE": "", **overrides}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_of(env: dict[str, str], *names: str) -> list[str]:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
        "django.setup(); from django.conf import settings; "
        + "; ".join(f"print(repr(getattr(settings, {n!r}, None)))" for n in names)
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_production_environment_passes_check_deploy_at_warning_level(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_fails_a_weak_secret_key_and_debug(tmp_path):
    env = production_env(tmp_path, SECRET_KEY="change-me", DEBUG="1")
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "security.W009" in result.stderr
    assert "security.W018" in result.stderr


def test_https_behind_the_proxy_turns_on_hsts_redirects_and_secure_cookies(tmp_path):
    assert settings_of(
        production_env(tmp_path),
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
    ) == ["True", "31536000", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO', 'https')"]


def test_without_a_configured_proxy_no_forwarded_header_is_believed(tmp_path):
    env = production_env(tmp_path)
    del env["FORWARDED_ALLOW_IPS"]
    assert settings_of(env, "SECURE_PROXY_SSL_HEADER") == ["None"]


def test_make_run_and_tests_over_http_turn_none_of_it_on():
    env = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "DEBUG")}
    env.update(PORCHLIGHT_ENV_FILE="", SECRET_KEY="x", FORWARDED_ALLOW_IPS="")
    assert settings_of(
        env, "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"
    ) == [
        "False",
        "0",
        "False",
    ]


def test_deployed_static_files_are_hashed_and_compressed_and_media_is_not_among_them(tmp_path):
    env = production_env(tmp_path)
    assert settings_of(env, "STORAGES", "WHITENOISE_USE_FINDERS")[1:] == ["False"]
    assert "CompressedManifestStaticFilesStorage" in settings_of(env, "STORAGES")[0]


def test_media_inside_a_static_folder_is_refused(tmp_path):
    env = production_env(tmp_path, MEDIA_ROOT=str(tmp_path / "static" / "media"))
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "uploads would be public" in result.stderr


def test_secrets_being_rotated_are_accepted_alongside_the_new_ones(tmp_path):
    env = production_env(
        tmp_path,
        SECRET_KEY_FALLBACKS="the-previous-key-" + "x" * 50,
        ANYMAIL_WEBHOOK_SECRET="old:pw,new:pw2",
    )
    fallbacks, anymail = settings_of(env, "SECRET_KEY_FALLBACKS", "ANYMAIL")
    assert fallbacks == repr(["the-previous-key-" + "x" * 50])
    assert "'WEBHOOK_SECRET': ['old:pw', 'new:pw2']" in anymail
