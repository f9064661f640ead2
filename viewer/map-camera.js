// Where the map is looked at from, and how people move it: drag (mouse, pen, finger),
// the wheel at the pointer, a pinch, and the keyboard (arrows, + and −, 0 for the whole).
// Map coordinates are the API's: x across and y down, the collection within 0..1.

/** The whole map fills this share of the stage's shorter side at zoom 1. */
const FIT = 0.92;
export const MIN_ZOOM = 0.5;
export const MAX_ZOOM = 2000;
/** A press that moves less than this (CSS pixels) is a click, not a drag. */
const CLICK_SLOP = 5;
/** One step of the buttons and the keys + and −. */
export const ZOOM_STEP = 1.6;

const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

export class Camera {
  constructor() {
    this.x = 0.5;
    this.y = 0.5;
    this.zoom = 1;
    this.width = 0; // the stage, in CSS pixels
    this.height = 0;
  }

  /** CSS pixels per map unit. */
  get scale() {
    return Math.min(this.width, this.height) * FIT * this.zoom;
  }

  toScreen(x, y) {
    const scale = this.scale;
    return [(x - this.x) * scale + this.width / 2, (y - this.y) * scale + this.height / 2];
  }

  toMap(sx, sy) {
    const scale = this.scale;
    return [(sx - this.width / 2) / scale + this.x, (sy - this.height / 2) / scale + this.y];
  }

  /** The map's rectangle in view, {x0, y0, x1, y1}, widened by `margin` CSS pixels. */
  visible(margin = 0) {
    const scale = this.scale;
    const halfW = (this.width / 2 + margin) / scale;
    const halfH = (this.height / 2 + margin) / scale;
    return { x0: this.x - halfW, y0: this.y - halfH, x1: this.x + halfW, y1: this.y + halfH };
  }

  set(x, y, zoom) {
    this.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
    // The centre stays over the collection, give or take half a view.
    this.x = clamp(x, -0.25, 1.25);
    this.y = clamp(y, -0.25, 1.25);
  }

  /** Zoom by `factor` keeping the map point under (sx, sy) where it is. */
  zoomAt(factor, sx = this.width / 2, sy = this.height / 2) {
    const [mx, my] = this.toMap(sx, sy);
    const zoom = clamp(this.zoom * factor, MIN_ZOOM, MAX_ZOOM);
    const scale = Math.min(this.width, this.height) * FIT * zoom;
    this.set(mx - (sx - this.width / 2) / scale, my - (sy - this.height / 2) / scale, zoom);
  }

  panBy(dx, dy) {
    const scale = this.scale;
    this.set(this.x - dx / scale, this.y - dy / scale, this.zoom);
  }

  /** Frame the rectangle {x0, y0, x1, y1}, with some room around it. */
  fit({ x0, y0, x1, y1 }, { maxZoom = 40 } = {}) {
    const base = Math.min(this.width, this.height) * FIT;
    const w = Math.max(x1 - x0, 1e-4);
    const h = Math.max(y1 - y0, 1e-4);
    const zoom = base > 0 ? Math.min(this.width / (w * base), this.height / (h * base)) * 0.8 : 1;
    this.set((x0 + x1) / 2, (y0 + y1) / 2, clamp(zoom, 1, maxZoom));
  }

  /** The view as the URL keeps it: "x,y,zoom", precise enough for the zoom. */
  toParam() {
    const digits = clamp(Math.ceil(Math.log10(this.zoom * 2000)), 4, 8);
    const zoomText = this.zoom >= 10 ? this.zoom.toFixed(1) : this.zoom.toFixed(3);
    return `${this.x.toFixed(digits)},${this.y.toFixed(digits)},${Number(zoomText)}`;
  }

  /** {x, y, zoom} from "x,y,zoom", or null for anything else. */
  static parse(text) {
    const parts = (text ?? "").split(",").map(Number);
    if (parts.length !== 3 || !parts.every(Number.isFinite) || parts[2] <= 0) return null;
    const [x, y, zoom] = parts;
    return { x, y, zoom };
  }

  /** Whether the camera shows {x, y, zoom} (to the URL's precision). */
  shows({ x, y, zoom }) {
    const scale = this.scale;
    return Math.abs(zoom / this.zoom - 1) < 1e-3 && Math.abs(x - this.x) * scale < 1 && Math.abs(y - this.y) * scale < 1;
  }
}

