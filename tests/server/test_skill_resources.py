"""SKILL.md and references/ reach the agent from a checkout and from an installed wheel."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import zipfile

import pytest
from mcp import Client

from attribution_analysis.server import ServerConfig, app, build_server
from tests.conftest import REPO

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _resources(config: ServerConfig) -> dict[str, str]:
    server = build_server(config)
    async with Client(server.mcp) as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        return {uri: (await client.read_resource(uri)).contents[0].text for uri in listed}


async def test_an_installed_copy_is_served_when_there_is_no_checkout(tmp_path, monkeypatch):
    share = tmp_path.joinpath("prefix", *app.SHARE)
    (share / "references").mkdir(parents=True)
    (share / "SKILL.md").write_text("# installed skill\n")
    (share / "references" / "pitfalls.md").write_text("# installed pitfalls\n")
    monkeypatch.setattr(app, "skill_locations", lambda: [tmp_path / "no-checkout", share])
    served = await _resources(ServerConfig.at(tmp_path / "root"))
    assert served == {
        "attribution://skill": "# installed skill\n",
        "attribution://references/pitfalls": "# installed pitfalls\n",
    }


async def test_missing_skill_files_are_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(app, "skill_locations", lambda: [tmp_path / "a", tmp_path / "b"])
    with caplog.at_level(logging.WARNING, logger=app.__name__):
        served = await _resources(ServerConfig.at(tmp_path / "root"))
    assert served == {}
    assert "SKILL.md and references/ were not found" in caplog.text
    assert str(tmp_path / "a") in caplog.text


def test_the_checkout_is_looked_at_first():
    assert app.skill_locations()[0] == REPO
    assert app.find_skill(app.skill_locations()) == REPO


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_the_wheel_carries_skill_md_and_every_reference(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "SKILL.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("references", "src"):
        shutil.copytree(
            REPO / folder,
            source / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    # A wheel's <name>.data/data/X installs to <prefix>/X: share/attribution-analysis/...,
    # where skill_locations looks.
    installed = {
        name.split(".data/data/", 1)[1]
        for name in zipfile.ZipFile(wheel).namelist()
        if ".data/data/" in name
    }
    share = "/".join(app.SHARE)
    expected = {f"{share}/SKILL.md"} | {
        f"{share}/references/{p.name}" for p in (REPO / "references").glob("*.md")
    }
    assert expected <= installed, sorted(expected - installed)
