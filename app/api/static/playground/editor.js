// The editor: the network as grids of number inputs, the data as a table, the hyper-parameters,
// and the JSON view. Every field carries data-loc, its place in the request body as the service's
// errors name it ("network.layers.0.weights.1.0"), so an error's loc finds its field.

import { escape, exact } from "./format.js";
import * as S from "./state.js";

const $ = (id) => document.getElementById(id);

let enums = { activations: [], losses: [], optimizers: [] };
let onEdit = () => {};

/** ``choices``: the names the service accepts (from its OpenAPI spec); ``edited(kind)``: called after each edit. */
export function setup(choices, edited) {
  enums = choices;
  onEdit = edited;
  $("optimizer").innerHTML = enums.optimizers.map((o) => `<option>${escape(o)}</option>`).join("");
  $("loss").innerHTML = enums.losses.map((o) => `<option>${escape(o)}</option>`).join("");
  for (const id of ["iterations", "optimizer", "learning-rate", "momentum", "loss", "reduction"]) {
    $(id).addEventListener("change", () => hyperEdited(id));
  }
  $("editor").addEventListener("change", networkEdited);
  $("editor").addEventListener("click", networkClicked);
  $("data").addEventListener("change", dataEdited);
  $("add-layer").addEventListener("click", () => shapeEdited(S.addLayer));
  $("remove-layer").addEventListener("click", () => shapeEdited(S.removeLayer));
  $("add-sample").addEventListener("click", () => samplesEdited(+1));
  $("remove-sample").addEventListener("click", () => samplesEdited(-1));
}

/** A number field's value: a number, or null when empty or not a number (the service then says where). */
function numberOf(input) {
  if (input.value.trim() === "") return null;
  const x = Number(input.value);
  return Number.isFinite(x) ? x : null;
}

function numberInput(loc, value, extra = "") {
  return `<input type="number" step="any" data-loc="${loc}" value="${escape(exact(value))}" title="${escape(exact(value))}"${extra}>`;
}

// -- rendering -----------------------------------------------------------------------------

export function render() {
  renderHyper();
  renderNetwork();
  renderData();
  $("body-json").value = S.problemJSON();
}

function renderHyper() {
  const p = S.state.problem;
  $("iterations").value = p.iterations;
  $("optimizer").value = p.optimizer.name;
  $("learning-rate").value = p.optimizer.learning_rate;
  const sgd = p.optimizer.name === "sgd";
  $("momentum").value = sgd ? p.optimizer.momentum || 0 : "";
  $("momentum").classList.toggle("hidden", !sgd);
  $("momentum-label").classList.toggle("hidden", !sgd);
  $("loss").value = p.loss;
  $("reduction").value = p.reduction || "mean";
}

function renderNetwork() {
  const ls = S.layers();
  let html = "";
  ls.forEach((layer, k) => {
    const fanIn = layer.weights[0].length;
    const hidden = k < ls.length - 1;
    const source = (i) => (k === 0 ? `x<sub>${i}</sub>` : `a<sup>(${k - 1})</sup><sub>${i}</sub>`);
    html += `<div class="layer-head"><b>layer ${k}</b><span class="note">${fanIn} &rarr; ${layer.weights.length}${hidden ? "" : " (output)"}</span>`;
    html += `<select data-loc="network.layers.${k}.activation" data-layer="${k}" title="layer ${k}'s activation">`;
    html += enums.activations.map((a) => `<option${a === (layer.activation || "identity") ? " selected" : ""}>${escape(a)}</option>`).join("");
    html += "</select>";
    if (hidden) {
      html += `<button type="button" data-neuron="add" data-layer="${k}">+ neuron</button>`;
      html += `<button type="button" data-neuron="remove" data-layer="${k}">&minus; neuron</button>`;
    }
    html += "</div><table><tr><th class='corner'>unit \\ input</th>";
    for (let i = 0; i < fanIn; i++) html += `<th>${source(i)}</th>`;
    html += "<th>bias</th></tr>";
    const biases = layer.biases || layer.weights.map(() => 0);
    layer.weights.forEach((row, j) => {
      html += `<tr><th>unit ${j}</th>`;
      row.forEach((w, i) => {
        html += `<td>${cell(`network.layers.${k}.weights.${j}.${i}`, w, k, "weights", j, i)}</td>`;
      });
      html += `<td>${cell(`network.layers.${k}.biases.${j}`, biases[j], k, "biases", j)}</td></tr>`;
    });
    html += "</table>";
  });
  $("editor").innerHTML = html;
  $("remove-layer").disabled = ls.length <= 1;
}

function cell(loc, value, k, kind, j, i) {
  const frozen = S.isFrozen(k, kind, j, i);
  const lock = `<button type="button" class="lock" data-lock="${k}/${kind}/${j}${kind === "weights" ? "/" + i : ""}" aria-pressed="${frozen}" title="${frozen ? "frozen: click to train it" : "trained: click to freeze it"}">&#10052;</button>`;
  return `<span class="cell${frozen ? " frozen" : ""}">${numberInput(loc, value)}${lock}</span>`;
}

