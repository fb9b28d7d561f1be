// A parameter's derivation from POST /v1/explain: the chain rule sample by sample, each step as
// mathematics (its ``latex``, rendered by the vendored KaTeX) or, from a service that does not
// write LaTeX, as its plain ``line``; every factor with its meaning and value; then the reduction.

import { call } from "./api.js";
import { escape, num, sig, table } from "./format.js";
import * as S from "./state.js";

const ALL_SAMPLES_UP_TO = 4; // a larger batch: the sample chosen, and every sample's contribution

/** "k/weights/j/i", "k/biases/j" or "k/neuron/j" as /v1/explain's parameter. */
export function parameterOf(selection) {
  const [k, kind, j, i] = selection.split("/");
  if (kind === "weights") return { layer: Number(k), kind, index: [Number(j), Number(i)] };
  return { layer: Number(k), kind: "biases", index: [Number(j)] };
}

/** KaTeX into ``element`` when it is loaded (and the text, as code, when it is not). */
export function math(element, latex, display = true) {
  const katex = globalThis.katex;
  if (katex) {
    katex.render(latex, element, { displayMode: display, throwOnError: false, output: "htmlAndMathml" });
  } else {
    element.innerHTML = `<code>${escape(latex)}</code>`;
  }
  return element;
}

function symbolOf(p) {
  const [j, i] = p.index;
  return p.kind === "weights" ? `w^{(${p.layer})}_{${j},${i}}` : `b^{(${p.layer})}_{${j}}`;
}

/** Fetch and show the derivation of ``selection`` (for the network shown) in ``container``. */
export async function explain(container, selection, sample) {
  const parameter = parameterOf(selection);
  const neuron = selection.split("/")[1] === "neuron";
  const answer = await call("v1/explain", { ...S.lossBody(), parameter });
  container.innerHTML = "";
  const head = document.createElement("div");
  head.className = "explain-head";
  container.appendChild(head);
  // The notation only: the value is the service's gradient, rounded as its derivations round.
  math(head, `\\frac{\\partial L}{\\partial ${symbolOf(parameter)}} = ${texNumber(answer.gradient)}`);
  const where = document.createElement("p");
  where.className = "note";
  where.innerHTML = neuron
    ? `Neuron ${parameter.index[0]} of layer ${parameter.layer}: its &delta; (the loss's slope in its pre-activation) is what
       every weight into it is multiplied by; shown here as the derivation of its bias, whose gradient is &delta; itself,
       summed over the samples by the reduction. Exact gradient ${num(answer.gradient)}.`
    : `Layer ${parameter.layer}'s ${parameter.kind === "weights" ? `weight from input ${parameter.index[1]} to unit ${parameter.index[0]}` : `bias of unit ${parameter.index[0]}`};
       exact gradient ${num(answer.gradient, 'data-gradient=""')} (the value <code>/v1/gradients</code> returns).`;
  container.appendChild(where);
  const order = [...new Set([sample, ...answer.samples.map((s) => s.sample)])].filter((s) => answer.samples.some((x) => x.sample === s));
  const shown = order.length <= ALL_SAMPLES_UP_TO ? order : order.slice(0, 1);
  let latexSteps = 0;
  for (const s of shown) {
    const sampleOut = answer.samples.find((x) => x.sample === s);
    const box = document.createElement("div");
    box.className = "sample";
    box.innerHTML = `<h3>sample ${s} <small>(contribution ${num(sampleOut.contribution)})</small></h3>`;
    for (const step of sampleOut.steps) {
      const div = document.createElement("div");
      div.className = "step";
      div.innerHTML = `<div class="step-title">${escape(step.symbol)} <small class="note">${escape(step.meaning)}</small> = ${num(step.value)}</div>`;
      const eq = document.createElement("div");
      if (step.latex) {
        eq.className = "math";
        math(eq, step.latex);
        latexSteps++;
      } else {
        eq.className = "line";
        eq.textContent = step.line;
      }
      div.appendChild(eq);
      if (step.factors && step.factors.length) {
        div.insertAdjacentHTML(
          "beforeend",
          "<table class='factors'><caption>factors</caption><tr><th>symbol</th><th>meaning</th><th>value</th></tr>" +
            step.factors.map((f) => `<tr><td>${escape(f.symbol)}</td><td class="meaning">${escape(f.meaning)}</td><td>${num(f.value)}</td></tr>`).join("") +
            "</table>",
        );
      }
      box.appendChild(div);
    }
    container.appendChild(box);
  }
  if (answer.samples.length > shown.length) {
    container.insertAdjacentHTML(
      "beforeend",
      `<p class="note">${answer.samples.length - shown.length} more samples; each one's contribution:</p>` +
        table(
          answer.samples.map((x) => [x.contribution]),
          { corner: "sample", rowLabel: (r) => `sample ${answer.samples[r].sample}`, colLabel: () => "contribution", maxRows: 10, more: "choose a sample above for its steps" },
        ),
    );
  }
  const reduction = document.createElement("div");
  reduction.className = "step reduction";
  reduction.innerHTML = `<div class="step-title">the reduction (${escape(answer.reduction.kind)}) <small class="note">how the samples combine</small> = ${num(answer.reduction.total)}</div>`;
  const eq = document.createElement("div");
  if (answer.reduction.latex) {
    eq.className = "math";
    math(eq, answer.reduction.latex);
    latexSteps++;
  } else {
    eq.className = "line";
    eq.textContent = answer.reduction.line;
  }
  reduction.appendChild(eq);
  container.appendChild(reduction);
  if (!latexSteps) {
    container.insertAdjacentHTML("beforeend", '<p class="note">This service writes its derivations as plain text (no <code>latex</code> fields), shown as they are.</p>');
  }
  container.dataset.selection = selection;
  container.dataset.latex = String(latexSteps);
  return answer;
}

/** A number in LaTeX as the service's derivations write it (6 significant figures). */
function texNumber(x) {
  const special = { inf: "\\infty", "-inf": "-\\infty", nan: "\\text{NaN}" };
  const s = sig(x);
  const m = s.match(/^(-?[\d.]+)e([+-]\d+)$/);
  return special[s] || (m ? `${m[1]} \\times 10^{${Number(m[2])}}` : s);
}
