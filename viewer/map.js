// The map of the collection (`regard map`, /api/map): every image a point where like
// lies near like, coloured by its cluster, the clusters named on the map and listed
// beside it. The points come a page at a time and each page is drawn as it arrives
// (map-gl.js: WebGL, else Canvas 2D); when few are in view, their pictures are drawn
// at their places. A cluster selected lists its items as the usual result cards, the
// map kept beside them; a point clicked opens the usual detail panel over the map.
//
// Its state is the URL's (state.js): ?map=1, &cluster=ID, &view=x,y,zoom. Moving the map
// rewrites the view in place; selecting a cluster, opening or closing the map are steps
// in the history.

import { MAX_SUMMARIES, api, isAbort } from "./api.js";
import { cropOf, imageFrame, resultCard } from "./cards.js";
import { bilingual, formatCount, h, replace } from "./dom.js";
import { errorNotice } from "./errors.js";
import { Camera, ZOOM_STEP, attachGestures } from "./map-camera.js";
import { clusterColour, createRenderer } from "./map-gl.js";
import { Lasso } from "./map-lasso.js";
import { readState, toUrl } from "./state.js";

/** Points asked for per request: the API's default page. */
const POINTS_PAGE = 50_000;
/** Pictures are drawn when at most this many points are in view (one /api/items request). */
export const PICTURES_MAX = Math.min(200, MAX_SUMMARIES);
/** A cluster's items listed when it is selected (the API gives at most 48). */
const CLUSTER_K = 24;
/** Item summaries kept in memory, for the pictures and the tooltips. */
const SUMMARY_CACHE = 5000;

const clamp = (value, low, high) => Math.min(Math.max(value, low), high);
const plural = (n, one, many) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** A cluster's name as the map shows it: French, else English, else "Groupe N". */
export function clusterName(cluster) {
  for (const lang of ["fr", "en"]) {
    if (cluster.names?.[lang]) return { text: cluster.names[lang], lang };
  }
  const [lang, text] = Object.entries(cluster.names ?? {}).find(([, value]) => value) ?? [];
  return text ? { text, lang } : { text: `Groupe ${cluster.id + 1}`, lang: null };
}

// ---- the points ---------------------------------------------------------------------------

/** The map's points as columns (typed arrays), filled a page at a time. */
class Points {
  constructor() {
    this.count = 0;
    this.total = 0;
    this.ids = [];
    this.xs = new Float32Array(0);
    this.ys = new Float32Array(0);
    this.clusters = new Int32Array(0);
    this.grid = null; // see `index`
  }

  /** Adds a page {total, ids, x, y, cluster}; answers the range of the new points. */
  add(page) {
    this.total = page.total;
    const start = this.count;
    const end = start + page.ids.length;
    if (end > this.xs.length) this.grow(Math.max(end, page.total));
    for (let i = 0; i < page.ids.length; i += 1) {
      this.ids[start + i] = page.ids[i];
      this.xs[start + i] = page.x[i];
      this.ys[start + i] = page.y[i];
      this.clusters[start + i] = page.cluster[i];
    }
    this.count = end;
    this.grid = null;
    return [start, end];
  }

  grow(size) {
    for (const name of ["xs", "ys", "clusters"]) {
      const bigger = new this[name].constructor(size);
      bigger.set(this[name].subarray(0, this.count));
      this[name] = bigger;
    }
  }

  /** A grid over 0..1 (about 8 points a cell), rebuilt after each page when needed:
   * {side, starts, order}, the points of cell c being order[starts[c] .. starts[c+1]). */
  index() {
    if (this.grid) return this.grid;
    const side = clamp(Math.ceil(Math.sqrt(this.count / 8)), 1, 512);
    const cells = new Int32Array(this.count);
    const starts = new Int32Array(side * side + 1);
    for (let i = 0; i < this.count; i += 1) {
      const c = clamp(Math.floor(this.ys[i] * side), 0, side - 1) * side + clamp(Math.floor(this.xs[i] * side), 0, side - 1);
      cells[i] = c;
      starts[c + 1] += 1;
    }
    for (let c = 0; c < side * side; c += 1) starts[c + 1] += starts[c];
    const next = starts.slice(0, side * side);
    const order = new Int32Array(this.count);
    for (let i = 0; i < this.count; i += 1) order[next[cells[i]]++] = i;
    this.grid = { side, starts, order };
    return this.grid;
  }

