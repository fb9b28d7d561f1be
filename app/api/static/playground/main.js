// The playground: wires the modules together.
//
//   api.js      the service's public API (JSON, NDJSON streams, its error bodies)
//   state.js    the problem, the training in progress, the URL
//   editor.js   number grids for the network and the data, the hyper-parameters, errors at their field
//   trainer.js  play / pause / step / reset, each training again from iteration 0 (optimizer state kept honest)
//   plane.js    the decision boundary and each neuron's heatmap, from /v1/forward on a grid
//   curve.js    the loss curve
//   diagram.js  the network, drawn with labels that cannot overlap
//   explain.js  a parameter's derivation from /v1/explain, rendered with KaTeX
//   graph.js    its place in the computation graph, from /v1/graph where the service has it
//   results.js  forward pass, loss, gradients, trace, gradcheck as labelled tables
//   check.js    "Check your numbers", by /v1/check
//   format.js   6 significant figures, the exact value on hover

import { call } from "./api.js";
import { loadClaims, checkClaims } from "./check.js";
import { drawCurve } from "./curve.js";
import { drawNetwork } from "./diagram.js";
import * as E from "./editor.js";
import { explain } from "./explain.js";
import { escape, sig } from "./format.js";
import { showGraph } from "./graph.js";
import * as P from "./plane.js";
import * as R from "./results.js";
import * as S from "./state.js";
import { Trainer } from "./trainer.js";

const $ = (id) => document.getElementById(id);
let examples = [];
let selected = null; // what was clicked: "k/weights/j/i", "k/biases/j" or "k/neuron/j"
let shown = { forward: null, gradients: null, network: null, iteration: 0 };

// -- errors: stale results cleared, the field marked, the message beside it ----------------

function failed(error) {
  R.clear();
  P.clear();
  $("diagram").innerHTML = "";
  $("diagram").dataset.iteration = "";
  $("diagram-iteration").textContent = "";
  $("plane-showing").textContent = "";
  $("explain").innerHTML = "";
  $("graph").innerHTML = "";
  shown = { forward: null, gradients: null, network: null, iteration: 0 };
  E.clearErrors();
  $("error").textContent = error.message;
  let marked = null;
  for (const d of error.detail || []) marked = E.markError(d.loc, d.msg) || marked;
  if (marked) marked.scrollIntoView({ block: "nearest" });
  document.body.dataset.error = "true";
}

// -- what the network shown computes (coalesced: at most one refresh at a time) ------------

let running = false;
let dirty = false;

function refresh() {
  if (running) dirty = true;
  else run();
}

const is2D = () => S.state.problem.inputs.every((row) => row.length === 2) && S.inputWidth() === 2;
const sample = () => Math.min(Math.max(0, Number($("sample").value) || 0), S.state.problem.inputs.length - 1);

async function run() {
  running = true;
  dirty = false;
  document.body.dataset.busy = "true";
  const network = S.state.problem.network;
  const iteration = S.state.training.iteration;
  try {
    const [forward, gradients] = await Promise.all([call("v1/forward", S.forwardBody(network)), call("v1/gradients", S.lossBody(network))]);
    E.clearErrors();
    $("error").textContent = "";
    document.body.dataset.error = "false";
    shown = { forward, gradients, network, iteration };
    R.showForward(forward);
    R.showGradients(gradients);
    drawDiagram();
    $("plane-view").classList.toggle("flat", !is2D());
    if (is2D()) {
      await P.update(network, S.state.problem, iteration);
      $("plane-note").classList.remove("error");
    } else {
      P.clear();
      $("plane-showing").textContent = `(for a network of 2 inputs; this one has ${S.inputWidth()})`;
    }
    if (selected && !trainer.busy) await showSelection();
  } catch (error) {
    failed(error);
  } finally {
    running = false;
    if (dirty) run();
    else document.body.dataset.busy = "false";
  }
}

