// The lasso on the map: with its button pressed, a drag draws a free-hand line instead of
// moving the map; on release, the points inside it are selected, ringed on the map, and
// listed beside it with their count, their first pictures as result cards, and their
// export (CSV, or a IIIF manifest for Mirador or Universal Viewer: POST
// /api/export/selection). The map does not move: the selection is made in its context.
// Escape ends a drawing, then the lasso mode.

import { MAX_SUMMARIES, api, downloadExport, isAbort } from "./api.js";
import { bilingual, formatCount, h, replace } from "./dom.js";
import { errorNotice } from "./errors.js";
import { leftOutNote } from "./exports.js";

/** The selected images listed as cards (the others are exported, not shown). */
const CARDS_SHOWN = 48;
/** Points closer than this (CSS pixels) on the line drawn are not kept: a smooth line,
 * and fewer edges to test each point against. */
const STEP = 3;

/** Whether (x, y) lies inside the polygon `xs`, `ys` (even-odd rule, as a canvas fills it). */
export function insidePolygon(x, y, xs, ys) {
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i, i += 1) {
    if (ys[i] > y !== ys[j] > y && x < ((xs[j] - xs[i]) * (y - ys[i])) / (ys[j] - ys[i]) + xs[i]) {
      inside = !inside;
    }
  }
  return inside;
}

export class Lasso {
  /** `view` is the MapView (map.js): its camera, points, stage and cards. */
  constructor(view, { toggle, panel }) {
    this.view = view;
    this.toggle = toggle;
    this.panel = panel;
    this.active = false;
    this.line = null; // {xs, ys} in map coordinates while a line is drawn
    this.selected = []; // point indices, in the map's order
    this.selectedIds = new Set();
    this.cardsRequest = null;
    this.overlay = h("canvas", { class: "map-lasso", "aria-hidden": "true" });
    view.ui.stage.append(this.overlay);
    toggle.addEventListener("click", () => this.setActive(!this.active));
    this.listen();
  }

  setActive(active) {
    this.active = active;
    this.toggle.setAttribute("aria-pressed", String(active));
    this.view.ui.stage.classList.toggle("is-lasso", active);
    if (!active) this.line = null;
    this.view.hideTooltip();
    this.view.requestDraw();
  }

