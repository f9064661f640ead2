// The detail panel: a larger image, the item's labels and metadata, rights and
// IIIF links, and "more like this".

import { bilingual, externalLink, formatCount, h } from "./dom.js";
import { imageFrame } from "./cards.js";
import {
  infoJsonUrl,
  langAttribute,
  languageEntries,
  languageMapNodes,
  pickText,
  pickValues,
} from "./iiif.js";


const LANGUAGE_NAMES = { fr: "français", en: "anglais · English", none: "sans langue" };

function field(term, ...description) {
  return [h("dt", {}, term), h("dd", {}, description)];
}

function languageMapField(term, map) {
  const { lang } = pickValues(map);
  return field(term, h("span", { lang: langAttribute(lang) }, languageMapNodes(map)));
}

function otherLabels(item) {
  // The label in every language it has, when it has more than one.
  const entries = languageEntries(item.labels);
  if (entries.length < 2) return null;
  return h(
    "ul",
    { class: "detail-labels" },
    entries.map(([lang, values]) =>
      h(
        "li",
        {},
        h("span", { class: "lang-tag" }, LANGUAGE_NAMES[lang] ?? lang),
        " ",
        h("span", { lang: langAttribute(lang) }, values.join(" ; ")),
      ),
    ),
  );
}

function rightsNode(rights) {
  return /^https?:/i.test(rights) ? externalLink(rights, rights) : rights;
}

function iiifLinkList(item) {
  const links = [
    [item.manifest_id, "Manifeste IIIF", "IIIF manifest", "iiif-manifest"],
    [item.canvas_id, "Canevas", "canvas", "iiif-canvas"],
    [infoJsonUrl(item.image_service), "Service d’images (info.json)", "Image API service", "iiif-service"],
    [item.image_url, "Image", "image file", "iiif-image"],
  ].filter(([href]) => href);
  return h(
    "ul",
    { class: "link-list" },
    links.map(([href, french, english, className]) =>
      h("li", {}, externalLink(href, bilingual(french, english), { class: `external ${className}` })),
    ),
  );
}

function metadataFields(entries) {
  return (entries ?? []).flatMap((entry) => [
    h("dt", { lang: langAttribute(pickValues(entry.label).lang) }, pickText(entry.label, "—")),
    h("dd", { lang: langAttribute(pickValues(entry.value).lang) }, languageMapNodes(entry.value)),
  ]);
}

/** What is known of the image itself: the canvas's metadata, its size and place. */
function imageFacts(item) {
  const facts = metadataFields(item.canvas_metadata);
  if (item.width && item.height) {
    facts.push(
      ...field(bilingual("Dimensions", "size"), `${formatCount(item.width)} × ${formatCount(item.height)} px`),
    );
  }
  facts.push(...field(bilingual("Position", "canvas"), `canevas n° ${item.canvas_index + 1}`));
  if (item.state && item.state !== "indexed") {
    facts.push(
      ...field(
        bilingual("État", "state"),
        item.failure_reason ? `${item.state} : ${item.failure_reason}` : item.state,
      ),
    );
  }
  return facts;
}

/** What the manifest says of the object: its metadata, rights and attribution. */
function recordFacts(item) {
  const facts = metadataFields(item.metadata);
  if (item.rights) facts.push(...field(bilingual("Droits", "rights"), rightsNode(item.rights)));
  if (item.required_statement) {
    facts.push(...languageMapField(bilingual("Mention obligatoire", "attribution"), item.required_statement));
  }
  return facts;
}

function section(title, facts) {
  if (facts.length === 0) return null;
  return [h("h3", { class: "detail-section" }, title), h("dl", { class: "facts" }, facts)];
}

/** The panel's content for a loaded item. `links` builds the viewer's own URLs. */
export function detailContent(item, links) {
  const title = pickText(item.labels, item.label) || "Sans titre";
  const { lang: titleLang } = pickValues(item.labels);
  const manifestTitle = pickText(item.manifest_labels, item.manifest_label);

  // The server builds the preview within each Image API service's limits.
  const preview = imageFrame([item.preview_url, item.thumbnail_url, item.image_url], {
    alt: title,
    lazy: false,
    className: "detail-image",
    width: item.width,
    height: item.height,
  });

  return [
    h("figure", { class: "detail-figure" }, preview),
    h(
      "div",
      { class: "detail-text" },
      h("h2", { id: "detail-title", class: "detail-title", lang: langAttribute(titleLang) }, title),
      manifestTitle && manifestTitle !== title
        ? h("p", { class: "detail-manifest" }, manifestTitle)
        : null,
      otherLabels(item),
      h(
        "p",
        { class: "detail-actions" },
        h(
          "a",
          { class: "button similar-link", href: links.similar(item.id), "data-nav": true },
          bilingual("Similaires", "more like this"),
        ),
      ),
      section(bilingual("Image", "this picture"), imageFacts(item)),
      section(bilingual("Notice du manifeste", "manifest record"), recordFacts(item)),
      h("h3", { class: "detail-section" }, bilingual("Liens IIIF", "IIIF links")),
      iiifLinkList(item),
    ),
  ];
}

export function detailLoading() {
  return [
    h("h2", { id: "detail-title", class: "detail-title visually-hidden" }, "Chargement"),
    h("p", { class: "status is-busy", role: "status" }, bilingual("Chargement…", "loading")),
  ];
}
