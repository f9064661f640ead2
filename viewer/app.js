// Regard's viewer: the entry point. It reads the state from the URL, fetches what
// the state needs, and renders the header stats, the results or the map (map.js) and the
// detail panel. A picture chosen or dropped for a search by image stays here, in memory
// (see state.js).

import { api, isAbort } from "./api.js";
import { pictureBlock, referenceBlock, resultCard } from "./cards.js";
import { detailContent, detailLoading } from "./detail.js";
import { bilingual, formatCount, formatMs, h, replace } from "./dom.js";
import { errorNotice } from "./errors.js";
import { exportControls } from "./exports.js";
import { MapView } from "./map.js";
import { forget, queryChips, remember } from "./query-chips.js";
import { recordsContent, recordsCount } from "./records.js";
import { parseRegion } from "./region.js";
import { DEFAULT_K, K_STEP, MAX_EXAMPLES, readState, resultsKey, toUrl, viewOf } from "./state.js";

const $ = (selector) => document.querySelector(selector);

const ui = {
  form: $("#search"),
  input: $("#q"),
  chips: $("#query-chips"),
  pictureButton: $("#picture-button"),
  pictureInput: $("#picture-input"),
  dropHint: $("#drop-hint"),
  stats: $("#stats"),
  reference: $("#reference"),
  heading: $("#results-heading"),
  status: $("#status"),
  notice: $("#notice"),
  records: $("#records"),
  visualHeading: $("#visual-heading"),
  grid: $("#grid"),
  more: $("#more"),
  exports: $("#exports"),
  detail: $("#detail"),
  detailBody: $("#detail-body"),
  results: $("#results-view"),
  mapLink: $("#map-link"),
};

// ---- navigation ---------------------------------------------------------------------

/**
 * The search an item can join as an example: the search shown, or the "more like this" of
 * a whole item, which becomes a search that likes that item; null elsewhere (a picture's
 * or a part's neighbours, the map).
 */
function searchToRefine(state) {
  if (state.map) return null;
  const view = viewOf(state);
  if (view === "search") return { q: state.q, like: state.like, unlike: state.unlike };
  if (view === "similar" && !state.region) return { q: null, like: [state.similar], unlike: [] };
  return null;
}

/** The URL of the search shown with `id` added to its `kind` ("like" or "unlike"); null
 * when there is no such search, when it has the item already, or has all it may have. */
function withExample(kind, id) {
  const search = searchToRefine(readState());
  if (!search || search.like.includes(id) || search.unlike.includes(id)) return null;
  if (search.like.length + search.unlike.length >= MAX_EXAMPLES) return null;
  return toUrl({ ...search, [kind]: [...search[kind], id] });
}

/** URLs of the viewer's own views, keeping the current view under a detail panel. */
const links = {
  detail: (id) => toUrl({ ...readState(), item: id }),
  similar: (id, region = null) => toUrl({ similar: id, region }),
  like: (id) => withExample("like", id),
  unlike: (id) => withExample("unlike", id),
  /** The search shown without one of its examples (a chip's ×). */
  without: (id) => {
    const state = readState();
    const others = (ids) => ids.filter((each) => each !== id);
    return toUrl({ ...state, item: null, k: DEFAULT_K, like: others(state.like), unlike: others(state.unlike) });
  },
};

function navigate(url, { replace: replaceEntry = false, focusResults = false, focusCard = null } = {}) {
  const target = new URL(url, window.location.href);
  const fromPanel = new URLSearchParams(target.search).has("item");
  // The same URL again (Enter pressed twice) adds no step to the history.
  if (replaceEntry || target.href === window.location.href) {
    window.history.replaceState({ panel: fromPanel }, "", target);
  } else {
    window.history.pushState({ panel: fromPanel }, "", target);
  }
  render({ focusResults, focusCard });
}

// Links marked data-nav change the view without reloading the page; a click with a
// modifier key keeps its usual meaning (a new tab, a new window).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  const opensPanel = link.hasAttribute("data-item");
  navigate(link.getAttribute("href"), { focusResults: !opensPanel });
});

window.addEventListener("popstate", () => render());

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  // An empty query is sent too: the service's message says what to do. Submitting
  // the same query again searches again (after an error, say). The items liked and
  // unliked (the chips under the box) stay in the search.
  shownKey = null;
  const state = readState();
  const search = viewOf(state) === "search" ? state : { like: [], unlike: [] };
  navigate(toUrl({ q: ui.input.value.trim(), like: search.like, unlike: search.unlike }));
});