  /** The overlay takes the pointer while the lasso is on: the map's own gestures (on the
   * stage) never see it, so the drag draws and does not pan. */
  listen() {
    const { overlay } = this;
    const stage = this.view.ui.stage;
    const local = (event) => {
      const box = stage.getBoundingClientRect();
      return [event.clientX - box.left - stage.clientLeft, event.clientY - box.top - stage.clientTop];
    };
    let last = null;
    overlay.addEventListener("pointerdown", (event) => {
      event.stopPropagation();
      if (event.button !== 0 && event.pointerType === "mouse") return;
      overlay.setPointerCapture(event.pointerId);
      last = local(event);
      const [x, y] = this.view.camera.toMap(...last);
      this.line = { xs: [x], ys: [y] };
    });
    overlay.addEventListener("pointermove", (event) => {
      event.stopPropagation();
      if (!this.line) return;
      const here = local(event);
      if (Math.hypot(here[0] - last[0], here[1] - last[1]) < STEP) return;
      last = here;
      const [x, y] = this.view.camera.toMap(...here);
      this.line.xs.push(x);
      this.line.ys.push(y);
      this.view.requestDraw();
    });
    const finish = (event) => {
      event.stopPropagation();
      if (!this.line) return;
      const { xs, ys } = this.line;
      this.line = null;
      if (xs.length >= 3) this.select(xs, ys);
      this.view.requestDraw();
    };
    overlay.addEventListener("pointerup", finish);
    overlay.addEventListener("pointercancel", (event) => {
      event.stopPropagation();
      this.line = null;
      this.view.requestDraw();
    });
    // The click that ends a drawing opens no point's panel (the stage listens to clicks
    // as they come down to it: stopped above it).
    this.view.root.addEventListener(
      "click",
      (event) => {
        if (event.target === overlay) event.stopPropagation();
      },
      true,
    );
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.active || this.view.root.hidden) return;
      if (document.querySelector("dialog[open]")) return; // the detail panel's own Escape
      event.preventDefault();
      if (this.line) {
        this.line = null;
        this.view.requestDraw();
      } else {
        this.setActive(false);
      }
    });
  }

  /** Selects the points inside the line (map coordinates), in the map's order. */
  select(xs, ys) {
    const { points } = this.view;
    const box = { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
    this.selected = points
      .within(box)
      .filter((i) => insidePolygon(points.xs[i], points.ys[i], xs, ys))
      .sort((a, b) => a - b);
    this.selectedIds = new Set(this.selected.map((i) => points.ids[i]));
    this.showPanel();
  }

  clear() {
    this.cardsRequest?.abort();
    this.selected = [];
    this.selectedIds = new Set();
    this.panel.hidden = true;
    replace(this.panel);
    this.view.requestDraw();
    this.toggle.focus();
  }

  ids() {
    return this.selected.map((i) => this.view.points.ids[i]);
  }

  // ---- drawing (after each of the map's frames) ------------------------------------------------

  draw() {
    const { overlay, view } = this;
    const { camera } = view;
    const dpr = view.dpr;
    const width = Math.round(camera.width * dpr);
    const height = Math.round(camera.height * dpr);
    if (overlay.width !== width || overlay.height !== height) {
      overlay.width = width;
      overlay.height = height;
    }
    const context = overlay.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.clearRect(0, 0, camera.width, camera.height);
    view.ui.stage.dataset.selected = String(this.selected.length);
    for (const [id, element] of view.shownPictures) element.classList.toggle("is-lassoed", this.selectedIds.has(id));
    if (this.selected.length) this.ringSelected(context);
    if (this.line) this.drawLine(context);
  }

  /** A ring around each selected point in view. */
  ringSelected(context) {
    const { camera, points } = this.view;
    const radius = this.view.pointSize() / 2 + 2;
    const { x0, y0, x1, y1 } = camera.visible(radius);
    context.beginPath();
    for (const i of this.selected) {
      const x = points.xs[i];
      const y = points.ys[i];
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      const [sx, sy] = camera.toScreen(x, y);
      context.moveTo(sx + radius, sy);
      context.arc(sx, sy, radius, 0, 2 * Math.PI);
    }
    context.lineWidth = 2;
    context.strokeStyle = "#1d1d1b";
    context.stroke();
  }

  drawLine(context) {
    const { camera } = this.view;
    const { xs, ys } = this.line;
    context.beginPath();
    for (let k = 0; k < xs.length; k += 1) {
      const [sx, sy] = camera.toScreen(xs[k], ys[k]);
      if (k === 0) context.moveTo(sx, sy);
      else context.lineTo(sx, sy);
    }
    context.closePath();
    context.fillStyle = "rgba(29, 29, 27, 0.08)";
    context.fill();
    context.setLineDash([5, 4]);
    context.lineWidth = 1.5;
    context.strokeStyle = "#1d1d1b";
    context.stroke();
    context.setLineDash([]);
  }

  // ---- the panel ------------------------------------------------------------------------------

  showPanel() {
    const count = this.selected.length;
    const { panel } = this;
    panel.hidden = false;
    const button = (label, english, onclick, attributes = {}) =>
      h("button", { type: "button", class: "button button-secondary", onclick, ...attributes }, bilingual(label, english));
    const cards = h("div", { class: "map-selection-body" });
    replace(
      panel,
      h(
        "h2",
        { id: "map-selection-heading", class: "map-cluster-heading", tabindex: "-1" },
        count === 1 ? "1 image sélectionnée" : `${formatCount(count)} images sélectionnées`,
      ),
      h(
        "p",
        { class: "map-selection-actions" },
        button("Exporter CSV", "export CSV", () => this.download("csv"), { disabled: count === 0 }),
        button("Exporter IIIF (manifeste)", "IIIF manifest", () => this.download("iiif"), { disabled: count === 0 }),
        button("Effacer", "clear", () => this.clear(), { "data-lasso": "clear" }),
      ),
      h("div", { class: "map-selection-status", role: "status", "aria-live": "polite" }),
      cards,
    );
    panel.querySelector("h2").focus({ preventScroll: true });
    this.showCards(cards);
  }

  /** The first selected images as result cards, their summaries asked in pages of ≤200. */
  async showCards(body) {
    this.cardsRequest?.abort();
    const request = new AbortController();
    this.cardsRequest = request;
    const ids = this.ids().slice(0, CARDS_SHOWN);
    if (!ids.length) {
      replace(body, h("p", { class: "map-cluster-more" }, "Aucun point dans le tracé : entourez-en quelques-uns."));
      return;
    }
    body.setAttribute("aria-busy", "true");
    try {
      const items = [];
      for (let start = 0; start < ids.length; start += MAX_SUMMARIES) {
        const answer = await api.summaries(ids.slice(start, start + MAX_SUMMARIES), { signal: request.signal });
        items.push(...answer.items);
      }
      if (request.signal.aborted) return;
      replace(
        body,
        h(
          "ul",
          { class: "grid map-cluster-grid map-selection-grid", "aria-labelledby": "map-selection-heading" },
          items.map((item, i) => this.card(item, i + 1)),
        ),
        this.selected.length > items.length
          ? h("p", { class: "map-cluster-more" }, `Les ${formatCount(items.length)} premières, sur ${formatCount(this.selected.length)} : l’export les contient toutes.`)
          : null,
      );
    } catch (error) {
      if (isAbort(error) || request.signal.aborted) return;
      replace(body, errorNotice(error));
    } finally {
      if (this.cardsRequest === request) body.setAttribute("aria-busy", "false");
    }
  }

  /** A result card without a score: a selection is not ranked. */
  card(item, rank) {
    const card = this.view.card({ ...item, score: 0 }, rank, "map-selection-card-title");
    card.querySelector(".card-score")?.remove();
    return card;
  }

  /** Exports the selection as `format` ("csv", "iiif") and hands the file to the browser. */
  async download(format) {
    const status = this.panel.querySelector(".map-selection-status");
    replace(status, h("p", { class: "status is-busy" }, bilingual("Préparation de l’export…", "exporting")));
    try {
      const { skipped } = await downloadExport(this.ids(), format);
      replace(status, skipped > 0 ? h("p", { class: "map-cluster-more" }, leftOutNote(skipped)) : null);
    } catch (error) {
      replace(status, errorNotice(error));
    }
  }
}

