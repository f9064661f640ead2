// Small helpers for building the DOM without innerHTML: every text from the API
// goes in as text, so a label can never inject markup.

/**
 * Create an element: h("a", {href: "…", class: "x"}, "text", otherNode).
 * Attributes set to null, undefined or false are left out; true gives an empty attribute.
 * Children may be strings, nodes, null/false (skipped) or arrays of those.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/** Replace the children of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** French text with its English counterpart, smaller, marked lang="en". */
/** Nodes one under the other: line breaks between them. */
export function joined(nodes) {
  return nodes.flatMap((node, i) => (i ? [h("br"), node] : [node]));
}

export function bilingual(french, english) {
  return [french, " ", h("span", { class: "en", lang: "en" }, english)];
}

/** A link that opens outside the viewer, in a new tab. */
export function externalLink(href, children, attributes = {}) {
  return h(
    "a",
    { href, target: "_blank", rel: "noopener noreferrer", class: "external", ...attributes },
    children,
  );
}

const numberFormat = new Intl.NumberFormat("fr-FR");
const scoreFormat = new Intl.NumberFormat("fr-FR", {
  minimumFractionDigits: 3,
  maximumFractionDigits: 3,
});

export const formatCount = (n) => numberFormat.format(n);
export const formatScore = (score) => scoreFormat.format(score);
export const formatMs = (ms) => `${numberFormat.format(Math.round(ms))} ms`;
