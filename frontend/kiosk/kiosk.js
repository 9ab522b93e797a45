// Ticket kiosk (自助取号, Q1, Q3, Q4, O2, D1, D2, D5): one large button per active service
// group with its waiting count; optionally an identity document (typed, or read from the ID
// card reader) and the green channel; or an appointment's check-in by its 6-digit code (typed
// or scanned). The new ticket is shown big with its QR code (the citizen's page /ticket/?t=…)
// and how many are ahead, then the kiosk returns to the start.
//
// Address: /kiosk/?hall=<id>[&device_token=<token>][&device_kind=kiosk|ticket_machine]. The
// device token of the hall's kiosk or ticket machine (kept in localStorage
// "hallhub.device_token", its kind in "hallhub.device_kind"; "kiosk" unless told) makes its
// tickets the device's, and the page a device peer of the hub; without one the page issues
// online tickets (rate-limited, no green channel, no check-in: the hub takes those from the
// hall's devices only) and follows the hall publicly.
//
// Topics: hall:<id> (the live waiting counts) and, as a device, device:<own id> (the id from
// the welcome's peer.id "device:<n>"): its snapshot and printer_state events say whether an
// attached printer can print (else e-ticket mode: a banner, and the QR shown as the ticket);
// print_failed offers the ticket whose print failed as an e-ticket; card_read (VOLATILE, after
// the command read_card or a card put on the reader) fills the ID form, never the console;
// code_scanned checks an appointment in or shows a ticket's status.

import { deviceClient, followDevice, readDeviceToken } from "../lib/device-token.js";
import { followHall } from "../lib/hall-page.js";
import {
  applyQueueEvent,
  groupEstimateSeconds,
  isQueueEvent,
  minutes,
  minutesText,
  queueFromSnapshot,
  TICKET_STATUS_TEXT,
} from "../lib/queue-state.js";
import { CARD_FAILED_TEXT, CardRequest } from "../lib/devices.js";
import { documentOptions, h, showHallName, stopNotice } from "../lib/ui.js";

export const DEVICE_TOKEN_KEY = "hallhub.device_token";
export const DEVICE_KIND_KEY = "hallhub.device_kind";
// The device kinds whose page this is (the hub checks the hello's kind against the token).
export const KIOSK_KINDS = Object.freeze(["kiosk", "ticket_machine", "info_terminal"]);
export const RETURN_SECONDS = 20;
// An e-ticket stays longer: the citizen has to take out a phone and scan it.
export const E_TICKET_RETURN_SECONDS = 60;
const PAGE_TITLE = "自助取号";
// The start screen forgets a typed document number after this long without a touch.
const IDLE_RESET_MS = 60_000;
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "X", "0", "⌫"];
const CODE_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "⌫"];
const APPOINTMENT_CODE = /^[0-9]{6}$/;

// The hub's problem codes (RFC 9457 `code`) in words for the citizen.
const ERROR_TEXT = {
  invalid_id_document: "证件号码有误，请核对证件类型和号码后重新输入",
  ticket_limit_reached: "该证件今日取号次数已达上限，如有疑问请咨询工作人员",
  group_closed: "该业务暂停取号，或今日号源已取完",
  hall_closed: "当前不在取号时间，请在办公时间内取号",
  rate_limited: "操作过于频繁，请稍后再试",
  forbidden: "本设备不能办理此项取号，请咨询工作人员",
  unauthenticated: "本机尚未登记或登记已失效，请联系工作人员",
  not_found: "该业务已调整，请重新选择",
};

// The same codes where an appointment is checked in (hub/domain/appointment.py).
const CHECK_IN_ERROR_TEXT = {
  ...ERROR_TEXT,
  not_found: "未找到该预约，请核对预约码",
  checkin_too_early: "还未到签到时间，请在预约时段开始前半小时内签到",
  checkin_too_late: "已超过签到时间，请直接取号或咨询工作人员",
  appointment_cancelled: "该预约已取消，请直接取号",
  already_checked_in: "该预约已签到取号，请勿重复签到",
  forbidden: "本设备不能办理预约签到，请咨询工作人员",
};

const $ = (id) => document.getElementById(id);

/** The words for a failed request (`checkIn`: an appointment's): a problem's code, else a
 * generic sentence. */
