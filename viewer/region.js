// "More like this part": the picker that chooses a part of the detail panel's picture,
// and the outline of the part searched over the reference thumbnail. A part is written
// "pct:x,y,w,h", percentages of the item's picture as the viewer shows it: when the item
// is itself a region of a larger image, of that region (cards.js shows it alone).
// Both sit in the `.crop` box of an imageFrame made with `boxed`, which has the shape of
// the picture shown, so that percentages of the box are percentages of the picture.

import { bilingual, h } from "./dom.js";

/** A drag smaller than this, in CSS pixels either way, is a click, not a part. */
export const MIN_PART_PX = 12;

/** The part proposed when the picker opens, before any drag. */
const FIRST_PART = { x: 25, y: 25, w: 50, h: 50 };

/** Keyboard steps, in percent: an arrow moves the part, Shift + an arrow sizes it. */
const STEP = 2;

const round2 = (value) => Math.round(value * 100) / 100;
const clamp = (value, low, high) => Math.min(Math.max(value, low), high);
const percentFormat = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });

/** {x, y, w, h} in percent for "pct:x,y,w,h", or null for anything else. */
export function parseRegion(text) {
  const match = /^pct:([\d.]+),([\d.]+),([\d.]+),([\d.]+)$/.exec(text ?? "");
  if (!match) return null;
  const [x, y, w, h] = match.slice(1).map(Number);
  return [x, y, w, h].every(Number.isFinite) && w > 0 && h > 0 ? { x, y, w, h } : null;
}

/** "pct:x,y,w,h" for a part, to 2 decimals (the API reads no more), inside the picture. */
export function formatRegion({ x, y, w, h }) {
  const left = round2(clamp(x, 0, 100));
  const top = round2(clamp(y, 0, 100));
  const width = round2(clamp(w, 0, 100 - left));
  const height = round2(clamp(h, 0, 100 - top));
  return `pct:${[left, top, width, height].join(",")}`;
}

/** Places `element` over the part (style.css: `.region-outline`, `.region-selection`). */
function placeOver(element, { x, y, w, h }) {
  for (const [name, value] of Object.entries({ x, y, w, h })) {
    element.style.setProperty(`--region-${name}`, String(value));
  }
  return element;
}

/** The outline of a part, to put in a boxed imageFrame's `.crop` box. */
export const regionOutline = (part) =>
  placeOver(h("span", { class: "region-outline", "aria-hidden": "true" }), part);

const describe = ({ x, y, w, h }) => {
  const pc = (value) => `${percentFormat.format(value)} %`;
  return `${pc(w)} × ${pc(h)}, à ${pc(x)} du bord gauche et ${pc(y)} du haut`;
};

/**
 * Lets the user choose a part of the picture in `figure` (which holds a boxed
 * imageFrame): drag a rectangle on it with a mouse, a pen or a finger, or move and size
 * the proposed one with the keyboard. The part found, `hrefOf(part)` is followed as a
 * link of the viewer's own (data-nav): at once when a drag ends, on Enter or on the
 * "search this part" link. Escape or "cancel" closes the picker and calls `onClose`.
 * Returns false when the picture is not shown (its placeholder instead).
 */
