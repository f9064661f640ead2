// What the catalogue says: the items whose record (labels, summary, metadata) holds every
// word of a text search, as the API's `records` gives them. They show above the images
// found by looking at the pictures, under a heading of their own, so that a curator
// knows which came from the catalogue and which from the model.

import { resultCard } from "./cards.js";
import { formatCount, h } from "./dom.js";

/** How many record cards show before "Tout voir": about one row (style.css: .is-folded). */
export const RECORDS_ROW = 8;

/** "12 images", "1 image", "plus de 10 000 images" (`more`: counting stopped there). */
export function recordsCount({ total, more }) {
  const count = total === 1 ? "1 image" : `${formatCount(total)} images`;
  return more ? `plus de ${count}` : count;
}

/** « a », « b » et « c » (or `ou`, for alternatives) */
function wordList(words, conjunction = "et") {
  const quoted = words.map((word) => `« ${word} »`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(", ")} ${conjunction} ${quoted.at(-1)}` : (quoted[0] ?? "");
}

/** The other labels the store's thesaurus gave for words of the query, as the API's
 * `also` lists them: « armchair » : aussi « fauteuil ». */
function thesaurusNote(also) {
  const bridges = Object.entries(also ?? {}).filter(([, labels]) => labels.length);
  if (bridges.length === 0) return "";
  const each = bridges.map(([word, labels]) => `« ${word} » : aussi ${wordList(labels, "ou")}`);
  return `, ou, d’après le thésaurus, ${each.join(" ; ")}`;
}

/** The line under the heading: which words, and which of the records are shown. */
function recordsNote(records) {
  const words = records.words.length > 1 ? `les mots ${wordList(records.words)}` : `le mot ${wordList(records.words)}`;
  const shown = records.results.length;
  let which = "";
  if (records.more) which = ` En voici ${formatCount(shown)}, dans l’ordre de la collection.`;
  else if (shown < records.total) which = ` En voici ${formatCount(shown)}, les mieux placées.`;
  return `Leur notice contient ${words} (accents et majuscules ignorés)${thesaurusNote(records.also)}.${which}`;
}

/**
 * The records section's content for the API's `records` (not null): a heading with the
 * count, a line on the words, and the cards, about one row of them until "Tout voir"; or,
 * when no record holds the words, one discreet line. `links` builds the viewer's URLs, as
 * for result cards.
 */
export function recordsContent(records, links) {
  if (records.total === 0 || records.results.length === 0) {
    return h(
      "p",
      { class: "records-none" },
      `Aucune notice ne contient ${records.words.length > 1 ? "tous ces mots" : "ce mot"} : `,
      wordList(records.words),
      ".",
    );
  }
  const gridId = "records-grid";
  const folded = records.results.length > RECORDS_ROW;
  const grid = h(
    "ul",
    { id: gridId, class: ["grid records-grid", folded ? "is-folded" : null].filter(Boolean).join(" "), "aria-labelledby": "records-heading" },
    records.results.map((item, i) => resultCard(item, i + 1, links, { idPrefix: "record", titleTag: "h3", compact: true })),
  );
  const all = `Tout voir (${formatCount(records.results.length)})`;
  const toggle = folded
    ? h(
        "button",
        {
          type: "button",
          class: "button-secondary records-toggle",
          "aria-controls": gridId,
          "aria-expanded": "false",
          onclick: (event) => {
            const button = event.currentTarget;
            const open = grid.classList.toggle("is-folded") === false;
            button.setAttribute("aria-expanded", String(open));
            button.firstChild.textContent = open ? "Replier" : all;
            button.lastChild.textContent = open ? "fold" : "see all";
          },
        },
        all,
        " ",
        h("span", { class: "en", lang: "en" }, "see all"),
      )
    : null;
  return [
    h(
      "div",
      { class: "records-head" },
      h(
        "h2",
        { id: "records-heading", class: "results-subheading" },
        `Dans les notices : ${recordsCount(records)}`,
        " ",
        h("span", { class: "en", lang: "en" }, "in the catalogue records"),
      ),
      toggle,
    ),
    h("p", { class: "records-note" }, recordsNote(records)),
    grid,
  ];
}