export function errorText(problem, { checkIn = false } = {}) {
  if (!problem) return "网络异常，请稍后重试";
  const texts = checkIn ? CHECK_IN_ERROR_TEXT : ERROR_TEXT;
  if (texts[problem.code]) return texts[problem.code];
  if (problem.code === "invalid_input") {
    const onDocument = (problem.errors ?? []).some((e) => String(e.field).startsWith("body.id_document"));
    return onDocument ? ERROR_TEXT.invalid_id_document : "输入有误，请检查后重试";
  }
  return "取号失败，请稍后重试或咨询工作人员";
}

// How the ticket reaches the citizen (the issue response's `print`, D1): on paper, or as the
// QR on this screen. Other values (no printer involved) say nothing.
const PRINT_TEXT = {
  queued: "正在打印号票，请取走号票",
  printing: "正在打印号票，请取走号票",
};

// Why a print failed (print_failed.reason), for the citizen.
const PRINT_FAILED_TEXT = {
  paper_out: "打印纸用完，未能打印号票",
  cover_open: "打印机上盖未关好，未能打印号票",
  offline: "打印机未连接，未能打印号票",
  error: "打印机故障，未能打印号票",
};

/** The identity document kind of a number read from a card: second-generation readers also
 * read foreign permanent resident cards (9…) and HK/Macao/Taiwan residence permits (81/82/83). */
export function documentKindOfCard(number) {
  const text = String(number ?? "");
  if (text.startsWith("9")) return "foreign_permanent_id";
  if (/^8[123]0000/.test(text)) return "hmt_residence_permit";
  return "resident_id";
}

/** What the e-ticket banner says: why this kiosk cannot print now (device snapshot's printers). */
export function eTicketTitle(printers) {
  if (!printers.length) return "本机暂不打印号票，请扫码保存电子票";
  if (printers.some((p) => p.paper === "out")) return "打印纸不足，请扫码保存电子票";
  return "打印机暂停使用，请扫码保存电子票";
}

/** Why the ticket on screen was not printed, while the kiosk is in e-ticket mode. */
function noPrintReason(printers) {
  if (!printers.length) return "本机不打印纸质号票";
  if (printers.some((p) => p.paper === "out")) return "打印纸不足，未能打印号票";
  return "打印机暂停使用，未能打印号票";
}

class Kiosk {
  constructor(hallId, deviceToken) {
    this.hallId = hallId;
    this.deviceToken = deviceToken;
    this.queue = queueFromSnapshot(null);
    this.timezone = null;
    this.busy = false;
    this.issued = null; // the last IssuedTicket shown
    this.client = null;
    this.deviceId = null; // from the welcome, when the page is a device peer
    this.device = null; // the device:<id> snapshot
    this.printers = new Map(); // printer_id -> PrinterState
    this.eTicket = false;
    this.card = null; // CardRequest, once linked as a device
    this._countdown = null;
    this._idle = null;
    this._scannedTimer = null;
  }

  onSnapshot(data) {
    if (data?.name) showHallName(PAGE_TITLE, data.name);
    this.timezone = data?.timezone ?? null;
    this.queue = queueFromSnapshot(data?.queue);
    this.renderGroups();
  }

  onEvent(event) {
    if (!isQueueEvent(event.name)) return;
    this.queue = applyQueueEvent(this.queue, event);
    this.renderGroups();
  }

  // --- the device link (device:<id>) -----------------------------------------------------

  /** Welcomed as a device peer (device-token.js followDevice, which then follows the
   * device's own topic): its card reads. */
  onLinked(id) {
    this.deviceId = id;
    this.card = new CardRequest(this.client, {
      onCard: (card) => this.fillFromCard(card),
      onFailed: (reason) => {
        this.cardStatus(CARD_FAILED_TEXT[reason] ?? CARD_FAILED_TEXT.read_failed, true);
        if (reason === "no_reader") $("read-card").hidden = true; // until the next snapshot
      },
      onState: (state) => {
        $("read-card").disabled = state === "reading";
        document.body.toggleAttribute("data-reading-card", state === "reading");
      },
    });
  }

  onDeviceSnapshot(data) {
    this.device = data ?? {};
    this.printers = new Map((this.device.printers ?? []).map((p) => [p.printer_id, p]));
    this.setETicket(Boolean(this.device.e_ticket));
    this.renderReader();
  }