  /** The points inside {x0, y0, x1, y1}; null when there are more than `limit`. */
  within({ x0, y0, x1, y1 }, limit = Infinity) {
    const { side, starts, order } = this.index();
    const cell = (v) => clamp(Math.floor(v * side), 0, side - 1);
    const found = [];
    for (let cy = cell(y0); cy <= cell(y1); cy += 1) {
      for (let cx = cell(x0); cx <= cell(x1); cx += 1) {
        const c = cy * side + cx;
        for (let k = starts[c]; k < starts[c + 1]; k += 1) {
          const i = order[k];
          const x = this.xs[i];
          const y = this.ys[i];
          if (x < x0 || x > x1 || y < y0 || y > y1) continue;
          if (found.length >= limit) return null;
          found.push(i);
        }
      }
    }
    return found;
  }

  /** The point nearest (x, y) within `radius` map units, or -1. */
  nearest(x, y, radius) {
    let best = -1;
    let bestDistance = radius * radius;
    for (const i of this.within({ x0: x - radius, y0: y - radius, x1: x + radius, y1: y + radius })) {
      const distance = (this.xs[i] - x) ** 2 + (this.ys[i] - y) ** 2;
      // The later point is drawn over the earlier: it wins a tie.
      if (distance <= bestDistance) {
        best = i;
        bestDistance = distance;
      }
    }
    return best;
  }

  /** Where most of a cluster's points lie: the 5th to 95th percentiles across and down. */
  extentOf(cluster) {
    const xs = [];
    const ys = [];
    for (let i = 0; i < this.count; i += 1) {
      if (this.clusters[i] === cluster) {
        xs.push(this.xs[i]);
        ys.push(this.ys[i]);
      }
    }
    if (xs.length === 0) return null;
    const cut = (values) => {
      values.sort((a, b) => a - b);
      const at = (q) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
      return [at(0.05), at(0.95)];
    };
    const [x0, x1] = cut(xs);
    const [y0, y1] = cut(ys);
    return { x0, y0, x1, y1 };
  }
}

// ---- the view -----------------------------------------------------------------------------

/**
 * The map view in `root` (index.html's #map-view). `navigate(url, options)` is the
 * viewer's (app.js); `links.detail(id)` builds the URL of an item's detail panel.
 */
export class MapView {
  constructor(root, { navigate, links }) {
    this.root = root;
    this.navigate = navigate;
    this.links = links;
    const $ = (selector) => root.querySelector(selector);
    this.ui = {
      heading: $("#map-heading"),
      status: $("#map-status"),
      close: $("#map-close"),
      notice: $("#map-notice"),
      layout: $("#map-layout"),
      stage: $("#map-stage"),
      canvas: $("#map-canvas"),
      pictures: $("#map-pictures"),
      labels: $("#map-labels"),
      tooltip: $("#map-tooltip"),
      note: $("#map-machine-note"),
      list: $("#map-clusters"),
      cluster: $("#map-cluster"),
      lasso: $("#map-lasso"),
      selection: $("#map-selection"),
    };
    this.camera = new Camera();
    this.points = new Points();
    this.summary = null; // /api/map
    this.clusters = new Map(); // id → cluster
    this.labels = []; // {cluster, element, width, height}, largest cluster first
    this.selected = null; // the cluster id selected, as the URL says it
    this.userView = false; // the camera was moved (or set from the URL), not fitted
    this.started = false;
    this.loading = null; // the promise of the loading in progress
    this.failed = false;
    this.summaries = new Map(); // item id → summary, or null for an id the API no longer knows
    this.pictureRequest = null; // {controller, ids}
    this.pictureTimer = 0;
    this.shownPictures = new Map(); // id → element
    this.hovered = -1;
    this.tooltipTimer = 0;
    this.clusterRequest = null;
    this.frameRequested = false;
    this.viewTimer = 0;
    this.dpr = 1;
  }

  // ---- showing and hiding ----------------------------------------------------------------