// Other forms marked data-nav (the detail panel's "Plus comme ceci, avec…") are searches
// too: their fields are the URL's parameters.
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-nav]");
  if (!form || event.defaultPrevented) return;
  event.preventDefault();
  const state = readState(`?${new URLSearchParams(new FormData(form))}`);
  shownKey = null;
  navigate(toUrl({ ...state, q: state.q?.trim() ?? null }), { focusResults: true });
});

// ---- search by image ----------------------------------------------------------------

// The pictures chosen in this page, by the id that ?picture= names them with. A File
// cannot go in a URL: a reloaded or shared URL finds none and asks for it again. Each
// id holds the page's start, so that an entry left in the history from before a reload
// never names another picture.
const pictures = new Map();
const pageMark = Date.now().toString(36);

function searchByPicture(file) {
  const id = `${pageMark}-${pictures.size + 1}`;
  pictures.set(id, file);
  navigate(toUrl({ picture: id }), { focusResults: true });
}

ui.pictureButton.addEventListener("click", () => ui.pictureInput.click());
// "Choose another picture" in the results, and in the notice of a picture forgotten.
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-choose-picture]")) ui.pictureInput.click();
});
ui.pictureInput.addEventListener("change", () => {
  const [file] = ui.pictureInput.files;
  // Emptied, so that choosing the same file again searches again.
  ui.pictureInput.value = "";
  if (file) searchByPicture(file);
});

// A file dropped anywhere on the page searches too; a hint shows while one is dragged.
const carriesFiles = (event) => event.dataTransfer?.types.includes("Files");
let dragDepth = 0;
const showDropHint = (shown) => {
  ui.dropHint.hidden = !shown;
  if (!shown) dragDepth = 0;
};
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  showDropHint(true);
});
document.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault(); // allows the drop: the browser would open the file instead
  event.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth -= 1;
  if (dragDepth <= 0) showDropHint(false);
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  showDropHint(false);
  const [file] = event.dataTransfer.files;
  if (file) searchByPicture(file);
});

// The small copy of the picture shown above its results: one object URL at a time.
let shownPicture = null; // {id, url}

function pictureUrl(id, file) {
  if (shownPicture?.id !== id) {
    releasePicture();
    shownPicture = { id, url: URL.createObjectURL(file) };
  }
  return shownPicture.url;
}

function releasePicture() {
  if (shownPicture) URL.revokeObjectURL(shownPicture.url);
  shownPicture = null;
}

// ---- more results -------------------------------------------------------------------

// The most results one request may ask for: the service says it with every answer.
let maxK = null;

ui.more.addEventListener("click", () => {
  const state = readState();
  const k = Math.min(state.k + K_STEP, maxK ?? state.k + K_STEP);
  // Keyboard and screen-reader users go on from the first new result.
  const firstNew = ui.grid.querySelectorAll(".card").length + 1;
  navigate(toUrl({ ...state, item: null, k }), { replace: true, focusCard: firstNew });
});

// ---- exporting what is shown ------------------------------------------------------------

// The images on screen and their name, for "Exporter ces images" (exports.js).
let shownIds = [];
let exportLabel = null;
replace(
  ui.exports,
  exportControls({ ids: () => shownIds, label: () => exportLabel, what: "ces images" }),
);

// "/" puts the cursor in the search box, as on many sites.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable], dialog[open]")) return;
  event.preventDefault();
  ui.input.focus();
  ui.input.select();
});

// ---- rendering ----------------------------------------------------------------------

/** The chips of the items the search likes and unlikes, under the search box. */
function showChips(state = readState()) {
  const chips = viewOf(state) === "search" ? queryChips(state, links) : null;
  replace(ui.chips, chips);
  ui.chips.hidden = chips === null;
}

let shownKey = null;
let resultsRequest = null;

// The map of the collection, made when it is first opened.
let mapView = null;

function render({ focusResults = false, focusCard = null } = {}) {
  const state = readState();
  // The box holds the query shown; a "more like this" view has none.
  ui.input.value = state.q ?? "";
  showChips(state);
  // The map opens over the view shown, which closing it shows again.
  ui.mapLink.href = toUrl({ ...state, item: null, map: true, cluster: null, view: null });
  if (state.map) {
    ui.mapLink.setAttribute("aria-current", "page");
    ui.results.hidden = true;
    mapView ??= new MapView(document.querySelector("#map-view"), { navigate, links });
    mapView.show(state, { focus: focusResults });
  } else {
    ui.mapLink.removeAttribute("aria-current");
    const leavingMap = ui.results.hidden;
    mapView?.hide();
    ui.results.hidden = false;
    const key = resultsKey(state);
    if (key !== shownKey) {
      shownKey = key;
      loadResults(state, { focusResults, focusCard });
    } else if (leavingMap) {
      setTitle(shownTitle);
      if (focusResults) ui.heading.focus({ preventScroll: true });
    }
  }
  syncDetail(state.item);
}