  onDeviceEvent(event) {
    if (this.card?.onEvent(event)) return;
    const data = event.data ?? {};
    switch (event.name) {
      case "printer_state":
        this.printers.set(data.printer_id, data);
        this.setETicket(Boolean(data.e_ticket));
        break;
      case "print_failed":
        this.printFailed(data);
        break;
      case "code_scanned":
        this.onScanned(data);
        break;
      case "configure":
        if (this.device) this.device.config = data.settings ?? {};
        break;
      default:
        break; // an event this page does not act on
    }
  }

  /** The ID card button: shown on a kiosk linked as a device (a snapshot that lists its
   * readers hides it when there is none). */
  renderReader() {
    const readers = this.device?.readers;
    $("read-card").hidden = this.deviceId === null || (Array.isArray(readers) && readers.length === 0);
  }

  setETicket(on) {
    this.eTicket = on;
    document.body.dataset.eTicket = String(on);
    $("e-ticket-banner").hidden = !on;
    $("e-ticket-title").textContent = eTicketTitle([...this.printers.values()]);
  }

  // --- ID card ----------------------------------------------------------------------------

  async readCard() {
    if (!this.card || this.card.reading) return;
    if (document.body.dataset.view !== "start") this.backToStart();
    this.showAppointment(false);
    this.showIdEntry(true);
    this.showError(null);
    this.cardStatus("正在读取身份证，请将身份证放在读卡区…");
    const readers = this.device?.readers;
    const args = Array.isArray(readers) && readers.length ? { reader_id: readerId(readers[0]) } : {};
    await this.card.read(args);
  }

  /** A card read (VOLATILE card_read): its name and number go into the form, nowhere else. */
  fillFromCard(card) {
    if (document.body.dataset.view !== "start") this.backToStart();
    this.showAppointment(false);
    this.showIdEntry(true);
    $("id-kind").value = documentKindOfCard(card.id_number);
    $("id-number").value = String(card.id_number ?? "").toUpperCase();
    $("id-name").value = String(card.name ?? "").slice(0, 50);
    this.showError(null);
    this.cardStatus("已读取身份证，请选择办理的业务");
    this.touched();
  }

  cardStatus(text, failed = false) {
    $("card-status").hidden = !text;
    $("card-status").textContent = text ?? "";
    $("card-status").classList.toggle("failed", failed);
  }

  // --- scanned codes (code_scanned) --------------------------------------------------------

  onScanned(data) {
    this.touched();
    if (data.kind === "appointment") {
      if (document.body.dataset.view !== "start") this.backToStart();
      this.showIdEntry(false);
      setPressed($("green"), false);
      this.showAppointment(true);
      $("appointment-code").value = String(data.value ?? "").slice(0, 6);
      this.checkIn();
    } else if (data.kind === "ticket") {
      this.showScannedTicket(String(data.value ?? ""));
    } else {
      if (document.body.dataset.view !== "start") this.backToStart();
      this.showError("无法识别该二维码：请出示预约码或号票二维码");
    }
  }

  /** A ticket's QR scanned: its status, as the citizen's page shows it. */
  async showScannedTicket(token) {
    const ticket = await this.fetchTicket(token);
    if (!ticket) {
      if (document.body.dataset.view !== "start") this.backToStart();
      this.showError("未找到该号票，请咨询工作人员");
      return;
    }
    this.leaveResult();
    $("scanned-group").textContent = ticket.group_name;
    $("scanned-number").textContent = ticket.number;
    $("scanned-status").textContent = TICKET_STATUS_TEXT[ticket.status] ?? ticket.status;
    $("scanned-status").dataset.status = ticket.status;
    $("scanned-detail").textContent = ticketDetail(ticket);
    $("scanned").dataset.token = token;
    $("start").hidden = true;
    $("scanned").hidden = false;
    document.body.dataset.view = "scanned";
    clearTimeout(this._scannedTimer);
    this._scannedTimer = setTimeout(() => this.backToStart(), RETURN_SECONDS * 1000);
  }

