// The loss curve, growing as the training's NDJSON lines arrive: each recorded iteration's loss
// (measured before that iteration's update), and final_loss (after the last update) as a ring.

import { sig, exact } from "./format.js";

const W = 460;
const H = 220;
const PAD = { l: 58, r: 14, t: 12, b: 34 };

/** ``trace``: [{iteration, loss}]; ``finalLoss`` the loss after ``lastIteration`` updates (or undefined). */
export function drawCurve(container, trace, finalLoss, lastIteration) {
  const points = trace.filter((e) => Number.isFinite(e.loss)).map((e) => [e.iteration, e.loss]);
  const final = Number.isFinite(finalLoss) ? [lastIteration + 1, finalLoss] : null;
  const all = final ? [...points, final] : points;
  if (!all.length) {
    container.innerHTML = "";
    return;
  }
  const xMax = Math.max(2, ...all.map((p) => p[0]));
  const yMax = Math.max(...all.map((p) => p[1])) || 1;
  const yMin = Math.min(0, ...all.map((p) => p[1]));
  const x = (i) => PAD.l + ((i - 1) / (xMax - 1)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - yMin) / (yMax - yMin || 1)) * (H - PAD.t - PAD.b);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="loss curve">`;
  svg += `<line x1="${PAD.l}" y1="${H - PAD.b}" x2="${W - PAD.r}" y2="${H - PAD.b}" stroke="#9ca3af"/>`;
  svg += `<line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${H - PAD.b}" stroke="#9ca3af"/>`;
  for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
    svg += `<text x="${PAD.l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end" fill="#6b7280">${sig(Number(v.toPrecision(3)))}</text>`;
  }
  for (const i of [1, Math.round((1 + xMax) / 2), xMax]) {
    svg += `<text x="${x(i)}" y="${H - PAD.b + 15}" font-size="11" text-anchor="middle" fill="#6b7280">${i}</text>`;
  }
  svg += `<text x="${(PAD.l + W - PAD.r) / 2}" y="${H - 4}" font-size="11" text-anchor="middle" fill="#6b7280">iteration</text>`;
  if (points.length > 1) {
    svg += `<polyline fill="none" stroke="#0877bd" stroke-width="2" points="${points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ")}"/>`;
  }
  points.slice(-1).concat(points.length <= 40 ? points.slice(0, -1) : []).forEach((p) => {
    svg += `<circle cx="${x(p[0])}" cy="${y(p[1])}" r="3" fill="#0877bd"><title>iteration ${p[0]}: loss ${exact(p[1])}</title></circle>`;
  });
  if (final) {
    svg += `<circle cx="${x(final[0])}" cy="${y(final[1])}" r="4.5" fill="none" stroke="#7c3aed" stroke-width="2"><title>final_loss ${exact(final[1])}: after the update of iteration ${lastIteration}</title></circle>`;
  }
  container.innerHTML = svg + "</svg>";
  container.dataset.points = String(points.length);
  const lastPoint = points[points.length - 1];
  container.dataset.lastLoss = lastPoint ? String(lastPoint[1]) : "";
}
