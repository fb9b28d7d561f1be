// The numbers as tables, every one labelled (sample, unit, input) and rounded to 6 significant
// figures with the exact value on hover: the forward pass, the loss and gradients, the training
// trace (with what final_loss is), and gradcheck's verdict.

import { call } from "./api.js";
import { escape, num, table } from "./format.js";
import * as S from "./state.js";

const $ = (id) => document.getElementById(id);
const MAX_PARAMETER_COLUMNS = 16;

export function clear() {
  for (const id of ["forward", "loss-result", "gradients", "gradcheck", "trace"]) $(id).innerHTML = "";
}

export function showForward(forward) {
  $("forward").innerHTML = forward.layers
    .map((layer, k) => {
      const opts = { corner: "sample \\ unit", rowLabel: (s) => `sample ${s}`, colLabel: (j) => `unit ${j}`, maxRows: 8 };
      return (
        `<h3>layer ${k} <small>(${escape(S.layers()[k] ? S.layers()[k].activation || "identity" : "")})</small></h3>` +
        table(layer.pre_activation, { ...opts, caption: `pre-activation z<sup>(${k})</sup> = a<sup>(${k - 1})</sup> W<sup>T</sup> + b` }) +
        table(layer.activation, { ...opts, caption: `activation a<sup>(${k})</sup>${k === forward.layers.length - 1 ? " (the output)" : ""}` })
      );
    })
    .join("");
}

export function showGradients(answer) {
  const p = S.state.problem;
  $("loss-result").innerHTML = `loss L = ${num(answer.loss, 'id="loss-value"')} <span class="note">(${escape(p.loss)}, ${escape(
    p.reduction || "mean",
  )} over ${p.inputs.length} sample${p.inputs.length === 1 ? "" : "s"}; the network after iteration ${S.state.training.iteration})</span>`;
  $("gradients").innerHTML = answer.gradients
    .map(
      (g, k) =>
        `<h3>layer ${k}</h3>` +
        table(g.weights, {
          caption: `&part;L/&part;W<sup>(${k})</sup>`,
          corner: "unit \\ input",
          rowLabel: (j) => `unit ${j}`,
          colLabel: (i) => (k === 0 ? `x<sub>${i}</sub>` : `a<sup>(${k - 1})</sup><sub>${i}</sub>`),
        }) +
        table([g.biases], { caption: `&part;L/&part;b<sup>(${k})</sup>`, corner: "", rowLabel: () => "bias", colLabel: (j) => `unit ${j}` }),
    )
    .join("");
}

/** Every parameter of a network, flattened, with its label and its place ("k/weights/j/i"). */
function parameters(network) {
  const out = [];
  network.layers.forEach((l, k) => {
    l.weights.forEach((row, j) => row.forEach((w, i) => out.push({ id: `${k}/weights/${j}/${i}`, label: `w<sup>(${k})</sup><sub>${j},${i}</sub>`, value: w })));
    (l.biases || l.weights.map(() => 0)).forEach((b, j) => out.push({ id: `${k}/biases/${j}`, label: `b<sup>(${k})</sup><sub>${j}</sub>`, value: b }));
  });
  return out;
}

/** The trace so far: each recorded iteration's loss (before its update) and, for a small network, the parameters after it. */
export function showTrace() {
  const training = S.state.training;
  const trace = training.trace;
  if (!trace.length) {
    $("trace").innerHTML = '<p class="note">No training yet: Play or Step.</p>';
    return;
  }
  const withNetwork = trace.filter((e) => e.network);
  const columns = withNetwork.length ? parameters(withNetwork[0].network) : [];
  const showParameters = columns.length && columns.length <= MAX_PARAMETER_COLUMNS;
  let html = "<table id='trace-table'><tr><th>iteration</th><th>loss (before its update)</th>";
  if (showParameters) html += columns.map((c) => `<th>${c.label} after</th>`).join("");
  html += "</tr>";
  const rows = trace.slice(-12);
  if (trace.length > rows.length) html += `<tr><td colspan="${2 + (showParameters ? columns.length : 0)}" class="more">&hellip; ${trace.length - rows.length} earlier recorded iterations (on the curve)</td></tr>`;
  rows.forEach((e) => {
    html += `<tr data-iteration="${e.iteration}"><td>${e.iteration}</td><td>${num(e.loss)}</td>`;
    if (showParameters) {
      html += e.network ? parameters(e.network).map((c) => `<td>${num(c.value, `data-param="${c.id}"`)}</td>`).join("") : `<td colspan="${columns.length}"></td>`;
    }
    html += "</tr>";
  });
  html += "</table>";
  const last = trace[trace.length - 1];
  if (training.finalLoss !== undefined && last.iteration === training.iteration) {
    html += `<p id="final-loss">final_loss = ${num(training.finalLoss)}: the loss of the network <i>after</i> the update of
      iteration ${training.iteration}, the one shown. Iteration ${training.iteration}'s own loss, ${num(last.loss)}, was measured
      before that update (as every trace loss is), so final_loss is the next iteration's loss, one step further down.
      ${training.status && training.status.status === "diverged" ? `<b>Diverged at iteration ${training.status.diverged_at}.</b>` : ""}</p>`;
  } else {
    html += `<p class="note">Paused after iteration ${training.iteration}: the loss of the network shown is in "Loss and gradients" above.</p>`;
  }
  $("trace").innerHTML = html;
}

export async function gradcheck() {
  $("gradcheck").innerHTML = "";
  const answer = await call("v1/gradcheck", S.lossBody());
  const worst = answer.worst;
  let html = `<p id="gradcheck-verdict" class="${answer.passed ? "verdict-ok" : "error"}">${answer.passed ? "passed" : "failed"}
    (torch.autograd.gradcheck's criterion): largest absolute error ${num(answer.max_abs_error)}, largest relative error
    ${num(answer.max_rel_error)}`;
  if (worst) {
    const at = worst.kind === "weights" ? `w<sup>(${worst.layer})</sup><sub>${worst.index.join(",")}</sub>` : `b<sup>(${worst.layer})</sup><sub>${worst.index[0]}</sub>`;
    html += `; worst at ${at}: backprop ${num(worst.analytical)}, central differences ${num(worst.numerical)}`;
  }
  html += "</p>";
  answer.numerical.forEach((g, k) => {
    const a = answer.analytical[k];
    const opts = { corner: "unit \\ input", rowLabel: (j) => `unit ${j}`, colLabel: (i) => (k === 0 ? `x<sub>${i}</sub>` : `a<sup>(${k - 1})</sup><sub>${i}</sub>`) };
    html += `<h3>layer ${k}</h3>`;
    html += table(a.weights, { ...opts, caption: `&part;L/&part;W<sup>(${k})</sup> by backprop` });
    html += table(g.weights, { ...opts, caption: `&part;L/&part;W<sup>(${k})</sup> by central differences` });
    html += table([a.biases, g.biases], { caption: `&part;L/&part;b<sup>(${k})</sup>`, corner: "", rowLabel: (r) => (r ? "differences" : "backprop"), colLabel: (j) => `unit ${j}` });
  });
  $("gradcheck").innerHTML = html;
}
