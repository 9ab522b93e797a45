// hub-client.js — the one websocket client of every hallhub page.
//
// Same rules as the Python peer client (realtime/client.py):
// - per topic it keeps the last {epoch, seq} applied and sends them in `hello` after every
//   reconnect, so the hub replays the missed events or sends a snapshot;
// - an event with seq <= last is a duplicate and is dropped; a gap (seq > last + 1), another
//   epoch or an event without a base asks for a snapshot and events are dropped until it
//   comes; volatile events (seq null) pass untouched. Asking is `unsubscribe` then
//   `subscribe` with a null position: the gateway ignores a subscribe for a topic it has;
// - a heartbeat goes out after heartbeat_seconds / 3 without any frame sent: the gateway
//   closes any peer (4410) that stays silent past heartbeat_seconds;
// - a link that carries nothing (no tick, no frame) for 3 × tick_seconds is dead: it is
//   dropped and the client reconnects with exponential backoff and full jitter.
//
// Usage:
//   const client = new HubClient({ kind: "console", token });
//   client.subscribe("presence:12", { onSnapshot(data, meta) {…}, onEvent(event) {…} });
//   client.addEventListener("state", (e) => e.detail.state); // connecting | live | reconnecting
//   client.start();

// Close codes after which the same token and topics cannot succeed (realtime/errors.py).
// A page on a wall keeps retrying at the slowest pace, so a fixed token recovers unattended.
export const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4404]);

export const DEAD_AFTER_TICKS = 3;

export const Verdict = Object.freeze({
  APPLY: "apply",
  VOLATILE: "volatile",
  DUPLICATE: "duplicate",
  WAITING: "waiting",
  GAP: "gap",
  EPOCH: "epoch",
  NO_BASE: "no_base",
  UNSUBSCRIBED: "unsubscribed",
});

const NEEDS_SNAPSHOT = new Set([Verdict.GAP, Verdict.EPOCH, Verdict.NO_BASE]);

/** Exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, base·2ⁿ)]. */
export class Backoff {
  constructor({ base = 0.5, cap = 10, random = Math.random } = {}) {
    this.base = base;
    this.cap = cap;
    this.random = random;
    this.attempt = 0;
  }

  /** Seconds to wait before the next attempt. */
  next() {
    const window = Math.min(this.cap, this.base * 2 ** Math.min(this.attempt, 32));
    this.attempt += 1;
    return window * this.random();
  }

  reset() {
    this.attempt = 0;
  }
}

/** Per-topic {epoch, seq} and the dedupe and gap rules; no I/O (mirrors TopicPositions). */
export class TopicPositions {
  constructor(topics = []) {
    this._positions = new Map(); // topic -> {epoch, seq} | null
    this._awaiting = new Set();
    for (const topic of topics) this.add(topic);
  }

  get topics() {
    return [...this._positions.keys()];
  }

  add(topic) {
    if (this._positions.has(topic)) return false;
    this._positions.set(topic, null);
    return true;
  }

  remove(topic) {
    this._positions.delete(topic);
    this._awaiting.delete(topic);
  }

  awaiting(topic) {
    return this._awaiting.has(topic);
  }

  /** The position to send: null epoch and seq when unknown or waiting for a snapshot. */
  position(topic) {
    const pos = this._positions.get(topic);
    if (!pos || this._awaiting.has(topic)) return { topic, epoch: null, seq: null };
    return { topic, epoch: pos.epoch, seq: pos.seq };
  }

  positions() {
    return this.topics.map((topic) => this.position(topic));
  }

  requestSnapshot(topic) {
    this._positions.set(topic, null);
    this._awaiting.add(topic);
  }

  /** One entry of welcome/subscribed; true if the caller must ask for a snapshot. */
  onTopicState(state) {
    if (!this._positions.has(state.topic)) return false;
    if (state.resume === "snapshot") {
      this._awaiting.add(state.topic);
      return false;
    }
    this._awaiting.delete(state.topic);
    if (state.resume === "events") return false; // missed events follow
    const pos = this._positions.get(state.topic);
    if (pos === null) {
      this._positions.set(state.topic, { epoch: state.epoch, seq: state.seq });
      return false;
    }
    if (pos.epoch !== state.epoch || pos.seq !== state.seq) {
      this.requestSnapshot(state.topic);
      return true;
    }
    return false;
  }

  onEvent(event) {
    if (!this._positions.has(event.topic)) return Verdict.UNSUBSCRIBED;
    if (event.seq === null || event.seq === undefined) return Verdict.VOLATILE;
    if (this._awaiting.has(event.topic)) return Verdict.WAITING;
    const pos = this._positions.get(event.topic);
    let verdict;
    if (pos === null) verdict = Verdict.NO_BASE;
    else if (pos.epoch !== event.epoch) verdict = Verdict.EPOCH;
    else if (event.seq <= pos.seq) return Verdict.DUPLICATE;
    else if (event.seq > pos.seq + 1) verdict = Verdict.GAP;
    else {
      this._positions.set(event.topic, { epoch: event.epoch, seq: event.seq });
      return Verdict.APPLY;
    }
    this.requestSnapshot(event.topic);
    return verdict;
  }

