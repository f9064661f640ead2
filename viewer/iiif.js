// IIIF conventions the viewer needs: language maps, the small HTML subset that
// metadata values may carry, and Image API URLs.

import { h, joined } from "./dom.js";

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

// A well-formed BCP 47 tag ("fr", "en-GB", "cy-GB", "zh-Hant"): publishers' other keys
// ("true", "English", "none") must not reach a lang attribute.
const LANGUAGE_TAG = /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i;

/** A lang attribute value for a language map key, or null when it is not a language. */
export const langAttribute = (lang) => (lang && LANGUAGE_TAG.test(lang) ? lang : null);

// IIIF 3 (§4.4) marks HTML by a leading "<" and trailing ">", but IIIF 2 allowed HTML
// anywhere in a value ("Lauingen<br/>um 1430", "Map Service &amp; …"): a value with a
// tag or an entity is HTML, limited to a few tags; everything else is plain text.
const ALLOWED_TAGS = new Set(["A", "B", "BR", "EM", "I", "P", "SMALL", "SPAN", "STRONG", "SUB", "SUP"]);
const DROPPED_TAGS = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "TEMPLATE"]);
const MARKUP = /<\/?[a-z][^<>]*>|&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);/i;

export const isHtml = (value) => MARKUP.test(String(value));

function stripHtml(value) {
  if (!isHtml(value)) return String(value);
  const body = new DOMParser().parseFromString(String(value), "text/html").body;
  for (const br of body.querySelectorAll("br")) br.replaceWith(" ");
  return body.textContent.replace(/\s+/g, " ").trim();
}

/** `url` when it is a web link (http or https), else null: nothing else becomes a link. */
export const webUrl = (url) => (typeof url === "string" && /^https?:\/\/\S/i.test(url) ? url : null);

function sanitise(source, target) {
  for (const node of source.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      target.append(node.textContent);
    } else if (node.nodeType === Node.ELEMENT_NODE && !DROPPED_TAGS.has(node.localName.toUpperCase())) {
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
  return joined(values.map(iiifValue));
}

/** An Image API URL for the whole image, fitted in a `size` × `size` box. */
export const infoJsonUrl = (service) => (service ? `${service.replace(/\/+$/, "")}/info.json` : null);
