// The decision boundary: for a network of 2 inputs, its output over the input plane as a heatmap
// with the samples on top; hovering a neuron shows that neuron's activation instead. Every value
// comes from one POST /v1/forward on a GRID x GRID grid of points (all layers' activations in one
// answer); this module only colours them.

import { call } from "./api.js";
import { sig, exact } from "./format.js";

export const GRID = 25;
const SIZE = 320;
const ORANGE = [232, 113, 10];
const WHITE = [245, 245, 245];
const BLUE = [8, 119, 189];

let last = null; // {forward, domain, network, iteration}
let showing = null; // null: the output; else [layer, unit]

/** The square the plane shows: the samples' extent with a margin, and at least [-1, 1]^2. */
function domainOf(inputs) {
  let lo = -1;
  let hi = 1;
  inputs.forEach((row) => row.forEach((x) => {
    if (Number.isFinite(x)) {
      lo = Math.min(lo, x - 0.1);
      hi = Math.max(hi, x + 0.1);
    }
  }));
  return [lo, hi];
}

/** The grid's points, row by row from the top (x1 high) to the bottom, each left to right. */
export function gridPoints([lo, hi]) {
  const points = [];
  const step = (hi - lo) / GRID;
  for (let r = 0; r < GRID; r++) {
    for (let c = 0; c < GRID; c++) points.push([lo + (c + 0.5) * step, hi - (r + 0.5) * step]);
  }
  return points;
}

/** Fetch the grid's forward pass for ``network`` and draw it; throws the service's error. */
export async function update(network, problem, iteration) {
  const domain = domainOf(problem.inputs);
  const forward = await call("v1/forward", { network, inputs: gridPoints(domain) });
  last = { forward, domain, network, iteration, problem };
  draw();
}

export function clear() {
  last = null;
  const canvas = document.getElementById("heatmap");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.iteration = "";
  canvas.dataset.checksum = "";
  document.getElementById("plane-legend").textContent = "";
}

/** Show neuron ``unit`` of ``layer`` (null: the output) over the plane. */
export function show(layer, unit) {
  showing = layer === null ? null : [layer, unit];
  draw();
}

function colour(t) {
  const [a, b, u] = t < 0.5 ? [ORANGE, WHITE, t * 2] : [WHITE, BLUE, (t - 0.5) * 2];
  return a.map((v, i) => Math.round(v + (b[i] - v) * u));
}

/** The range a layer's values are coloured over: its activation's own where it has one. */
function rangeOf(activation, values) {
  if (activation === "sigmoid" || activation === "softmax") return [0, 1];
  if (activation === "tanh") return [-1, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (activation === "relu" || activation === "softplus") lo = Math.min(lo, 0);
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}

function draw() {
  if (!last) return;
  const { forward, domain, network, problem } = last;
  const layers = network.layers;
  const [k, j] = showing && showing[0] < layers.length ? showing : [layers.length - 1, 0];
  const values = forward.layers[k].activation.map((row) => row[j]);
  const [lo, hi] = rangeOf(layers[k].activation, values);
  const pixels = new ImageData(GRID, GRID);
  values.forEach((v, n) => {
    const [r, g, b] = colour(Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
    pixels.data.set([r, g, b, 255], n * 4);
  });
  const small = new OffscreenCanvas(GRID, GRID);
  small.getContext("2d").putImageData(pixels, 0, 0);
  const canvas = document.getElementById("heatmap");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, SIZE, SIZE);
  // The samples, coloured by their target (class 1 blue, class 0 orange; others on the same scale).
  const [dlo, dhi] = domain;
  const at = (x) => ((x - dlo) / (dhi - dlo)) * SIZE;
  problem.inputs.forEach((row, s) => {
    const target = problem.targets[s];
    const y = Array.isArray(target) ? target[j] ?? target[0] : target === j ? 1 : 0;
    const [r, g, b] = colour(Math.min(1, Math.max(0, y)));
    ctx.beginPath();
    ctx.arc(at(row[0]), SIZE - at(row[1]), 4, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#1f2937";
    ctx.stroke();
  });
  canvas.dataset.iteration = String(last.iteration);
  canvas.dataset.showing = showing ? `${k}/${j}` : "output";
  canvas.dataset.checksum = String(values.reduce((a, b) => a + b, 0));
  const name = showing ? `neuron ${j} of layer ${k} (${layers[k].activation})` : `the output${layers[k].weights.length > 1 ? " (unit 0)" : ""}`;
  document.getElementById("plane-showing").textContent = `showing ${name}, after iteration ${last.iteration}`;
  document.getElementById("plane-legend").innerHTML =
    `<span title="${exact(lo)}">${sig(lo)}</span><span>x<sub>0</sub> &isin; [${sig(dlo)}, ${sig(dhi)}], x<sub>1</sub> the same</span><span title="${exact(hi)}">${sig(hi)}</span>`;
}
