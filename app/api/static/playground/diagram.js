// The network, drawn by the page: one column per layer, one card per neuron, one row per weight and
// bias in the card of the neuron it feeds. The browser lays the cards out (so no two labels can
// overlap), then the edges are drawn over the gaps between the columns, from each source neuron
// to the row of its weight: width |weight|, blue positive, orange negative, dashed when frozen.

import { num, escape } from "./format.js";
import * as S from "./state.js";

const SVG = "http://www.w3.org/2000/svg";

/**
 * Draw into ``container``: ``network``, with sample ``sample``'s activations from ``forward`` and
 * the gradients of ``gradients`` (either may be null), after ``iteration`` updates.
 * ``hooks.select(param)`` on a click, ``hooks.hover(layer, unit | null)`` on hovering a neuron.
 */
export function drawNetwork(container, { network, forward, gradients, sample, iteration, selected }, hooks) {
  const ls = network.layers;
  const acts = (k) => (forward && forward.layers[k] ? forward.layers[k].activation[sample] : null);
  const inputs = S.state.problem.inputs[sample] || [];
  let html = '<div class="net"><svg class="edges" aria-hidden="true"></svg>';
  html += '<div class="col" data-col="0"><div class="col-title">input</div>';
  ls[0].weights[0].forEach((_, i) => {
    html += `<div class="card input" data-layer="-1" data-unit="${i}"><div class="head" data-anchor="out"><span>x<sub>${i}</sub></span>${
      inputs[i] === undefined ? "" : num(inputs[i])
    }</div></div>`;
  });
  html += "</div>";
  ls.forEach((layer, k) => {
    const out = k === ls.length - 1;
    const a = acts(k);
    const g = gradients ? gradients.gradients[k] : null;
    const biases = layer.biases || layer.weights.map(() => 0);
    html += `<div class="col" data-col="${k + 1}"><div class="col-title">layer ${k}${out ? " (output)" : ""}: ${escape(layer.activation || "identity")}</div>`;
    layer.weights.forEach((row, j) => {
      const head = `${k}/neuron/${j}`;
      html += `<div class="card unit" data-layer="${k}" data-unit="${j}">`;
      html += `<button type="button" class="head${selected === head ? " selected" : ""}" data-anchor="out" data-select="${head}" title="neuron ${j} of layer ${k}: its derivation and its place in the graph">`;
      html += `<span>a<sup>(${k})</sup><sub>${j}</sub></span>${a ? num(a[j]) : ""}</button>`;
      row.forEach((w, i) => {
        const id = `${k}/weights/${j}/${i}`;
        const frozen = S.isFrozen(k, "weights", j, i) ? " frozen" : "";
        html += `<button type="button" class="row-p${frozen}${selected === id ? " selected" : ""}" data-select="${id}" data-param="${id}" data-in="${i}">`;
        html += `<span>w<sub>${j},${i}</sub> ${num(w, `data-value="${id}"`)}</span>${g ? `<span class="g">&part;L ${num(g.weights[j][i])}</span>` : ""}</button>`;
      });
      const id = `${k}/biases/${j}`;
      const frozen = S.isFrozen(k, "biases", j) ? " frozen" : "";
      html += `<button type="button" class="row-p${frozen}${selected === id ? " selected" : ""}" data-select="${id}" data-param="${id}">`;
      html += `<span>b<sub>${j}</sub> ${num(biases[j], `data-value="${id}"`)}</span>${g ? `<span class="g">&part;L ${num(g.biases[j])}</span>` : ""}</button>`;
      html += "</div>";
    });
    html += "</div>";
  });
  html += "</div>";
  container.innerHTML = html;
  container.dataset.iteration = String(iteration);
  const net = container.firstElementChild;
  drawEdges(net, network);
  net.addEventListener("click", (event) => {
    const button = event.target.closest("[data-select]");
    if (button) hooks.select(button.dataset.select);
  });
  net.querySelectorAll(".card.unit").forEach((card) => {
    card.addEventListener("mouseenter", () => {
      card.classList.add("hover");
      hooks.hover(Number(card.dataset.layer), Number(card.dataset.unit));
    });
    card.addEventListener("mouseleave", () => {
      card.classList.remove("hover");
      hooks.hover(null, null);
    });
  });
}

function drawEdges(net, network) {
  const svg = net.querySelector("svg.edges");
  const box = net.getBoundingClientRect();
  svg.setAttribute("width", String(net.scrollWidth));
  svg.setAttribute("height", String(net.scrollHeight));
  const ls = network.layers;
  let largest = 0;
  ls.forEach((l) => l.weights.forEach((r) => r.forEach((w) => (largest = Math.max(largest, Math.abs(w) || 0)))));
  const anchor = (col, unit) => net.querySelector(`.col[data-col="${col}"] .card[data-unit="${unit}"] [data-anchor="out"]`);
  ls.forEach((layer, k) => {
    layer.weights.forEach((row, j) => {
      const card = net.querySelector(`.col[data-col="${k + 1}"] .card[data-unit="${j}"]`);
      row.forEach((w, i) => {
        const from = anchor(k, i);
        const to = card.querySelector(`[data-in="${i}"]`);
        if (!from || !to) return;
        const a = from.getBoundingClientRect();
        const b = to.getBoundingClientRect();
        const x1 = a.right - box.left;
        const y1 = a.top + a.height / 2 - box.top;
        const x2 = b.left - box.left;
        const y2 = b.top + b.height / 2 - box.top;
        const path = document.createElementNS(SVG, "path");
        const mid = (x1 + x2) / 2;
        path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
        path.setAttribute("fill", "none");
        path.setAttribute("stroke", w >= 0 ? "#0877bd" : "#e8710a");
        path.setAttribute("stroke-opacity", "0.75");
        path.setAttribute("stroke-width", String(0.6 + (largest ? (3.4 * Math.abs(w || 0)) / largest : 0)));
        if (S.isFrozen(k, "weights", j, i)) path.setAttribute("stroke-dasharray", "4 3");
        path.dataset.edge = `${k}/${j}/${i}`;
        svg.appendChild(path);
      });
    });
  });
}