  /** Shows the map as `state` says (map, cluster, view); `focus` moves the focus to what
   * changed (the map's heading when it opens, a cluster's when one is selected). */
  show(state, { focus = false } = {}) {
    const opening = this.root.hidden;
    this.root.hidden = false;
    document.title = "Carte de la collection — Regard";
    if (!this.started) this.start();
    this.measure();
    if (opening && this.failed) this.load();
    this.refreshLinks(state);

    const clusterChanged = state.cluster !== this.selected;
    const wanted = Camera.parse(state.view);
    if (wanted) {
      if (!this.camera.shows(wanted)) this.camera.set(wanted.x, wanted.y, wanted.zoom);
      this.userView = true;
    } else if (opening || clusterChanged) {
      this.userView = false;
      this.fit(state.cluster);
    }
    // Otherwise (a panel opened from a link made before the map moved) the map stays put.
    if (clusterChanged) this.select(state.cluster, { focus });
    if (opening && focus) this.ui.heading.focus({ preventScroll: false });
    this.requestDraw();
  }

  hide() {
    if (this.root.hidden) return;
    this.root.hidden = true;
    this.hideTooltip();
    this.pictureRequest?.controller.abort();
    this.pictureRequest = null;
    window.clearTimeout(this.viewTimer);
  }

  /** The first showing: the renderer, the gestures, the data. */
  start() {
    this.started = true;
    this.makeRenderer();
    const { stage } = this.ui;
    attachGestures(stage, this.camera, {
      changed: () => this.moved(),
      click: (sx, sy, event) => this.clicked(sx, sy, event),
      hover: (sx, sy, event) => this.hover(sx, sy, event),
      leave: () => this.hideTooltip(),
      whole: () => this.whole(),
    });
    this.root.querySelector("[data-zoom=in]").addEventListener("click", () => this.zoomBy(ZOOM_STEP));
    this.root.querySelector("[data-zoom=out]").addEventListener("click", () => this.zoomBy(1 / ZOOM_STEP));
    this.root.querySelector("[data-zoom=all]").addEventListener("click", () => this.whole());
    this.lasso = new Lasso(this, { toggle: this.ui.lasso, panel: this.ui.selection });
    new ResizeObserver(() => {
      this.measure();
      this.requestDraw();
    }).observe(stage);
    this.load();
  }

  /** WebGL when the browser has it; Canvas 2D on a fresh canvas when it has not, or
   * when the GPU drops the context (a driver reset, a GPU out of memory). */
  makeRenderer(canvasOnly = false) {
    let renderer = createRenderer(this.ui.canvas, { canvasOnly, onLost: () => this.makeRenderer(true) });
    if (!renderer || canvasOnly) {
      // A canvas that once gave WebGL gives no 2D context: draw on a new one.
      const canvas = h("canvas", { id: "map-canvas", class: "map-canvas", "aria-hidden": "true" });
      this.ui.canvas.replaceWith(canvas);
      this.ui.canvas = canvas;
      renderer = createRenderer(canvas, { canvasOnly: true });
    }
    this.renderer = renderer;
    this.ui.stage.dataset.renderer = renderer.kind;
    if (this.points.count) renderer.addRange(this.points, 0, this.points.count);
    this.requestDraw();
  }

  /** The stage's size inside its border, where the canvas lies. */
  measure() {
    this.camera.width = this.ui.stage.clientWidth;
    this.camera.height = this.ui.stage.clientHeight;
  }

  /** The links whose target depends on the rest of the state (the search kept under). */
  refreshLinks(state) {
    const base = { ...state, item: null };
    this.ui.close.href = toUrl({ ...base, map: false, cluster: null, view: null });
    for (const link of this.ui.list.querySelectorAll("a[data-cluster]")) {
      link.href = toUrl({ ...base, cluster: Number(link.dataset.cluster), view: null });
    }
    for (const [id, element] of this.shownPictures) element.href = this.links.detail(id);
  }

  // ---- loading -------------------------------------------------------------------------------

