// Numbers as the page shows them: 6 significant figures (as the service's derivations write them,
// Python's "{:.6g}"), the exact value (JavaScript's shortest round-trip form, as Python's repr) on hover.

/** ``x`` to 6 significant figures, written as Python's ``f"{x:.6g}"`` does. */
export function sig(x) {
  if (x === null || x === undefined) return "null";
  if (typeof x !== "number") return String(x);
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mantissa, exp] = x.toExponential(5).split("e");
  const e = Number(exp);
  if (e < -4 || e >= 6) {
    return strip(mantissa) + "e" + (e < 0 ? "-" : "+") + String(Math.abs(e)).padStart(2, "0");
  }
  return strip(x.toFixed(5 - e));
}

function strip(s) {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/** The exact value: what the service sent (JSON numbers are float64, printed shortest round-trip). */
export function exact(x) {
  return x === null || x === undefined ? "null" : String(x);
}

export const escape = (text) => String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

/** A number as HTML: rounded, the exact value in its title. ``attrs``: extra attributes (already escaped). */
export function num(x, attrs = "") {
  return `<span class="num" title="${escape(exact(x))}"${attrs ? " " + attrs : ""}>${escape(sig(x))}</span>`;
}

/** A path such as ["iterations", 0, "output", 0, 0] written iterations[0].output[0][0]. */
export const where = (path) => path.map((p) => (typeof p === "number" ? "[" + p + "]" : "." + p)).join("").replace(/^\./, "");

/** An element from HTML text (one root). */
export function element(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}

/**
 * A labelled table of numbers: ``rows[r][c]``, the corner says what rows and columns are
 * ("sample \\ unit"), ``rowLabel(r)``/``colLabel(c)`` their headers, ``cellAttrs(r, c)`` extra attributes;
 * past ``maxRows`` rows, a line saying how many more (and ``more``, where to find them).
 */
export function table(rows, { caption = "", corner = "", rowLabel = String, colLabel = String, cellAttrs = null, maxRows = 12, more = "" } = {}) {
  if (!rows.length) return "";
  const width = Math.max(...rows.map((r) => r.length));
  let html = "<table>" + (caption ? `<caption>${caption}</caption>` : "");
  html += `<tr><th class="corner">${corner}</th>`;
  for (let c = 0; c < width; c++) html += `<th>${colLabel(c)}</th>`;
  html += "</tr>";
  rows.slice(0, maxRows).forEach((row, r) => {
    html += `<tr><th>${rowLabel(r)}</th>` + row.map((v, c) => `<td>${num(v, cellAttrs ? cellAttrs(r, c) : "")}</td>`).join("") + "</tr>";
  });
  html += "</table>";
  if (rows.length > maxRows) html += `<div class="more">&hellip; and ${rows.length - maxRows} more rows${more ? ` (${more})` : ""}</div>`;
  return html;
}