function drawDiagram() {
  if (!shown.network) return;
  drawNetwork(
    $("diagram"),
    { ...shown, sample: sample(), selected },
    {
      select: (what) => {
        selected = what;
        drawDiagram();
        showSelection().catch(failed);
      },
      hover: (layer, unit) => P.show(layer, unit),
    },
  );
  $("diagram-iteration").textContent = String(shown.iteration);
}

async function showSelection() {
  if (!selected) return;
  const s = sample();
  await explain($("explain"), selected, s);
  await showGraph($("graph"), selected, s, examples);
}

// -- training ------------------------------------------------------------------------------

function showTraining() {
  const t = S.state.training;
  $("iteration").textContent = String(t.iteration);
  document.body.dataset.iteration = String(t.iteration);
  drawCurve($("curve"), t.trace, t.finalLoss, t.iteration);
  $("curve-note").textContent = t.trace.length
    ? "Each dot is a recorded iteration's loss, measured before that iteration's update" +
      (t.finalLoss !== undefined ? "; the ring is final_loss, after the last update." : ".")
    : "";
  R.showTrace();
}

function status(text) {
  $("status").textContent = text;
}

const trainer = new Trainer({
  shown(entry) {
    E.showNetwork(entry.network);
    showTraining();
    status(`Playing: iteration ${entry.iteration}, loss ${sig(entry.loss)} (before its update)`);
    refresh();
  },
  done(summary) {
    E.showNetwork(summary.network);
    showTraining();
    const t = S.state.training.iteration;
    status(`${summary.status === "diverged" ? `Diverged at iteration ${summary.diverged_at}` : "Trained"} to iteration ${t}; final_loss ${sig(summary.final_loss)}.`);
    refresh();
    S.saveToURL();
  },
  failed,
  state() {
    const busy = trainer.busy;
    $("play").disabled = busy;
    $("step").disabled = busy;
    $("pause").disabled = !trainer.playing;
    document.body.dataset.playing = String(trainer.playing);
  },
});

function pause() {
  if (!trainer.playing) return;
  trainer.pause();
  showTraining();
  status(`Paused after iteration ${S.state.training.iteration}.`);
  refresh();
  S.saveToURL();
}

function reset() {
  trainer.reset();
  E.showNetwork(S.state.problem.network);
  showTraining();
  status("Reset to iteration 0.");
  refresh();
  S.saveToURL();
}

/** After an edit: a new training starts from what is shown (Play's end excepted). */
function edited(kind) {
  if (trainer.busy) trainer.stop();
  if (kind !== "iterations") {
    S.restart();
    status("Edited: a new training starts from this network (the optimizer's state restarts).");
  }
  showTraining();
  refresh();
  S.saveToURL();
}

// -- examples, links, JSON -----------------------------------------------------------------

function loaded(name) {
  selected = null;
  $("explain").innerHTML = '<p class="note">Click any weight, bias or neuron in the network above.</p>';
  $("graph").innerHTML = "";
  const example = examples.find((e) => e.name === name);
  $("example-about").textContent = example ? example.description : "Your own problem.";
  $("origin").hidden = !["seed", "blog"].includes(name);
  if (example) $("example").value = name;
  $("sample").max = String(S.state.problem.inputs.length - 1);
  $("sample").value = "0";
  E.render();
  showTraining();
  status("");
  refresh();
}

async function loadExample(name) {
  trainer.stop();
  const example = examples.find((e) => e.name === name);
  const body = await call(`v1/examples/${encodeURIComponent(name)}`);
  S.setProblem(body, name);
  if (example && example.endpoints.includes("check")) loadClaims(await call(`v1/examples/${encodeURIComponent(name)}?for=check`));
  loaded(name);
  S.saveToURL();
  document.body.dataset.loaded = name;
}

async function restore(fragment) {
  const saved = await S.decodeState(fragment);
  S.setProblem(saved.p, saved.e);
  const example = examples.find((e) => e.name === saved.e);
  if (example && example.endpoints.includes("check")) loadClaims(await call(`v1/examples/${encodeURIComponent(saved.e)}?for=check`));
  loaded(saved.e);
  if (saved.i > 0) {
    status(`Training again to iteration ${saved.i}, as the link says…`);
    await trainer.replay(saved.i);
  }
  document.body.dataset.loaded = "link";
}

