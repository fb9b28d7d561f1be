// A parameter's place in the scalar computation graph (POST /v1/graph), where the service has it.
//
// The page learns the endpoint's body from the service itself: when GET /v1/examples lists "graph"
// among an example's endpoints, GET /v1/examples/{name}?for=graph is a ready-to-post body, so its
// keys are the fields /v1/graph takes (the problem's own values go in them, the example's
// defaults, such as the sample and the seed's labels, in the rest). Without it, the page says the
// graph is not available here. The picture is asked for as SVG
// (laid out by the service); where the service cannot draw it, as JSON, shown as the node's
// neighbourhood.

import { call } from "./api.js";
import { escape, num } from "./format.js";
import * as S from "./state.js";

const bodies = new Map(); // example name -> its /v1/graph body (null: none)

/** The example's own /v1/graph body, when GET /v1/examples lists "graph" among its endpoints. */
async function exampleBody(name, examples) {
  if (!bodies.has(name)) {
    const example = examples.find((e) => e.name === name);
    bodies.set(name, example && example.endpoints.includes("graph") ? await call(`v1/examples/${encodeURIComponent(name)}?for=graph`) : null);
  }
  return bodies.get(name);
}

const shape = (network) => network.layers.map((l) => [l.weights.length, l.weights[0].length].join("x")).join(",");

/** The graph's name of what ``selection`` ("k/weights/j/i", "k/biases/j", "k/neuron/j") is. */
export function nodeName(selection, sample) {
  const [k, kind, j, i] = selection.split("/");
  if (kind === "weights") return `layers[${k}].weights[${j}][${i}]`;
  if (kind === "biases") return `layers[${k}].biases[${j}]`;
  return `layers[${k}].activation[${sample}][${j}]`;
}

/** The /v1/graph body: the example's fields (its keys are what the endpoint takes), the problem's values in them. */
function body(defaults, sample) {
  const problem = S.lossBody();
  const out = {};
  for (const [key, value] of Object.entries(defaults)) out[key] = key in problem ? problem[key] : value;
  for (const key of ["label_smoothing", "class_weights"]) if (key in problem) out[key] = problem[key];
  if ("sample" in out) out.sample = sample;
  // The example's labels (the seed's are the blog post's x1 ... CE) name its network's nodes.
  if ("labels" in out && shape(defaults.network) !== shape(problem.network)) out.labels = {};
  return out;
}

export async function showGraph(container, selection, sample, examples) {
  container.dataset.node = "";
  const defaults = (await exampleBody(S.state.example, examples)) || (await exampleBody("seed", examples));
  if (!defaults) {
    container.innerHTML = '<p class="note">This service has no <code>POST /v1/graph</code>: the scalar computation graph is not available here.</p>';
    return;
  }
  const name = nodeName(selection, sample);
  const request = body(defaults, sample);
  let answer;
  try {
    answer = await call("v1/graph", request, { accept: "image/svg+xml" });
  } catch (error) {
    try {
      answer = await call("v1/graph", request, { accept: "application/json" });
    } catch (second) {
      container.innerHTML = `<p class="error">${escape(second.message)}</p>`;
      return;
    }
  }
  if (typeof answer === "string" && answer.includes("<svg")) showSVG(container, answer, name);
  else showJSON(container, answer, name);
  container.dataset.node = name;
}

function showSVG(container, text, name) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  container.replaceChildren(svg);
  for (const title of svg.querySelectorAll("g.node > title")) {
    const node = title.parentElement;
    const label = [...node.querySelectorAll("text")].map((t) => t.textContent).join(" ");
    if (title.textContent === name || node.id === name || label.includes(name)) {
      node.classList.add("focus");
      node.scrollIntoView({ block: "nearest", inline: "center" });
    }
  }
}

function showJSON(container, graph, name) {
  const nodes = (graph && graph.nodes) || [];
  const at = nodes.findIndex((n) => n.name === name);
  if (at < 0) {
    container.innerHTML = `<p class="note">The graph has ${nodes.length} nodes; none is named <code>${escape(name)}</code>.</p>`;
    return;
  }
  const node = nodes[at];
  const edges = (graph.edges || []).filter((e) => e.from === at || e.to === at);
  let html = `<p><code>${escape(name)}</code> (${escape(node.label || "")}, ${escape(node.op)}): value ${num(node.value)}, grad ${num(node.grad)}</p>`;
  if (edges.length) {
    html += "<table><caption>its edges</caption><tr><th>from</th><th>to</th><th>local derivative d(to)/d(from)</th></tr>";
    html += edges
      .map((e) => `<tr><td>${escape(nodes[e.from].name)}</td><td>${escape(nodes[e.to].name)}</td><td>${num(e.local_derivative)}</td></tr>`)
      .join("");
    html += "</table>";
  }
  container.innerHTML = html;
}
