// devices.js — hall devices as the pages show them (issue 5, D1–D6): kinds and states in words,
// alert levels, the masking rules for an ID card, and the one ID card request of a page.
//
// A card read is personal data: it travels as a VOLATILE event (never stored, never replayed)
// on the asking page's own topic (device:<host id> for a kiosk, staff:<staff id> for a staff
// console; docs/devices/hub.md). Pages put its fields into form fields or show
// them masked; nothing of it is ever written to the console or to storage.

/** Device kinds (hub/domain/access.py DeviceKind) in words, in the order a list shows them. */
export const DEVICE_KIND_TEXT = Object.freeze({
  ticket_machine: "取号机",
  kiosk: "自助服务终端",
  printer: "票据打印机",
  id_reader: "身份证读卡器",
  code_reader: "扫码器",
  evaluator: "评价器",
  window_display: "窗口显示屏",
  hall_display: "综合屏",
  info_terminal: "智能触摸终端",
  scanner: "高拍仪",
  agent: "设备代理",
});

export const DEVICE_KIND_ORDER = Object.keys(DEVICE_KIND_TEXT);

/** Kinds whose page uses attached devices (a printer, an ID or code reader): the hosts
 * (hub/domain/devices.py HOST_KINDS). */
export const HOST_KINDS = Object.freeze(["kiosk", "ticket_machine", "info_terminal"]);
/** Kinds that belong to a host. */
export const HOSTED_KINDS = Object.freeze(["printer", "id_reader", "code_reader"]);
/** Kinds that stand at a window (an id_reader may belong to a host or to a window). */
export const WINDOW_KINDS = Object.freeze(["evaluator", "window_display", "id_reader", "scanner"]);

export const PAPER_TEXT = Object.freeze({ ok: "充足", low: "将尽", out: "缺纸" });

export const ALERT_LEVEL_TEXT = Object.freeze({ critical: "严重", warning: "警告" });

/** Alert codes in words, for an alert whose message is missing. */
export const ALERT_CODE_TEXT = Object.freeze({
  paper_low: "打印纸将尽",
  paper_out: "打印纸用完",
  cover_open: "打印机上盖打开",
  printer_error: "打印机故障",
  device_unreachable: "设备无法连接",
  device_offline: "设备离线",
});

/** Why a card read failed (card_read_failed.reason), for the person at the reader. */
export const CARD_FAILED_TEXT = Object.freeze({
  no_card: "未检测到身份证，请将身份证放在读卡区",
  timeout: "读卡超时，请将身份证放在读卡区后重试",
  read_failed: "读卡失败，请取下身份证后重新放置",
  offline: "读卡器未连接，请联系工作人员",
  no_reader: "本机未配置身份证读卡器",
});

/** The device id of a peer id "device:12" (12), or null. */
export function deviceIdOf(peerId) {
  const match = /^device:(\d+)$/.exec(String(peerId ?? ""));
  return match ? Number(match[1]) : null;
}

/** "2 分钟", "1 小时 5 分钟": how long something has lasted. */
export function durationText(seconds) {
  if (!Number.isFinite(seconds) || seconds < 60) return "不到 1 分钟";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} 分钟`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} 小时 ${minutes % 60} 分钟` : `${hours} 小时`;
  return `${Math.floor(hours / 24)} 天`;
}

/** As hub/domain/identity.py mask_number: the first 3 and last 4 characters of long numbers
 * (first 1 and last 2 of short ones), the rest as "*". */
export function maskNumber(number) {
  const text = String(number ?? "");
  const [head, tail] = text.length >= 12 ? [3, 4] : [1, 2];
  if (text.length <= head + tail) return "*".repeat(text.length);
  return text.slice(0, head) + "*".repeat(text.length - head - tail) + text.slice(-tail);
}

/** As hub/domain/identity.py mask_name: 张三 → 张*, 欧阳娜娜 → 欧***. */
export function maskName(name) {
  const text = String(name ?? "").trim();
  if (!text) return "";
  return text[0] + "*".repeat(Math.max(1, [...text].length - 1));
}

/** "2019.03.01–2039.03.01", "2019.03.01–长期": a card's validity (valid_to null: long-term). */
export function validityText(card) {
  const day = (text) => String(text ?? "").replaceAll("-", ".");
  return `${day(card.valid_from)}–${card.valid_to ? day(card.valid_to) : "长期"}`;
}

/**
 * One page's ID card reads through the hub: `read(args)` sends the websocket command
 * `read_card` and waits for the VOLATILE `card_read` / `card_read_failed` event on the page's
 * own topic (feed them to `onEvent`). A card put on a kiosk's reader without a request arrives
 * with request_id "" and is taken too. Callbacks: onCard(card), onFailed(reason), onState(state)
 * with state "idle" | "reading".
 */
export class CardRequest {
  constructor(client, { onCard, onFailed, onState = () => {}, timeoutMs = 30_000 }) {
    this.client = client;
    this.onCard = onCard;
    this.onFailed = onFailed;
    this.onState = onState;
    this.timeoutMs = timeoutMs;
    this.requestId = null; // the hub's id of the request in flight ("" until its reply)
    this._timer = null;
  }

  get reading() {
    return this.requestId !== null;
  }

  async read(args = {}) {
    if (this.reading) return;
    this.requestId = "";
    this.onState("reading");
    clearTimeout(this._timer);
    // The reader answers within its own timeout; this one only frees the button if the
    // answer is lost with the link.
    this._timer = setTimeout(() => this._finish("timeout"), this.timeoutMs);
    let reply;
    try {
      reply = await this.client.command("read_card", args);
    } catch {
      this._finish("offline");
      return;
    }
    if (!reply.ok) {
      this._finish(reply.error?.code ?? "read_failed");
      return;
    }
    // The event may have come before the reply: then the request is over already.
    if (this.requestId === "") this.requestId = String(reply.data?.request_id ?? "");
  }

  /** An event of the page's own topic; true when it was a card event. */
  onEvent(event) {
    const data = event.data ?? {};
    if (event.name === "card_read") {
      if (!this._mine(data)) return true;
      this._finish(null);
      this.onCard(data.card ?? {});
      return true;
    }
    if (event.name === "card_read_failed") {
      if (!this.reading || !this._mine(data)) return true;
      this._finish(data.reason ?? "read_failed");
      return true;
    }
    return false;
  }

  /** A read of ours, or a card put on the reader unasked (request_id ""). */
  _mine(data) {
    const id = String(data.request_id ?? "");
    return id === "" || this.requestId === "" || id === this.requestId || !this.reading;
  }

  _finish(reason) {
    clearTimeout(this._timer);
    const was = this.reading;
    this.requestId = null;
    this.onState("idle");
    if (reason && was) this.onFailed(reason);
  }
}
