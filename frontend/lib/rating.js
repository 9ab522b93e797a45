// rating.js — the five grades and the reasons of a bad grade (O9, 好差评), as the hub's
// hub/domain/rating.py defines them (codes are stable; labels are what the pages show),
// and the one request that submits a rating.

export const GRADES = Object.freeze([
  { grade: "very_satisfied", label: "非常满意", tone: "good" },
  { grade: "satisfied", label: "满意", tone: "good" },
  { grade: "basically_satisfied", label: "基本满意", tone: "fair" },
  { grade: "dissatisfied", label: "不满意", tone: "bad" },
  { grade: "very_dissatisfied", label: "非常不满意", tone: "bad" },
]);

export const REASONS = Object.freeze([
  { reason: "poor_attitude", label: "服务态度差" },
  { reason: "slow_service", label: "办事效率低" },
  { reason: "complex_process", label: "流程繁琐" },
  { reason: "unreasonable_materials", label: "材料要求不合理" },
  { reason: "repeated_visits", label: "多次跑动" },
  { reason: "unclear_policy", label: "政策解释不清" },
  { reason: "other", label: "其他" },
]);

export const COMMENT_MAX = 500;

const BAD = new Set(["dissatisfied", "very_dissatisfied"]);

/** Whether a grade is a bad one (差评): it needs at least one reason. */
export function isBad(grade) {
  return BAD.has(grade);
}

export function gradeLabel(grade) {
  return GRADES.find((g) => g.grade === grade)?.label ?? grade;
}

/**
 * POST a rating. Resolves with {ok, status, body}: ok for 201, and for 409 already_rated
 * (the citizen's rating is there either way); body is the receipt or the problem.
 */
export async function postRating(url, rating, { token = null } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { method: "POST", headers, body: JSON.stringify(rating), cache: "no-store" });
  } catch (error) {
    return { ok: false, status: 0, body: { code: "network", detail: String(error) } };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const already = response.status === 409 && body?.code === "already_rated";
  return { ok: response.status === 201 || already, already, status: response.status, body };
}

/** A sentence for the citizen about a refused rating (problem+json body). */
export function problemText(result) {
  const code = result.body?.code;
  if (result.status === 0) return "网络异常，请稍后重试";
  if (result.status === 429) return "操作太频繁，请稍后再试";
  if (code === "ticket_not_finished") return "业务办结后才能评价";
  if (code === "not_found") return "未找到该号票";
  if (code === "invalid_input") return "请完整填写评价内容（不满意时请选择原因）";
  return "评价提交失败，请重试";
}