function setBusy(busy, message) {
  document.body.classList.toggle("is-loading", busy);
  ui.grid.setAttribute("aria-busy", String(busy));
  ui.status.classList.toggle("is-busy", busy);
  if (message !== undefined) replace(ui.status, message);
}

// The title of the results shown, given back to the page when the map closes.
let shownTitle = null;

function setTitle(text) {
  shownTitle = text;
  // Results that arrive while the map is open keep their title for when it closes.
  if (!ui.results.hidden) document.title = text ? `${text} — Regard` : "Regard";
}

async function loadResults(state, { focusResults, focusCard }) {
  resultsRequest?.abort();
  const request = new AbortController();
  resultsRequest = request;
  const view = viewOf(state);
  replace(ui.notice);

  if (view === "home") {
    showHome();
    return;
  }
  const picture = view === "picture" ? pictures.get(state.picture) : null;
  if (view === "picture" && !picture) {
    showPictureForgotten();
    return;
  }

  setBusy(true, bilingual(view === "search" ? "Recherche…" : "Recherche des images semblables…", "searching"));
  const options = { signal: request.signal };
  try {
    const response = await {
      search: () => api.search(state.q, state.k, state, options),
      similar: () => api.similar(state.similar, state.k, state.region, options),
      picture: () => api.searchImage(picture, state.k, options),
    }[view]();
    if (request.signal.aborted) return;
    showResults(view, state, response);
    // The service answers again after an outage: so may its figures.
    if (ui.stats.classList.contains("is-unavailable")) loadStats();
  } catch (error) {
    if (isAbort(error) || request.signal.aborted) return;
    showError(view, state, error);
  } finally {
    if (resultsRequest === request) setBusy(false);
  }
  if (focusResults) {
    ui.heading.focus({ preventScroll: true });
    window.scrollTo({ top: 0 });
  } else if (focusCard) {
    ui.grid.querySelectorAll(".card")[focusCard - 1]?.querySelector("a")?.focus();
  }
}

/** The reference area, empty and hidden. */
function hideReference() {
  ui.reference.hidden = true;
  replace(ui.reference);
  releasePicture();
}

/** The catalogue records found by a search's words, above the images found by the model
 * ("Par l’image"); hidden without `records` (no words, or not a search). */
function showRecords(records) {
  replace(ui.records, records ? recordsContent(records, links) : null);
  ui.records.hidden = !records;
  ui.visualHeading.hidden = !(records?.total > 0);
}

/** A search's heading and title: its words, or the items it is like when it has none. */
function searchHeading(response) {
  if (response.query) return [response.query, `Résultats pour « ${response.query} »`];
  const like = response.like ?? [];
  if (like.length === 1) {
    const label = like[0].label || like[0].id;
    return [`Comme ${label}`, `Images comme « ${label} »`];
  }
  return ["Comme les images choisies", "Images comme celles choisies"];
}

function showHome() {
  setTitle(null);
  hideReference();
  showRecords(null);
  replace(ui.heading, bilingual("Explorer la collection", "Explore the collection"));
  replace(
    ui.status,
    bilingual(
      "Cherchez par une description libre ; ouvrez une image pour sa fiche, ou « Similaires » pour ses voisines.",
      "Search with free words; open an image for its details, or “more like this”.",
    ),
  );
  replace(ui.grid);
  ui.more.hidden = true;
  ui.exports.hidden = true;
}

const pictureHeading = () => bilingual("Images semblables à votre image", "images like your picture");

/** A search by image whose picture this page no longer holds (reloaded, or shared). */
function showPictureForgotten() {
  setTitle("Images semblables à votre image");
  hideReference();
  showRecords(null);
  replace(ui.heading, pictureHeading());
  replace(ui.status);
  replace(ui.grid);
  ui.more.hidden = true;
  ui.exports.hidden = true;
  replace(
    ui.notice,
    h(
      "div",
      { class: "notice notice-empty notice-picture" },
      h("p", { class: "notice-title" }, bilingual("Image à choisir de nouveau", "choose the picture again")),
      h(
        "p",
        { class: "notice-message" },
        bilingual(
          "Une image choisie n’est gardée que par la page où elle l’a été : après un rechargement ou dans un lien partagé, choisissez-la de nouveau.",
          "A picture is kept only by the page it was chosen in: after a reload or in a shared link, choose it again.",
        ),
      ),
      h(
        "p",
        {},
        h("button", { type: "button", "data-choose-picture": true }, bilingual("Choisir une image", "choose a picture")),
      ),
    ),
  );
}