  async fetchTicket(token) {
    if (!token) return null;
    try {
      const response = await fetch(`/api/tickets/${encodeURIComponent(token)}`, { cache: "no-store" });
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  // --- issuing -----------------------------------------------------------------------------

  renderGroups() {
    const groups = this.queue.groups.filter((g) => g.active);
    $("empty").hidden = groups.length > 0;
    $("groups").replaceChildren(
      ...groups.map((group) => {
        const button = h(
          "button",
          { type: "button", class: "group", dataset: { groupId: group.group_id, prefix: group.prefix } },
          h("span", { class: "prefix" }, group.prefix),
          h("span", { class: "name" }, group.name),
          h("span", { class: "waiting" }, "等候 ", h("span", { class: "num" }, group.waiting), " 人"),
          h("span", { class: "estimate" }, estimateText(group)),
        );
        button.disabled = this.busy;
        button.addEventListener("click", () => this.issue(group));
        return button;
      }),
    );
  }

  setBusy(busy) {
    this.busy = busy;
    document.body.toggleAttribute("data-busy", busy);
    for (const button of $("groups").querySelectorAll("button")) button.disabled = busy;
    $("check-in").disabled = busy;
  }

  /** The request's body from the options chosen on the start screen. */
  request(group) {
    const body = { group_id: group.group_id };
    if ($("green").getAttribute("aria-pressed") === "true") body.priority = "green_channel";
    if ($("use-id").getAttribute("aria-pressed") === "true") {
      const number = $("id-number").value.replace(/\s+/g, "").toUpperCase();
      if (!number) return { error: "请输入证件号码，或关闭“证件取号”" };
      body.id_document = { kind: $("id-kind").value, number };
      const name = $("id-name").value.trim();
      if (name) body.name = name.slice(0, 50);
    }
    return { body };
  }

  async issue(group) {
    if (this.busy) return;
    const { body, error } = this.request(group);
    if (error) {
      this.showError(error);
      return;
    }
    const issued = await this.post(`/api/halls/${this.hallId}/tickets`, body, {});
    if (issued) this.showResult(issued, issued.print);
  }

  /** Check an appointment in by its code (O2): its ticket is issued like any other. */
  async checkIn() {
    if (this.busy) return;
    const code = $("appointment-code").value.trim();
    if (!APPOINTMENT_CODE.test(code)) {
      this.showError("请输入 6 位数字预约码");
      return;
    }
    const url = `/api/halls/${this.hallId}/appointments/${code}/check-in`;
    const checkedIn = await this.post(url, null, { checkIn: true });
    if (checkedIn) this.showResult(checkedIn.ticket, checkedIn.print ?? checkedIn.ticket?.print);
  }

  /** POST as this device; the answer's JSON, or null after showing why it failed. */
  async post(url, body, context) {
    this.showError(null);
    this.setBusy(true);
    const headers = { "Content-Type": "application/json" };
    if (this.deviceToken) headers.Authorization = `Bearer ${this.deviceToken}`;
    try {
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers,
          body: body === null ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        console.warn("kiosk: request failed", err.name);
        this.showError(errorText(null));
        return null;
      }
      if (!response.ok) {
        let problem;
        try {
          problem = await response.json();
        } catch {
          problem = { code: "" };
        }
        this.showError(errorText(problem, context));
        return null;
      }
      return await response.json();
    } finally {
      this.setBusy(false);
    }
  }

  showError(text) {
    $("error").hidden = !text;
    $("error").textContent = text ?? "";
  }

  /**
   * The new ticket, with how it reaches the citizen: `print` "e_ticket" (or no print field
   * while this kiosk is in e-ticket mode) shows the QR as the ticket; "queued"/"printing" says
   * the paper ticket is on its way.
   */
  showResult(issued, print = undefined) {
    this.issued = issued;
    const ticket = issued.ticket;
    $("result-group").textContent = ticket.group_name;
    $("result-number").textContent = ticket.number;
    $("result-ahead").textContent = ticket.ahead > 0 ? `前面还有 ${ticket.ahead} 人` : "前面没有人等候";
    const n = minutes(ticket.estimate_seconds);
    $("result-estimate").textContent = n > 0 ? `预计等待约 ${n} 分钟` : "请留意叫号";
    $("result-qr").src = `/api/tickets/${encodeURIComponent(issued.token)}/qr.svg`;
    $("result").dataset.token = issued.token;
    $("result").dataset.ticketId = String(issued.ticket_id ?? "");
    this.clearOptions(); // the document number leaves the screen at once
    clearTimeout(this._scannedTimer);
    $("scanned").hidden = true;
    document.body.dataset.view = "result";
    $("start").hidden = true;
    $("result").hidden = false;
    const mode = print ?? (this.deviceId !== null && this.eTicket ? "e_ticket" : null);
    this.setPrintMode(mode, mode === "e_ticket" && this.eTicket ? noPrintReason([...this.printers.values()]) : null);
  }

  /** The result screen as a paper ticket on its way, or as the e-ticket itself. */
  setPrintMode(mode, reason = null) {
    const eTicket = mode === "e_ticket";
    $("result").dataset.print = mode ?? "";
    $("result-title").textContent = eTicket ? "电子号票" : "取号成功";
    $("result-qr-caption").textContent = eTicket
      ? "扫码保存，凭电子票办理"
      : "微信或浏览器扫码，随时查看排队进度";
    const text = eTicket ? `${reason ?? "本次未打印纸质号票"}，请用手机扫码保存电子票` : PRINT_TEXT[mode] ?? "";
    $("result-print").textContent = text;
    $("result-print").hidden = !text;
    this.countdown(eTicket ? E_TICKET_RETURN_SECONDS : RETURN_SECONDS);
  }

  /** print_failed: the ticket on screen turns into its e-ticket; a ticket no longer on screen
   * is brought back as an e-ticket, so no failed print goes unnoticed. */
  async printFailed(data) {
    const reason = PRINT_FAILED_TEXT[data.reason] ?? PRINT_FAILED_TEXT.error;
    const onScreen =
      this.issued &&
      document.body.dataset.view === "result" &&
      (this.issued.token === data.token || (data.ticket_id && this.issued.ticket_id === data.ticket_id));
    if (onScreen) {
      this.setPrintMode("e_ticket", reason);
      return;
    }
    const ticket = await this.fetchTicket(data.token);
    if (!ticket) return;
    this.showResult({ ticket_id: data.ticket_id, token: data.token, ticket }, "e_ticket");
    this.setPrintMode("e_ticket", reason);
  }

  countdown(seconds) {
    let left = seconds;
    $("countdown").textContent = left;
    clearInterval(this._countdown);
    this._countdown = setInterval(() => {
      left -= 1;
      $("countdown").textContent = Math.max(left, 0);
      if (left <= 0) this.backToStart();
    }, 1000);
  }

  leaveResult() {
    clearInterval(this._countdown);
    this._countdown = null;
    this.issued = null;
    $("result").hidden = true;
    $("result").dataset.print = "";
    $("result-qr").removeAttribute("src");
  }

  backToStart() {
    this.leaveResult();
    clearTimeout(this._scannedTimer);
    $("scanned").hidden = true;
    $("start").hidden = false;
    document.body.dataset.view = "start";
    this.showError(null);
  }

  clearOptions() {
    $("id-number").value = "";
    $("id-name").value = "";
    $("appointment-code").value = "";
    setPressed($("green"), false);
    this.showIdEntry(false);
    this.showAppointment(false);
  }

  showIdEntry(on) {
    setPressed($("use-id"), on);
    $("id-entry").hidden = !on;
    if (!on) {
      $("id-number").value = "";
      $("id-name").value = "";
      this.cardStatus(null);
    }
  }

  /** Check-in replaces the choice of a group: the appointment names its group. */
  showAppointment(on) {
    setPressed($("appointment"), on);
    $("appointment-entry").hidden = !on;
    $("choose").hidden = on;
    if (!on) $("appointment-code").value = "";
  }

  /** Any touch restarts the idle timer; when it runs out the start screen is cleared. */
  touched() {
    clearTimeout(this._idle);
    this._idle = setTimeout(() => {
      if (document.body.dataset.view === "start") {
        this.clearOptions();
        this.showError(null);
      }
    }, IDLE_RESET_MS);
  }

  setUp() {
    $("green").hidden = !this.deviceToken; // the hub grants it to devices only (Q3)
    $("green").addEventListener("click", () => setPressed($("green"), !pressed($("green"))));
    $("use-id").addEventListener("click", () => {
      const on = !pressed($("use-id"));
      this.showAppointment(false);
      this.showIdEntry(on);
      if (on) $("id-number").focus();
    });
    $("read-card").addEventListener("click", () => this.readCard());
    if (!this.deviceToken) {
      $("appointment").disabled = true;
      $("appointment-detail").textContent = "请到大厅自助终端签到";
    }
    $("appointment").addEventListener("click", () => {
      const on = !pressed($("appointment"));
      this.showIdEntry(false);
      setPressed($("green"), false);
      this.showAppointment(on);
      this.showError(null);
      if (on) $("appointment-code").focus();
    });
    $("check-in").addEventListener("click", () => this.checkIn());
    keypad($("keypad"), $("id-number"), KEYS, 40);
    keypad($("code-keypad"), $("appointment-code"), CODE_KEYS, 6);
    $("done").addEventListener("click", () => this.backToStart());
    $("scanned-done").addEventListener("click", () => this.backToStart());
    for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => this.touched());
  }
}

