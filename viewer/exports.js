// Shown images taken elsewhere: the results of a search, or a lasso's selection on the
// map, exported as CSV (a spreadsheet) or as a IIIF manifest (Mirador, Universal Viewer),
// through POST /api/export/selection (api.js: downloadExport).

import { downloadExport } from "./api.js";
import { bilingual, formatCount, h, replace } from "./dom.js";
import { errorNotice } from "./errors.js";

/** What an export says of the images the collection no longer has. */
export function leftOutNote(skipped) {
  const images = skipped === 1 ? "image n’est plus" : "images ne sont plus";
  return `${formatCount(skipped)} ${images} dans la collection : l’export ne les contient pas.`;
}

/**
 * Two buttons, "CSV" and "IIIF (manifeste)", that export the images `ids()` gives, named
 * `label()`, with a line that says how it went. `what` says what is exported, for the
 * buttons' accessible names ("ces résultats").
 */
export function exportControls({ ids, label = () => null, what }) {
  const status = h("span", { class: "export-status", role: "status" });
  const run = async (format) => {
    replace(status, bilingual("Préparation de l’export…", "exporting"));
    try {
      const { skipped } = await downloadExport(ids(), format, label());
      replace(status, skipped > 0 ? leftOutNote(skipped) : null);
    } catch (error) {
      replace(status, errorNotice(error));
    }
  };
  const button = (format, text) =>
    h(
      "button",
      { type: "button", class: "button-secondary", "data-export": format, onclick: () => run(format) },
      text,
      h("span", { class: "visually-hidden" }, ` : exporter ${what}`),
    );
  return h(
    "p",
    { class: "export-row" },
    h("span", { class: "export-label" }, "Exporter ", what, " : "),
    button("csv", "CSV"),
    " ",
    button("iiif", "IIIF (manifeste)"),
    " ",
    status,
  );
}
