// The evaluation pad of one window (D4, O9) in a browser: idle ("欢迎评价") until the window
// finishes a ticket (event rating_requested on window:<id>), then five big grade buttons; a
// bad grade asks for reasons; the rating is posted, "感谢您的评价" shown, and the pad goes
// back to idle after THANKS_MS. A prompt nobody answers goes back to idle after
// ?timeout= seconds (PROMPT_SECONDS).
//
// Address: /evaluator/?hall=<hall id>&window=<window id>&token=<evaluator device token>. The
// token is kept in localStorage (hallhub.device-token) and removed from the address bar.
//
// After a (re)connect the pad asks GET …/rating-request for a finished ticket it may have
// missed; a rating_received for the prompted ticket (rated on a phone or kiosk meanwhile)
// ends the prompt.

import { HubClient } from "../lib/hub-client.js";
import { GRADES, REASONS, gradeLabel, isBad, postRating, problemText } from "../lib/rating.js";
import { clockText, connectionBanner, h, readToken, stopNotice } from "../lib/ui.js";

export const THANKS_MS = 4000;
export const PROMPT_SECONDS = 90;
const DEVICE_TOKEN_KEY = "hallhub.device-token";

const $ = (id) => document.getElementById(id);

class EvaluatorPad {
  constructor({ hall, window: windowId, token, promptSeconds }) {
    this.hall = hall;
    this.windowId = windowId;
    this.token = token;
    this.promptSeconds = promptSeconds;
    this.request = null; // the rating_requested data being asked about
    this.reasons = new Set();
    this.badGrade = null; // the bad grade whose reasons are being chosen
    this.sending = false;
    this._timer = null;
    this.posted = []; // ratings sent (the tests read it)
  }

  get baseUrl() {
    return `/api/halls/${this.hall}/windows/${this.windowId}`;
  }

  build() {
    $("grades").replaceChildren(
      ...GRADES.map(({ grade, label, tone }) =>
        h("button", { type: "button", class: `grade tone-${tone}`, dataset: { grade } }, label),
      ),
    );
    $("reason-list").replaceChildren(
      ...REASONS.map(({ reason, label }) =>
        h("button", { type: "button", class: "reason", "aria-pressed": "false", dataset: { reason } }, label),
      ),
    );
    $("grades").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-grade]");
      if (button) this.choose(button.dataset.grade);
    });
    $("reason-list").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-reason]");
      if (!button) return;
      const on = !this.reasons.has(button.dataset.reason);
      if (on) this.reasons.add(button.dataset.reason);
      else this.reasons.delete(button.dataset.reason);
      button.setAttribute("aria-pressed", String(on));
      $("send").disabled = this.reasons.size === 0 || this.sending;
      this.armTimeout();
    });
    $("back").addEventListener("click", () => this.show("prompt"));
    $("send").addEventListener("click", () => this.send(this.badGrade));
  }

  show(state) {
    for (const id of ["idle", "prompt", "reasons", "thanks"]) $(id).hidden = id !== state;
    if (state !== "prompt" && state !== "reasons") $("error").hidden = true;
    document.body.dataset.state = state;
  }

  /** A finished ticket to ask about (rating_requested, or the pending one after a reconnect). */
  ask(request) {
    if (!request || request.window_id !== this.windowId) return;
    if (this.request?.ticket_id === request.ticket_id && document.body.dataset.state !== "idle") return;
    this.request = request;
    this.reasons.clear();
    this.badGrade = null;
    $("prompt-number").textContent = request.number;
    $("error").hidden = true;
    this.show("prompt");
    this.armTimeout();
  }

  choose(grade) {
    if (!this.request || this.sending) return;
    if (isBad(grade)) {
      this.badGrade = grade;
      this.reasons.clear();
      for (const button of $("reason-list").querySelectorAll("button")) button.setAttribute("aria-pressed", "false");
      $("send").disabled = true;
      this.show("reasons");
      this.armTimeout();
      return;
    }
    this.send(grade);
  }

  async send(grade) {
    if (!this.request || !grade || this.sending) return;
    this.sending = true;
    const rating = {
      ticket_id: this.request.ticket_id,
      grade,
      reasons: isBad(grade) ? REASONS.map((r) => r.reason).filter((r) => this.reasons.has(r)) : [],
    };
    const result = await postRating(`${this.baseUrl}/ratings`, rating, { token: this.token });
    this.sending = false;
    this.posted.push({ rating, status: result.status });
    if (result.ok) {
      this.thank(result.already ? "本次服务已评价" : `您的评价：${gradeLabel(grade)}`);
      return;
    }
    $("error").textContent = problemText(result);
    $("error").hidden = false;
    $("send").disabled = this.reasons.size === 0;
    this.armTimeout();
  }

  thank(detail) {
    this.request = null;
    $("thanks-detail").textContent = detail;
    this.show("thanks");
    this.armTimeout(THANKS_MS);
  }

  idle() {
    clearTimeout(this._timer);
    this.request = null;
    this.show("idle");
  }

  armTimeout(ms = this.promptSeconds * 1000) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.idle(), ms);
  }

  onSnapshot(data) {
    const info = data?.window;
    if (info) {
      $("window-name").textContent = `${info.number}号窗口${info.name && info.name !== `${info.number}号窗口` ? ` · ${info.name}` : ""}`;
    }
    this.fetchPending();
  }

  onEvent(event) {
    if (event.name === "rating_requested") this.ask(event.data);
    else if (event.name === "rating_received" && this.request?.ticket_id === event.data.ticket_id) {
      // Rated elsewhere (the citizen's phone, a kiosk) while the pad was asking.
      this.thank(`您的评价：${gradeLabel(event.data.grade)}`);
    }
  }

  async fetchPending() {
    try {
      const response = await fetch(`${this.baseUrl}/rating-request`, {
        headers: { Authorization: `Bearer ${this.token}` },
        cache: "no-store",
      });
      if (!response.ok) return;
      const pending = await response.json();
      if (pending && document.body.dataset.state === "idle") this.ask(pending);
    } catch (error) {
      console.warn("evaluator: pending request failed", error);
    }
  }
}

function main() {
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  const windowParam = params.get("window");
  if (!hall || !/^\d+$/.test(hall) || !windowParam || !/^\d+$/.test(windowParam)) {
    stopNotice("缺少参数：请在地址后加上 ?hall=大厅编号&window=窗口编号&token=设备令牌。");
    return;
  }
  const token = readToken(params, { key: DEVICE_TOKEN_KEY });
  if (!token) {
    stopNotice("缺少设备令牌：请在地址后加上 &token=评价器的设备令牌。");
    return;
  }
  const timeout = Number.parseInt(params.get("timeout") ?? "", 10);
  const pad = new EvaluatorPad({
    hall: Number(hall),
    window: Number(windowParam),
    token,
    promptSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : PROMPT_SECONDS,
  });
  pad.build();
  const client = new HubClient({ kind: "evaluator", token, client: "evaluator-pad" });
  connectionBanner(client);
  client.subscribe(`window:${windowParam}`, {
    onSnapshot: (data) => pad.onSnapshot(data),
    onEvent: (event) => pad.onEvent(event),
  });
  client.start();
  const tick = () => {
    $("clock").textContent = clockText(client.serverNow()).slice(0, 5);
  };
  tick();
  setInterval(tick, 1000);
  window.hallhub = { client, pad };
}

main();
