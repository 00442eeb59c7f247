// @ts-check
// Building the DOM safely. Every string goes in as text (textContent or a
// Text node), never as HTML; attributes named on* are refused and URLs are
// limited to http(s), blob: and mailto:, so nothing a customer or another
// agent typed can ever run as code in an agent's browser.

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "poster"]);
const SAFE_PROTOCOLS = new Set(["http:", "https:", "blob:", "mailto:"]);

/** @param {unknown} value */
export function safeUrl(value) {
  try {
    const url = new URL(String(value), location.origin);
    if (SAFE_PROTOCOLS.has(url.protocol)) return url.href;
  } catch {
    // not a URL at all: fall through
  }
  return "about:blank";
}

/**
 * @typedef {Node | string | number | boolean | null | undefined} Child
 * @typedef {Child | ChildList} Children
 * @typedef {Children[]} ChildList
 * Attributes, plus `class`, `text`, `dataset` and `on` (event listeners).
 * @typedef {{ on?: Record<string, (event: any) => void>, dataset?: Record<string, unknown>,
 *   [attribute: string]: unknown }} Props
 */

/**
 * Nested lists of children, as one list.
 * @param {ChildList} children
 * @returns {Child[]}
 */
function flat(children) {
  return /** @type {Child[]} */ (/** @type {unknown[]} */ (children).flat(Infinity));
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  // `value` and `checked` are set only on the elements that have them.
  const field = /** @type {HTMLInputElement} */ (/** @type {unknown} */ (el));
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = String(value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "on") for (const [type, fn] of Object.entries(/** @type {Record<string, EventListener>} */ (value))) el.addEventListener(type, fn);
    else if (key === "dataset") for (const [k, v] of Object.entries(/** @type {object} */ (value))) el.dataset[k] = String(v);
    else if (key === "value") field.value = String(value);
    else if (key === "checked") field.checked = Boolean(value);
    else if (/^on/i.test(key)) throw new Error(`event handler attribute ${key} refused`);
    else if (URL_ATTRIBUTES.has(key)) el.setAttribute(key, safeUrl(value));
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {ChildList} children
 * @returns {E}
 */
export function append(el, children) {
  for (const child of flat(children)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {...Children} children
 * @returns {E}
 */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Like `replace`, but nodes already in `el` stay where they are when they
// can: only new nodes are inserted and gone ones removed. A node that is
// moved or taken out and put back is a new node to the browser (an
// iframe reloads, focus and scroll are lost); this keeps those that stay.
/**
 * @template {Element} E
 * @param {E} el
 * @param {...Children} children
 * @returns {E}
 */
export function reconcile(el, ...children) {
  const wanted = flat(children).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
  const keep = new Set(wanted);
  for (const child of [...el.childNodes]) if (!keep.has(child)) child.remove();
  let at = el.firstChild;
  for (const node of wanted) {
    if (node === at) {
      at = at.nextSibling;
    } else {
      el.insertBefore(node, at);
    }
  }
  return el;
}

// An icon from the sprite-free set below: small inline SVG drawn with DOM
// calls (no markup strings), so icons work under the page's CSP.
/** @type {Record<string, string>} */
const ICONS = {
  widget: "M4 5h16v10H8l-4 4z",
  email: "M3 6h18v12H3z M3 6l9 7 9-7",
  api: "M8 7l-5 5 5 5 M16 7l5 5-5 5",
  slack: "M9 3v18 M15 3v18 M3 9h18 M3 15h18",
  social: "M12 3l2.6 5.6 6 .6-4.5 4 1.3 6-5.4-3.1-5.4 3.1 1.3-6-4.5-4 6-.6z",
  note: "M5 4h14v11l-5 5H5z M14 20v-5h5",
  clip: "M16 7l-7 7a2 2 0 0 0 3 3l7-7a4 4 0 0 0-6-6l-7 7a6 6 0 0 0 9 9l6-6",
  smile: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z M8 14c1 1.5 2.4 2 4 2s3-.5 4-2 M9 9h.01 M15 9h.01",
  check: "M5 12l5 5 9-10",
  clock: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z M12 7v5l3 2",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z M4 21c1-4 4-6 8-6s7 2 8 6",
  tag: "M3 12V3h9l9 9-9 9z M7.5 7.5h.01",
  flag: "M5 21V4 M5 4h12l-2 4 2 4H5",
  search: "M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14z M16 16l5 5",
  bolt: "M13 2L4 14h7l-1 8 9-12h-7z",
  merge: "M6 3v6a6 6 0 0 0 6 6h6 M15 12l3 3-3 3 M6 21v-4",
};

/**
 * @param {string} name
 * @param {string} [label]
 */
export function icon(name, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || ICONS.api);
  svg.append(path);
  return svg;
}
