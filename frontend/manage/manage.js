// Hall manager console (大厅管理, Q1 Q2 Q4 Q5 Q6 O11): service groups, the groups each
// window serves, issuing hours and limits, staff and their grants, devices, notices, honour
// marks and closure days of one hall.
//
// Address: /manage/?hall=<id> (without it: the hall of the manager's hall grant). The session
// token is kept in localStorage "hallhub.token"; without one the page asks for it.
//
// The configuration comes from GET /api/halls/<id>/queue-config; the page follows
// hall:<id> so that a change made elsewhere (another manager, `hallhub demo`) shows at once:
// queue_configured reloads it, queue events update the waiting counts.

import { DEVICE_KIND_TEXT } from "../lib/devices.js";
import { showError, showFailure, showOk } from "../lib/flash.js";
import { HubClient } from "../lib/hub-client.js";
import { applyQueueEvent, queueFromSnapshot } from "../lib/queue-state.js";
import {
  ROLE_TEXT, minuteText, parseMinute, startStaffPage,
} from "../lib/staff-api.js";
import { clockText, connectionBanner, h, shortTime } from "../lib/ui.js";

// The kinds a manager registers (the agent is not registered: it runs the devices' peers).
const DEVICE_KINDS = Object.freeze(
  Object.fromEntries(Object.entries(DEVICE_KIND_TEXT).filter(([kind]) => kind !== "agent")),
);
const MAX_RANK = 9;
const CLOSURE_DAYS = 90;
const RELOAD_DELAY_MS = 100;
const WEEKDAYS = "日一二三四五六";

const $ = (id) => document.getElementById(id);

/** The form's named fields as strings. */
function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** "" → null, else a number. */
function optionalNumber(text) {
  return text === "" || text === undefined ? null : Number(text);
}

/** A local calendar date as YYYY-MM-DD (the page runs in the hall's time zone). */
function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

class ManagerConsole {
  constructor(api, hallId) {
    this.api = api;
    this.hallId = hallId;
    this.base = `/api/halls/${hallId}`;
    this.config = null; // QueueConfig
    this.queue = queueFromSnapshot(null);
    this.reloadTimer = null;
    this.client = null;
  }

  start() {
    this.bindForms();
    this.client = new HubClient({ kind: "console", token: this.api.token, client: "manager-console" });
    connectionBanner(this.client);
    this.client.subscribe(`hall:${this.hallId}`, {
      onSnapshot: (data) => {
        if (data?.name) $("hall-name").textContent = data.name;
        this.queue = queueFromSnapshot(data?.queue);
        this.scheduleReload();
      },
      onEvent: (event) => {
        this.queue = applyQueueEvent(this.queue, event);
        if (event.name === "queue_configured") this.scheduleReload();
        else if (event.name === "notice_posted") this.loadNotices();
        else this.showWaiting();
      },
    });
    this.client.start();
    document.body.dataset.view = "manage";
    for (const id of ["monitor-nav", "monitor-link"]) $(id).href = `/devices/?hall=${this.hallId}`;
    this.reload();
    this.loadDevices();
    this.loadNotices();
    this.loadClosures();
  }

