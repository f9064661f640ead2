// The items a combined search likes and unlikes (?like=, ?unlike=), shown under the
// search box as chips: a thumbnail, a label that opens the item's panel, and × to take
// it out of the search, which searches again. The chips know an item by the answers the
// viewer has seen (`remember`): an item not met yet (a shared link) shows its id until
// the search answers with its summary.

import { cropOf, imageFrame } from "./cards.js";
import { bilingual, h } from "./dom.js";

/** Summaries by id: an ItemSummary, or {id, gone: true} for an id the collection lacks. */
const known = new Map();

/** Keep the summaries of items met in an answer (hits, records, examples, an item). */
export function remember(...lists) {
  for (const item of lists.flat()) if (item?.id) known.set(item.id, item);
}

/** Mark ids as no longer in the collection (the API's `unknown` list of /api/items). */
export function forget(ids) {
  for (const id of ids) known.set(id, { id, gone: true });
}

function chip(id, kind, links) {
  const item = known.get(id);
  const here = item && !item.gone;
  let label = id;
  if (item?.gone) label = "Image retirée de la collection";
  else if (item) label = item.label || "Sans titre";
  return h(
    "li",
    { class: ["chip", `chip-${kind}`, item?.gone ? "is-gone" : null].filter(Boolean).join(" "), "data-id": id },
    imageFrame(here ? [item.thumbnail_url] : [], { className: "thumb chip-thumb", crop: here ? cropOf(item) : null }),
    here
      ? h("a", { class: "chip-label", href: links.detail(id), "data-nav": true, "data-item": id, title: label }, label)
      : h("span", { class: "chip-label", title: id }, label),
    h(
      "a",
      {
        class: "chip-remove",
        href: links.without(id),
        "data-nav": true,
        "aria-label": `Retirer « ${label} » de la recherche · remove from the search`,
        title: "Retirer de la recherche · remove from the search",
      },
      "×",
    ),
  );
}

function group(ids, kind, french, english, links) {
  if (ids.length === 0) return null;
  const labelId = `chips-${kind}-label`;
  return h(
    "div",
    { class: `chips chips-${kind}`, role: "group", "aria-labelledby": labelId },
    h("span", { class: "chips-label", id: labelId }, bilingual(french, english)),
    h(
      "ul",
      { class: "chip-list" },
      ids.map((id) => chip(id, kind, links)),
    ),
  );
}

/**
 * The chips of a state's liked and unliked items, or null when it has none. `links` builds
 * the viewer's URLs: links.detail(id), and links.without(id), the search without that item.
 */
export function queryChips(state, links) {
  if (state.like.length === 0 && state.unlike.length === 0) return null;
  return [
    group(state.like, "like", "Comme", "like", links),
    group(state.unlike, "unlike", "Pas comme", "unlike", links),
  ];
}
