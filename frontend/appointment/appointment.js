// The citizen's booking page (O2, 预约): choose a service, a slot on a working day, enter
// name, identity document and (optionally) a mobile number; the answer is the check-in code
// to type at the hall's kiosk. Public; the document is sent once and never shown again (the
// hub answers with masked forms only).
//
// Address: /appointment/?hall=<hall id>.

import { documentOptions, h } from "../lib/ui.js";

const DAYS = 14;
const WEEKDAYS = ["日", "一", "二", "三", "四", "五", "六"];
const PROBLEMS = {
  slot_full: "该时段已约满，请选择其他时段",
  slot_closed: "该时段已开始，请选择其他时段",
  not_a_working_day: "该日不是工作日，不开放预约",
  already_booked: "该证件当天已预约此事项",
  too_many_no_shows: "近期爽约次数过多，暂不能预约，请现场取号",
  invalid_id_document: "证件号码有误，请核对",
  group_closed: "该事项暂停预约",
  rate_limited: "操作太频繁，请稍后再试",
  appointment_cancelled: "预约已取消",
  already_checked_in: "已签到，无法取消",
};

const $ = (id) => document.getElementById(id);
const hm = (time) => time.slice(0, 5);

function show(step) {
  for (const id of ["step-group", "step-slot", "step-form", "step-done"]) $(id).hidden = id !== step;
  document.body.dataset.state = step;
  window.scrollTo(0, 0);
}

function dayText(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  const weekday = WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  return `${m}月${d}日（周${weekday}）`;
}

function problemText(status, body) {
  if (status === 422) {
    const field = body?.errors?.[0]?.field ?? "";
    if (field.includes("phone")) return "手机号码格式有误";
    if (field.includes("name")) return "请填写姓名";
    if (field.includes("id_document")) return "证件号码有误，请核对";
  }
  return PROBLEMS[body?.code] ?? "提交失败，请稍后重试";
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

class BookingPage {
  constructor(hall) {
    this.hall = hall;
    this.group = null;
    this.slot = null; // {day, start, end}
    this.booking = null; // {appointment, document}
  }

  async start() {
    let groups;
    try {
      groups = await getJson(`/api/halls/${this.hall}/groups`);
    } catch {
      return this.notice("暂时无法加载，请稍后刷新重试。");
    }
    const active = groups.filter((g) => g.active);
    if (!active.length) return this.notice("本大厅暂无可预约的事项。");
    $("groups").replaceChildren(
      ...active.map((g) => h("button", { type: "button", class: "choice", dataset: { group: g.group_id } }, g.name)),
    );
    $("groups").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-group]");
      if (button) this.chooseGroup(active.find((g) => String(g.group_id) === button.dataset.group));
    });
    $("days").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-start]");
      if (button) this.chooseSlot(button.dataset);
    });
    $("back-group").addEventListener("click", () => show("step-group"));
    $("back-slot").addEventListener("click", () => show("step-slot"));
    $("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("cancel").addEventListener("click", () => this.cancel());
    show("step-group");
  }

  async chooseGroup(group) {
    this.group = group;
    $("chosen-group").textContent = group.name;
    let days;
    try {
      days = await getJson(`/api/halls/${this.hall}/groups/${group.group_id}/slots?days=${DAYS}`);
    } catch {
      return this.notice("暂时无法加载预约时段，请稍后重试。");
    }
    const rows = days.map((day) => {
      const slots = day.slots.filter((s) => s.capacity > 0);
      return h("div", { class: "day", dataset: { day: day.day } },
        h("p", { class: "day-name" }, dayText(day.day), day.name ? h("span", { class: "tag" }, day.name) : null),
        slots.length
          ? h("div", { class: "slots" }, ...slots.map((s) => {
            const full = s.available <= 0;
            return h("button", {
              type: "button", class: "slot", disabled: !s.open || full,
              dataset: { day: day.day, start: s.start, end: s.end },
            }, `${hm(s.start)}-${hm(s.end)}`, h("span", { class: "left" }, full ? "已约满" : s.open ? `余${s.available}` : "未开放"));
          }))
          : h("p", { class: "none" }, "当日无预约时段"));
    });
    $("days").replaceChildren(...(rows.length ? rows : [h("p", { class: "none" }, `未来${DAYS}天暂无可预约的工作日`)]));
    show("step-slot");
  }

  chooseSlot({ day, start, end }) {
    this.slot = { day, start, end };
    $("chosen-slot").textContent = `${this.group.name} · ${dayText(day)} ${hm(start)}-${hm(end)}`;
    $("error").hidden = true;
    show("step-form");
  }

  async submit() {
    const document_ = { kind: $("kind").value, number: $("number").value.trim() };
    const body = {
      group_id: this.group.group_id,
      service_day: this.slot.day,
      slot_start: this.slot.start,
      id_document: document_,
      name: $("name").value.trim(),
    };
    const phone = $("phone").value.trim();
    if (phone) body.phone = phone;
    if (!body.name || !document_.number) {
      $("error").textContent = "请填写姓名和证件号码";
      $("error").hidden = false;
      return;
    }
    $("submit").disabled = true;
    let response;
    let answer = null;
    try {
      response = await fetch(`/api/halls/${this.hall}/appointments`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      answer = await response.json().catch(() => null);
    } catch {
      response = { status: 0, ok: false };
    }
    $("submit").disabled = false;
    if (response.status !== 201) {
      $("error").textContent = problemText(response.status, answer);
      $("error").hidden = false;
      return;
    }
    this.booking = { appointment: answer, document: document_ };
    $("number").value = ""; // the full number is not kept on screen
    this.done(answer);
  }

  done(appointment) {
    const clock = (iso) => {
      const d = new Date(iso);
      return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
    };
    $("code").textContent = appointment.code;
    $("done-group").textContent = appointment.group_name;
    $("done-time").textContent = `${dayText(appointment.service_day)} ${hm(appointment.slot_start)}-${hm(appointment.slot_end)}`;
    $("done-checkin").textContent = `${clock(appointment.checkin_opens)}-${clock(appointment.checkin_closes)}`;
    $("cancel").hidden = appointment.status !== "booked";
    show("step-done");
  }

  async cancel() {
    const { appointment, document: document_ } = this.booking;
    const response = await fetch(`/api/halls/${this.hall}/appointments/${appointment.code}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ service_day: appointment.service_day, id_document: document_ }),
    }).catch(() => null);
    const answer = await response?.json().catch(() => null);
    if (response?.ok) {
      $("cancel").hidden = true;
      document.querySelector(".done-title").textContent = "预约已取消";
      document.body.dataset.state = "cancelled";
      return;
    }
    $("cancel-error").textContent = problemText(response?.status ?? 0, answer);
    $("cancel-error").hidden = false;
  }

  notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
    document.body.dataset.state = "notice";
  }
}

function main() {
  $("kind").replaceChildren(...documentOptions());
  const hall = new URLSearchParams(location.search).get("hall");
  if (!hall || !/^\d+$/.test(hall)) {
    $("notice").textContent = "缺少大厅编号：请在地址后加上 ?hall=大厅编号。";
    $("notice").hidden = false;
    return;
  }
  const page = new BookingPage(hall);
  window.hallhub = { page };
  page.start();
}

main();
