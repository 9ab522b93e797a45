// announcer.js — the hall display's voice announcements (Q5): "请A001号到3号窗口办理".
//
// Rules:
// - every call is spoken, in the order announce() was called, each to its end: five calls in
//   one second give five complete announcements one after another; nothing is cut off or
//   overwritten (DESIGN.md data flow, step 5);
// - the audio is made by the hub (GET /api/speech/call.wav, espeak-ng): headless Chromium
//   and many hall PCs have no speech voices, and halls have no online service;
// - each item's audio is fetched once into a Blob (one request per announcement) and the
//   next item's is fetched while the current one plays, so announcements follow closely;
// - an item whose audio fails to load or play is skipped after a console warning, and a
//   safety timeout (its duration plus a grace) ends an item whose `ended` never comes: the
//   queue never stalls;
// - where the browser blocks autoplay (play() rejects with NotAllowedError) a full-screen
//   button "点击开启语音播报" asks for one click; the queue is kept and resumes on the click.
//   Hall PCs started with `--autoplay-policy=no-user-gesture-required` never show it.
//
// Usage:
//   const announcer = new Announcer({ onSpeaking: (text) => highlight(text) });
//   announcer.announce({ ticketNo: "A001", windowNumber: 3 });            // call
//   announcer.announce({ ticketNo: "A001", windowNumber: 3, kind: "recall" });
//   window.addEventListener("announce-end", (e) => e.detail.outcome);     // ended | error | timeout
//
// Events on `window` (CustomEvent, detail = the item's public fields):
//   announce-start {text, url, ticketNo, windowNumber, kind, startedAt}
//   announce-end   {…, startedAt, endedAt, outcome}    outcome: ended | error | timeout | stopped
//   announce-skip  {…, reason}            never started: reason load (the audio could not be
//                                         fetched), error (not playable), overflow (queue full)
//   announce-blocked {…}                  autoplay refused: the unlock button is shown

import { h } from "./ui.js";

export const UNLOCK_TEXT = "点击开启语音播报";
export const SPEECH_PATH = "/api/speech/call.wav";

// The same rules as hub/domain/announce.py (the e2e test compares the two).
const TICKET_NUMBER = /^[A-Z]{1,2}[0-9]{3,4}$/;
const WINDOW_MAX = 999;
const WINDOW_NAME = /^[\u4e00-\u9fff]{1,12}$/;
const KINDS = new Set(["call", "recall"]);

/**
 * The spoken sentence: callText({ticketNo: "A001", windowNumber: 3}) is "请A001号到3号窗口办理";
 * kind "recall" adds 再次; a windowName ("综合受理") is spoken before 窗口. Throws RangeError on
 * a malformed ticket number, window number, name or kind.
 */
export function callText({ ticketNo, windowNumber, kind = "call", windowName = null }) {
  if (typeof ticketNo !== "string" || !TICKET_NUMBER.test(ticketNo)) {
    throw new RangeError(`announcer: bad ticket number ${JSON.stringify(ticketNo)}`);
  }
  if (!Number.isInteger(windowNumber) || windowNumber < 1 || windowNumber > WINDOW_MAX) {
    throw new RangeError(`announcer: bad window number ${JSON.stringify(windowNumber)}`);
  }
  if (!KINDS.has(kind)) throw new RangeError(`announcer: bad kind ${JSON.stringify(kind)}`);
  let name = (windowName ?? "").trim();
  if (name.endsWith("窗口")) name = name.slice(0, -2);
  if ((windowName ?? "").trim() && !WINDOW_NAME.test(name)) {
    throw new RangeError(`announcer: bad window name ${JSON.stringify(windowName)}`);
  }
  const again = kind === "recall" ? "再次" : "";
  return `请${ticketNo}号${again}到${windowNumber}号${name}窗口办理`;
}

/** The hub's audio of a call: /api/speech/call.wav?ticket=A001&window=3[&kind=recall]. */
export function callAudioUrl({ ticketNo, windowNumber, kind = "call" }, base = "") {
  const query = new URLSearchParams({ ticket: ticketNo, window: String(windowNumber) });
  if (kind !== "call") query.set("kind", kind);
  return `${base}${SPEECH_PATH}?${query}`;
}

