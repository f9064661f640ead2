"""Every CLI option, setting and error code is documented in docs/."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

from indexer.index_plan import IndexSettings
from service.cli import build_parser
from service.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _commands(
    parser: argparse.ArgumentParser, prefix: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command and sub-command (`regard vocab add`), with its parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", sub))
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_cli_option_is_in_docs_cli():
    text = (DOCS / "cli.md").read_text()
    commands = _commands(build_parser(), "regard")
    assert "regard vocab add" in dict(commands)
    missing = []
    for name, sub in commands:
        assert name in text, f"docs/cli.md has no section for `{name}`"
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and f"`{option}" not in text:
                    missing.append(f"{name} {option}")
    assert not missing, f"undocumented in docs/cli.md: {missing}"


def test_every_setting_is_in_docs_api():
    text = (DOCS / "api.md").read_text()
    missing = [
        f"REGARD_{name.upper()}"
        for name in Settings.model_fields
        if f"`REGARD_{name.upper()}`" not in text
    ]
    assert not missing, f"undocumented in docs/api.md: {missing}"
    index_settings = [f"REGARD_INDEX_{field.name.upper()}" for field in fields(IndexSettings)]
    assert [name for name in index_settings if f"`{name}`" not in text] == []


def test_every_error_code_is_in_docs_api():
    """The codes the service answers with, found in its source: clients translate them."""
    source = "\n".join(p.read_text() for p in (DOCS.parent / "service").rglob("*.py"))
    codes = set(re.findall(r'code="(\w+)"', source))
    codes |= set(re.findall(r'error_body\([\w.]+, "(\w+)"', source))
    assert {"empty_query", "unknown_item", "invalid_request", "http_error"} <= codes
    text = (DOCS / "api.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"error codes undocumented in docs/api.md: {missing}"