/** A reader as a device snapshot may list it: an id, or {device_id | id}. */
function readerId(reader) {
  return typeof reader === "object" && reader !== null ? (reader.device_id ?? reader.id) : reader;
}

/** One line under a scanned ticket's status. */
function ticketDetail(ticket) {
  if (ticket.status === "waiting") {
    return ticket.ahead > 0 ? `前面还有 ${ticket.ahead} 人` : "下一位就是您";
  }
  if (ticket.status === "called" && ticket.window_number) return `请到 ${ticket.window_number} 号窗口办理`;
  if (ticket.status === "held") return "请留意工作人员呼叫";
  return "本号票已结束";
}

/** On-screen keys typing into `input` (kiosks have no keyboard); ⌫ deletes. */
function keypad(container, input, keys, maxLength) {
  container.replaceChildren(
    ...keys.map((key) => {
      const button = h("button", { type: "button", class: "key", dataset: { key } }, key);
      button.addEventListener("click", () => {
        input.value = key === "⌫" ? input.value.slice(0, -1) : (input.value + key).slice(0, maxLength);
      });
      return button;
    }),
  );
}

function estimateText(group) {
  return group.waiting > 0 ? `预计${minutesText(groupEstimateSeconds(group))}` : "无需等待";
}

function pressed(button) {
  return button.getAttribute("aria-pressed") === "true";
}

