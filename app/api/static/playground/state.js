// The problem on the page and the training in progress, and how both travel in the URL.
//
// ``problem`` is a POST /v1/train body without what the page asks per request (record,
// record_every): network, inputs, targets, loss, reduction, optimizer, iterations (where Play
// stops), and trainable / class options when there are any. ``problem.network`` is the network
// shown. ``training.origin`` is the network at iteration 0 of the current training, and
// ``training.iteration`` how many updates separate them: the page only ever shows networks that
// are exactly ``POST /v1/train`` from ``origin`` for that many iterations.

export const state = {
  example: null,
  problem: null,
  training: { origin: null, iteration: 0, trace: [], finalLoss: undefined, status: null },
  checkTraining: {},
  seed: 1, // for the weights of an added neuron or layer
};

const clone = (x) => JSON.parse(JSON.stringify(x));
const LOSS_OPTIONS = ["label_smoothing", "class_weights"];

/** A new problem: its network becomes iteration 0 of a new training. */
export function setProblem(problem, example = state.example) {
  state.problem = clone(problem);
  delete state.problem.record;
  delete state.problem.record_every;
  state.example = example;
  restart();
}

/** Start a new training from the network shown (after an edit): the optimizer state restarts. */
export function restart() {
  state.training = { origin: clone(state.problem.network), iteration: 0, trace: [], finalLoss: undefined, status: null };
}

export function forwardBody(network = state.problem.network, inputs = state.problem.inputs) {
  return { network, inputs };
}

/** The body of /v1/loss, /v1/gradients, /v1/gradcheck, /v1/explain, /v1/diagram. */
export function lossBody(network = state.problem.network) {
  const p = state.problem;
  const body = { network, inputs: p.inputs, targets: p.targets, loss: p.loss, reduction: p.reduction || "mean" };
  LOSS_OPTIONS.forEach((k) => {
    if (p[k] !== undefined && p[k] !== null) body[k] = p[k];
  });
  return body;
}

/** A /v1/train body from ``origin`` for ``iterations`` iterations. */
export function trainBody(iterations, recordEvery, record) {
  const body = { ...clone(state.problem), network: state.training.origin, iterations, record_every: recordEvery, record };
  return body;
}

/** The whole problem as the JSON view shows and exports it (the network shown, Play's iterations). */
export function problemJSON() {
  return JSON.stringify(state.problem, null, 1);
}

export const layers = () => state.problem.network.layers;
export const inputWidth = () => layers()[0].weights[0].length;

// -- trainable masks -----------------------------------------------------------------------

export function isFrozen(k, kind, j, i) {
  const mask = state.problem.trainable && state.problem.trainable[k];
  if (!mask) return false;
  return kind === "weights" ? mask.weights[j][i] === false : mask.biases[j] === false;
}

export function toggleFrozen(k, kind, j, i) {
  const ls = layers();
  if (!state.problem.trainable) {
    state.problem.trainable = ls.map((l) => ({ weights: l.weights.map((r) => r.map(() => true)), biases: l.weights.map(() => true) }));
  }
  const mask = state.problem.trainable[k];
  if (kind === "weights") mask.weights[j][i] = !mask.weights[j][i];
  else mask.biases[j] = !mask.biases[j];
}

// -- growing and shrinking the network -----------------------------------------------------

/** A small pseudo-random weight (mulberry32), two decimals: a new neuron's or layer's starting value. */
function weight() {
  let t = (state.seed = (state.seed + 0x6d2b79f5) | 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  return Math.round((u - 0.5) * 100) / 100 || 0;
}

const matrix = (rows, cols) => Array.from({ length: rows }, () => Array.from({ length: cols }, weight));

function syncMasks() {
  const masks = state.problem.trainable;
  if (!masks) return;
  state.problem.trainable = layers().map((l, k) => {
    const old = masks[k];
    const fits = old && old.weights.length === l.weights.length && old.weights[0].length === l.weights[0].length;
    return fits ? old : { weights: l.weights.map((r) => r.map(() => true)), biases: l.weights.map(() => true) };
  });
}

function biasesOf(layer) {
  return layer.biases || layer.weights.map(() => 0);
}

/** One more unit in hidden layer ``k`` (a row there, a column in layer k + 1). */
export function addNeuron(k) {
  const ls = layers();
  ls[k].weights.push(matrix(1, ls[k].weights[0].length)[0]);
  ls[k].biases = [...biasesOf(ls[k]), 0];
  ls[k + 1].weights.forEach((row) => row.push(weight()));
  syncMasks();
}

export function removeNeuron(k) {
  const ls = layers();
  if (ls[k].weights.length <= 1) return;
  ls[k].weights.pop();
  ls[k].biases = biasesOf(ls[k]).slice(0, -1);
  ls[k + 1].weights.forEach((row) => row.pop());
  syncMasks();
}

/** A hidden layer before the output, as wide as the one before it (2 when there is none). */
export function addLayer() {
  const ls = layers();
  const last = ls.length - 1;
  const fanIn = ls[last].weights[0].length;
  const width = last > 0 ? ls[last - 1].weights.length : 2;
  const activation = last > 0 ? ls[last - 1].activation : "tanh";
  ls.splice(last, 0, { weights: matrix(width, fanIn), biases: Array(width).fill(0), activation });
  ls[last + 1].weights = matrix(ls[last + 1].weights.length, width);
  syncMasks();
}

/** The last hidden layer removed; the output layer then reads the one before (new weights). */
export function removeLayer() {
  const ls = layers();
  if (ls.length <= 1) return;
  const removed = ls.splice(ls.length - 2, 1)[0];
  const out = ls[ls.length - 1];
  out.weights = matrix(out.weights.length, removed.weights[0].length);
  syncMasks();
}

// -- the URL -------------------------------------------------------------------------------
//
// #s=<codec>.<base64url>: the JSON {v: 1, e: example, p: problem with the network at iteration 0,
// i: the iteration reached}, deflated (codec "z") where the browser has CompressionStream, else
// plain ("j"). Opening the link trains again from p.network for i iterations.

const b64url = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};
const unb64url = (text) => {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
};

async function through(bytes, transform) {
  const out = await new Response(new Blob([bytes]).stream().pipeThrough(transform)).arrayBuffer();
  return new Uint8Array(out);
}

export async function encodeState() {
  const json = JSON.stringify({ v: 1, e: state.example, p: { ...state.problem, network: state.training.origin }, i: state.training.iteration });
  const bytes = new TextEncoder().encode(json);
  if (typeof CompressionStream === "function") return "z." + b64url(await through(bytes, new CompressionStream("deflate-raw")));
  return "j." + b64url(bytes);
}

export async function decodeState(fragment) {
  const [codec, data] = [fragment.slice(0, 1), fragment.slice(2)];
  let bytes = unb64url(data);
  if (codec === "z") bytes = await through(bytes, new DecompressionStream("deflate-raw"));
  else if (codec !== "j") throw new Error("unknown link format " + codec);
  const saved = JSON.parse(new TextDecoder().decode(bytes));
  if (saved.v !== 1 || !saved.p || !saved.p.network) throw new Error("not a playground link");
  return saved;
}

let pending = null;
/** Write the state into the fragment (coalesced: the last call within 300 ms wins). */
export function saveToURL() {
  clearTimeout(pending);
  pending = setTimeout(async () => {
    if (!state.problem) return;
    history.replaceState(null, "", "#s=" + (await encodeState()));
    document.body.dataset.saved = String(state.training.iteration);
  }, 300);
}
