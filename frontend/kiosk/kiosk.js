// Ticket kiosk (自助取号, Q1, Q3, Q4, O2): one large button per active service group with its
// waiting count; optionally an identity document (checked and counted against the daily
// limits by the hub) and the green channel; or an appointment's check-in by its 6-digit code.
// The new ticket is shown big with its QR code (the citizen's page /ticket/?t=…) and how many
// are ahead, then the kiosk returns to the start.
//
// Address: /kiosk/?hall=<id>[&device_token=<token>]. The device token of the hall's kiosk or
// ticket machine (also kept in localStorage "hallhub.device_token") makes its tickets the
// device's; without one the page issues online tickets (rate-limited, no green channel, no
// check-in: the hub takes those from the hall's devices only).
// The live waiting counts come from topic hall:<id>, read publicly.

import { followHall } from "../lib/hall-page.js";
import { HubClient } from "../lib/hub-client.js";
import {
  applyQueueEvent,
  groupEstimateSeconds,
  isQueueEvent,
  minutes,
  minutesText,
  queueFromSnapshot,
} from "../lib/queue-state.js";
import { documentOptions, h, readToken, showHallName, stopNotice } from "../lib/ui.js";

export const DEVICE_TOKEN_KEY = "hallhub.device_token";
export const RETURN_SECONDS = 20;
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

class Kiosk {
  constructor(hallId, deviceToken) {
    this.hallId = hallId;
    this.deviceToken = deviceToken;
    this.queue = queueFromSnapshot(null);
    this.timezone = null;
    this.busy = false;
    this.issued = null; // the last IssuedTicket
    this._countdown = null;
    this._idle = null;
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
    if (issued) this.showResult(issued);
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
    if (checkedIn) this.showResult(checkedIn.ticket);
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
        console.warn("kiosk: request failed", err);
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

  showResult(issued) {
    this.issued = issued;
    const ticket = issued.ticket;
    $("result-group").textContent = ticket.group_name;
    $("result-number").textContent = ticket.number;
    $("result-ahead").textContent = ticket.ahead > 0 ? `前面还有 ${ticket.ahead} 人` : "前面没有人等候";
    const n = minutes(ticket.estimate_seconds);
    $("result-estimate").textContent = n > 0 ? `预计等待约 ${n} 分钟` : "请留意叫号";
    $("result-qr").src = `/api/tickets/${encodeURIComponent(issued.token)}/qr.svg`;
    $("result").dataset.token = issued.token;
    this.clearOptions(); // the document number leaves the screen at once
    document.body.dataset.view = "result";
    $("start").hidden = true;
    $("result").hidden = false;
    let left = RETURN_SECONDS;
    $("countdown").textContent = left;
    clearInterval(this._countdown);
    this._countdown = setInterval(() => {
      left -= 1;
      $("countdown").textContent = Math.max(left, 0);
      if (left <= 0) this.backToStart();
    }, 1000);
  }

  backToStart() {
    clearInterval(this._countdown);
    this._countdown = null;
    this.issued = null;
    $("result").hidden = true;
    $("result-qr").removeAttribute("src");
    $("start").hidden = false;
    document.body.dataset.view = "start";
    this.showError(null);
  }

  clearOptions() {
    $("id-number").value = "";
    $("appointment-code").value = "";
    setPressed($("green"), false);
    this.showIdEntry(false);
    this.showAppointment(false);
  }

  showIdEntry(on) {
    setPressed($("use-id"), on);
    $("id-entry").hidden = !on;
    if (!on) $("id-number").value = "";
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
    for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => this.touched());
  }
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

function main() {
  $("id-kind").replaceChildren(...documentOptions());
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  // The device token: `?device_token=` (kept, then removed from the address bar) or storage.
  const deviceToken = readToken(params, { param: "device_token", key: DEVICE_TOKEN_KEY });
  if (!hall || !/^\d+$/.test(hall)) {
    notice("缺少大厅编号：请在地址后加上 ?hall=大厅编号。");
    return;
  }
  showHallName(PAGE_TITLE, `大厅 ${hall}`);
  const kiosk = new Kiosk(Number(hall), deviceToken);
  kiosk.setUp();
  const client = new HubClient({ kind: "kiosk_page", client: "kiosk-page" });
  // A new service day: today's counts by a fresh snapshot (followHall).
  followHall(client, hall, kiosk);
  window.hallhub = { client, kiosk };
}

main();
