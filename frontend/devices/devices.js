// Device monitor (设备监控, D6, Q7): every device of one hall, live, for the people who run or
// oversee it: kind, name, where it is bound (the kiosk it belongs to, or its window), online or
// offline and its last heartbeat, paper and cover of printers, error count, model and firmware;
// above them the hall's active alerts (critical red, warning amber) with how long each lasts.
// A hall manager binds a device (PATCH /api/devices/{id}) and sends it remote settings
// (PUT /api/devices/{id}/config); the hub pushes them to the device as `configure`.
//
// Address: /devices/[?hall=<id>] (without it: the hall of the staff member's hall grant); the
// session token as on the manager console (localStorage "hallhub.token", or the sign-in form).
//
// Sources: GET /api/halls/{hall}/devices (the registry with bindings, config and last reported
// state), topics presence:<hall> (online/offline, heartbeats), alerts:<hall> (AlertsSnapshot,
// alert_raised, alert_cleared) and hall:<hall> (the hall's name and windows). The list is read
// again after a change of presence or alerts (model, firmware, errors and state come with it).

import { showError, showFailure, showOk } from "../lib/flash.js";
import { HubClient } from "../lib/hub-client.js";
import {
  ALERT_CODE_TEXT,
  ALERT_LEVEL_TEXT,
  DEVICE_KIND_ORDER,
  DEVICE_KIND_TEXT,
  HOSTED_KINDS,
  HOST_KINDS,
  PAPER_TEXT,
  WINDOW_KINDS,
  durationText,
} from "../lib/devices.js";
import { queueFromSnapshot } from "../lib/queue-state.js";
import { startStaffPage } from "../lib/staff-api.js";
import { clockText, connectionBanner, h, relativeTime, shortTime } from "../lib/ui.js";

const PAGE_TITLE = "设备监控";
const RELOAD_DELAY_MS = 150; // presence and alerts come in bursts: one read of the list
const SLOW_RELOAD_MS = 60_000; // changes made elsewhere that no topic announces
const PAPER_CODES = { paper_out: "out", paper_low: "low" };
const MANAGER_ROLES = ["admin", "hall_manager"];
const STATUS_TEXT = { online: "在线", offline: "离线", never: "未连接" };

// Remote settings (D6) a manager may set, per kind, with the keys the hub and the agent read
// (hub/services/printing.py, card_reads.py, queue_events.py; devices/drivers). Numbers, text,
// or lines (a list of strings); an empty field removes the setting (the default applies).
const POLL = { key: "poll_seconds", label: "状态查询间隔（秒）", type: "number", min: 0.5, max: 60, step: 0.5 };
const CONFIG_FIELDS = Object.freeze({
  printer: [
    POLL,
    { key: "header", label: "票头文字", type: "text", maxlength: 200, placeholder: "如：欢迎来到政务服务中心" },
    { key: "footer", label: "票尾文字（每行一句，至多 5 行）", type: "lines", maxLines: 5 },
  ],
  id_reader: [
    POLL,
    { key: "timeout_s", label: "读卡等待时间（秒）", type: "number", min: 3, max: 120, step: 1 },
  ],
  code_reader: [POLL],
  evaluator: [{ key: "timeout_s", label: "评价等待时间（秒）", type: "number", min: 5, max: 600, step: 1 }],
});

const $ = (id) => document.getElementById(id);

const alertKey = (deviceId, code) => `${deviceId}:${code}`;
const kindRank = (kind) => {
  const i = DEVICE_KIND_ORDER.indexOf(kind);
  return i === -1 ? 99 : i;
};

/** Critical first, then the oldest. */
function compareAlerts(a, b) {
  if (a.level !== b.level) return a.level === "critical" ? -1 : 1;
  return a.since - b.since;
}

export class DeviceBoard {
  constructor(api, hallId, { editable }) {
    this.api = api;
    this.hallId = hallId;
    this.editable = editable;
    this.client = null;
    this.devices = new Map(); // device id -> device record
    this.presence = new Map(); // peer id -> PeerPresence
    this.alerts = new Map(); // "<device id>:<code>" -> DeviceAlert
    this.windows = []; // WindowView of the hall snapshot
    this.loaded = false;
    this.reloadTimer = null;
    this.loading = null;
  }

