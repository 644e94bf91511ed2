"""The Dockerfile and compose.yaml, checked without a container runtime.

No image is built here. compose.yaml is validated against the Compose specification's JSON
schema (the copy check-jsonschema ships as vendor.compose-spec), and the Dockerfile's own
venv and `pip install` lines and its ENTRYPOINT, CMD, ENV, WORKDIR and HEALTHCHECK are
replayed in a fresh virtual environment, with the image's paths mapped into a temporary
folder and the network closed to everything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, API_KEY, TOKEN, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# Anything but 127.0.0.1 goes to a closed port: a download at run time fails the test.
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


# --- reading the Dockerfile ------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, name: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == name]

    def last(self, name: str) -> str:
        found = self.all(name)
        assert found, f"the stage FROM {self.base} has no {name}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append(Stage(base=args.split()[0]))
        else:
            stages[-1].instructions.append((instruction, " ".join(args.split())))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec form: {args}"
    return [str(part) for part in value]


def env_of(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            values[key] = value
    return values


@dataclass
class Image:
    """The final stage replayed in a folder: its paths mapped, its venv installed."""

    paths: dict[str, Path]
    env: dict[str, str]
    workdir: Path
    command: list[str]
    healthcheck: list[str]

    def map(self, text: str) -> str:
        for container, host in sorted(self.paths.items(), key=lambda item: -len(item[0])):
            text = re.sub(rf"{re.escape(container)}(?=/|$|:|\s)", str(host), text)
        return text

    def environment(self, **settings: str) -> dict[str, str]:
        env = {"HOME": str(self.workdir), "LANG": "C.UTF-8"}
        env |= {key: self.map(value) for key, value in self.env.items()}
        env["PATH"] = env["PATH"].replace("$PATH", os.environ["PATH"])
        env["TIKTOKEN_CACHE_DIR"] = str(self.workdir / "empty-tiktoken-cache")
        return env | OFFLINE | settings

    def executable(self, env: dict[str, str], name: str) -> str:
        found = shutil.which(name, path=env["PATH"])
        assert found, f"{name} not on the image's PATH"
        return found


def final_stage() -> Stage:
    return parse_dockerfile(DOCKERFILE.read_text())[-1]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    build, final = parse_dockerfile(DOCKERFILE.read_text())
    where = tmp_path_factory.mktemp("image")
    paths = {"/opt/venv": where / "venv", "/opt/app": where / "app", "/data": where / "data"}
    image = Image(
        paths=paths,
        env=env_of(final),
        workdir=where,
        command=exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD")),
        healthcheck=exec_form(final.last("HEALTHCHECK").split(" CMD ", 1)[1]),
    )
    assert final.last("WORKDIR") == "/", "the SQLite default data/assistant.db must land on /data"
    assert "/data" in final.all("VOLUME")
    paths["/data"].mkdir()

    context = paths["/opt/app"]
    context.mkdir()
    assert build.last("WORKDIR") == "/opt/app"
    for args in build.all("COPY"):
        *sources, target = args.split()
        for source in sources:
            origin = ROOT / source
            into = context / target if target not in ("./", ".") else context / source
            if origin.is_dir():
                shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, context / origin.name)
    for run in build.all("RUN"):
        argv = shlex.split(image.map(run))
        if argv[:3] == ["python", "-m", "venv"]:
            argv[0] = sys.executable  # the base image's python: ours, a release of the same line
        assert argv[0].endswith("python") or argv[0].endswith("/pip"), f"unexpected RUN: {run}"
        done = subprocess.run(argv, cwd=context, capture_output=True, text=True, timeout=420)
        if done.returncode != 0:
            skip_or_fail(f"`{run}` failed here (no package index?): {done.stderr[-800:]}")
    return image


# --- compose.yaml ------------------------------------------------------------------------------


def check_jsonschema() -> Path:
    if not CHECK_JSONSCHEMA.exists():
        skip_or_fail("check-jsonschema is not installed (make test installs the dev extras)")
    return CHECK_JSONSCHEMA


def test_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    done = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", COMPOSE],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_compose_file_the_specification_forbids(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        "services:\n  bot:\n    image: x\n    depends_on:\n"
        "      db:\n        condition: when_it_feels_like_it\n"
    )
    done = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", broken],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr


def load_compose() -> dict[str, object]:
    yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema")
    loaded = yaml.YAML(typ="safe").load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_bot_reaches_postgres_and_redis_once_they_are_healthy() -> None:
    services = load_compose()["services"]
    assert isinstance(services, dict)
    for name in ("bot", "bot-replica"):
        bot = services[name]
        assert bot["env_file"] == ".env"
        assert "@postgres:5432/" in bot["environment"]["DATABASE_URL"]
        assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert bot["environment"]["REDIS_URL"].startswith("redis://redis:6379/")
        for dependency, condition in bot["depends_on"].items():
            assert condition == {"condition": "service_healthy"}
            assert "healthcheck" in services[dependency]
    assert services["bot"]["environment"]["WEBHOOK_URL"] == ""  # polling whatever .env says


def test_compose_replicas_profile_puts_two_webhook_replicas_behind_the_proxy() -> None:
    services = load_compose()["services"]
    assert isinstance(services, dict)
    replica, proxy = services["bot-replica"], services["proxy"]
    assert replica["profiles"] == ["replicas"] and proxy["profiles"] == ["replicas"]
    assert replica["deploy"]["replicas"] == 2
    assert "profiles" not in services["bot"]
    config_mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro"))
    nginx = (ROOT / config_mount.split(":")[0]).read_text()
    port = replica["environment"]["WEBHOOK_LISTEN"].rpartition(":")[2]
    assert f"server bot-replica:{port}" in nginx
    assert f"location = {replica['environment']['WEBHOOK_PATH']} " in nginx
    assert "listen 443 ssl" in nginx


def test_dockerignore_keeps_out_secrets_and_lets_in_what_the_dockerfile_copies() -> None:
    rules = (ROOT / ".dockerignore").read_text().split()
    assert rules[rules.index("*") :][0] == "*"  # everything out, then what is needed back in
    copied = {
        source.rstrip("/")
        for stage in parse_dockerfile(DOCKERFILE.read_text())
        for args in stage.all("COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    }
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert copied <= allowed
    assert not {".env", "data", ".venv"} & allowed


# --- the Dockerfile's commands in a fresh venv ---------------------------------------------------


def run(image: Image, *args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = image.environment(**settings)
    command = [image.executable(env, image.command[0]), *image.command[1:-1], *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_image_migrates_its_default_sqlite_database_onto_the_data_volume(
    image: Image,
) -> None:
    # The image's own DATABASE_URL default, from its WORKDIR: no DATABASE_URL given.
    done = run(
        image, "migrate", cwd=image.workdir, TELEGRAM_BOT_TOKEN=TOKEN, OPENAI_API_KEY=API_KEY
    )
    assert done.returncode == 0, done.stderr
    assert (image.paths["/data"] / "assistant.db").stat().st_size > 0


@pytest.mark.xfail(
    strict=True,
    reason="the installed package lacks alembic/ (app/db/migrate.py finds it beside the source "
    "tree), so the Dockerfile puts the source first with PYTHONPATH; when this passes, drop "
    "PYTHONPATH and the source copy from the Dockerfile, and this marker",
)
def test_the_installed_package_alone_carries_its_migrations(image: Image, tmp_path: Path) -> None:
    env = image.environment(
        TELEGRAM_BOT_TOKEN=TOKEN,
        OPENAI_API_KEY=API_KEY,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}",
    )
    del env["PYTHONPATH"]
    python = image.executable(env, "python")
    done = subprocess.run(
        [python, "-m", "app", "migrate"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0


async def test_the_image_start_command_answers_offline_and_stops_on_sigterm(
    image: Image, tmp_path: Path, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.reply = "hello from the image"
    env = image.environment(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.base_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_MODEL="gpt-4o-mini",  # counted with the o200k vocabulary the package ships
        ALLOWED_USER_IDS=str(ALLOWED),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    )
    process = await asyncio.create_subprocess_exec(
        image.executable(env, image.command[0]),
        *image.command[1:],
        cwd=image.workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=60)
        telegram.push_message(ALLOWED, "are you there?")
        await telegram.wait_for(lambda: bool(telegram.sent_messages(ALLOWED)), timeout=30)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == [llm.reply]
    assert not (image.workdir / "empty-tiktoken-cache").exists()  # no vocabulary was fetched


# --- the HEALTHCHECK ------------------------------------------------------------------------------


def healthcheck(image: Image, **settings: str) -> int:
    env = image.environment(**settings)
    command = [image.executable(env, image.healthcheck[0]), *image.healthcheck[1:]]
    return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def healthz() -> AsyncIterator[int]:
    """A stand-in for webhook mode's GET /healthz on a free port of 127.0.0.1."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_get("/healthz", ok)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


def test_the_health_check_passes_in_polling_mode(image: Image) -> None:
    assert healthcheck(image) == 0
    assert healthcheck(image, WEBHOOK_URL="") == 0


def test_the_health_check_fails_in_webhook_mode_when_nothing_answers(image: Image) -> None:
    port = free_port()
    settings = {"WEBHOOK_URL": "https://bot.example/telegram", "WEBHOOK_LISTEN": f"0.0.0.0:{port}"}
    assert healthcheck(image, **settings) != 0


async def test_the_health_check_passes_in_webhook_mode_when_healthz_answers(
    image: Image, healthz: int
) -> None:
    settings = {
        "WEBHOOK_URL": "https://bot.example/telegram",
        "WEBHOOK_LISTEN": f"0.0.0.0:{healthz}",
    }
    code = await asyncio.to_thread(healthcheck, image, **settings)
    assert code == 0