  async load() {
    this.failed = false;
    const { stage, status } = this.ui;
    stage.dataset.state = "loading";
    status.classList.add("is-busy");
    replace(status, bilingual("Chargement de la carte…", "loading the map"));
    replace(this.ui.notice);
    this.ui.layout.hidden = false;
    try {
      this.summary = await api.map();
    } catch (error) {
      this.failed = true;
      stage.dataset.state = "error";
      status.classList.remove("is-busy");
      replace(status);
      this.ui.layout.hidden = true;
      replace(this.ui.notice, errorNotice(error, { action: this.backToSearch() }));
      return;
    }
    this.showSummary();

    try {
      let request = api.mapPoints(0, POINTS_PAGE);
      while (request) {
        const page = await request;
        if (page.made_at && page.made_at !== this.summary.made_at) {
          // `regard map` made the map anew while we paged: the pages would not match.
          stage.dataset.state = "partial";
          status.classList.remove("is-busy");
          replace(
            this.ui.notice,
            h(
              "div",
              { class: "notice", role: "status" },
              h("p", {}, "La carte vient d’être refaite pendant son chargement : ",
                h("a", { href: window.location.href }, "rechargez-la"), "."),
            ),
          );
          return;
        }
        // The next page is asked for before this one is drawn.
        request = page.next !== null && page.ids.length > 0 ? api.mapPoints(page.next, POINTS_PAGE) : null;
        const [start, end] = this.points.add(page);
        this.renderer.addRange(this.points, start, end);
        if (request) {
          replace(
            status,
            `Chargement de la carte… ${formatCount(this.points.count)} / ${plural(page.total, "image", "images")}`,
            " ",
            h("span", { class: "en", lang: "en" }, "loading"),
          );
        }
        if (!this.userView) this.fit(this.selected);
        this.requestDraw();
      }
    } catch (error) {
      stage.dataset.state = "partial";
      status.classList.remove("is-busy");
      replace(status, `${formatCount(this.points.count)} / ${plural(this.points.total, "image", "images")} sur la carte`);
      this.ui.notice.append(errorNotice(error));
      return;
    }
    stage.dataset.state = "ready";
    status.classList.remove("is-busy");
    replace(
      status,
      `${plural(this.points.count, "image", "images")} sur la carte`,
      " ",
      h("span", { class: "en", lang: "en" }, "on the map"),
    );
  }

  backToSearch() {
    return h("p", {}, h("a", { href: this.ui.close.href, "data-nav": true }, "Revenir à la recherche"));
  }

  /** What /api/map says: a notice when the map is behind the store, the clusters listed
   * and named on the map. */
  showSummary() {
    const { summary } = this;
    if (summary.stale) this.ui.notice.append(this.staleNotice(summary));
    this.clusters = new Map(summary.clusters.map((cluster) => [cluster.id, cluster]));
    const bySize = [...summary.clusters].sort((a, b) => b.size - a.size || a.id - b.id);
    const named = summary.clusters.some((cluster) => Object.keys(cluster.names ?? {}).length > 0);
    replace(
      this.ui.note,
      named
        ? bilingual(
            "Noms proposés automatiquement d’après le thésaurus de la collection : à vérifier.",
            "names suggested by the machine from the collection’s thesaurus",
          )
        : bilingual(
            "La collection n’a pas de thésaurus : les groupes sont numérotés (« regard vocab add » en ajoute un, puis « regard map »).",
            "no thesaurus: clusters are numbered",
          ),
    );
    replace(this.ui.list, bySize.map((cluster) => this.clusterEntry(cluster)));
    this.refreshLinks(readState());
    this.labels = bySize.map((cluster) => {
      const { text, lang } = clusterName(cluster);
      const element = h("span", { class: "map-label", "data-cluster": cluster.id, lang }, text);
      element.style.setProperty("--cluster-colour", clusterColour(cluster.id));
      return { cluster, element, width: 0, height: 0 };
    });
    replace(this.ui.labels, this.labels.map((label) => label.element));
    if (this.selected !== null) this.showClusterHead();
  }

  staleNotice({ items, searchable }) {
    const missing = searchable - items;
    const text =
      missing > 0
        ? `La carte date d’avant les derniers ajouts : ${plural(missing, "image n’y est", "images n’y sont")} pas encore (« regard map » les place).`
        : "La carte date d’avant les derniers changements de la collection (« regard map » la met à jour).";
    return h(
      "div",
      { class: "notice notice-empty map-stale", role: "status" },
      h("p", { class: "notice-message" }, text),
      h(
        "p",
        { class: "notice-detail", lang: "en" },
        "The map predates the latest changes: run regard map to place the new images.",
      ),
    );
  }