/** Add announcer.css to the page once (so a page needs only the import). */
function ensureStyles() {
  const href = new URL("./announcer.css", import.meta.url).href;
  if ([...document.styleSheets].some((sheet) => sheet.href === href)) return;
  if (document.querySelector(`link[data-announcer-css]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href, dataset: { announcerCss: "" } }));
}

/** A loudspeaker drawn in SVG: hall PCs often have no emoji font. */
function speakerIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "announcer-unlock-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute(
    "d",
    "M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.6v2.1a9 9 0 0 0 0-17.8z",
  );
  svg.append(path);
  return svg;
}

export class Announcer {
  /**
   * @param {object} options
   * @param {string} [options.base] origin of the hub ("" = this page's).
   * @param {(text: string|null, item: object|null) => void} [options.onSpeaking] called with
   *   the text when an announcement starts and with null when nothing is playing.
   * @param {number} [options.lookahead] items fetched ahead of the one playing.
   * @param {number} [options.loadTimeoutMs] a fetch taking longer is abandoned (item skipped).
   * @param {number} [options.graceMs] added to an item's duration for its safety timeout.
   * @param {number} [options.maxQueue] waiting items kept; beyond it the oldest waiting one
   *   is dropped (announce-skip, reason "overflow"): a display back from a long outage
   *   should not read out calls from minutes ago.
   * @param {EventTarget} [options.target] where the events are dispatched (window).
   * @param {HTMLElement} [options.parent] where the unlock overlay goes (document.body).
   */
  constructor({
    base = "",
    onSpeaking = null,
    lookahead = 1,
    loadTimeoutMs = 15000,
    graceMs = 3000,
    maxQueue = 50,
    target = window,
    parent = document.body,
  } = {}) {
    this.base = base;
    this.onSpeaking = onSpeaking;
    this.lookahead = lookahead;
    this.loadTimeoutMs = loadTimeoutMs;
    this.graceMs = graceMs;
    this.maxQueue = maxQueue;
    this.target = target;
    this.parent = parent;
    /** Every announcement that started: {text, url, ticketNo, windowNumber, kind, duration,
     * startedAt, endedAt, outcome}; duration in seconds (null if unknown), times in
     * performance.now() milliseconds. */
    this.history = [];
    this.blocked = false;
    this._queue = [];
    this._running = false;
    this._disposed = false;
    this._audio = new Audio();
    this._audio.preload = "auto";
    this._overlay = null;
    this._stopCurrent = null;
    ensureStyles();
  }

  /** Announcements waiting, including the one playing. */
  get pending() {
    return this._queue.length;
  }

  /**
   * Queue one announcement; returns its text. It plays after every earlier one has ended.
   * Throws RangeError for a malformed ticket or window number (nothing is queued).
   * Window names are not spoken: the hub's audio endpoint takes numbers only.
   */
  announce({ ticketNo, windowNumber, kind = "call" }) {
    const text = callText({ ticketNo, windowNumber, kind });
    const item = {
      text,
      url: callAudioUrl({ ticketNo, windowNumber, kind }, this.base),
      ticketNo,
      windowNumber,
      kind,
      load: null, // Promise<{src, duration}> once fetching started
      src: null,
    };
    this._queue.push(item);
    while (this._queue.length > this.maxQueue) {
      // Never the head: it may be playing.
      const [dropped] = this._queue.splice(1, 1);
      this._release(dropped);
      this._emit("announce-skip", dropped, { reason: "overflow" });
    }
    this._run();
    return text;
  }

  /** Stop: the current announcement is paused, the queue emptied, the overlay removed. */
  dispose() {
    this._disposed = true;
    this._stopCurrent?.();
    this._audio.pause();
    for (const item of this._queue) this._release(item);
    this._queue = [];
    this._overlay?.remove();
    this._overlay = null;
  }

  // --- the queue ------------------------------------------------------------------------

  async _run() {
    if (this._running || this.blocked || this._disposed) return;
    this._running = true;
    try {
      while (this._queue.length && !this._disposed) {
        const item = this._queue[0];
        this._prefetch();
        let loaded;
        try {
          loaded = await item.load;
        } catch (error) {
          console.warn(`announcer: no audio for ${item.text}, skipped`, error);
          this._queue.shift();
          this._release(item);
          this._emit("announce-skip", item, { reason: "load" });
          continue;
        }
        const outcome = await this._play(item, loaded);
        if (outcome === "blocked") {
          // Keep the item at the head; the click on the overlay resumes from it.
          this._block(item);
          return;
        }
        this._queue.shift();
        this._release(item);
      }
      this.onSpeaking?.(null, null);
    } finally {
      this._running = false;
    }
  }

  _prefetch() {
    for (const item of this._queue.slice(0, 1 + this.lookahead)) {
      if (!item.load) {
        item.load = this._load(item);
        // Handled when the item's turn comes; do not report it as unhandled meanwhile.
        item.load.catch(() => {});
      }
    }
  }

  async _load(item) {
    const response = await fetch(item.url, { signal: AbortSignal.timeout(this.loadTimeoutMs) });
    if (!response.ok) throw new Error(`HTTP ${response.status} for ${item.url}`);
    const duration = Number.parseFloat(response.headers.get("X-Audio-Duration") ?? "");
    const blob = await response.blob();
    item.src = URL.createObjectURL(blob);
    return { src: item.src, duration: Number.isFinite(duration) ? duration : null };
  }

  /** Play one item to its end. Resolves "ended" | "error" | "timeout" | "blocked" |
   * "stopped" (dispose). An item that never started is reported by announce-skip. */
  _play(item, { src, duration }) {
    const audio = this._audio;
    return new Promise((resolve) => {
      let started = false;
      let done = false;
      let timer = null;
      const finish = (outcome) => {
        // A failed play() and the element's `error` event may both report one failure.
        if (done) return;
        done = true;
        this._stopCurrent = null;
        clearTimeout(timer);
        audio.removeEventListener("ended", onEnded);
        audio.removeEventListener("error", onError);
        if (started) this._ended(item, outcome);
        else if (outcome !== "blocked") this._emit("announce-skip", item, { reason: outcome });
        resolve(outcome);
      };
      this._stopCurrent = () => {
        audio.pause();
        finish("stopped");
      };
      const onEnded = () => finish("ended");
      const onError = () => {
        console.warn(`announcer: cannot play ${item.text}`, audio.error);
        finish("error");
      };
      const arm = () => {
        // The duration from the hub, else the element's, else the load timeout: an item
        // whose `ended` never comes still ends, and the queue goes on.
        const seconds = duration ?? (Number.isFinite(audio.duration) ? audio.duration : null);
        const limit = (seconds === null ? this.loadTimeoutMs : seconds * 1000) + this.graceMs;
        clearTimeout(timer);
        timer = setTimeout(() => {
          console.warn(`announcer: ${item.text} did not end after ${limit} ms, skipped`);
          audio.pause();
          finish("timeout");
        }, limit);
      };
      audio.addEventListener("ended", onEnded);
      audio.addEventListener("error", onError);
      audio.src = src;
      arm();
      audio.play().then(
        () => {
          started = true;
          this._started(item, duration ?? (Number.isFinite(audio.duration) ? audio.duration : null));
          arm(); // from the real start
        },
        (error) => {
          if (error?.name === "NotAllowedError") {
            finish("blocked");
          } else if (error?.name !== "AbortError") {
            console.warn(`announcer: cannot play ${item.text}`, error);
            finish("error");
          }
        },
      );
    });
  }

  _started(item, duration) {
    const entry = {
      text: item.text,
      url: item.url,
      ticketNo: item.ticketNo,
      windowNumber: item.windowNumber,
      kind: item.kind,
      duration,
      startedAt: performance.now(),
      endedAt: null,
      outcome: null,
    };
    item.entry = entry;
    this.history.push(entry);
    this.onSpeaking?.(item.text, entry);
    this._emit("announce-start", item, { startedAt: entry.startedAt });
  }

  _ended(item, outcome) {
    const entry = item.entry;
    entry.endedAt = performance.now();
    entry.outcome = outcome;
    this._emit("announce-end", item, {
      startedAt: entry.startedAt,
      endedAt: entry.endedAt,
      outcome,
    });
  }

  _release(item) {
    if (item?.src) URL.revokeObjectURL(item.src);
  }

  _emit(name, item, extra = {}) {
    const { text, url, ticketNo, windowNumber, kind } = item;
    this.target.dispatchEvent(
      new CustomEvent(name, { detail: { text, url, ticketNo, windowNumber, kind, ...extra } }),
    );
  }

  // --- autoplay blocked: one click --------------------------------------------------------

  _block(item) {
    this.blocked = true;
    this._showOverlay();
    this._emit("announce-blocked", item);
  }

  _showOverlay() {
    if (!this._overlay) {
      const button = h(
        "button",
        { class: "announcer-unlock", type: "button" },
        speakerIcon(),
        h("span", { class: "announcer-unlock-text" }, UNLOCK_TEXT),
        h("span", { class: "announcer-unlock-detail" }, "浏览器需要点击一次才能播放叫号语音"),
      );
      this._overlay = h("div", { class: "announcer-overlay", role: "dialog", "aria-modal": "true" }, button);
      // The whole overlay takes the click: a hall PC's user should not have to aim.
      this._overlay.addEventListener("click", () => this._unlock());
      this.parent.append(this._overlay);
    }
    this._overlay.hidden = false;
    this._overlay.querySelector("button").focus();
  }

  _unlock() {
    this._overlay.hidden = true;
    this.blocked = false;
    // Inside the click (the user activation): the head item is played again at once.
    this._run();
  }
}
