// The citizen's rating page (O9, 好差评) for one served ticket: five big grade buttons, a
// checklist of reasons for a bad grade, an optional comment, then thanks.
//
// Address: /rate/?t=<public token of the ticket>[&via=sms]. The ticket page links here, and
// so does the SMS sent after service (via=sms records the source). Public: the token is the
// secret; nothing personal is shown.

import { COMMENT_MAX, GRADES, REASONS, gradeLabel, isBad, postRating, problemText } from "../lib/rating.js";
import { h } from "../lib/ui.js";

const $ = (id) => document.getElementById(id);

class RatePage {
  constructor(token, via) {
    this.token = token;
    this.via = via;
    this.grade = null;
    this.reasons = new Set();
    this.sending = false;
  }

  get ticketUrl() {
    return `/api/tickets/${encodeURIComponent(this.token)}`;
  }

  async load() {
    let ticket;
    try {
      const response = await fetch(this.ticketUrl, { cache: "no-store" });
      if (response.status === 404) return this.notice("未找到该号票，请核对链接是否完整。");
      if (!response.ok) return this.notice("暂时无法加载，请稍后刷新重试。");
      ticket = await response.json();
    } catch {
      return this.notice("网络异常，请稍后刷新重试。");
    }
    $("hall-name").textContent = ticket.hall_name;
    $("group-name").textContent = ticket.group_name;
    $("number").textContent = ticket.number;
    const rated = await fetch(`${this.ticketUrl}/rating`, { cache: "no-store" }).catch(() => null);
    if (rated?.ok) {
      const receipt = await rated.json();
      return this.thanks(`您已对 ${ticket.number} 号的服务作出评价：${gradeLabel(receipt.grade)}`);
    }
    if (ticket.status !== "done") {
      return this.notice(`${ticket.number} 号的业务尚未办结，办结后即可在此评价。`);
    }
    this.showForm();
  }

  showForm() {
    $("grades").replaceChildren(
      ...GRADES.map(({ grade, label, tone }) =>
        h("button", {
          type: "button", class: `grade tone-${tone}`, role: "radio", "aria-checked": "false",
          dataset: { grade },
        }, label),
      ),
    );
    $("reason-list").replaceChildren(
      ...REASONS.map(({ reason, label }) =>
        h("label", { class: "reason" },
          h("input", { type: "checkbox", value: reason, dataset: { reason } }),
          h("span", {}, label)),
      ),
    );
    $("grades").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-grade]");
      if (button) this.choose(button.dataset.grade);
    });
    $("reason-list").addEventListener("change", (event) => {
      const box = event.target;
      if (box.checked) this.reasons.add(box.value);
      else this.reasons.delete(box.value);
      this.update();
    });
    $("comment").maxLength = COMMENT_MAX;
    $("submit").addEventListener("click", () => this.submit());
    $("form").hidden = false;
    document.body.dataset.state = "form";
  }

  choose(grade) {
    this.grade = grade;
    for (const button of $("grades").querySelectorAll("button")) {
      button.setAttribute("aria-checked", String(button.dataset.grade === grade));
    }
    $("reasons").hidden = !isBad(grade);
    $("comment-box").hidden = false;
    this.update();
  }

  update() {
    const needsReason = this.grade && isBad(this.grade) && this.reasons.size === 0;
    $("submit").disabled = !this.grade || needsReason || this.sending;
    $("error").hidden = true;
  }

  async submit() {
    if (!this.grade || this.sending) return;
    this.sending = true;
    this.update();
    const rating = {
      grade: this.grade,
      reasons: isBad(this.grade) ? REASONS.map((r) => r.reason).filter((r) => this.reasons.has(r)) : [],
    };
    const comment = $("comment").value.trim();
    if (comment) rating.comment = comment;
    const query = this.via === "sms" ? "?via=sms" : "";
    const result = await postRating(`${this.ticketUrl}/rating${query}`, rating);
    this.sending = false;
    if (result.ok) {
      this.thanks(result.already ? "该号票已评价过，每张号票只能评价一次。" : `您的评价：${gradeLabel(this.grade)}`);
      return;
    }
    $("error").textContent = problemText(result);
    $("error").hidden = false;
    this.update();
  }

  thanks(detail) {
    $("form").hidden = true;
    $("thanks-detail").textContent = detail;
    $("thanks").hidden = false;
    document.body.dataset.state = "thanks";
  }

  notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
    document.body.dataset.state = "notice";
  }
}

function main() {
  const params = new URLSearchParams(location.search);
  const token = params.get("t");
  if (!token || token.length > 64) {
    $("notice").textContent = "链接不完整：请扫描号票上的二维码或点击短信中的链接进入。";
    $("notice").hidden = false;
    document.body.dataset.state = "notice";
    return;
  }
  const page = new RatePage(token, params.get("via"));
  window.hallhub = { page };
  page.load();
}

main();
