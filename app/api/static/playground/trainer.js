// Play, pause, step and reset, over a stateless service.
//
// POST /v1/train keeps nothing between requests, and its optimizers have state (SGD's momentum
// buffer, Adam's moments and step count). Training one chunk at a time from the network shown
// would restart that state at every chunk: not the training the numbers claim to be. So every
// request trains from the same place, iteration 0 of this training (state.training.origin), for
// all the iterations so far plus the new ones, and the page shows only the new ones. The network
// shown after t iterations is then exactly POST /v1/train from the origin with iterations t,
// whatever mix of Play, Pause and Step got there; the price is recomputing the first t
// iterations on each request (the service does thousands of small iterations a second).
//
// Play streams (Accept: application/x-ndjson): each recorded iteration's line, with the network
// after its update, is queued as it arrives and shown one per animation frame, so the loss curve
// and the heatmap grow while the page stays responsive; Pause aborts the stream and keeps the
// last iteration shown. Step is one ordinary JSON request for one iteration more.

import { call, stream } from "./api.js";
import * as S from "./state.js";

const MAX_LINES = 300; // new recorded iterations per Play (record_every chosen to fit)
const FRAME_MS = 40; // at most one recorded iteration shown per frame

export class Trainer {
  /** ``hooks.shown(entry)`` after each iteration shown, ``hooks.done(summary)`` at the end, ``hooks.failed(error)``, ``hooks.state()``. */
  constructor(hooks) {
    this.hooks = hooks;
    this.playing = false;
    this.stepping = false;
    this.controller = null;
    this.queue = [];
    this.timer = null;
    this.generation = 0; // bumped by stop(): an answer to an older request is dropped
  }

  get busy() {
    return this.playing || this.stepping;
  }

  /** Train until the iteration in ``problem.iterations`` (another as many when already there). */
  async play() {
    if (this.busy) return;
    const t = S.state.training.iteration;
    const stopAt = S.state.problem.iterations;
    const target = Number.isInteger(stopAt) && stopAt > t ? stopAt : t + (Number.isInteger(stopAt) && stopAt > 0 ? stopAt : 100);
    // Recorded iterations are 1, 1 + every, ...: at most MAX_LINES new ones, and at most as many replayed.
    const every = Math.max(1, Math.ceil((target - t) / MAX_LINES), Math.ceil(t / MAX_LINES));
    this.playing = true;
    const generation = this.generation;
    this.controller = new AbortController();
    this.queue = [];
    this.ended = false;
    this.hooks.state();
    this.pump();
    try {
      const body = S.trainBody(target, every, ["network"]);
      for await (const line of stream("v1/train", body, this.controller.signal)) {
        if (generation !== this.generation) break;
        if ("iteration" in line) {
          if (line.iteration > t) this.queue.push(line); // the first t are a replay, already shown
        } else {
          this.queue.push({ summary: line, iterations: target });
        }
      }
      if (generation === this.generation) this.ended = true;
    } catch (error) {
      if (error.name !== "AbortError" && generation === this.generation) {
        this.stop();
        this.hooks.failed(error);
      }
    }
  }

  /** Show the next queued line; the summary ends the play. */
  pump() {
    if (!this.playing) return;
    const next = this.queue.shift();
    if (next && next.summary) {
      this.stop();
      this.finish(next.summary, next.iterations);
      return;
    }
    if (!next && this.ended) {
      this.stop(); // the stream ended without its summary line
      return;
    }
    if (next) {
      const training = S.state.training;
      training.iteration = next.iteration;
      training.trace.push(next);
      training.finalLoss = undefined;
      S.state.problem.network = next.network;
      this.hooks.shown(next);
    }
    this.timer = setTimeout(() => this.pump(), FRAME_MS);
  }

  /** The training's last line: the network after the last update and final_loss. */
  finish(summary, iterations) {
    const training = S.state.training;
    training.iteration = iterations;
    training.finalLoss = summary.final_loss;
    training.status = summary;
    S.state.problem.network = summary.network;
    this.hooks.done(summary);
  }

  stop() {
    this.generation++;
    this.playing = false;
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.queue = [];
    this.hooks.state();
  }

  pause() {
    if (this.playing) this.stop();
  }

  /** One iteration more: POST /v1/train from the origin with iterations t + 1. */
  async step() {
    if (this.busy) return;
    this.stepping = true;
    this.hooks.state();
    const generation = this.generation;
    const t = S.state.training.iteration + 1;
    try {
      const answer = await call("v1/train", S.trainBody(t, t, ["network"]));
      if (generation !== this.generation) return; // stopped (an edit, a reset) while it ran
      const entry = answer.trace[answer.trace.length - 1];
      S.state.training.trace.push(entry);
      this.stepping = false;
      this.hooks.state();
      this.finish(answer, t);
    } catch (error) {
      if (generation !== this.generation) return;
      this.stepping = false;
      this.hooks.state();
      this.hooks.failed(error);
    }
  }

  /** Train again to ``iterations`` in one request (a shared link's iteration), the curve from its trace. */
  async replay(iterations) {
    const generation = this.generation;
    const every = Math.max(1, Math.ceil(iterations / MAX_LINES));
    const answer = await call("v1/train", S.trainBody(iterations, every, []));
    if (generation !== this.generation) return;
    S.state.training.trace = answer.trace;
    this.finish(answer, iterations);
  }

  /** Back to iteration 0 of this training. */
  reset() {
    this.stop();
    S.state.problem.network = JSON.parse(JSON.stringify(S.state.training.origin));
    S.restart();
  }
}