export function openRegionPicker(figure, { hrefOf, onClose }) {
  const open = figure.querySelector(".region-picker");
  if (open) {
    open.focus();
    return true;
  }
  const box = figure.querySelector(".crop");
  if (!box) return false;

  let part = { ...FIRST_PART };
  let drag = null;
  const selection = h("span", { class: "region-selection" });
  const layer = h(
    "div",
    {
      class: "region-picker",
      tabindex: "0",
      role: "group",
      "aria-label": "Partie à chercher · part to search",
      "aria-describedby": "region-hint",
    },
    selection,
  );
  const readout = h("span", { class: "region-readout", "aria-live": "polite" });
  const link = h(
    "a",
    { class: "button region-search", "data-nav": true, href: hrefOf(formatRegion(part)) },
    bilingual("Chercher cette partie", "search this part"),
  );
  const tools = h(
    "div",
    { class: "region-tools" },
    h(
      "p",
      { id: "region-hint", class: "region-hint" },
      "Tracez un rectangle sur l’image, ou ajustez celui-ci au clavier : flèches pour le déplacer, "
        + "Maj + flèches pour sa taille, Entrée pour chercher, Échap pour annuler.",
      " ",
      h(
        "span",
        { class: "en", lang: "en" },
        "Drag a rectangle on the picture, or use the arrows (Shift: size), Enter, Escape.",
      ),
    ),
    h("p", { class: "region-current" }, bilingual("Partie :", "part:"), " ", readout),
    h(
      "p",
      { class: "region-actions" },
      link,
      h("button", { type: "button", class: "button-secondary", onclick: () => close() }, bilingual("Annuler", "cancel")),
    ),
  );

  const show = (message = null) => {
    placeOver(selection, part);
    link.href = hrefOf(formatRegion(part));
    readout.textContent = message ?? describe(part);
  };

  function close() {
    layer.remove();
    tools.remove();
    figure.removeEventListener("keydown", onKey);
    onClose?.();
  }

  // Escape closes the picker, not the panel: the keydown is taken before the dialog sees it.
  function onKey(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
      return;
    }
    if (event.target !== layer) return;
    if (event.key === "Enter") {
      event.preventDefault();
      link.click();
      return;
    }
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const move = moves[event.key];
    if (!move || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    const [dx, dy] = move.map((d) => d * STEP);
    if (event.shiftKey) {
      const w = clamp(part.w + dx, STEP, 100 - part.x);
      const h = clamp(part.h + dy, STEP, 100 - part.y);
      part = { ...part, w, h };
    } else {
      part = { ...part, x: clamp(part.x + dx, 0, 100 - part.w), y: clamp(part.y + dy, 0, 100 - part.h) };
    }
    show();
  }

  // Where a pointer is, in percent of the picture, kept inside it.
  const pointIn = (rect, event) => ({
    x: clamp(((event.clientX - rect.left) / rect.width) * 100, 0, 100),
    y: clamp(((event.clientY - rect.top) / rect.height) * 100, 0, 100),
  });
  const between = (a, b) => ({
    x: Math.min(a.x, b.x),
    y: Math.min(a.y, b.y),
    w: Math.abs(a.x - b.x),
    h: Math.abs(a.y - b.y),
  });

  layer.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || drag) return;
    event.preventDefault();
    layer.focus({ preventScroll: true });
    layer.setPointerCapture(event.pointerId);
    const rect = layer.getBoundingClientRect();
    drag = { pointer: event.pointerId, rect, start: pointIn(rect, event), before: part };
  });
  layer.addEventListener("pointermove", (event) => {
    if (drag?.pointer !== event.pointerId) return;
    part = between(drag.start, pointIn(drag.rect, event));
    show();
  });
  layer.addEventListener("pointerup", (event) => {
    if (drag?.pointer !== event.pointerId) return;
    const { rect, start, before } = drag;
    drag = null;
    part = between(start, pointIn(rect, event));
    const wide = (part.w / 100) * rect.width >= MIN_PART_PX;
    const tall = (part.h / 100) * rect.height >= MIN_PART_PX;
    if (wide && tall) {
      show();
      link.click();
    } else {
      part = before;
      show("trop petite : tracez un rectangle plus grand · too small: drag a larger rectangle");
    }
  });
  layer.addEventListener("pointercancel", (event) => {
    if (drag?.pointer !== event.pointerId) return;
    part = drag.before;
    drag = null;
    show();
  });

  box.append(layer);
  figure.append(tools);
  figure.addEventListener("keydown", onKey);
  show();
  layer.focus({ preventScroll: true });
  return true;
}
