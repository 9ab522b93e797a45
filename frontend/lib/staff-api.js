// staff-api.js — the HTTP API as the staff pages (staff console, manager console) use it:
// the session token, JSON requests, RFC 9457 problems in zh-CN words, the sign-in form.
//
//   const api = new StaffApi(readToken());
//   try { await api.post(`/api/halls/1/windows/3/call`); }
//   catch (error) { if (error instanceof ApiError) show(error.message); }

import { TOKEN_KEY, h, readToken } from "./ui.js";

export const STAFF_NO_KEY = "hallhub.staff_no";

// The hub's problem codes (hub/domain/errors.py, hub/domain/queue.py, …) in words for staff.
export const PROBLEM_TEXT = Object.freeze({
  window_not_open: "窗口未开放：请先签到，或点击“继续”恢复办理",
  window_busy: "当前号票尚未处理完：请先办结、过号、挂起或转移",
  no_current_ticket: "当前没有正在办理的号票",
  window_closed: "目标窗口未开放",
  window_taken: "该窗口已有其他工作人员签到",
  already_signed_in: "您已在其他窗口签到，请先在该窗口签退",
  window_not_signed_in: "该窗口尚无人签到",
  illegal_state: "当前状态下不能进行此操作",
  ticket_limit_reached: "该证件今日取号已达上限",
  group_closed: "该业务暂停取号",
  hall_closed: "当前不在取号时间内",
  invalid_id_document: "证件号码有误",
  prefix_in_use: "该分组已发放号票，前缀不能再修改",
  conflict: "与已有数据冲突（编号、前缀或工号已被使用）",
  invalid_input: "填写的内容有误",
  not_found: "未找到要操作的对象，请刷新页面",
  forbidden: "您无权进行此操作",
  unauthenticated: "登录已失效，请重新登录",
  sign_in_failed: "工号或密码错误",
  rate_limited: "操作过于频繁，请稍后再试",
  internal_error: "服务器内部错误，请稍后再试",
  unavailable: "服务暂不可用，请稍后再试",
});

// Field paths of the problems' `errors`, in words.
const FIELD_TEXT = Object.freeze({
  prefix: "前缀",
  name: "名称",
  daily_quota: "每日限额",
  id_daily_limit: "每证每日限取",
  service_seconds: "预计办理时长",
  opens_minute: "开始取号时间",
  closes_minute: "停止取号时间",
  requeue_limit: "过号重排次数",
  timezone: "时区",
  staff_no: "工号",
  password: "密码",
  text: "公告内容",
  ttl_seconds: "显示时长",
  reason: "闭馆原因",
  day: "日期",
  window_id: "窗口",
  group_id: "业务分组",
  kind: "设备类型",
  number: "编号",
  host_id: "所属终端",
  settings: "远程配置",
  poll_seconds: "状态查询间隔",
  timeout_s: "等待时间",
  header: "票头文字",
  footer: "票尾文字",
});

/** A failed request: `code` is the problem's code ("network" when the hub was not reached),
 * `message` the zh-CN sentence to show, `problem` the body as sent. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problemText(problem));
    this.name = "ApiError";
    this.status = status;
    this.code = problem?.code ?? "network";
    this.problem = problem;
  }

  /** The field paths the problem names (`body.prefix`, `path.window_id`…). */
  get fields() {
    return (this.problem?.errors ?? []).map((e) => String(e.field));
  }
}

/** The words for a problem: its code's sentence, and the fields it names. */
export function problemText(problem) {
  if (!problem) return "无法连接服务器，请检查网络";
  const text = PROBLEM_TEXT[problem.code] ?? problem.title ?? "操作失败";
  const fields = (problem.errors ?? [])
    .map((e) => FIELD_TEXT[String(e.field).split(".").pop()])
    .filter(Boolean);
  return fields.length ? `${text}（${[...new Set(fields)].join("、")}）` : text;
}

export function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives as long as the page */
  }
}

export function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function store(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, String(value));
  } catch {
    /* storage disabled */
  }
}

/** JSON over fetch with the staff session; every failure is an ApiError. */
export class StaffApi {
  constructor(token = null) {
    this.token = token;
  }

