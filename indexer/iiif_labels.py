"""Labels in every form IIIF documents carry them, as one kind of value: a language map.

IIIF Presentation 3 writes a label as a language map, ``{"en": ["Armchair"], "none": ["X1"]}``.
Presentation 2 allows a plain string, a list of strings, ``{"@value": ..., "@language": ...}``
objects or lists of them; and publishers mix the two (v3 maps inside v2 manifests, the
non-standard key ``"@none"``, keys such as ``"true"`` or ``"English"``). `language_map`
turns all of these into ``dict[str, list[str]]``, keeping every language, so that the store
can keep labels and metadata in all their languages; `best_label` picks one for display.
"""

from __future__ import annotations

from typing import Any

LanguageMap = dict[str, list[str]]

NO_LANGUAGE = "none"

# Keys met in the wild that are not BCP 47 tags, mapped to one for `best_label` only:
# the language map itself keeps the publisher's keys as they are.
_LANGUAGE_ALIASES = {
    "eng": "en",
    "english": "en",
    "fra": "fr",
    "fre": "fr",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "deu": "de",
    "ger": "de",
    "german": "de",
    "nld": "nl",
    "dut": "nl",
    "ita": "it",
    "spa": "es",
    "swe": "sv",
    "cym": "cy",
    "wel": "cy",
    "ara": "ar",
    "zho": "zh",
    "chi": "zh",
}


def _text(value: Any) -> str | None:
    """One value as text: strings as they are, JSON scalars spelt as in JSON, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and "@value" in value:
        return _text(value["@value"])
    return None


def _add(lmap: LanguageMap, language: Any, value: Any) -> None:
    text = _text(value)
    if text is None or not text.strip():
        return  # an empty label is no label
    key = language if isinstance(language, str) and language else NO_LANGUAGE
    if key == "@none":
        key = NO_LANGUAGE
    values = lmap.setdefault(key, [])
    if text not in values:
        values.append(text)


def language_map(value: Any) -> LanguageMap:
    """Normalise any IIIF label form to a language map; unknown shapes give an empty map.

    - ``"Armchair"`` and ``["Armchair", "Chair"]`` go under ``"none"``;
    - ``{"@value": "Fauteuil", "@language": "fr"}`` (alone or in a list) goes under ``"fr"``;
    - a v3 map keeps its keys, except ``"@none"`` which becomes ``"none"``; bogus keys
      (``"true"``, ``"English"``) are kept as they are, and scalar values become text.
    """
    lmap: LanguageMap = {}
    _merge(lmap, value)
    return {key: values for key, values in lmap.items() if values}


def _merge(lmap: LanguageMap, value: Any) -> None:
    if isinstance(value, list):
        for element in value:
            _merge(lmap, element)
    elif isinstance(value, dict):
        if "@value" in value:
            _add(lmap, value.get("@language") or value.get("language"), value["@value"])
            return
        for language, values in value.items():
            for element in values if isinstance(values, list) else [values]:
                if isinstance(element, dict) and "@value" in element:
                    _add(lmap, element.get("@language") or language, element["@value"])
                else:
                    _add(lmap, language, element)
    else:
        _add(lmap, NO_LANGUAGE, value)


def _primary(language: str) -> str:
    """ "en-GB" -> "en", "eng" -> "en", "English" -> "en": for choosing, never for storing."""
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return _LANGUAGE_ALIASES.get(primary, primary)


def best_label(lmap: LanguageMap, prefer: tuple[str, ...] = ("fr", "en"), sep: str = "; ") -> str:
    """The label to show: the first preferred language present, then no-language, then any.

    Languages match on their primary subtag ("en" matches "en-GB" and "eng"). Several values
    in the chosen language are joined with `sep`. An empty map gives "".
    """
    for wanted in prefer:
        for language, values in lmap.items():
            if _primary(language) == _primary(wanted) and values:
                return sep.join(values)
    if lmap.get(NO_LANGUAGE):
        return sep.join(lmap[NO_LANGUAGE])
    for values in lmap.values():
        if values:
            return sep.join(values)
    return ""


def metadata_entries(node: dict[str, Any]) -> list[dict[str, LanguageMap]]:
    """The `metadata` of a manifest or canvas as {label, value} language maps."""
    entries = []
    listed = node.get("metadata")
    for entry in listed if isinstance(listed, list) else [listed]:
        if isinstance(entry, dict):
            label, value = language_map(entry.get("label")), language_map(entry.get("value"))
            if label or value:
                entries.append({"label": label, "value": value})
    return entries
