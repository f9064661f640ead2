// IIIF conventions the viewer needs: language maps, the small HTML subset that
// metadata values may carry, and Image API URLs.

import { h } from "./dom.js";

/** Languages in the order the viewer prefers them. */
export const PREFERRED_LANGUAGES = ["fr", "en", "none"];

function languageRank(tag) {
  const base = tag.toLowerCase().split("-")[0];
  const index = PREFERRED_LANGUAGES.indexOf(base);
  return index === -1 ? PREFERRED_LANGUAGES.length : index;
}

/** The entries of a language map, best language first: [[lang, [values]], …]. */
export function languageEntries(map) {
  if (!map || typeof map !== "object") return [];
  return Object.entries(map)
    .filter(([, values]) => Array.isArray(values) && values.length > 0)
    .sort(([a], [b]) => languageRank(a) - languageRank(b));
}

/** The values of a language map in the preferred language: fr, then en, then any. */
export function pickValues(map) {
  const [first] = languageEntries(map);
  return first ? { lang: first[0], values: first[1] } : { lang: null, values: [] };
}

/** One string for a language map (its values joined), or `fallback`. */
export function pickText(map, fallback = "") {
  const { values } = pickValues(map);
  return values.length ? values.map(stripHtml).join(" ; ") : fallback;
}

/** A lang attribute value for a language map key ("none" means no language). */
export const langAttribute = (lang) => (lang && lang !== "none" ? lang : null);

// IIIF Presentation 3 §4.4: a value that starts with "<" and ends with ">" is HTML,
// limited to a few tags; everything else is plain text.
const ALLOWED_TAGS = new Set(["A", "B", "BR", "EM", "I", "P", "SMALL", "SPAN", "STRONG", "SUB", "SUP"]);
const DROPPED_TAGS = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "TEMPLATE"]);

const isHtml = (value) => {
  const text = String(value).trim();
  return text.startsWith("<") && text.endsWith(">");
};

function stripHtml(value) {
  if (!isHtml(value)) return String(value);
  return new DOMParser().parseFromString(value, "text/html").body.textContent.trim();
}

function sanitise(source, target) {
  for (const node of source.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      target.append(node.textContent);
    } else if (node.nodeType === Node.ELEMENT_NODE && !DROPPED_TAGS.has(node.tagName)) {
      if (!ALLOWED_TAGS.has(node.tagName)) {
        sanitise(node, target); // unwrap: keep the text, drop the tag
        continue;
      }
      let copy;
      if (node.tagName === "A") {
        const href = node.getAttribute("href") ?? "";
        copy = /^(https?:|mailto:)/i.test(href)
          ? h("a", { href, target: "_blank", rel: "noopener noreferrer" })
          : h("span");
      } else {
        copy = document.createElement(node.tagName.toLowerCase());
      }
      sanitise(node, copy);
      target.append(copy);
    }
  }
  return target;
}

/** A node for one IIIF value: text, or the permitted HTML subset, never scripts. */
export function iiifValue(value) {
  if (!isHtml(value)) return document.createTextNode(String(value));
  // DOMParser builds an inert document: nothing in it runs or loads.
  const parsed = new DOMParser().parseFromString(String(value), "text/html");
  return sanitise(parsed.body, document.createDocumentFragment());
}

/** Nodes for a language map in the preferred language, values separated by line breaks. */
export function languageMapNodes(map) {
  const { values } = pickValues(map);
  return values.flatMap((value, i) => (i ? [h("br"), iiifValue(value)] : [iiifValue(value)]));
}

/** An Image API URL for the whole image, fitted in a `size` × `size` box. */
export const infoJsonUrl = (service) => (service ? `${service.replace(/\/+$/, "")}/info.json` : null);
