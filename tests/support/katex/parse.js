// Reads a JSON array of LaTeX strings on stdin; prints a JSON array, for each string null when
// KaTeX renders it (throwOnError, strict "error": a warning is an error too) or else KaTeX's message.
// Run by tests/nn/test_explain_latex.py after `npm ci --prefix tests/support/katex`.
"use strict";
const katex = require("katex");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const strings = JSON.parse(input);
  if (!Array.isArray(strings)) {
    throw new TypeError("expected a JSON array of strings on stdin");
  }
  const errors = strings.map((s) => {
    if (typeof s !== "string") {
      return `not a string: ${JSON.stringify(s)}`;
    }
    try {
      katex.renderToString(s, { displayMode: true, throwOnError: true, strict: "error" });
      return null;
    } catch (e) {
      return String(e && e.message ? e.message : e);
    }
  });
  process.stdout.write(JSON.stringify(errors));
});