  start() {
    this.client = new HubClient({ kind: "console", token: this.api.token, client: "device-monitor" });
    connectionBanner(this.client);
    this.client.subscribe(`alerts:${this.hallId}`, {
      onSnapshot: (data) => this.onAlertsSnapshot(data),
      onEvent: (event) => this.onAlertsEvent(event),
    });
    this.client.subscribe(`presence:${this.hallId}`, {
      onSnapshot: (data) => this.onPresenceSnapshot(data),
      onEvent: (event) => this.onPresenceEvent(event),
    });
    this.client.subscribe(`hall:${this.hallId}`, {
      onSnapshot: (data) => {
        if (data?.name) this.showHallName(data.name);
        this.windows = queueFromSnapshot(data?.queue).windows;
        this.render();
      },
      onEvent: (event) => {
        if (event.name === "queue_configured") {
          this.windows = queueFromSnapshot(event.data).windows;
          this.render();
        }
      },
    });
    this.client.start();
    document.body.dataset.view = "devices";
    this.reload();
    setInterval(() => this.scheduleReload(), SLOW_RELOAD_MS);
  }

  showHallName(name) {
    $("hall-name").textContent = name;
    document.title = `${PAGE_TITLE} · ${name}`;
  }

  // --- sources -----------------------------------------------------------------------------

  async reload() {
    // One read at a time; a change during a read asks for another one after it.
    if (this.loading) {
      this.scheduleReload();
      return;
    }
    this.loading = this.fetchDevices();
    try {
      const list = await this.loading;
      if (!list) return;
      this.devices = new Map(list.map((d) => [d.id, d]));
      this.loaded = true;
      document.body.dataset.loaded = "true";
      this.render();
    } finally {
      this.loading = null;
    }
  }

