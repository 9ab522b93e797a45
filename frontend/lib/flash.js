// The message bars of the manager's pages (manage/, devices/): #error (role="alert") and #ok
// (role="status", lib/manager.css .ok-bar) show a text for a few seconds.

import { storeToken } from "./staff-api.js";

const timers = new Map(); // bar id -> the timer that hides it

/** Show `text` in the bar #`id` for `seconds` (a newer text restarts the time). */
export function flash(id, text, seconds) {
  const bar = document.getElementById(id);
  bar.textContent = text;
  bar.hidden = false;
  clearTimeout(timers.get(id));
  timers.set(
    id,
    setTimeout(() => {
      bar.hidden = true;
    }, seconds * 1000),
  );
}

export const showError = (text) => flash("error", text, 10);
export const showOk = (text) => flash("ok", text, 3);

/** A request that failed: a lapsed session (401) signs out and reloads the page (to the
 * sign-in form); anything else is shown in the error bar. */
export function showFailure(error) {
  if (error?.status === 401) {
    storeToken(null);
    location.reload();
    return;
  }
  showError(error?.message ?? String(error));
}
