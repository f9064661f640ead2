// Result cards, the reference item of a "more like this" view, and the image
// frame they share (with its placeholder when an image cannot be shown).

import { bilingual, externalLink, formatCount, formatScore, h } from "./dom.js";
import { regionOutline } from "./region.js";

/**
 * The part of an item's pictures to show, or null when they show the item itself. The
 * API sets `crop` ({x, y, w, h}, fractions of the picture) when its links show the whole
 * image though the item is a region of it (a level 0 service cannot crop); `width` and
 * `height` are then the region's, which give the shape of the box that shows it.
 */
export function cropOf(item) {
  const { crop, width, height } = item;
  return crop && width > 0 && height > 0 ? { ...crop, ratio: width / height } : null;
}

/**
 * `img` in a box of the crop's shape (style.css: `.crop`), scaled up and shifted so that
 * only the region shows. CSSOM custom properties, not a style attribute, carry the numbers.
 */
function cropped(img, crop) {
  const box = h("span", { class: "crop" }, img);
  for (const name of ["x", "y", "w", "h", "ratio"]) {
    box.style.setProperty(`--crop-${name}`, String(crop[name]));
  }
  return box;
}

/**
 * A fixed-size frame holding one image. When there is no URL, or every URL fails,
 * the frame shows a placeholder instead of a broken-image icon.
 * `sources` are tried in order; `lazy` defers loading until the frame is near the view;
 * `crop` (see `cropOf`) shows only that part of each picture. `boxed` puts the picture
 * in a `.crop` box of its own shape even when it is whole, so that what lies over it (the
 * outline of a part, region.js's picker) is placed in percentages of the picture.
 */
export function imageFrame(
  sources,
  { alt = "", lazy = true, className = "thumb", width, height, crop = null, boxed = false } = {},
) {
  const frame = h("div", { class: className });
  const urls = sources.filter(Boolean);

  const showPlaceholder = () => {
    frame.classList.add("is-missing");
    frame.replaceChildren(
      h(
        "span",
        { class: "placeholder", role: alt ? "img" : null, "aria-label": alt ? `${alt} (image indisponible)` : null },
        h("span", { "aria-hidden": "true" }, "Image indisponible"),
        h("span", { class: "en", lang: "en", "aria-hidden": "true" }, "Image unavailable"),
      ),
    );
  };
  if (urls.length === 0) {
    showPlaceholder();
    return frame;
  }

  const img = h("img", {
    alt,
    loading: lazy ? "lazy" : "eager",
    decoding: "async",
    width,
    height,
  });
  let next = 0;
  img.addEventListener("load", () => frame.classList.add("is-loaded"));
  img.addEventListener("error", () => {
    if (next < urls.length) img.src = urls[next++];
    else showPlaceholder();
  });
  img.src = urls[next++];
  const whole = boxed && !crop;
  const shape = whole ? { x: 0, y: 0, w: 1, h: 1, ratio: width > 0 && height > 0 ? width / height : 1 } : crop;
  if (shape) frame.classList.add("is-cropped");
  frame.append(shape ? cropped(img, shape) : img);
  if (whole && !(width > 0 && height > 0)) {
    // The size is not known before the picture comes: its own shape then.
    img.addEventListener("load", () => {
      if (img.naturalWidth && img.naturalHeight) {
        img.parentElement.style.setProperty("--crop-ratio", String(img.naturalWidth / img.naturalHeight));
      }
    });
  }
  return frame;
}

/** Links to the item in IIIF: its manifest and its canvas, each in a new tab. */
export function iiifLinks(item) {
  return [
    item.manifest_id &&
      externalLink(item.manifest_id, "Manifeste", {
        class: "external iiif-manifest",
        title: "Manifeste IIIF (nouvel onglet) · IIIF manifest (new tab)",
      }),
    item.canvas_id &&
      externalLink(item.canvas_id, "Canevas", {
        class: "external iiif-canvas",
        title: "Canevas IIIF (nouvel onglet) · IIIF canvas (new tab)",
      }),
  ];
}

/**
 * "Plus comme ceci" and "Moins comme ceci" under a card: the search shown, with the item
 * added to what its results should look like, or unlike (links.like(id), links.unlike(id):
 * null where the view is no search an item can join).
 */
function refineLinks(hit, links, titleId) {
  const like = links.like?.(hit.id);
  const unlike = links.unlike?.(hit.id);
  if (!like && !unlike) return null;
  const link = (href, className, text, title) =>
    href && h("a", { class: className, href, "data-nav": true, "aria-describedby": titleId, title }, text);
  return h(
    "p",
    { class: "card-refine" },
    link(like, "like-link", "Plus comme ceci", "Ajouter à la recherche, comme exemple · more like this, in this search"),
    link(unlike, "unlike-link", "Moins comme ceci", "Écarter de la recherche ce qui lui ressemble · less like this"),
  );
}