  /** The registry of the hall's devices, with bindings, config and last state. */
  async fetchDevices() {
    try {
      try {
        return await this.api.get(`/api/halls/${this.hallId}/devices`);
      } catch (error) {
        // A hub without the device registry's hall view: the plain list (no state).
        if (error?.status !== 404 && error?.status !== 405) throw error;
        return await this.api.get(`/api/devices?hall_id=${this.hallId}`);
      }
    } catch (error) {
      showFailure(error);
      return null;
    }
  }

  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload(), RELOAD_DELAY_MS);
  }

  onAlertsSnapshot(data) {
    this.alerts.clear();
    for (const alert of data?.alerts ?? []) this.alerts.set(alertKey(alert.device_id, alert.code), alert);
    document.body.dataset.alerts = "loaded";
    this.render();
  }

  onAlertsEvent(event) {
    const data = event.data ?? {};
    switch (event.name) {
      case "alert_raised":
        if (data.alert) {
          this.alerts.set(alertKey(data.alert.device_id, data.alert.code), data.alert);
          this.patchState(data.alert.device_id, data.alert.code, true);
        }
        break;
      case "alert_cleared":
        this.alerts.delete(alertKey(data.device_id, data.code));
        this.patchState(data.device_id, data.code, false);
        break;
      case "device_status": {
        // A device's reported state, error count, model and firmware (hub/services/alerts.py).
        const device = this.devices.get(data.device_id);
        if (device) {
          const { device_id: _, ...status } = data;
          this.devices.set(data.device_id, { ...device, ...status });
        } else {
          this.scheduleReload();
        }
        break;
      }
      default:
        // Another change of the hall's devices (a binding, a registration): read the list.
        this.scheduleReload();
        break;
    }
    this.render();
  }

  /** What an alert says of a printer's paper or cover, until the list is read again. */
  patchState(deviceId, code, raised) {
    const device = this.devices.get(deviceId);
    if (!device) return;
    const state = { ...(device.state ?? {}) };
    if (code in PAPER_CODES) {
      if (raised) state.paper = PAPER_CODES[code];
      else if (!Object.keys(PAPER_CODES).some((c) => this.alerts.has(alertKey(deviceId, c)))) state.paper = "ok";
    } else if (code === "cover_open") {
      state.cover_open = raised;
    }
    this.devices.set(deviceId, { ...device, state });
  }

  onPresenceSnapshot(data) {
    this.presence.clear();
    for (const peer of data?.peers ?? []) this.presence.set(peer.peer_id, peer);
    this.render();
  }

  onPresenceEvent(event) {
    switch (event.name) {
      case "peer_online":
      case "peer_offline":
        this.presence.set(event.data.peer_id, event.data);
        this.render();
        this.scheduleReload(); // device_info (model, firmware) follows a connect
        break;
      case "peers_seen":
        for (const [peerId, lastSeen] of Object.entries(event.data?.seen ?? {})) {
          const peer = this.presence.get(peerId);
          if (peer) peer.last_seen = lastSeen;
        }
        this.refreshTimes();
        break;
      default:
        break;
    }
  }

  // --- views -------------------------------------------------------------------------------

  /** The device's presence: live from presence:<hall>, else as the list read it. */
  peerOf(device) {
    const live = this.presence.get(`device:${device.id}`);
    if (live) return live;
    if (device.last_seen === undefined || device.last_seen === null) return null;
    return { online: Boolean(device.online), last_seen: device.last_seen };
  }

  alertsOf(deviceId) {
    return [...this.alerts.values()].filter((a) => a.device_id === deviceId);
  }

  /** The worst alert level of a device ("critical" | "warning" | ""). */
  levelOf(deviceId) {
    const levels = this.alertsOf(deviceId).map((a) => a.level);
    if (levels.includes("critical")) return "critical";
    return levels.includes("warning") ? "warning" : "";
  }

  activeDevices() {
    return [...this.devices.values()].filter((d) => !d.revoked_at);
  }

  /** Devices with critical alerts first, then warnings, then offline ones; then by kind, name. */
  sortedDevices() {
    const rank = (d) => {
      const level = this.levelOf(d.id);
      if (level === "critical") return 0;
      if (level === "warning") return 1;
      return this.peerOf(d)?.online ? 3 : 2;
    };
    return this.activeDevices().sort(
      (a, b) =>
        rank(a) - rank(b) ||
        kindRank(a.kind) - kindRank(b.kind) ||
        String(a.name).localeCompare(String(b.name), "zh-CN") ||
        a.id - b.id,
    );
  }

  render() {
    this.renderSummary();
    this.renderAlerts();
    this.renderDevices();
    this.refreshTimes();
  }

  renderSummary() {
    const devices = this.activeDevices();
    const online = devices.filter((d) => this.peerOf(d)?.online).length;
    const alerts = [...this.alerts.values()];
    const critical = alerts.filter((a) => a.level === "critical").length;
    const warning = alerts.length - critical;
    $("count-online").textContent = this.loaded ? online : "–";
    $("count-offline").textContent = this.loaded ? devices.length - online : "–";
    $("count-critical").textContent = critical;
    $("count-warning").textContent = warning;
    $("count-total").textContent = this.loaded ? `（${devices.length} 台）` : "";
    $("count-offline").parentElement.toggleAttribute("data-zero", devices.length === online);
    $("count-critical").parentElement.toggleAttribute("data-zero", critical === 0);
    $("count-warning").parentElement.toggleAttribute("data-zero", warning === 0);
  }

  renderAlerts() {
    const alerts = [...this.alerts.values()].sort(compareAlerts);
    $("no-alerts").hidden = alerts.length > 0 || document.body.dataset.alerts !== "loaded";
    $("alerts").replaceChildren(
      ...alerts.map((alert) =>
        h(
          "li",
          {
            class: `alert ${alert.level}`,
            dataset: { deviceId: alert.device_id, code: alert.code, level: alert.level, since: alert.since },
          },
          h("span", { class: "alert-level" }, ALERT_LEVEL_TEXT[alert.level] ?? alert.level),
          h("span", { class: "alert-message" }, alert.message || this.alertText(alert)),
          h(
            "span",
            { class: "alert-device" },
            `${DEVICE_KIND_TEXT[alert.device_kind] ?? alert.device_kind ?? ""} · ${alert.device_name ?? ""}`,
          ),
          h("span", { class: "alert-since num" }),
        ),
      ),
    );
  }

  alertText(alert) {
    return `${alert.device_name ?? ""}${ALERT_CODE_TEXT[alert.code] ?? alert.code}`;
  }

  renderDevices() {
    const devices = this.sortedDevices();
    $("empty").hidden = !this.loaded || devices.length > 0;
    $("devices").replaceChildren(...devices.map((d) => this.row(d)));
    $("devices").parentElement.classList.toggle("dense", devices.length > 14);
  }

  row(device) {
    const peer = this.peerOf(device);
    const online = Boolean(peer?.online);
    const status = peer ? (online ? "online" : "offline") : "never";
    const level = this.levelOf(device.id);
    const state = device.state ?? {};
    const isPrinter = device.kind === "printer";
    const paper = isPrinter ? state.paper ?? null : null;
    const edit = this.editable ? h("button", { type: "button", class: "small edit" }, "设置") : null;
    edit?.addEventListener("click", () => this.edit(device.id));
    const errors = Number(device.errors ?? 0);
    return h(
      "tr",
      { class: `${status} ${level}`, dataset: { deviceId: device.id, kind: device.kind, status, level, paper: paper ?? "" } },
      h(
        "td",
        { class: "device" },
        h("span", { class: "kind" }, DEVICE_KIND_TEXT[device.kind] ?? device.kind),
        h("span", { class: "name" }, device.name),
        h("span", { class: "id num" }, `#${device.id}`),
      ),
      h("td", { class: "binding" }, this.bindingText(device)),
      h(
        "td",
        { class: "status" },
        h("span", { class: `badge ${status}` }, STATUS_TEXT[status]),
      ),
      h("td", { class: "seen num" }),
      h(
        "td",
        { class: "paper" },
        paper ? h("span", { class: `paper-state ${paper}` }, PAPER_TEXT[paper] ?? paper) : "—",
      ),
      h("td", { class: "cover" }, isPrinter && state.cover_open !== undefined ? (state.cover_open ? h("span", { class: "cover-open" }, "打开") : "关闭") : "—"),
      h("td", { class: `errors num ${errors > 0 ? "has-errors" : ""}` }, errors),
      h("td", { class: "model" }, [device.model, device.firmware].filter(Boolean).join(" / ") || "—"),
      h("td", { class: "actions" }, edit),
    );
  }

  bindingText(device) {
    if (device.host_id) {
      const host = this.devices.get(device.host_id);
      if (host) return `${DEVICE_KIND_TEXT[host.kind] ?? host.kind} ${host.name}`;
      return device.host_name ?? `设备 #${device.host_id}`;
    }
    if (device.window_id) {
      const w = this.windows.find((x) => x.window_id === device.window_id);
      if (w) return windowText(w);
      return device.window_number ? `${device.window_number}号窗口` : `窗口 #${device.window_id}`;
    }
    return HOSTED_KINDS.includes(device.kind) || WINDOW_KINDS.includes(device.kind) ? "未绑定" : "—";
  }

  /** Relative times move every second without rebuilding the rows. */
  refreshTimes() {
    const now = this.client?.serverNow() ?? Date.now() / 1000;
    for (const tr of $("devices").rows) {
      const device = this.devices.get(Number(tr.dataset.deviceId));
      const peer = device ? this.peerOf(device) : null;
      tr.querySelector(".seen").textContent = peer?.last_seen ? relativeTime(now - peer.last_seen) : "从未";
    }
    for (const li of $("alerts").children) {
      const since = Number(li.dataset.since);
      li.querySelector(".alert-since").textContent = Number.isFinite(since)
        ? `${shortTime(since, now)} 起，已持续 ${durationText(now - since)}`
        : "";
    }
  }

  // --- binding and remote settings (hall managers) ---------------------------------------

  edit(deviceId) {
    const device = this.devices.get(deviceId);
    if (!device) return;
    const dialog = $("device-dialog");
    const form = $("device-form");
    $("device-dialog-kind").textContent = `${DEVICE_KIND_TEXT[device.kind] ?? device.kind} #${device.id}`;
    form.elements.name.value = device.name;

    const hosted = HOSTED_KINDS.includes(device.kind);
    $("host-field").hidden = !hosted;
    const hosts = this.activeDevices().filter((d) => HOST_KINDS.includes(d.kind));
    form.elements.host_id.replaceChildren(
      h("option", { value: "" }, "— 不绑定 —"),
      ...hosts.map((d) => h("option", { value: String(d.id) }, `${DEVICE_KIND_TEXT[d.kind]} ${d.name}`)),
    );
    form.elements.host_id.value = device.host_id ? String(device.host_id) : "";

    const atWindow = WINDOW_KINDS.includes(device.kind);
    $("window-field").hidden = !atWindow;
    form.elements.window_id.replaceChildren(
      h("option", { value: "" }, "— 不绑定 —"),
      ...this.windows.map((w) => h("option", { value: String(w.window_id) }, windowText(w))),
    );
    form.elements.window_id.value = device.window_id ? String(device.window_id) : "";

    const fields = CONFIG_FIELDS[device.kind] ?? [];
    const config = device.config ?? {};
    $("config-title").hidden = fields.length === 0;
    $("config-fields").replaceChildren(...fields.map((f) => h("label", {}, `${f.label} `, configInput(f, config[f.key]))));

    dialog.onclose = () => {
      if (dialog.returnValue === "save") this.save(device, form, fields);
    };
    dialog.returnValue = "";
    dialog.showModal();
  }

  async save(device, form, fields) {
    const patch = {};
    const name = form.elements.name.value.trim();
    if (name && name !== device.name) patch.name = name;
    if (HOSTED_KINDS.includes(device.kind)) {
      const hostId = form.elements.host_id.value ? Number(form.elements.host_id.value) : null;
      if (hostId !== (device.host_id ?? null)) patch.host_id = hostId;
    }
    if (WINDOW_KINDS.includes(device.kind)) {
      const windowId = form.elements.window_id.value ? Number(form.elements.window_id.value) : null;
      if (windowId !== (device.window_id ?? null)) patch.window_id = windowId;
    }
    const settings = { ...(device.config ?? {}) };
    for (const f of fields) {
      const value = configValue(f, form.elements[`config.${f.key}`].value);
      if (value === null) delete settings[f.key];
      else settings[f.key] = value;
    }
    const configChanged = JSON.stringify(settings) !== JSON.stringify(device.config ?? {});
    if (!Object.keys(patch).length && !configChanged) return;
    try {
      if (Object.keys(patch).length) await this.api.patch(`/api/devices/${device.id}`, patch);
      if (configChanged) await this.api.put(`/api/devices/${device.id}/config`, { settings });
      showOk(configChanged ? "已保存，配置已下发到设备" : "已保存");
    } catch (error) {
      showFailure(error);
    }
    await this.reload();
  }
}