  onSnapshot(snapshot) {
    if (!this._positions.has(snapshot.topic)) return false;
    this._positions.set(snapshot.topic, { epoch: snapshot.epoch, seq: snapshot.seq });
    this._awaiting.delete(snapshot.topic);
    return true;
  }

  onResync(topics) {
    for (const topic of topics) {
      if (this._positions.has(topic)) this.requestSnapshot(topic);
    }
  }
}

/** The gateway's URL from the hub's HTTP API (same host as the page). */
export async function discoverGateway(configUrl = "/api/realtime", timeoutMs = 5000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const response = await fetch(configUrl, { cache: "no-store", signal: abort.signal });
    if (!response.ok) throw new Error(`${configUrl}: HTTP ${response.status}`);
    const config = await response.json();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return { url: `${scheme}://${location.hostname}:${config.gateway_port}/`, tickSeconds: config.tick_seconds };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The link to the hub. Events dispatched (EventTarget):
 * - "state": detail {state: "connecting"|"live"|"reconnecting"|"stopped", reason, code, retryIn}
 * - "welcome": detail = the welcome frame
 * - "command": detail = a command frame from the hub (devices answer with reply())
 */
export class HubClient extends EventTarget {
  constructor({
    kind,
    token = null,
    client = "hallhub-web",
    url = null,
    configUrl = "/api/realtime",
    backoff = new Backoff(),
    firstFrameTimeout = 10,
    heartbeat = true,
  } = {}) {
    super();
    this.kind = kind;
    this.token = token;
    this.client = client;
    this.url = url;
    this.configUrl = configUrl;
    this.backoff = backoff;
    this.firstFrameTimeout = firstFrameTimeout;
    this.heartbeat = heartbeat;
    this.positions = new TopicPositions();
    this.state = "stopped";
    this.welcome = null;
    this.tickSeconds = null;
    this._handlers = new Map();
    this._ws = null;
    this._deadline = null;
    this._retryTimer = null;
    this._heartbeatTimer = null;
    this._lastSent = 0;
    this._clockOffset = 0; // server unix seconds minus Date.now()/1000
    this._pending = new Map();
    this._nextId = 1;
    this._idPrefix = Math.random().toString(16).slice(2, 10);
    this._stopped = true;
  }

  /** Follow a topic. handlers: {onSnapshot(data, meta), onEvent(event)}. Returns an undo. */
  subscribe(topic, handlers) {
    this._handlers.set(topic, handlers);
    if (this.positions.add(topic) && this.state === "live") {
      this._send({ type: "subscribe", topics: [this.positions.position(topic)] });
    }
    return () => this.unsubscribe(topic);
  }

  unsubscribe(topic) {
    this._handlers.delete(topic);
    this.positions.remove(topic);
    if (this.state === "live") this._send({ type: "unsubscribe", topics: [topic] });
  }

  start() {
    if (!this._stopped) return;
    this._stopped = false;
    this._connect();
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._drop("stopped", 1000);
    this._setState("stopped", { reason: "stopped" });
  }

  /** The hub's clock in unix seconds (hall PCs' clocks drift; welcome and ticks carry it). */
  serverNow() {
    return Date.now() / 1000 + this._clockOffset;
  }

  /** Send a command; resolves with the reply frame, rejects if the link drops first. */
  command(name, args = {}) {
    const id = `${this._idPrefix}-${this._nextId++}`;
    return new Promise((resolve, reject) => {
      if (this.state !== "live") {
        reject(new Error("hub link is not live"));
        return;
      }
      this._pending.set(id, { resolve, reject });
      this._send({ type: "command", id, name, args });
    });
  }

  reply(id, ok, data = null, error = null) {
    this._send({ type: "reply", id, ok, data, error });
  }

  sendDeviceEvent(key, name, data = {}) {
    return this._send({ type: "device_event", key, name, data });
  }

  // --- one connection -----------------------------------------------------------------

  async _connect() {
    if (this._stopped) return;
    // "connecting" only before the first attempt; after a failure the page keeps showing
    // "reconnecting" until a welcome.
    if (this.state === "stopped") this._setState("connecting");
    let url = this.url;
    if (!url) {
      try {
        url = (await discoverGateway(this.configUrl)).url;
      } catch (error) {
        this._retry(`config: ${error.message}`, null);
        return;
      }
      if (this._stopped) return;
    }
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      this._retry(`open: ${error.message}`, null);
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._arm(this._silenceLimit());
    ws.onopen = () => {
      this._send({
        type: "hello", kind: this.kind, token: this.token, topics: this.positions.positions(),
        client: this.client,
      });
    };
    ws.onmessage = (message) => {
      if (ws !== this._ws) return;
      this._arm(this._silenceLimit());
      let frame;
      try {
        const text = typeof message.data === "string" ? message.data : new TextDecoder().decode(message.data);
        frame = JSON.parse(text);
      } catch (error) {
        console.warn("hub-client: bad frame", error);
        return;
      }
      this._onFrame(frame);
    };
    ws.onclose = (close) => {
      if (ws === this._ws) this._drop(`closed ${close.code} ${close.reason}`.trim(), close.code);
    };
    ws.onerror = () => {}; // a close event follows
  }

  /** Seconds of silence after which the link is dead: 3 ticks, or the first-frame timeout
   * while no tick period is known yet. */
  _silenceLimit() {
    return this.tickSeconds ? DEAD_AFTER_TICKS * this.tickSeconds : this.firstFrameTimeout;
  }

  /** (Re)start the liveness deadline: any frame, ticks included, pushes it back. */
  _arm(seconds) {
    clearTimeout(this._deadline);
    this._deadline = setTimeout(() => {
      console.warn(`hub-client: silent for ${seconds} s, reconnecting`);
      this._drop(`silent for ${seconds} s`, null);
    }, seconds * 1000);
  }

  /** End the current link (if any) and schedule the next attempt. */
  _drop(reason, code) {
    const ws = this._ws;
    this._ws = null;
    clearTimeout(this._deadline);
    clearInterval(this._heartbeatTimer);
    for (const { reject } of this._pending.values()) reject(new Error("hub link lost"));
    this._pending.clear();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      // A silent link may never answer a closing handshake: do not wait for its close event.
      try {
        ws.close(code === 1000 ? 1000 : 4000, "client reconnecting");
      } catch {
        /* already closed */
      }
    }
    if (!this._stopped && ws) this._retry(reason, code);
  }

  _retry(reason, code) {
    if (this._stopped) return;
    clearTimeout(this._retryTimer);
    const retryIn = FATAL_CLOSE_CODES.has(code) ? this.backoff.cap : this.backoff.next();
    this._setState("reconnecting", { reason, code, retryIn });
    this._retryTimer = setTimeout(() => this._connect(), retryIn * 1000);
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        this.welcome = frame;
        this.tickSeconds = frame.tick_seconds;
        this._clockOffset = frame.server_time - Date.now() / 1000;
        this._arm(this._silenceLimit());
        this._onTopicStates(frame.topics);
        this.backoff.reset();
        this._startHeartbeats(frame.heartbeat_seconds);
        this._setState("live");
        this.dispatchEvent(new CustomEvent("welcome", { detail: frame }));
        break;
      case "subscribed":
        this._onTopicStates(frame.topics);
        break;
      case "event": {
        const verdict = this.positions.onEvent(frame);
        if (verdict === Verdict.APPLY || verdict === Verdict.VOLATILE) {
          this._call(frame.topic, "onEvent", frame);
        } else if (NEEDS_SNAPSHOT.has(verdict)) {
          this._requestSnapshot(frame.topic);
        }
        break;
      }
      case "snapshot":
        if (this.positions.onSnapshot(frame)) {
          this._call(frame.topic, "onSnapshot", frame.data, {
            topic: frame.topic, epoch: frame.epoch, seq: frame.seq,
          });
        }
        break;
      case "tick":
        this._clockOffset = frame.ts - Date.now() / 1000;
        break;
      case "resync":
        this.positions.onResync(frame.topics);
        break;
      case "reply": {
        const pending = this._pending.get(frame.id);
        this._pending.delete(frame.id);
        if (pending) pending.resolve(frame);
        break;
      }
      case "command":
        this.dispatchEvent(new CustomEvent("command", { detail: frame }));
        break;
      default:
        console.warn("hub-client: unexpected frame", frame.type);
    }
  }

  _onTopicStates(states) {
    for (const state of states) {
      if (this.positions.onTopicState(state)) {
        this._requestSnapshot(state.topic);
      }
    }
  }

  _requestSnapshot(topic) {
    // The gateway skips a subscribe for a topic the peer already has, so leave it first; a
    // null position then always gets a snapshot.
    this._send({ type: "unsubscribe", topics: [topic] });
    this._send({ type: "subscribe", topics: [{ topic, epoch: null, seq: null }] });
  }

  _startHeartbeats(heartbeatSeconds) {
    clearInterval(this._heartbeatTimer);
    if (!this.heartbeat || !heartbeatSeconds) return;
    // Any frame counts; a heartbeat goes only when nothing else went out for a third of the
    // deadline. Checked twice per period so the gap never exceeds half a period more.
    const period = (heartbeatSeconds / 3) * 1000;
    this._heartbeatTimer = setInterval(() => {
      if (Date.now() - this._lastSent >= period / 2) this._send({ type: "heartbeat" });
    }, period / 2);
  }

  _call(topic, name, ...args) {
    const handler = this._handlers.get(topic)?.[name];
    if (!handler) return;
    try {
      handler(...args);
    } catch (error) {
      // One page bug must not stop the stream for the other topics.
      console.error(`hub-client: ${name} for ${topic} failed`, error);
    }
  }

  _send(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    this._lastSent = Date.now();
    return true;
  }

  _setState(state, { reason = "", code = null, retryIn = null } = {}) {
    if (state === this.state && state !== "reconnecting") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, reason, code, retryIn } }));
  }
}