  async request(method, path, body = undefined) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, null);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data ?? { code: "internal_error" });
    return data;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  delete(path) {
    return this.request("DELETE", path);
  }

  /** Exchange a staff number and password for a session; the token is kept. */
  async signIn(staffNo, password) {
    const session = await this.post("/api/auth/sign-in", { staff_no: staffNo, password });
    this.token = session.token;
    storeToken(session.token);
    store(STAFF_NO_KEY, session.staff_no);
    return session;
  }

  /** End the session (best effort) and forget the token. */
  async signOut() {
    try {
      if (this.token) await this.post("/api/auth/sign-out");
    } catch {
      /* an expired session is signed out already */
    }
    this.token = null;
    storeToken(null);
    store(STAFF_NO_KEY, null);
  }
}

/**
 * The sign-in form (staff number and password) in `container`; resolves with the session
 * once the hub accepts them. Errors are shown under the form.
 */
export function signInForm(container, api, { title = "工作人员登录" } = {}) {
  return new Promise((resolve) => {
    const staffNo = h("input", { id: "signin-staff-no", name: "staff_no", autocomplete: "username", required: true });
    const password = h("input", {
      id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true,
    });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "primary" }, "登录");
    const form = h(
      "form",
      { class: "signin-form", id: "signin-form" },
      h("h2", {}, title),
      h("label", { for: "signin-staff-no" }, "工号"),
      staffNo,
      h("label", { for: "signin-password" }, "密码"),
      password,
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const session = await api.signIn(staffNo.value.trim(), password.value);
        resolve(session);
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
        password.select();
      } finally {
        submit.disabled = false;
      }
    });
    container.replaceChildren(form);
    staffNo.focus();
  });
}

/**
 * The signed-in staff member (GET /api/auth/me): with the kept token, or after the sign-in
 * form in `container` when there is none or it expired.
 */
export async function ensureSignedIn(api, container, options = {}) {
  if (api.token) {
    try {
      return await api.get("/api/auth/me");
    } catch (error) {
      if (error.status !== 401) throw error;
      storeToken(null);
      api.token = null;
    }
  }
  document.body.dataset.view = "signin";
  await signInForm(container, api, options);
  return api.get("/api/auth/me");
}

/**
 * The start of a staff page (staff console, manager console): the signed-in staff member (the
 * sign-in form titled `title` in #signin-view when needed), their name and the sign-out button
 * in the header (#staff-name, #session-sign-out), and the hall: ?hall= or the hall of their
 * first hall grant of one of `roles`. Resolves with {api, me, hall} (hall: the id as a string),
 * or with null when the page cannot go on: a failed sign-in is passed to `showError(message)`,
 * a missing hall is said in #notice (data-view="none").
 */
export async function startStaffPage(params, { title, roles, showError }) {
  const $ = (id) => document.getElementById(id);
  const api = new StaffApi(readToken(params));
  let me;
  try {
    me = await ensureSignedIn(api, $("signin-view"), { title });
  } catch (error) {
    showError(error.message);
    return null;
  }
  $("staff-name").textContent = me.label;
  const signOut = $("session-sign-out");
  signOut.hidden = false;
  signOut.addEventListener("click", async () => {
    await api.signOut();
    location.reload();
  });
  const hall = params.get("hall") ?? hallOfGrants(me, roles);
  if (!hall || !/^\d+$/.test(hall)) {
    document.body.dataset.view = "none";
    $("notice").textContent = "未指定大厅：请在地址后加上 ?hall=大厅编号。";
    $("notice").hidden = false;
    return null;
  }
  return { api, me, hall };
}

/** The hall of the first hall-scoped grant of one of `roles` (a staff member's own hall). */
export function hallOfGrants(me, roles) {
  const grant = (me.grants ?? []).find((g) => g.scope_kind === "hall" && roles.includes(g.role));
  return grant ? String(grant.scope_id) : null;
}

/** "08:30" for 510 minutes; "24:00" for 1440. */
export function minuteText(minute) {
  return `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
}

/** 510 for "08:30" or "8:30"; null when it is not a time of day (00:00–24:00). */
export function parseMinute(text) {
  const match = /^(\d{1,2}):(\d{2})$/.exec(String(text).trim());
  if (!match) return null;
  const minute = Number(match[1]) * 60 + Number(match[2]);
  return Number(match[2]) < 60 && minute <= 1440 ? minute : null;
}

export const ROLE_TEXT = Object.freeze({
  admin: "管理员",
  hall_manager: "大厅管理员",
  window_staff: "窗口人员",
  supervisor: "监察人员",
});

export const PRIORITY_TEXT = Object.freeze({
  normal: "普通",
  appointment: "预约",
  green_channel: "绿色通道",
  vip: "VIP",
});