function showResults(view, state, response) {
  const { results } = response;
  maxK = response.max_k;
  if (view === "similar") {
    const label = response.item.label || response.item.id;
    // The part searched, as the service read it (a link may give it in pixels).
    const part = parseRegion(response.region ?? state.region);
    exportLabel = part ? `Semblables à une partie de ${label}` : `Semblables à ${label}`;
    setTitle(part ? `Similaires à une partie de ${label}` : `Similaires à ${label}`);
    releasePicture();
    replace(ui.reference, referenceBlock(response.item, links, part));
    ui.reference.hidden = false;
    replace(
      ui.heading,
      part
        ? bilingual(`Images semblables à une partie de « ${label} »`, "more like this part")
        : bilingual(`Images semblables à « ${label} »`, "more like this"),
    );
  } else if (view === "picture") {
    const file = pictures.get(state.picture);
    exportLabel = "Semblables à votre image";
    setTitle("Images semblables à votre image");
    replace(
      ui.reference,
      pictureBlock({ url: pictureUrl(state.picture, file), name: file.name, size: response.picture }),
    );
    ui.reference.hidden = false;
    replace(ui.heading, pictureHeading());
  } else {
    const [title, heading] = searchHeading(response);
    exportLabel = response.query ? `Recherche « ${response.query} »` : title;
    setTitle(title);
    hideReference();
    replace(ui.heading, bilingual(heading, "results"));
    remember(response.like ?? [], response.unlike ?? [], response.records?.results ?? []);
    showChips(state);
  }
  // Chips show the items met here when one becomes an example.
  remember(results, response.item ?? []);
  showRecords(view === "search" ? (response.records ?? null) : null);

  if (results.length === 0) {
    replace(ui.status);
    replace(
      ui.notice,
      h(
        "div",
        { class: "notice notice-empty" },
        h("p", { class: "notice-title" }, bilingual("Aucun résultat", "no results")),
        h(
          "p",
          { class: "notice-message" },
          emptyMessage(view, state),
        ),
      ),
    );
  } else {
    const count = results.length === 1 ? "1 image" : `${formatCount(results.length)} images`;
    // With records above them, the count says which is which.
    const records = response.records?.total > 0 ? `${recordsCount(response.records)} dans les notices · ` : "";
    replace(
      ui.status,
      `${records}${count}${records ? " par l’image" : ""}, les plus proches d’abord (${formatMs(response.took_ms)})`,
      " ",
      h("span", { class: "en", lang: "en" }, "closest first"),
    );
  }
  replace(
    ui.grid,
    results.map((hit, i) => resultCard(hit, i + 1, links)),
  );
  // The service has no offset: more results means asking for a larger k.
  ui.more.hidden = !(results.length >= state.k && state.k < maxK);
  // What is shown, as it is shown: the catalogue's matches, then the pictures' hits.
  shownIds = [...new Set([...(response.records?.results ?? []), ...results].map((item) => item.id))];
  ui.exports.hidden = shownIds.length === 0;
}

function emptyMessage(view, state) {
  if (view === "similar") return bilingual("Cette image n’a pas encore de voisines.", "This image has no neighbours yet.");
  if (view === "search" && state.like.length + state.unlike.length > 0) {
    return bilingual(
      "La collection n’a pas d’autres images que celles de la recherche.",
      "The collection holds no other images than those of the search.",
    );
  }
  return bilingual("La collection ne contient encore aucune image indexée.", "The collection holds no indexed image yet.");
}

// The results on screen stay there when a request fails: a curator keeps what they were
// looking at. Their heading and reference still name them; the error goes above.
const keptNote = () =>
  h(
    "p",
    { class: "notice-kept" },
    bilingual(
      "Les images ci-dessous sont celles de la vue précédente.",
      "the pictures below are those of the previous view",
    ),
  );

function showNothingFor(view, state) {
  hideReference();
  showRecords(null);
  ui.exports.hidden = true;
  const query = state.q?.trim();
  let heading = bilingual("Résultats", "results");
  if (view === "search" && query) heading = bilingual(`Résultats pour « ${query} »`, "results");
  if (view === "picture") heading = pictureHeading();
  replace(ui.heading, heading);
  replace(ui.status);
}