  clusterEntry(cluster) {
    const { text, lang } = clusterName(cluster);
    const swatch = h("span", { class: "map-swatch", "aria-hidden": "true" });
    swatch.style.setProperty("--cluster-colour", clusterColour(cluster.id));
    return h(
      "li",
      { class: "map-cluster-entry" },
      h(
        "a",
        {
          class: "map-cluster-link",
          href: "#",
          "data-nav": true,
          "data-cluster": cluster.id,
          "aria-current": cluster.id === this.selected ? "true" : null,
        },
        h(
          "span",
          { class: "map-cluster-text" },
          swatch,
          h("span", { class: "map-cluster-name", lang }, text),
          h("span", { class: "map-cluster-size" }, plural(cluster.size, "image", "images")),
        ),
        h(
          "span",
          { class: "map-cluster-samples", "aria-hidden": "true" },
          cluster.samples.map((hit) =>
            imageFrame([hit.thumbnail_url], { className: "thumb map-sample", crop: cropOf(hit) }),
          ),
        ),
      ),
    );
  }

  // ---- the camera ------------------------------------------------------------------------------

  /** The view the URL does not set: the selected cluster, else the whole map. */
  fit(clusterId) {
    const cluster = this.clusters.get(clusterId);
    if (clusterId === null || clusterId === undefined || !cluster) {
      this.camera.set(0.5, 0.5, 1);
      return;
    }
    const extent = this.points.extentOf(clusterId);
    if (extent) this.camera.fit(extent);
    else this.camera.set(cluster.x, cluster.y, 3);
  }

  /** The user moved the map: draw, and keep the view in the URL (in place). */
  moved() {
    this.userView = true;
    this.hideTooltip();
    this.requestDraw();
    window.clearTimeout(this.viewTimer);
    this.viewTimer = window.setTimeout(() => this.writeView(), 250);
  }

  writeView() {
    const state = readState();
    if (!state.map || this.root.hidden) return;
    const url = toUrl({ ...state, view: this.camera.toParam() });
    if (new URL(url, window.location.href).href !== window.location.href) {
      window.history.replaceState(window.history.state, "", url);
    }
  }

  zoomBy(factor) {
    this.camera.zoomAt(factor);
    this.moved();
  }

  whole() {
    this.camera.set(0.5, 0.5, 1);
    this.moved();
  }

  // ---- drawing ---------------------------------------------------------------------------------