function applyJSON() {
  E.clearErrors();
  let problem;
  try {
    problem = JSON.parse($("body-json").value);
    if (!problem || typeof problem !== "object" || !problem.network || !problem.inputs) throw new Error("expected a /v1/train body: network, inputs, targets, ...");
  } catch (e) {
    E.markError([], "not a problem: " + e.message);
    return;
  }
  trainer.stop();
  S.setProblem(problem, S.state.example);
  loaded(S.state.example);
  S.saveToURL();
}

function exportJSON() {
  const blob = new Blob([S.problemJSON() + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${S.state.example || "problem"}-iteration-${S.state.training.iteration}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function copyLink() {
  const url = location.href.split("#")[0] + "#s=" + (await S.encodeState());
  history.replaceState(null, "", url);
  try {
    await navigator.clipboard.writeText(url);
    status("Link copied: it opens this setup at this iteration.");
  } catch (e) {
    status("The address bar now holds the link to this setup.");
  }
}

// -- the service's names, from its OpenAPI spec --------------------------------------------

function choicesFrom(spec) {
  const schemas = (spec && spec.components && spec.components.schemas) || {};
  const enumOf = (schema, field) => (schemas[schema] && schemas[schema].properties[field] && schemas[schema].properties[field].enum) || null;
  const optimizers = Object.values(schemas)
    .map((s) => s.properties && s.properties.name && s.properties.name.const)
    .filter((name) => typeof name === "string");
  return {
    activations: enumOf("LayerSpec", "activation") || ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "softmax"],
    losses: enumOf("TrainRequest", "loss") || ["binary_cross_entropy", "cross_entropy", "mse"],
    optimizers: optimizers.length ? optimizers : ["sgd", "adam"],
  };
}

async function init() {
  const [list, spec] = await Promise.all([call("v1/examples"), call("openapi.json").catch(() => null)]);
  examples = list.examples;
  E.setup(choicesFrom(spec), edited);
  $("example").innerHTML = examples
    .map((e) => `<option value="${escape(e.name)}" title="${escape(e.description)}">${escape(e.name)}</option>`)
    .join("");
  $("load").addEventListener("click", () => loadExample($("example").value).catch(failed));
  $("example").addEventListener("change", () => {
    const e = examples.find((x) => x.name === $("example").value);
    $("example-about").textContent = e ? e.description + " (Load to start from it.)" : "";
  });
  $("play").addEventListener("click", () => trainer.play());
  $("pause").addEventListener("click", pause);
  $("step").addEventListener("click", () => trainer.step());
  $("reset").addEventListener("click", reset);
  $("sample").addEventListener("change", () => {
    drawDiagram();
    if (selected) showSelection().catch(failed);
  });
  $("gradcheck-button").addEventListener("click", () => R.gradcheck().catch(failed));
  $("check").addEventListener("click", checkClaims);
  $("apply-json").addEventListener("click", applyJSON);
  $("export-json").addEventListener("click", exportJSON);
  $("copy-link").addEventListener("click", () => copyLink().catch(failed));
  window.addEventListener("resize", drawDiagram);
  // A card redrawn under the pointer never sees it leave: leaving the whole diagram shows the output again.
  $("diagram").addEventListener("mouseleave", () => P.show(null, null));
  trainer.hooks.state();
  const fragment = location.hash.startsWith("#s=") ? location.hash.slice(3) : null;
  if (fragment) {
    try {
      await restore(fragment);
    } catch (error) {
      $("error").textContent = "This link's setup could not be read: " + error.message;
      await loadExample("seed");
    }
  } else {
    await loadExample("seed");
  }
  document.body.dataset.ready = "true";
}

init().catch((error) => {
  $("error").textContent = error.message;
});
