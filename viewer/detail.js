// The detail panel: a larger image, the item's labels and metadata, the manifest's
// summary, rights and record at the museum, the draft subject terms the model suggests
// for it (terms.js), IIIF links, "more like this", and "more like this part" (region.js's
// picker over the picture).

import { bilingual, externalLink, formatCount, h, joined } from "./dom.js";
import { cropOf, imageFrame } from "./cards.js";
import { openRegionPicker } from "./region.js";
import { termsSection } from "./terms.js";
import {
  iiifValue,
  infoJsonUrl,
  langAttribute,
  languageEntries,
  languageMapNodes,
  pickText,
  pickValues,
  webUrl,
} from "./iiif.js";


const LANGUAGE_NAMES = { fr: "français", en: "anglais · English", none: "sans langue" };

function field(term, ...description) {
  return [h("dt", {}, term), h("dd", {}, description)];
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
  // A URL is a link; markup (in a store indexed before the URL was taken out of it) is
  // sanitised; anything else is text.
  if (webUrl(rights) && !/\s/.test(rights)) return externalLink(rights, rights, { class: "external rights-link" });
  return iiifValue(rights); // a text node for plain text
}

/** The object's own record at its publisher ("homepage", v2 "related"), in a new tab. */
function recordLinks(item) {
  const links = (item.homepage ?? []).filter((link) => webUrl(link.url));
  if (links.length === 0) return null;
  return h(
    "ul",
    { class: "link-list record-links" },
    links.map((link) => {
      const { lang } = pickValues(link.label);
      const label = pickText(link.label);
      const languages = (link.language ?? []).filter((tag) => langAttribute(tag));
      return h(
        "li",
        {},
        externalLink(link.url, bilingual("Notice du musée", "record at the museum"), {
          class: "external record-link",
          hreflang: languages.length === 1 ? languages[0] : null,
        }),
        languages.length ? ` (${languages.join(", ")})` : null,
        label ? [" — ", h("span", { class: "record-link-label", lang: langAttribute(lang) }, label)] : null,
      );
    }),
  );
}

/** Who publishes the object: its name, linked to its home page when it has one. */
function providerNodes(providers) {
  return (providers ?? []).map((provider) => {
    const { lang, values } = pickValues(provider.label);
    const home = (provider.homepage ?? []).map((page) => webUrl(page.url)).find(Boolean);
    const name = values[0] ?? home ?? "";
    const attributes = { lang: langAttribute(lang) };
    return home
      ? externalLink(home, name, { ...attributes, class: "external provider-link" })
      : h("span", attributes, name);
  });
}

