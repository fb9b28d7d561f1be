// The service's public API, relative to the page (so a mount prefix, --root-path, just works).

export const NDJSON = "application/x-ndjson";

/** A non-2xx answer: ``detail`` the contract's error entries ({loc, msg, type}) when the body has them. */
export class ApiError extends Error {
  constructor(path, status, detail, text) {
    const lines = detail ? detail.map((d) => (d.loc || []).join(".") + ": " + d.msg) : [text];
    super(`${path} answered ${status}\n${lines.join("\n")}`);
    this.path = path;
    this.status = status;
    this.detail = detail || [];
  }
}

async function failure(path, response) {
  const text = await response.text();
  let detail = null;
  try {
    const parsed = JSON.parse(text).detail;
    if (Array.isArray(parsed)) detail = parsed;
  } catch (e) {
    /* not the contract's error body */
  }
  return new ApiError(path, response.status, detail, text);
}

/**
 * GET (no body) or POST ``body`` as JSON to ``path`` ("v1/forward"); the parsed JSON answer, or the
 * text of an SVG one. ``accept``: the Accept header; ``signal``: an AbortSignal.
 */
export async function call(path, body, { accept = "application/json", signal } = {}) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? { Accept: accept } : { "Content-Type": "application/json", Accept: accept },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(path, response);
  const type = response.headers.get("content-type") || "";
  const text = await response.text();
  return type.startsWith("image/svg") || type.startsWith("text/") ? text : JSON.parse(text);
}

/** POST ``body`` asking for NDJSON; yields each line's object as it arrives (the fetch aborts with ``signal``). */
export async function* stream(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: NDJSON },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(path, response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}
