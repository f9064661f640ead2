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


def test_every_cli_option_is_in_docs_cli():
    text = (DOCS / "cli.md").read_text()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        assert f"regard {name}" in text, f"docs/cli.md has no section for `regard {name}`"
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and f"`{option}" not in text:
                    missing.append(f"regard {name} {option}")
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