  /** Run a change; its failure is shown, a success confirmed. Returns the result or null. */
  async run(work, done = "已保存") {
    try {
      const result = await work();
      if (done) showOk(done);
      return result ?? true;
    } catch (error) {
      showFailure(error);
      return null;
    }
  }

  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload(), RELOAD_DELAY_MS);
  }

  async reload() {
    const config = await this.run(() => this.api.get(`${this.base}/queue-config`), null);
    if (!config) return;
    this.config = config;
    document.title = `大厅管理 · ${config.name}`;
    $("hall-name").textContent = config.name;
    this.renderGroups();
    this.renderWindows();
    this.renderSettings();
    this.renderStaff();
    document.body.dataset.loaded = "true";
  }

  // --- service groups -------------------------------------------------------------------

  renderGroups() {
    $("groups-body").replaceChildren(
      ...this.config.groups.map((g) => {
        const edit = h("button", { type: "button", class: "small" }, "编辑");
        edit.addEventListener("click", () => this.editGroup(g));
        const toggle = h("button", { type: "button", class: "small" }, g.active ? "停用" : "启用");
        toggle.addEventListener("click", () =>
          this.run(() => this.api.patch(`${this.base}/groups/${g.id}`, { active: !g.active })),
        );
        return h(
          "tr",
          { dataset: { groupId: g.id, prefix: g.prefix }, class: g.active ? "" : "inactive" },
          h("td", { class: "prefix num" }, g.prefix),
          h("td", { class: "name" }, g.name),
          h("td", {}, h("span", { class: `state ${g.active ? "on" : "off"}` }, g.active ? "取号中" : "已停用")),
          h("td", { class: "waiting num", dataset: { groupId: g.id } }),
          h("td", { class: "num" }, g.daily_quota ?? "不限"),
          h("td", { class: "num" }, g.id_daily_limit),
          h("td", { class: "num" }, `${Math.round(g.service_seconds / 60)} 分钟`),
          h("td", {}, h("div", { class: "row-actions" }, edit, toggle)),
        );
      }),
    );
    this.showWaiting();
  }

  showWaiting() {
    for (const cell of document.querySelectorAll("td.waiting[data-group-id]")) {
      const group = this.queue.groups.find((g) => g.group_id === Number(cell.dataset.groupId));
      cell.textContent = group ? group.waiting : "—";
    }
  }

  editGroup(group) {
    const dialog = $("group-dialog");
    const form = $("group-edit");
    form.elements.prefix.value = group.prefix;
    form.elements.name.value = group.name;
    form.elements.daily_quota.value = group.daily_quota ?? "";
    form.elements.id_daily_limit.value = group.id_daily_limit;
    form.elements.service_seconds.value = group.service_seconds;
    form.elements.active.checked = group.active;
    dialog.onclose = () => {
      if (dialog.returnValue !== "save") return;
      const f = fields(form);
      const patch = {
        prefix: f.prefix.trim().toUpperCase(),
        name: f.name.trim(),
        active: form.elements.active.checked,
        daily_quota: optionalNumber(f.daily_quota),
        id_daily_limit: Number(f.id_daily_limit),
        service_seconds: Number(f.service_seconds),
      };
      this.run(() => this.api.patch(`${this.base}/groups/${group.id}`, patch));
    };
    dialog.returnValue = "";
    dialog.showModal();
  }

  async createGroup(form) {
    const f = fields(form);
    const body = {
      prefix: f.prefix.trim().toUpperCase(),
      name: f.name.trim(),
      id_daily_limit: Number(f.id_daily_limit || 1),
      service_seconds: Number(f.service_seconds || 300),
    };
    if (f.daily_quota) body.daily_quota = Number(f.daily_quota);
    if (await this.run(() => this.api.post(`${this.base}/groups`, body), `已新建分组 ${body.prefix}`)) {
      form.reset();
    }
  }

  // --- windows ----------------------------------------------------------------------------

  renderWindows() {
    const groups = this.config.groups;
    $("windows-head").replaceChildren(
      h(
        "tr",
        {},
        h("th", {}, "窗口"),
        h("th", {}, "名称"),
        h("th", {}, "部门"),
        ...groups.map((g) => h("th", { class: "rank-head", title: g.name }, `${g.prefix} ${g.name}`)),
        h("th", {}, "红旗窗口"),
        h("th", {}),
      ),
    );
    $("windows-body").replaceChildren(
      ...this.config.windows.map((w) => {
        const ranks = new Map(w.groups.map((g) => [g.group_id, g.rank]));
        const selects = groups.map((g) => {
          const select = h(
            "select",
            { dataset: { groupId: g.id }, "aria-label": `${w.number}号窗口 ${g.name} 顺序` },
            h("option", { value: "0" }, "—"),
            ...Array.from({ length: MAX_RANK }, (_, i) => h("option", { value: String(i + 1) }, String(i + 1))),
          );
          select.value = String(ranks.get(g.id) ?? 0);
          return select;
        });
        const save = h("button", { type: "button", class: "small" }, "保存业务");
        save.addEventListener("click", () => {
          const body = selects
            .map((s) => ({ group_id: Number(s.dataset.groupId), rank: Number(s.value) }))
            .filter((g) => g.rank > 0)
            .sort((a, b) => a.rank - b.rank);
          this.run(() => this.api.put(`${this.base}/windows/${w.window_id}/groups`, body));
        });
        const flag = h(
          "button",
          { type: "button", class: `small flag ${w.red_flag ? "on" : ""}`, "aria-pressed": String(w.red_flag) },
          w.red_flag ? "★ 红旗窗口" : "设为红旗",
        );
        flag.addEventListener("click", () =>
          this.run(() => this.api.put(`${this.base}/windows/${w.window_id}/red-flag`, { red_flag: !w.red_flag })),
        );
        return h(
          "tr",
          { dataset: { windowId: w.window_id } },
          h("td", { class: "num" }, `${w.number}号`),
          h("td", {}, w.name),
          h("td", { class: "muted" }, w.department ?? ""),
          ...selects.map((s) => h("td", { class: "rank" }, s)),
          h("td", {}, flag),
          h("td", {}, save),
        );
      }),
    );
  }

  // --- settings ----------------------------------------------------------------------------

  renderSettings() {
    const s = this.config.settings;
    const form = $("settings-form");
    // A live reload (another change in the hall) must not overwrite what is being typed.
    if (form.dataset.dirty === "true") return;
    form.elements.opens.value = minuteText(s.opens_minute);
    form.elements.closes.value = minuteText(s.closes_minute);
    form.elements.id_daily_limit.value = s.id_daily_limit;
    form.elements.requeue_limit.value = s.requeue_limit;
    form.elements.timezone.value = s.timezone;
  }

  async saveSettings(form) {
    const f = fields(form);
    const opens = parseMinute(f.opens);
    const closes = parseMinute(f.closes);
    if (opens === null || closes === null || opens >= closes) {
      showError("取号时间有误：请填写 00:00–24:00 之间的时间，且开始早于停止");
      return;
    }
    const saved = await this.run(() =>
      this.api.patch(`${this.base}/queue-settings`, {
        opens_minute: opens,
        closes_minute: closes,
        id_daily_limit: Number(f.id_daily_limit),
        requeue_limit: Number(f.requeue_limit),
        timezone: f.timezone.trim(),
      }),
    );
    if (saved) {
      delete form.dataset.dirty;
      this.config.settings = saved;
      this.renderSettings();
    }
  }

  // --- staff -------------------------------------------------------------------------------

  renderStaff() {
    const windowNumber = new Map(this.config.windows.map((w) => [w.window_id, w.number]));
    $("staff-body").replaceChildren(
      ...this.config.staff.map((s) => {
        const star = h(
          "button",
          { type: "button", class: `small flag ${s.star_staff ? "on" : ""}`, "aria-pressed": String(s.star_staff) },
          s.star_staff ? "★ 先进个人" : "设为先进",
        );
        star.addEventListener("click", () =>
          this.run(() => this.api.put(`/api/staff/${s.staff_id}/star`, { star_staff: !s.star_staff })),
        );
        const actions = [];
        if (!s.roles.includes("window_staff") && !s.roles.includes("hall_manager")) {
          const grant = h("button", { type: "button", class: "small" }, "授予窗口人员");
          grant.addEventListener("click", () => this.grant(s.staff_id, "window_staff"));
          actions.push(grant);
        }
        return h(
          "tr",
          { dataset: { staffNo: s.staff_no }, class: s.active ? "" : "inactive" },
          h("td", { class: "num" }, s.staff_no),
          h("td", {}, s.name),
          h("td", {}, s.roles.map((r) => ROLE_TEXT[r] ?? r).join("、") || "无"),
          h("td", { class: "num" }, s.window_id ? `${windowNumber.get(s.window_id) ?? "?"}号` : "—"),
          h("td", {}, star),
          h("td", {}, h("div", { class: "row-actions" }, ...actions)),
        );
      }),
    );
  }

  async grant(staffId, role) {
    await this.run(async () => {
      await this.api.post("/api/grants", { staff_id: staffId, role, scope_kind: "hall", scope_id: this.hallId });
      await this.reload();
    }, "已授权");
  }

  async createStaff(form) {
    const f = fields(form);
    const created = await this.run(
      () =>
        this.api.post("/api/staff", {
          staff_no: f.staff_no.trim(),
          name: f.name.trim(),
          password: f.password,
          hall_id: this.hallId,
        }),
      null,
    );
    if (!created) return;
    form.reset();
    await this.grant(created.id, f.role);
  }

  // --- devices -----------------------------------------------------------------------------

  async loadDevices() {
    const devices = await this.run(() => this.api.get(`/api/devices?hall_id=${this.hallId}`), null);
    if (!devices) return;
    $("devices-body").replaceChildren(
      ...devices.map((d) => {
        const revoke = h("button", { type: "button", class: "small danger" }, "撤销");
        revoke.addEventListener("click", async () => {
          if (!window.confirm(`撤销设备“${d.name}”？撤销后该设备需重新登记。`)) return;
          if (await this.run(() => this.api.post(`/api/devices/${d.id}/revoke`), "已撤销")) this.loadDevices();
        });
        return h(
          "tr",
          { dataset: { deviceId: d.id }, class: d.revoked_at ? "inactive" : "" },
          h("td", { class: "num" }, d.id),
          h("td", {}, DEVICE_KINDS[d.kind] ?? d.kind),
          h("td", {}, d.name),
          h("td", { class: "num" }, shortTime(Date.parse(d.created_at) / 1000)),
          h("td", {}, d.revoked_at ? "已撤销" : "在用"),
          h("td", {}, d.revoked_at ? null : revoke),
        );
      }),
    );
  }

  async registerDevice(form) {
    const f = fields(form);
    const created = await this.run(
      () => this.api.post("/api/devices", { hall_id: this.hallId, kind: f.kind, name: f.name.trim() }),
      null,
    );
    if (!created) return;
    form.reset();
    this.showToken(created.device.name, created.token);
    this.loadDevices();
  }

  /** The token of a new device, shown this once; it leaves the page when the dialog closes. */
  showToken(name, token) {
    const dialog = $("token-dialog");
    $("token-device").textContent = name;
    $("token-value").textContent = token;
    // Gone as the dialog closes: its close event comes a task later than the dialog hides, so
    // the closing button clears it at once (Esc still goes through the close event).
    const forget = () => {
      $("token-value").textContent = "";
    };
    dialog.onclose = forget;
    dialog.querySelector("button.primary").onclick = forget;
    dialog.showModal();
  }

  async copyToken() {
    const text = $("token-value").textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Not a secure context (http on a LAN address): select the text and copy it.
      const range = document.createRange();
      range.selectNodeContents($("token-value"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand("copy");
    }
    $("token-copy").textContent = "已复制";
    setTimeout(() => {
      $("token-copy").textContent = "复制令牌";
    }, 2000);
  }

  // --- notices -----------------------------------------------------------------------------

  async loadNotices() {
    const notices = await this.run(() => this.api.get(`${this.base}/notices`), null);
    if (!notices) return;
    $("notices-list").replaceChildren(
      ...(notices.length
        ? notices.map((n) =>
            h(
              "li",
              {},
              h("span", { class: "text" }, n.text),
              h(
                "span",
                { class: "muted" },
                `${shortTime(Date.parse(n.created_at) / 1000)} 发布` +
                  (n.expires_at ? `，${shortTime(Date.parse(n.expires_at) / 1000)} 撤下` : "，长期显示"),
              ),
            ),
          )
        : [h("li", { class: "muted" }, "暂无公告")]),
    );
  }

  async postNotice(form) {
    const f = fields(form);
    const body = { text: f.text.trim() };
    if (f.ttl_seconds) body.ttl_seconds = Number(f.ttl_seconds);
    if (await this.run(() => this.api.post(`${this.base}/notices`, body), "公告已发布")) {
      form.reset();
      this.loadNotices();
    }
  }

  // --- closure days (O11) ----------------------------------------------------------------

  async loadClosures() {
    const today = new Date();
    const until = new Date(today.getTime() + CLOSURE_DAYS * 86400 * 1000);
    const view = await this.run(
      () => this.api.get(`/api/calendar?from=${isoDay(today)}&to=${isoDay(until)}&hall_id=${this.hallId}`),
      null,
    );
    if (!view) return;
    // Plain weekends (source "rule") would drown the list: holidays and closures only.
    const days = view.days.filter((d) => !d.working && d.source !== "rule");
    $("closures-list").replaceChildren(
      ...(days.length
        ? days.map((d) => {
            const weekday = WEEKDAYS[new Date(`${d.day}T00:00:00`).getDay()];
            const item = h(
              "li",
              { dataset: { day: d.day, source: d.source } },
              h("span", { class: "num" }, `${d.day}（周${weekday}）`),
              h("span", { class: `state ${d.source === "closure" ? "off" : ""}` }, d.source === "closure" ? "闭馆" : "节假日"),
              h("span", { class: "text" }, d.name ?? ""),
            );
            if (d.source === "closure") {
              const reopen = h("button", { type: "button", class: "small" }, "撤销闭馆");
              reopen.addEventListener("click", async () => {
                if (await this.run(() => this.api.delete(`${this.base}/closures/${d.day}`), "已撤销闭馆")) {
                  this.loadClosures();
                }
              });
              item.append(reopen);
            }
            return item;
          })
        : [h("li", { class: "muted" }, `未来 ${CLOSURE_DAYS} 天内无节假日或闭馆日`)]),
    );
    if (view.provisional_years?.length) {
      $("closures-list").append(
        h("li", { class: "muted" }, `${view.provisional_years.join("、")} 年的节假日安排尚未公布，按周末推算`),
      );
    }
  }

  async close(form) {
    const f = fields(form);
    if (await this.run(() => this.api.put(`${this.base}/closures/${f.day}`, { reason: f.reason.trim() }), "已设为闭馆日")) {
      form.reset();
      this.loadClosures();
    }
  }

  // --- wiring ------------------------------------------------------------------------------

  bindForms() {
    const on = (id, handler) =>
      $(id).addEventListener("submit", (event) => {
        event.preventDefault();
        handler(event.target);
      });
    on("group-new", (form) => this.createGroup(form));
    on("settings-form", (form) => this.saveSettings(form));
    $("settings-form").addEventListener("input", (event) => {
      event.currentTarget.dataset.dirty = "true";
    });
    on("staff-new", (form) => this.createStaff(form));
    on("device-new", (form) => this.registerDevice(form));
    on("notice-new", (form) => this.postNotice(form));
    on("closure-new", (form) => this.close(form));
    $("device-kind").replaceChildren(
      ...Object.entries(DEVICE_KINDS).map(([kind, text]) => h("option", { value: kind }, text)),
    );
    $("token-copy").addEventListener("click", () => this.copyToken());
  }
}

async function main() {
  const page = await startStaffPage(new URLSearchParams(location.search), {
    title: "大厅管理员登录", roles: ["hall_manager", "admin"], showError,
  });
  if (!page) return;
  const { api, hall } = page;
  const manager = new ManagerConsole(api, Number(hall));
  manager.start();
  setInterval(() => {
    $("clock").textContent = clockText(manager.client.serverNow());
  }, 1000);
  window.hallhub = { manager }; // for the browser console
}

main();