/** "3号窗口 社保综合" (the name only when it says more than the number). */
function windowText(w) {
  const label = `${w.number}号窗口`;
  return w.name && w.name !== label ? `${label} ${w.name}` : label;
}

/** The input of one remote setting, holding its current value. */
function configInput(field, value) {
  const name = `config.${field.key}`;
  if (field.type === "lines") {
    const text = Array.isArray(value) ? value.join("\n") : "";
    const area = h("textarea", { name, rows: field.maxLines, placeholder: "默认" });
    area.value = text;
    return area;
  }
  return h("input", {
    name,
    type: field.type,
    min: field.min,
    max: field.max,
    step: field.step,
    maxlength: field.maxlength,
    placeholder: field.placeholder ?? "默认",
    value: value ?? "",
  });
}

/** A setting as sent: a number, a text, a list of lines; null when left empty. */
function configValue(field, raw) {
  if (field.type === "lines") {
    const lines = raw.split("\n").map((line) => line.trim()).filter(Boolean).slice(0, field.maxLines);
    return lines.length ? lines : null;
  }
  const text = raw.trim();
  if (text === "") return null;
  return field.type === "number" ? Number(text) : text;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const page = await startStaffPage(params, {
    title: "设备监控登录", roles: ["hall_manager", "admin", "supervisor"], showError,
  });
  if (!page) return;
  const { api, me, hall } = page;
  $("manage-link").href = `/manage/?hall=${hall}`;
  const editable = (me.grants ?? []).some((g) => MANAGER_ROLES.includes(g.role));
  const board = new DeviceBoard(api, Number(hall), { editable });
  board.start();
  const everySecond = () => {
    $("clock").textContent = clockText(board.client.serverNow());
    board.refreshTimes();
  };
  everySecond();
  setInterval(everySecond, 1000);
  window.hallhub = { board }; // for the browser console
}

main();
