"""A manifest's links back to its source: rights, the publisher's record page, the provider.

IIIF 3 names the record page `homepage` (a list of {id, label, format, language}) and the
publisher `provider` (an Agent with its label and homepage); IIIF 2 has `related` (a
string, or objects with @id and label) and `license` (one or many). Publishers also write
rights as HTML (``<a href="https://creativecommons.org/…">…</a>``): the URL is kept.
Only http(s) links are kept, so that nothing else can reach a page as a link.
"""

from __future__ import annotations

import html
import re
from typing import Any, TypedDict, TypeGuard

from indexer.iiif_canvas import as_list, node_id
from indexer.iiif_labels import LanguageMap, language_map


class Link(TypedDict):
    url: str
    label: LanguageMap
    language: list[str]


class Provider(TypedDict):
    label: LanguageMap
    homepage: list[Link]


_HREF = re.compile(r"""href\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def is_web_url(text: Any) -> TypeGuard[str]:
    return isinstance(text, str) and re.match(r"https?://\S", text, re.IGNORECASE) is not None


def rights(doc: dict[str, Any]) -> list[str]:
    """Every `rights` and `license` value, in order, each once; a URL from markup."""
    values: list[str] = []
    for value in as_list(doc.get("rights")) + as_list(doc.get("license")):
        for text in _rights_texts(node_id(value) or ""):
            if text and text not in values:
                values.append(text)
    return values


def _rights_texts(text: str) -> list[str]:
    if "<" not in text:
        return [text.strip()]
    urls = [html.unescape(m.group(2)).strip() for m in _HREF.finditer(text)]
    if urls := [url for url in urls if is_web_url(url)]:
        return urls
    return [" ".join(html.unescape(_TAG.sub(" ", text)).split())]


def homepage(doc: dict[str, Any], own_id: str) -> list[Link]:
    """The record pages: v3 `homepage`, v2 `related`; never the document itself, and
    never a link whose stated format is not a web page (data, XML, another manifest)."""
    return _links(as_list(doc.get("homepage")) + as_list(doc.get("related")), exclude=own_id)


def _links(entries: list[Any], exclude: str = "") -> list[Link]:
    links: list[Link] = []
    for entry in entries:
        url = node_id(entry)
        if not is_web_url(url) or url == exclude or any(link["url"] == url for link in links):
            continue
        node = entry if isinstance(entry, dict) else {}
        media = node.get("format") or node.get("@format")
        if isinstance(media, str) and media and not media.lower().startswith("text/html"):
            continue
        languages = [lang for lang in as_list(node.get("language")) if isinstance(lang, str)]
        links.append({"url": url, "label": language_map(node.get("label")), "language": languages})
    return links


def providers(doc: dict[str, Any]) -> list[Provider]:
    """v3 `provider`: who publishes the object, with its label and home page."""
    found: list[Provider] = []
    for agent in as_list(doc.get("provider")):
        if not isinstance(agent, dict):
            continue
        label, pages = language_map(agent.get("label")), _links(as_list(agent.get("homepage")))
        if label or pages:
            found.append({"label": label, "homepage": pages})
    return found


def required_label(doc: dict[str, Any]) -> LanguageMap | None:
    """The label of v3 `requiredStatement` ("Held By", "Détenu par"); v2 has none."""
    statement = doc.get("requiredStatement")
    if not isinstance(statement, dict) or not language_map(statement.get("value")):
        return None
    label = language_map(statement.get("label"))
    # A bare JSON true (LoC's "label": {"true": [true]}) names nothing.
    if all(value in ("true", "false") for values in label.values() for value in values):
        return None
    return label