  requestDraw() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    window.requestAnimationFrame(() => {
      this.frameRequested = false;
      this.draw();
    });
  }

  /** A point's diameter in CSS pixels: large enough to see and to point at, more so as
   * the map is zoomed in; smaller where the map holds many. */
  pointSize() {
    const base = Math.min(this.camera.width, this.camera.height) * 0.92;
    const spread = (0.5 * base) / Math.sqrt(Math.max(this.points.count, 1));
    return clamp(clamp(spread, 2.5, 7) * this.camera.zoom ** 0.4, 2.5, 16);
  }

  draw() {
    const { camera, ui } = this;
    if (this.root.hidden || camera.width === 0 || camera.height === 0) return;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(camera.width * dpr);
    const height = Math.round(camera.height * dpr);
    if (ui.canvas.width !== width || ui.canvas.height !== height) {
      ui.canvas.width = width;
      ui.canvas.height = height;
    }
    this.dpr = dpr;
    const selected = this.clusters.has(this.selected) ? this.selected : -1;
    this.renderer.draw({
      width,
      height,
      cx: camera.x,
      cy: camera.y,
      scale: camera.scale * dpr,
      size: this.pointSize() * dpr,
      selected,
    });
    // Where a map point lands, in CSS pixels of the stage: scale · p + offset.
    const [ox, oy] = camera.toScreen(0, 0);
    ui.stage.dataset.transform = [camera.scale, ox, oy].map((v) => Number(v.toFixed(4))).join(",");
    this.placeLabels();
    this.placePictures();
    this.lasso?.draw();
  }

  /** The clusters' names at their places, largest clusters first (the selected one before
   * all); a name that would cover one already placed is hidden at this zoom. */
  placeLabels() {
    const { camera } = this;
    const placed = [];
    const order = [...this.labels].sort(
      (a, b) => (b.cluster.id === this.selected) - (a.cluster.id === this.selected),
    );
    for (const label of order) {
      const { element, cluster } = label;
      element.classList.toggle("is-selected", cluster.id === this.selected);
      if (!label.width) {
        label.width = element.offsetWidth;
        label.height = element.offsetHeight;
      }
      const [sx, sy] = camera.toScreen(cluster.x, cluster.y);
      const box = {
        x0: sx - label.width / 2 - 4,
        y0: sy - label.height / 2 - 2,
        x1: sx + label.width / 2 + 4,
        y1: sy + label.height / 2 + 2,
      };
      const inside = box.x0 >= 0 && box.y0 >= 0 && box.x1 <= camera.width && box.y1 <= camera.height;
      const free = placed.every((other) => box.x1 < other.x0 || box.x0 > other.x1 || box.y1 < other.y0 || box.y0 > other.y1);
      const shown = inside && free && label.width > 0;
      element.classList.toggle("is-hidden", !shown);
      if (shown) {
        placed.push(box);
        element.style.transform = `translate(${Math.round(sx - label.width / 2)}px, ${Math.round(sy - label.height / 2)}px)`;
      }
    }
  }

  // ---- pictures ----------------------------------------------------------------------------------

  /** The pictures of the points in view, when there are few; only dots when there are many. */
  placePictures() {
    const { camera, points } = this;
    const inView = points.count ? points.within(camera.visible(24), PICTURES_MAX) : null;
    const wanted = new Map();
    if (inView) {
      const side = Math.round(clamp(0.7 * Math.sqrt((camera.width * camera.height) / Math.max(inView.length, 1)), 40, 128));
      const missing = [];
      for (const i of inView) {
        const id = points.ids[i];
        const summary = this.summaries.get(id);
        if (summary === undefined) missing.push(id);
        if (!summary) continue;
        let element = this.shownPictures.get(id);
        if (!element) element = this.pictureOf(summary, i);
        const [sx, sy] = camera.toScreen(points.xs[i], points.ys[i]);
        element.style.width = `${side}px`;
        element.style.height = `${side}px`;
        element.style.transform = `translate(${Math.round(sx - side / 2)}px, ${Math.round(sy - side / 2)}px)`;
        wanted.set(id, element);
      }
      if (missing.length) this.askSummaries(missing);
    }
    for (const [id, element] of this.shownPictures) if (!wanted.has(id)) element.remove();
    // In the points' order: the later drawn over the earlier, as the dots are.
    const fresh = [...wanted.values()].filter((element) => !element.isConnected);
    this.ui.pictures.append(...fresh);
    this.shownPictures = wanted;
    this.ui.stage.dataset.pictures = String(wanted.size);
  }

  /** The picture of point `i`, a link to its detail panel, framed in its cluster's colour. */
  pictureOf(summary, i) {
    const label = summary.label || "Sans titre";
    const element = h(
      "a",
      {
        class: "map-picture",
        href: this.links.detail(summary.id),
        "data-nav": true,
        "data-item": summary.id,
        "data-id": summary.id,
        "data-index": i,
        tabindex: "-1",
        draggable: "false",
        "aria-label": label,
      },
      imageFrame([summary.thumbnail_url], { className: "thumb map-picture-frame", crop: cropOf(summary), lazy: false }),
    );
    element.style.setProperty("--cluster-colour", clusterColour(this.points.clusters[i]));
    return element;
  }

  /** Fetches the summaries of `ids` once the view settles, in requests of at most 200;
   * a request whose pictures are no longer wanted is cancelled. */
  askSummaries(ids) {
    window.clearTimeout(this.pictureTimer);
    this.pictureTimer = window.setTimeout(() => {
      const asked = this.pictureRequest;
      if (asked && ids.every((id) => asked.ids.has(id))) return;
      asked?.controller.abort();
      this.fetchSummaries(ids);
    }, 120);
  }

  async fetchSummaries(ids) {
    const controller = new AbortController();
    const request = { controller, ids: new Set(ids) };
    this.pictureRequest = request;
    try {
      for (let start = 0; start < ids.length; start += MAX_SUMMARIES) {
        const batch = ids.slice(start, start + MAX_SUMMARIES);
        const answer = await api.summaries(batch, { signal: controller.signal });
        this.remember(answer);
        this.requestDraw();
      }
    } catch (error) {
      if (!isAbort(error)) console.warn("map pictures:", error.message);
    } finally {
      if (this.pictureRequest === request) this.pictureRequest = null;
    }
  }

  remember({ items, unknown }) {
    for (const item of items) this.summaries.set(item.id, item);
    for (const id of unknown) this.summaries.set(id, null);
    // Oldest first out, past the cache's size.
    for (const id of this.summaries.keys()) {
      if (this.summaries.size <= SUMMARY_CACHE) break;
      if (!this.shownPictures.has(id)) this.summaries.delete(id);
    }
  }

  // ---- pointing --------------------------------------------------------------------------------

  /** The point under (sx, sy) on the stage, or -1; a picture there is its point. */
  pointAt(sx, sy, target) {
    const picture = target?.closest?.(".map-picture");
    if (picture) return Number(picture.dataset.index);
    if (!this.points.count) return -1;
    const [x, y] = this.camera.toMap(sx, sy);
    const radius = (this.pointSize() / 2 + 3) / this.camera.scale;
    return this.points.nearest(x, y, radius);
  }

  hover(sx, sy, event) {
    const label = event.target.closest(".map-label");
    const i = label ? -1 : this.pointAt(sx, sy, event.target);
    this.ui.stage.classList.toggle("is-pointing", i >= 0 || Boolean(label));
    if (i < 0) {
      this.hideTooltip();
      return;
    }
    this.hovered = i;
    this.showTooltip(i, sx, sy);
  }

  showTooltip(i, sx, sy) {
    const { tooltip } = this.ui;
    const id = this.points.ids[i];
    const summary = this.summaries.get(id);
    if (summary === undefined) this.askSummary(id);
    const cluster = this.clusters.get(this.points.clusters[i]);
    replace(
      tooltip,
      h("span", { class: "map-tooltip-label" }, summary ? summary.label || "Sans titre" : summary === null ? "Image retirée" : "…"),
      cluster ? h("span", { class: "map-tooltip-cluster" }, clusterName(cluster).text) : null,
    );
    tooltip.dataset.id = id;
    tooltip.hidden = false;
    const width = tooltip.offsetWidth;
    const height = tooltip.offsetHeight;
    const left = sx + 14 + width > this.camera.width ? sx - 14 - width : sx + 14;
    const top = sy + 14 + height > this.camera.height ? sy - 14 - height : sy + 14;
    tooltip.style.transform = `translate(${Math.max(0, left)}px, ${Math.max(0, top)}px)`;
    tooltip.dataset.at = `${sx},${sy}`;
  }

  /** One point's summary for its tooltip, when the pictures have not brought it. */
  askSummary(id) {
    window.clearTimeout(this.tooltipTimer);
    this.tooltipTimer = window.setTimeout(async () => {
      try {
        this.remember(await api.summaries([id]));
      } catch {
        return;
      }
      const { tooltip } = this.ui;
      if (!tooltip.hidden && tooltip.dataset.id === id) {
        const [sx, sy] = tooltip.dataset.at.split(",").map(Number);
        this.showTooltip(this.hovered, sx, sy);
      }
    }, 100);
  }

  hideTooltip() {
    this.hovered = -1;
    this.ui.tooltip.hidden = true;
    delete this.ui.tooltip.dataset.id;
  }

  /** A click that did not drag: a cluster's name selects it, a point opens its panel. */
  clicked(sx, sy, event) {
    const label = event.target.closest(".map-label");
    if (label) {
      this.navigate(toUrl({ ...readState(), item: null, cluster: Number(label.dataset.cluster), view: null }));
      return;
    }
    const i = this.pointAt(sx, sy, event.target);
    if (i >= 0) this.navigate(this.links.detail(this.points.ids[i]));
  }

  // ---- a cluster ------------------------------------------------------------------------------

  /** Selects a cluster (null: none): its points drawn over the others, its entry marked in
   * the list, its items fetched and listed as result cards. */
  async select(clusterId, { focus = false } = {}) {
    this.selected = clusterId;
    for (const link of this.ui.list.querySelectorAll("a[data-cluster]")) {
      const current = Number(link.dataset.cluster) === clusterId;
      if (current) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    this.clusterRequest?.abort();
    const section = this.ui.cluster;
    if (clusterId === null) {
      section.hidden = true;
      replace(section);
      return;
    }
    const request = new AbortController();
    this.clusterRequest = request;
    section.hidden = false;
    this.showClusterHead();
    const body = section.querySelector(".map-cluster-body");
    body.setAttribute("aria-busy", "true");
    replace(body, h("p", { class: "status is-busy" }, bilingual("Chargement du groupe…", "loading")));
    if (focus) section.querySelector("h2").focus({ preventScroll: true });
    try {
      const answer = await api.cluster(clusterId, CLUSTER_K, { signal: request.signal });
      if (request.signal.aborted) return;
      replace(
        body,
        h(
          "ul",
          { id: "map-cluster-items", class: "grid map-cluster-grid", "aria-labelledby": "map-cluster-heading" },
          answer.results.map((hit, i) => this.card(hit, i + 1)),
        ),
        answer.cluster.size > answer.results.length
          ? h(
              "p",
              { class: "map-cluster-more" },
              `Les ${formatCount(answer.results.length)} images les plus proches de son centre, sur ${formatCount(answer.cluster.size)}.`,
            )
          : null,
      );
    } catch (error) {
      if (isAbort(error) || request.signal.aborted) return;
      replace(body, errorNotice(error));
    } finally {
      if (this.clusterRequest === request) body.setAttribute("aria-busy", "false");
    }
  }

  /** A result card, its ids its own (the search's cards, hidden under the map, have theirs;
   * the lasso's, `prefix`). */
  card(hit, rank, prefix = "map-card-title") {
    const card = resultCard(hit, rank, this.links);
    const title = card.querySelector(".card-title");
    const own = `${prefix}-${rank}`;
    for (const described of card.querySelectorAll(`[aria-describedby="${title.id}"]`)) {
      described.setAttribute("aria-describedby", own);
    }
    title.id = own;
    return card;
  }

  /** The selected cluster's heading: its name (a machine's naming), its size, and a way out. */
  showClusterHead() {
    const section = this.ui.cluster;
    const cluster = this.clusters.get(this.selected);
    const body = section.querySelector(".map-cluster-body") ?? h("div", { class: "map-cluster-body" });
    const name = cluster ? clusterName(cluster) : { text: `Groupe ${this.selected + 1}`, lang: null };
    const swatch = h("span", { class: "map-swatch", "aria-hidden": "true" });
    swatch.style.setProperty("--cluster-colour", clusterColour(this.selected));
    const state = readState();
    replace(
      section,
      h(
        "h2",
        { id: "map-cluster-heading", class: "map-cluster-heading", tabindex: "-1" },
        swatch,
        "Groupe « ",
        h("span", { lang: name.lang }, name.text),
        " »",
      ),
      h(
        "p",
        { class: "map-cluster-meta" },
        cluster ? `${plural(cluster.size, "image", "images")} · ` : null,
        h(
          "a",
          { href: toUrl({ ...state, item: null, cluster: null, view: null }), "data-nav": true, class: "map-cluster-leave" },
          bilingual("Tous les groupes", "all clusters"),
        ),
        " · ",
        h(
          "a",
          {
            // Absolute: the viewer's links are http(s) or in-page, wherever it is served.
            href: new URL(`api/clusters/${this.selected}/items.csv`, document.baseURI).href,
            class: "map-cluster-export",
            download: "",
          },
          bilingual("Exporter ce groupe (CSV)", "export this cluster"),
        ),
        " · ",
        h(
          "a",
          {
            // Its own address: Mirador or Universal Viewer opens the group by it.
            href: new URL(`api/clusters/${this.selected}/manifest`, document.baseURI).href,
            class: "map-cluster-manifest",
            title: "À ouvrir dans Mirador ou Universal Viewer par son adresse",
          },
          bilingual("Manifeste IIIF du groupe", "IIIF manifest"),
        ),
      ),
      cluster?.terms?.length
        ? h(
            "p",
            { class: "map-machine-note" },
            "Nom proposé par la machine, d’après les termes : ",
            cluster.terms.map((term, i) => [i ? ", " : null, term.labels.fr ?? term.labels.en ?? term.id]),
            ".",
          )
        : null,
      body,
    );
  }
}