/**
 * One search hit as a grid cell. `links` builds the viewer's own URLs:
 * links.detail(id) and links.similar(id), and, in a search, links.like(id) and
 * links.unlike(id). A hit without a score (a catalogue record's) shows none; one whose
 * record also holds the words searched (`in_record`) says so. `idPrefix` keeps the ids of
 * two lists of cards apart; `titleTag` is the title's heading level (under a section's h2);
 * a `compact` card (a catalogue record's: class record-card, not card, which names the
 * ranked results) has only its picture, title and manifest; its panel has the rest.
 */
export function resultCard(hit, rank, links, { idPrefix = "card", titleTag = "h2", compact = false } = {}) {
  const titleId = `${idPrefix}-title-${rank}`;
  return h(
    "li",
    { class: compact ? "record-card" : "card", "data-id": hit.id },
    h(
      "a",
      {
        class: "card-open",
        href: links.detail(hit.id),
        "data-nav": true,
        "data-item": hit.id,
        title: "Voir la fiche · open details",
      },
      // The label right below names the link: the image itself needs no second name.
      imageFrame([hit.thumbnail_url], { crop: cropOf(hit) }),
      h(titleTag, { class: "card-title", id: titleId }, hit.label || "Sans titre"),
    ),
    h("p", { class: "card-manifest", title: hit.manifest_label }, hit.manifest_label),
    typeof hit.score === "number"
      ? h(
          "p",
          { class: "card-score", title: "Similarité cosinus avec la requête · cosine similarity" },
          h("span", { class: "card-score-label" }, "score "),
          h("data", { class: "score", value: hit.score }, formatScore(hit.score)),
        )
      : null,
    hit.in_record
      ? h(
          "p",
          {
            class: "card-badge in-record",
            title: "Sa notice contient aussi tous les mots cherchés · its record holds every word too",
          },
          "aussi dans la notice",
        )
      : null,
    compact
      ? null
      : [
          h(
            "p",
            { class: "card-actions" },
            h(
              "a",
              {
                class: "similar-link",
                href: links.similar(hit.id),
                "data-nav": true,
                "aria-describedby": titleId,
              },
              bilingual("Similaires", "more like this"),
            ),
            iiifLinks(hit),
          ),
          refineLinks(hit, links, titleId),
        ],
  );
}

/** A reference block's text: a kicker, a title, a line under it, and actions. */
function referenceText(kicker, title, subtitle, ...actions) {
  return h(
    "div",
    { class: "reference-text" },
    h("p", { class: "reference-kicker" }, kicker),
    h("p", { class: "reference-title" }, title),
    h("p", { class: "reference-manifest" }, subtitle),
    h("p", { class: "card-actions" }, actions),
  );
}

/**
 * The item a "more like this" view starts from, shown above its neighbours; with `part`
 * ({x, y, w, h} in percent, region.js), the part of it searched, outlined.
 */
export function referenceBlock(item, links, part = null) {
  const frame = imageFrame([item.thumbnail_url], {
    alt: part ? `${item.label} (partie encadrée · part outlined)` : item.label,
    lazy: false,
    className: "thumb thumb-reference",
    width: item.width,
    height: item.height,
    crop: cropOf(item),
    boxed: part !== null,
  });
  if (part) frame.querySelector(".crop")?.append(regionOutline(part));
  return [
    frame,
    referenceText(
      part
        ? bilingual("Partie de l’image de référence", "part of the reference image")
        : bilingual("Image de référence", "reference image"),
      item.label || "Sans titre",
      item.manifest_label,
      h(
        "a",
        { href: links.detail(item.id), "data-nav": true, "data-item": item.id, class: "reference-open" },
        bilingual("Voir la fiche", "details"),
      ),
      part
        ? h(
            "a",
            { href: links.similar(item.id), "data-nav": true, class: "reference-whole" },
            bilingual("Toute l’image", "the whole picture"),
          )
        : null,
      iiifLinks(item),
    ),
  ];
}

/**
 * The picture a search by image starts from: `url` shows it (an object URL), `name` is
 * its file's, `size` the {width, height} the service read, when it answered.
 */
export function pictureBlock({ url, name, size }) {
  return [
    imageFrame([url], { alt: "Votre image · your picture", lazy: false, className: "thumb thumb-reference" }),
    referenceText(
      bilingual("Votre image", "your picture"),
      name || "Image sans nom",
      size ? `${formatCount(size.width)} × ${formatCount(size.height)} px` : null,
      h(
        "button",
        { type: "button", class: "button-secondary", "data-choose-picture": true },
        bilingual("Choisir une autre image", "choose another picture"),
      ),
    ),
  ];
}