function renderData() {
  const p = S.state.problem;
  const width = p.inputs[0] ? p.inputs[0].length : 0;
  const indices = p.targets.length && !Array.isArray(p.targets[0]);
  const outs = indices ? 1 : p.targets[0] ? p.targets[0].length : 0;
  let html = `<table><tr><th class="corner">sample</th>`;
  for (let i = 0; i < width; i++) html += `<th>x<sub>${i}</sub></th>`;
  for (let j = 0; j < outs; j++) html += indices ? "<th>class</th>" : `<th>target y<sub>${j}</sub></th>`;
  html += "</tr>";
  p.inputs.forEach((row, s) => {
    html += `<tr><th>${s}</th>` + row.map((x, i) => `<td>${numberInput(`inputs.${s}.${i}`, x)}</td>`).join("");
    if (indices) html += `<td>${numberInput(`targets.${s}`, p.targets[s], ' step="1"')}</td>`;
    else html += (p.targets[s] || []).map((y, j) => `<td>${numberInput(`targets.${s}.${j}`, y)}</td>`).join("");
    html += "</tr>";
  });
  $("data").innerHTML = html + "</table>";
}

/** The number fields of the network show ``network`` (a trained one) without being rebuilt. */
export function showNetwork(network) {
  network.layers.forEach((layer, k) => {
    layer.weights.forEach((row, j) =>
      row.forEach((w, i) => setField(`network.layers.${k}.weights.${j}.${i}`, w)),
    );
    (layer.biases || []).forEach((b, j) => setField(`network.layers.${k}.biases.${j}`, b));
  });
  $("body-json").value = S.problemJSON();
}

function setField(loc, value) {
  const input = document.querySelector(`#editor [data-loc="${loc}"]`);
  if (input && input !== document.activeElement) {
    input.value = exact(value);
    input.title = exact(value);
  }
}

// -- edits ---------------------------------------------------------------------------------

function hyperEdited(id) {
  const p = S.state.problem;
  const input = $(id);
  if (id === "iterations") p.iterations = numberOf(input);
  else if (id === "optimizer") {
    p.optimizer = { name: input.value, learning_rate: p.optimizer.learning_rate };
  } else if (id === "learning-rate") p.optimizer.learning_rate = numberOf(input);
  else if (id === "momentum") p.optimizer.momentum = numberOf(input);
  else if (id === "loss") p.loss = input.value;
  else if (id === "reduction") p.reduction = input.value;
  renderHyper();
  $("body-json").value = S.problemJSON();
  // Play's end is not part of the training; everything else starts a new one.
  onEdit(id === "iterations" ? "iterations" : "hyper");
}

function networkEdited(event) {
  const target = event.target;
  const loc = target.dataset.loc;
  if (!loc) return;
  const path = loc.split(".").slice(1); // after "network"
  const ls = S.layers();
  const k = Number(path[1]);
  if (path[2] === "activation") ls[k].activation = target.value;
  else if (path[2] === "weights") ls[k].weights[Number(path[3])][Number(path[4])] = numberOf(target);
  else if (path[2] === "biases") {
    ls[k].biases = ls[k].biases || ls[k].weights.map(() => 0);
    ls[k].biases[Number(path[3])] = numberOf(target);
  }
  target.title = target.value;
  $("body-json").value = S.problemJSON();
  onEdit("network");
}

function networkClicked(event) {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.lock) {
    const [k, kind, j, i] = button.dataset.lock.split("/");
    S.toggleFrozen(Number(k), kind, Number(j), Number(i));
    renderNetwork();
    $("body-json").value = S.problemJSON();
    onEdit("network");
  } else if (button.dataset.neuron) {
    const k = Number(button.dataset.layer);
    shapeEdited(() => (button.dataset.neuron === "add" ? S.addNeuron(k) : S.removeNeuron(k)));
  }
}

function shapeEdited(change) {
  change();
  renderNetwork();
  $("body-json").value = S.problemJSON();
  onEdit("network");
}

function dataEdited(event) {
  const loc = event.target.dataset.loc;
  if (!loc) return;
  const [what, s, j] = loc.split(".");
  const p = S.state.problem;
  if (what === "inputs") p.inputs[Number(s)][Number(j)] = numberOf(event.target);
  else if (j === undefined) p.targets[Number(s)] = numberOf(event.target);
  else p.targets[Number(s)][Number(j)] = numberOf(event.target);
  event.target.title = event.target.value;
  $("body-json").value = S.problemJSON();
  onEdit("data");
}

function samplesEdited(delta) {
  const p = S.state.problem;
  if (delta > 0) {
    p.inputs.push(p.inputs[p.inputs.length - 1].map(() => 0));
    const last = p.targets[p.targets.length - 1];
    p.targets.push(Array.isArray(last) ? last.map(() => 0) : 0);
  } else if (p.inputs.length > 1) {
    p.inputs.pop();
    p.targets.pop();
  }
  renderData();
  $("body-json").value = S.problemJSON();
  onEdit("data");
}

// -- errors --------------------------------------------------------------------------------

export function clearErrors() {
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  document.querySelectorAll(".field-error").forEach((e) => e.remove());
}

/**
 * Mark the field an error's ``loc`` names (["body", "network", "layers", 0, ...]) with the message
 * beside it: the field itself, else the nearest enclosing one (a row's first field, the JSON view).
 * Returns the element marked.
 */
export function markError(loc, message) {
  const path = (loc || []).filter((p, n) => !(n === 0 && p === "body")).map(String);
  for (let n = path.length; n >= 0; n--) {
    const key = path.slice(0, n).join(".");
    const field = document.querySelector(`[data-loc="${CSS.escape(key)}"]`) || document.querySelector(`[data-loc^="${CSS.escape(key)}."]`);
    if (field && (n > 0 || key === "")) {
      if (key === "" || field.id === "body-json") $("json-view").open = true;
      field.classList.add("invalid");
      const note = document.createElement("span");
      note.className = "field-error";
      note.textContent = (n < path.length ? path.join(".") + ": " : "") + message;
      field.insertAdjacentElement("afterend", note);
      return field;
    }
  }
  return null;
}