function setPressed(button, on) {
  button.setAttribute("aria-pressed", String(on));
}

function notice(text) {
  $("start").hidden = true;
  stopNotice(text);
}

/** The kind the kiosk says it is in hello: `?device_kind=` (kept) or the kept one; "kiosk". */
function readDeviceKind(params) {
  const wanted = params.get("device_kind");
  let kind = null;
  try {
    if (KIOSK_KINDS.includes(wanted)) localStorage.setItem(DEVICE_KIND_KEY, wanted);
    kind = localStorage.getItem(DEVICE_KIND_KEY);
  } catch {
    kind = wanted;
  }
  return KIOSK_KINDS.includes(kind) ? kind : "kiosk";
}

function main() {
  $("id-kind").replaceChildren(...documentOptions());
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  // The device token: `?device_token=` (kept, then removed from the address bar) or storage.
  const deviceToken = readDeviceToken(DEVICE_TOKEN_KEY, params);
  if (!hall || !/^\d+$/.test(hall)) {
    notice("缺少大厅编号：请在地址后加上 ?hall=大厅编号。");
    return;
  }
  showHallName(PAGE_TITLE, `大厅 ${hall}`);
  const kiosk = new Kiosk(Number(hall), deviceToken);
  kiosk.setUp();
  // As a device (its token and kind) the kiosk is a peer of the hall: its presence, its
  // printer, its readers. Without a token it follows the hall publicly. When the hub refuses
  // the token naming another kiosk kind ("token belongs to a ticket_machine, …"), the page
  // says that kind from now on; a token it does not know (revoked) leaves the page a public
  // one, as without a token.
  const client = deviceClient({
    token: deviceToken,
    kind: deviceToken ? readDeviceKind(params) : null,
    publicKind: "kiosk_page",
    client: "kiosk-page",
    kinds: KIOSK_KINDS,
    onKind: (kind) => {
      try {
        localStorage.setItem(DEVICE_KIND_KEY, kind);
      } catch {
        /* storage disabled: this visit only */
      }
    },
    onPublic: () => kiosk.renderReader(),
    label: "kiosk",
  });
  kiosk.client = client;
  followDevice(client, {
    onLinked: (id) => kiosk.onLinked(id),
    onSnapshot: (data) => kiosk.onDeviceSnapshot(data),
    onEvent: (event) => kiosk.onDeviceEvent(event),
  });
  // A new service day: today's counts by a fresh snapshot (followHall).
  followHall(client, hall, kiosk);
  window.hallhub = { client, kiosk };
}

main();
