// "Check your numbers": a learner's own numbers against the problem, by POST /v1/check.

import { call } from "./api.js";
import { escape, num, where } from "./format.js";
import * as S from "./state.js";

const $ = (id) => document.getElementById(id);

/** The claims of an example's check body (and, for a claim about a training, its training's fields). */
export function loadClaims(checkBody) {
  $("claimed").value = JSON.stringify(checkBody.claimed, null, 1);
  S.state.checkTraining = {};
  ["optimizer", "iterations", "trainable"].forEach((k) => {
    if (k in checkBody) S.state.checkTraining[k] = checkBody[k];
  });
  $("verdict").innerHTML = "";
  $("check-error").textContent = "";
}

function checkBody() {
  let claimed;
  try {
    claimed = JSON.parse($("claimed").value);
  } catch (e) {
    throw new Error("claimed is not valid JSON: " + e.message);
  }
  return { ...S.lossBody(S.state.training.origin), ...S.state.checkTraining, claimed };
}

export async function checkClaims() {
  $("check-error").textContent = "";
  $("verdict").innerHTML = "";
  try {
    const answer = await call("v1/check", checkBody());
    let html =
      "<p id='first-wrong'>" +
      (answer.first_wrong === null
        ? "<span class='verdict-ok'>Every number you claimed is right (or follows from your own earlier numbers).</span>"
        : "First wrong number: <b>" + escape(where(answer.first_wrong)) + "</b>") +
      ` &mdash; score ${answer.score} of ${answer.max_score}</p>`;
    html += "<table><tr><th>quantity</th><th>correct</th><th>consistent</th><th>worst element</th><th>claimed</th><th>expected</th></tr>";
    answer.quantities.forEach((q) => {
      const w = q.worst;
      html += `<tr><td>${escape(where(q.path))}</td><td>${q.correct ? "yes" : "no"}</td><td>${q.consistent ? "yes" : "no"}</td>
        <td>${escape(JSON.stringify(w.index))}</td><td>${num(w.claimed)}</td><td>${num(w.expected)}</td></tr>`;
    });
    html += "</table>";
    if (answer.diagnoses.length) {
      html +=
        "<ul id='diagnoses'>" +
        answer.diagnoses
          .map((d) => `<li><b>${escape(d.name)}</b>: ${escape(d.description)} (explains ${d.explains.map((p) => escape(where(p))).join(", ")})</li>`)
          .join("") +
        "</ul>";
    }
    if (answer.search.message) html += `<p class="note">${escape(answer.search.message)}</p>`;
    $("verdict").innerHTML = html;
  } catch (e) {
    $("check-error").textContent = e.message;
  }
}