function showError(view, state, error) {
  setTitle("Erreur");
  const kept = ui.grid.querySelector(".card") !== null;
  if (!kept) showNothingFor(view, state);
  // "More" would ask again for what just failed, not for more of what is shown.
  ui.more.hidden = true;
  // Too many results asked for (a link from a server with a higher limit): offer the first ones.
  const action =
    error.code === "k_out_of_range" && state.k !== DEFAULT_K
      ? h(
          "p",
          {},
          h(
            "a",
            { href: toUrl({ ...state, item: null, k: DEFAULT_K }), "data-nav": true },
            `Afficher les ${DEFAULT_K} premiers résultats`,
          ),
        )
      : null;
  const examples = view === "search" ? [...state.like, ...state.unlike] : [];
  replace(ui.notice, errorNotice(error, { action, note: kept ? keptNote() : null, examples: examples.length }));
  if (error.code === "unknown_item" && examples.length) markGone(examples, state);
}

/** Which of a search's examples the collection no longer has: their chips say so. */
async function markGone(ids, state) {
  try {
    const answer = await api.summaries(ids);
    remember(answer.items);
    forget(answer.unknown);
  } catch {
    return; // the notice says what went wrong already
  }
  if (resultsKey(readState()) === resultsKey(state)) showChips();
}

// ---- the detail panel ---------------------------------------------------------------

let detailShown = null;
let detailRequest = null;

async function syncDetail(itemId) {
  if (!itemId) {
    detailShown = null;
    detailRequest?.abort();
    if (ui.detail.open) ui.detail.close();
    return;
  }
  if (!ui.detail.open) ui.detail.showModal();
  if (itemId === detailShown) return;
  detailShown = itemId;

  detailRequest?.abort();
  const request = new AbortController();
  detailRequest = request;
  replace(ui.detailBody, detailLoading());
  ui.detail.setAttribute("aria-busy", "true");
  try {
    const item = await api.item(itemId, { signal: request.signal });
    if (request.signal.aborted) return;
    remember(item);
    replace(ui.detailBody, detailContent(item, links));
  } catch (error) {
    if (isAbort(error) || request.signal.aborted) return;
    replace(
      ui.detailBody,
      h("h2", { id: "detail-title", class: "detail-title" }, bilingual("Fiche indisponible", "details unavailable")),
      errorNotice(error),
    );
  } finally {
    if (detailRequest === request) ui.detail.removeAttribute("aria-busy");
  }
  ui.detail.querySelector(".detail-close")?.focus();
}

ui.detail.addEventListener("click", (event) => {
  // A click on the backdrop (outside the panel's box) or on the close button closes it.
  if (event.target.closest("[data-close]")) {
    ui.detail.close();
    return;
  }
  if (event.target === ui.detail) {
    const box = ui.detail.getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right &&
      event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) ui.detail.close();
  }
});

ui.detail.addEventListener("close", () => {
  // Closed by Escape, the button or the backdrop: drop ?item= from the URL. When the
  // panel was opened inside the viewer, going back restores the page as it was.
  const state = readState();
  if (!state.item) return;
  detailShown = null;
  if (window.history.state?.panel) window.history.back();
  else window.history.replaceState({ panel: false }, "", toUrl({ ...state, item: null }));
});

// ---- the header ---------------------------------------------------------------------

async function loadStats() {
  try {
    const stats = await api.stats();
    const parts = [
      h("span", { class: "stat" }, h("strong", {}, formatCount(stats.items)), " images"),
      stats.manifests
        ? h("span", { class: "stat" }, formatCount(stats.manifests), stats.manifests > 1 ? " manifestes" : " manifeste")
        : null,
      h(
        "span",
        { class: "stat", title: stats.model ? [stats.model.name, stats.model.pretrained].filter(Boolean).join(" · ") : null },
        "modèle ",
        h("span", { class: "model-name" }, stats.model ? stats.model.name : "aucun"),
      ),
      stats.pending ? h("span", { class: "stat" }, `${formatCount(stats.pending)} en attente`) : null,
      stats.failed ? h("span", { class: "stat stat-warning" }, `${formatCount(stats.failed)} en échec`) : null,
    ].filter(Boolean);
    ui.stats.classList.remove("is-unavailable");
    ui.stats.removeAttribute("title");
    replace(ui.stats, parts.flatMap((part, i) => (i ? [h("span", { class: "sep", "aria-hidden": "true" }, " · "), part] : [part])));
  } catch (error) {
    ui.stats.classList.add("is-unavailable");
    replace(ui.stats, "Statistiques indisponibles", " ", h("span", { class: "en", lang: "en" }, "stats unavailable"));
    ui.stats.title = error.message;
  }
}

// ---- start --------------------------------------------------------------------------

window.history.replaceState({ panel: false }, "", window.location.href);
loadStats();
render();
if (viewOf(readState()) === "home" && !readState().map) ui.input.focus();