function iiifLinkList(item) {
  const links = [
    [item.manifest_id, "Manifeste IIIF", "IIIF manifest", "iiif-manifest"],
    [item.canvas_id, "Canevas", "canvas", "iiif-canvas"],
    [infoJsonUrl(item.image_service), "Service d’images (info.json)", "Image API service", "iiif-service"],
    // Not the master file, which can be hundreds of megapixels and stall the browser.
    [item.large_url ?? item.image_url, "Image", "large picture", "iiif-image"],
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

/** What the manifest says of the object: its metadata, publisher, rights and attribution. */
function recordFacts(item) {
  const facts = metadataFields(item.metadata);
  const providers = providerNodes(item.provider);
  if (providers.length) facts.push(...field(bilingual("Fournisseur", "provider"), joined(providers)));
  const rights = [].concat(item.rights ?? []).filter(Boolean);
  if (rights.length) {
    facts.push(...field(bilingual("Droits", "rights"), h("span", { class: "rights" }, joined(rights.map(rightsNode)))));
  }
  if (item.required_statement) {
    // The publisher's own heading ("Détenu par", "Held By") when it gives one.
    const label = item.required_statement_label;
    const term = pickText(label) || bilingual("Mention obligatoire", "attribution");
    const { lang } = pickValues(item.required_statement);
    facts.push(
      h("dt", { class: "required-label", lang: langAttribute(pickValues(label).lang) }, term),
      h("dd", { class: "required-statement", lang: langAttribute(lang) }, languageMapNodes(item.required_statement)),
    );
  }
  return facts;
}

/** The manifest's summary (v2 "description"), in the preferred language. */
function summaryNode(summary) {
  const { lang, values } = pickValues(summary);
  if (values.length === 0) return null;
  return h("div", { class: "detail-summary", lang: langAttribute(lang) }, languageMapNodes(summary));
}

/** "Moins comme ceci": the search under the panel, away from this item; null where the
 * view is no search it can join (links.unlike). */
function unlikeLink(item, links) {
  const href = links.unlike?.(item.id);
  return href
    ? h(
        "a",
        { class: "button button-secondary unlike-link", href, "data-nav": true },
        bilingual("Moins comme ceci", "less like this"),
      )
    : null;
}

function section(title, facts, ...lead) {
  const before = lead.filter(Boolean);
  if (facts.length === 0 && before.length === 0) return null;
  return [
    h("h3", { class: "detail-section" }, title),
    before,
    facts.length ? h("dl", { class: "facts" }, facts) : null,
  ];
}

/**
 * "Plus comme ceci, avec…": a search for the images like this one and like the words
 * typed (?like=ID&q=…); without words, like this one alone. A form marked data-nav, which
 * app.js turns into a URL of the viewer's.
 */
function refineForm(item) {
  return h(
    "form",
    { class: "refine", action: "./", method: "get", role: "search", "data-nav": true },
    h("input", { type: "hidden", name: "like", value: item.id }),
    h(
      "label",
      { class: "refine-label", for: "refine-q" },
      bilingual("Plus comme ceci, avec…", "more like this, with…"),
    ),
    h(
      "span",
      { class: "refine-row" },
      h("input", {
        id: "refine-q",
        name: "q",
        type: "search",
        autocomplete: "off",
        spellcheck: "false",
        enterkeyhint: "search",
        // Words to add, never to take away: the model reads "sans pied" as feet.
        placeholder: "« en fer forgé », « en bleu »…",
      }),
      h("button", { type: "submit", class: "button-secondary" }, bilingual("Chercher", "search")),
    ),
  );
}

/** The panel's content for a loaded item. `links` builds the viewer's own URLs. */
export function detailContent(item, links) {
  const title = pickText(item.labels, item.label) || "Sans titre";
  const { lang: titleLang } = pickValues(item.labels);
  const manifestTitle = pickText(item.manifest_labels, item.manifest_label);

  // The server builds the preview within each Image API service's limits.
  const preview = imageFrame([item.preview_url, item.thumbnail_url, item.large_url], {
    alt: title,
    lazy: false,
    className: "detail-image",
    width: item.width,
    height: item.height,
    crop: cropOf(item),
    boxed: true, // the part picker works in percentages of the picture
  });
  const figure = h("figure", { class: "detail-figure", id: "detail-figure" }, preview);
  const partButton = h(
    "button",
    {
      type: "button",
      class: "button-secondary part-search",
      "aria-controls": "detail-figure",
      "aria-expanded": "false",
      onclick: () => {
        const opened = openRegionPicker(figure, {
          hrefOf: (part) => links.similar(item.id, part),
          onClose: () => {
            partButton.setAttribute("aria-expanded", "false");
            partButton.focus();
          },
        });
        partButton.setAttribute("aria-expanded", String(opened));
      },
    },
    bilingual("Chercher une partie de cette image", "search a part of this image"),
  );

  return [
    figure,
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
        " ",
        partButton,
        unlikeLink(item, links),
      ),
      refineForm(item),
      section(bilingual("Image", "this picture"), imageFacts(item)),
      section(
        bilingual("Notice du manifeste", "manifest record"),
        recordFacts(item),
        summaryNode(item.summary),
        recordLinks(item),
      ),
      termsSection(item),
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