/**
 * Moves `camera` by the gestures on `stage` and its keys. `changed()` follows each move;
 * `click(sx, sy, event)` a press that did not move (on the stage itself, not on a link in
 * it), `hover(sx, sy, event)` the pointer moving with no button pressed, `leave()` it leaving;
 * `whole()` the key 0 (the whole map).
 */
export function attachGestures(stage, camera, { changed, click, hover, leave, whole }) {
  const pointers = new Map(); // id → {x, y}
  let dragged = false;
  let pressedAt = null;

  // Where an event lies on the stage, inside its border (where the canvas lies).
  const local = (event) => {
    const box = stage.getBoundingClientRect();
    return [event.clientX - box.left - stage.clientLeft, event.clientY - box.top - stage.clientTop];
  };

  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    pointers.set(event.pointerId, local(event));
    if (pointers.size === 1) {
      dragged = false;
      pressedAt = local(event);
    }
  });

  stage.addEventListener("pointermove", (event) => {
    const here = local(event);
    const before = pointers.get(event.pointerId);
    if (!before) {
      if (event.pointerType !== "touch") hover(...here, event);
      return;
    }
    if (!dragged) {
      if (Math.hypot(here[0] - pressedAt[0], here[1] - pressedAt[1]) < CLICK_SLOP && pointers.size === 1) return;
      dragged = true;
      // Captured only once it is a drag: a click on a picture's link stays a click on it.
      for (const id of pointers.keys()) {
        try {
          stage.setPointerCapture(id);
        } catch {
          // a pointer that already left
        }
      }
      stage.classList.add("is-dragging");
      leave();
    }
    if (pointers.size === 2) {
      // A pinch: zoom by the change of the distance, about the middle, which also pans.
      const [other] = [...pointers.entries()].filter(([id]) => id !== event.pointerId).map(([, at]) => at);
      const oldMid = [(before[0] + other[0]) / 2, (before[1] + other[1]) / 2];
      const newMid = [(here[0] + other[0]) / 2, (here[1] + other[1]) / 2];
      const oldGap = Math.hypot(before[0] - other[0], before[1] - other[1]);
      const newGap = Math.hypot(here[0] - other[0], here[1] - other[1]);
      if (oldGap > 0) camera.zoomAt(newGap / oldGap, ...newMid);
      camera.panBy(newMid[0] - oldMid[0], newMid[1] - oldMid[1]);
    } else if (pointers.size === 1) {
      camera.panBy(here[0] - before[0], here[1] - before[1]);
    }
    pointers.set(event.pointerId, here);
    changed();
  });

  const release = (event) => {
    if (!pointers.has(event.pointerId)) return;
    pointers.delete(event.pointerId);
    if (pointers.size === 0) stage.classList.remove("is-dragging");
  };
  stage.addEventListener("pointerup", release);
  stage.addEventListener("pointercancel", release);
  stage.addEventListener("pointerleave", (event) => {
    if (!pointers.has(event.pointerId)) leave();
  });

  // After a drag, the click that ends it is no click: on a picture it would open it.
  stage.addEventListener(
    "click",
    (event) => {
      if (dragged) {
        event.preventDefault();
        event.stopPropagation();
        dragged = false;
        return;
      }
      if (event.target.closest("a, button")) return;
      click(...local(event), event);
    },
    true,
  );

  // A picture or a link dragged would be carried off the page, not pan the map.
  stage.addEventListener("dragstart", (event) => event.preventDefault());

  stage.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      // Trackpads send small steps often, mice large ones seldom; ctrlKey is a pinch.
      const delta = event.deltaY * lines * (event.ctrlKey ? 3 : 1);
      camera.zoomAt(Math.exp(-clamp(delta, -300, 300) * 0.002), ...local(event));
      changed();
    },
    { passive: false },
  );

  stage.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const step = Math.min(camera.width, camera.height) / 8;
    const moves = {
      ArrowLeft: () => camera.panBy(step, 0),
      ArrowRight: () => camera.panBy(-step, 0),
      ArrowUp: () => camera.panBy(0, step),
      ArrowDown: () => camera.panBy(0, -step),
      "+": () => camera.zoomAt(ZOOM_STEP),
      "=": () => camera.zoomAt(ZOOM_STEP),
      "-": () => camera.zoomAt(1 / ZOOM_STEP),
      "−": () => camera.zoomAt(1 / ZOOM_STEP),
      _: () => camera.zoomAt(1 / ZOOM_STEP),
    };
    if (event.key === "0" || event.key === "Home") {
      event.preventDefault();
      whole();
      return;
    }
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    move();
    changed();
  });
}
