// The script every classhub page loads before its own (the hub's pages and the classes,
// files and grades pages): calls to a service's or the hub's REST API with the XSRF token
// and their errors as messages a person understands, the file store's signed uploads and
// downloads, the message region (classhub/header.html), buttons that are busy while their
// work runs, and the small helpers the pages' scripts share. No page script calls fetch or
// XMLHttpRequest itself (eslint.config.js). It marks the navigation link of the page shown.
// Data from an API is only ever put into the page with textContent and attributes, never
// as HTML. Pages use it as window.classhub.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // ----------------------------------------------------------------- the API

  function xsrfToken() {
    // a service's cookie (path /services/<name>/) comes first in document.cookie
    for (const part of document.cookie.split(";")) {
      const [name, ...value] = part.trim().split("=");
      if (name === "_xsrf") return decodeURIComponent(value.join("="));
    }
    const meta = document.querySelector('meta[name="classhub-xsrf"]');
    if (meta) return meta.content;
    return (window.jhdata && window.jhdata.xsrf_token) || "";
  }

  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.status = status;
      this.data = data === undefined ? null : data;
    }
  }

  function fallbackMessage(status, what) {
    if (status === 502 || status === 503 || status === 504) {
      return `${what} is not answering (HTTP ${status}); try again shortly.`;
    }
    if (status === 401 || status === 403) {
      return "This was refused, or your sign-in has ended: reload the page.";
    }
    if (status === 413) return "This is too large.";
    return `The request failed (HTTP ${status}).`;
  }

  // api(method, path, payload) for the API below base (a URL ending in "/"); what names
  // it in messages ("The grades service"). Answers: the JSON body (null for a 204); a
  // refusal throws an ApiError with the API's message.
  // ``token``: where the XSRF token comes from (another service's, for a page that calls
  // it: the page's own by default)
  function apiClient(base, what, token = xsrfToken) {
    return async function api(method, path, payload) {
      const init = {
        method,
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-XSRFToken": token(), Accept: "application/json" },
      };
      if (payload !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(payload);
      }
      let response;
      try {
        response = await fetch(base + path, init);
      } catch {
        throw new ApiError(0, `${what} cannot be reached: check your connection.`);
      }
      let data = null;
      if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
        try {
          data = await response.json();
        } catch {
          data = null;
        }
      }
      if (response.ok && (data !== null || response.status === 204)) return data;
      if (response.ok) {
        // a sign-in page instead of an answer: the session ended
        throw new ApiError(response.status, "Your sign-in has ended: reload the page.");
      }
      if (!(data && typeof data.message === "string" && data.message)) {
        throw new ApiError(response.status, fallbackMessage(response.status, what), data);
      }
      // messages are shown as the API words them (they may start with a user name)
      const message =
        response.status >= 500 && response.status !== 502
          ? `${what} cannot answer right now: ${data.message}`
          : data.message;
      throw new ApiError(response.status, message, data);
    };
  }

  // ----------------------------------------------------------------- the file store

  // File bytes go straight between the browser and the file store (S3): a service signs
  // the request, the browser sends or fetches the bytes, then (for an upload) tells the
  // service it is done. These are the only calls to the store of every page.

  // The store's answer to a refused upload is S3's XML: its <Message>, if any.
  function storeMessage(xhr) {
    const found = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
    const detail = found ? `: ${found[1]}` : "";
    return `The file store refused the upload (HTTP ${xhr.status})${detail}. Try again.`;
  }

  // PUT file to the store as a service signed it (signed: {method, url, headers}; its exact
  // size is signed too: the browser sends it as Content-Length). onProgress(loaded, total),
  // if given, follows the bytes sent. Refusals and interruptions throw an ApiError.
  function uploadToStore(signed, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(signed.method || "PUT", signed.url);
      for (const [name, value] of Object.entries(signed.headers || {})) {
        xhr.setRequestHeader(name, value);
      }
      if (onProgress) {
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) onProgress(event.loaded, event.total);
        });
      }
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new ApiError(xhr.status, storeMessage(xhr), null));
      });
      xhr.addEventListener("error", () =>
        reject(
          new ApiError(0, "The upload was interrupted: check your connection and try again.", null),
        ),
      );
      xhr.addEventListener("abort", () => reject(new ApiError(0, "The upload was stopped.", null)));
      xhr.send(file);
    });
  }

  // The text of a file at a short-lived link a service signed (without the page's cookies).
  // A refusal or an interruption throws an ApiError.
  async function readFromStore(url) {
    let response;
    try {
      response = await fetch(url, { credentials: "omit", cache: "no-store" });
    } catch {
      throw new ApiError(0, "The file store cannot be reached: check your connection.");
    }
    if (!response.ok) {
      throw new ApiError(
        response.status,
        `The file store refused the download (HTTP ${response.status}).`,
      );
    }
    return response.text();
  }

  // ----------------------------------------------------------------- messages

  function errorText(error) {
    return error instanceof ApiError
      ? error.message
      : `Something went wrong on this page (${error.message}); reload it.`;
  }

  // bring a message into view when the page is scrolled past it (it never floats over
  // the content: the region is in the flow of the page)
  function reveal(element) {
    if (element.getBoundingClientRect().top < 0) element.scrollIntoView({ block: "nearest" });
  }

  // The result of what the person did: kind is a Bootstrap alert kind (success, danger,
  // warning, info); link: {href, text} after the text.
  function say(kind, text, link) {
    const alert = $("action-alert");
    alert.className = `alert alert-${kind} alert-dismissible`;
    alert.replaceChildren(document.createTextNode(text));
    if (link) {
      const a = document.createElement("a");
      a.className = "alert-link";
      a.href = link.href;
      a.textContent = link.text;
      alert.append(" ", a);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", () => {
      alert.hidden = true;
    });
    alert.append(close);
    alert.hidden = false;
    reveal(alert);
  }

  function fail(error) {
    say("danger", errorText(error));
  }

  // a problem of the page's own loading or refreshing, shown until clearProblem()
  function showProblem(error) {
    const alert = $("status-alert");
    alert.textContent = typeof error === "string" ? error : errorText(error);
    alert.hidden = false;
  }

  function clearProblem() {
    $("status-alert").hidden = true;
  }

  // a load's outcome in the status message (shown until a load works again)
  async function loading(work) {
    try {
      const result = await work();
      clearProblem();
      return result;
    } catch (e) {
      showProblem(e);
      return undefined;
    }
  }

  // Run refresh() now and every ms (not while the tab is hidden); its failures show in
  // the status message until a refresh works again. Returns "refresh now".
  function startPolling(refresh, ms) {
    let running = false;
    let again = false;
    async function tick() {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await refresh();
        clearProblem();
      } catch (e) {
        showProblem(
          e instanceof ApiError ? e.message : `This page could not refresh (${e.message}).`,
        );
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        tick();
      }
    }
    setInterval(() => {
      if (!document.hidden) tick();
    }, ms);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) tick();
    });
    tick();
    return tick;
  }

  // ----------------------------------------------------------------- buttons

  // The button is busy (disabled) while work runs, so a double click sends one request;
  // it is disabled before anything else, so a second click in the same instant finds it
  // so. A failure becomes the action message.
  async function withButton(button, work) {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await work();
    } catch (e) {
      fail(e);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // the person's yes to something that cannot be undone
  function confirmAction(question) {
    return window.confirm(question);
  }

  // ----------------------------------------------------------------- rows

  const field = (root, name) => root.querySelector(`[data-field="${name}"]`);
  const action = (root, name) => root.querySelector(`[data-action="${name}"]`);

  // Make parent's children (a tbody's rows) match items (in order), keeping existing
  // elements (and their focus and state); new ones are clones of <template id=templateId>.
  function syncRows(parent, items, keyOf, templateId, fill) {
    const template = $(templateId).content.firstElementChild;
    const old = new Map(Array.from(parent.children, (el) => [el.dataset.key, el]));
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let el = old.get(key);
      if (el) {
        old.delete(key);
      } else {
        el = template.cloneNode(true);
        el.dataset.key = key;
      }
      fill(el, item);
      const expected = previous ? previous.nextElementSibling : parent.firstElementChild;
      if (el !== expected) parent.insertBefore(el, expected);
      previous = el;
    }
    for (const el of old.values()) el.remove();
  }

  // a table cell with text
  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  // ----------------------------------------------------------------- text

  // an ISO instant in the browser's time zone (format: Intl options)
  function when(iso, format) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, format);
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many || one + "s"}`;
  }

  function num(n) {
    return n === null || n === undefined ? "" : String(Number(n));
  }

  // the same text as size_text() in services/files/uploads.py
  function sizeText(n) {
    for (const [unit, size] of [
      ["GB", 1 << 30],
      ["MB", 1 << 20],
      ["KB", 1 << 10],
    ]) {
      if (n >= size) return `${(n / size).toFixed(1)} ${unit}`;
    }
    return `${n} bytes`;
  }

  // "2026-12-02T09:00:00+01:00": a local date and time with the browser's UTC offset
  function isoWithOffset(date) {
    const pad = (n) => String(n).padStart(2, "0");
    const offset = -date.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    const abs = Math.abs(offset);
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
      `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
    );
  }

  // ----------------------------------------------------------------- the page

  // An error page (classhub/error.html) reloads itself when it says so (a 503); true
  // when this is an error page.
  function initErrorPage() {
    const page = $("error-page");
    if (!page) return false;
    const seconds = Number(page.dataset.retry || 0);
    if (seconds > 0) setTimeout(() => window.location.reload(), seconds * 1000);
    return true;
  }

  // the navigation link of the page shown: the longest link that the address starts with
  function markNavigation() {
    let best = null;
    for (const link of document.querySelectorAll("#classhub-nav a.nav-link")) {
      const path = new URL(link.href, window.location.href).pathname;
      if (window.location.pathname.startsWith(path)) {
        if (!best || path.length > best.path.length) best = { link, path };
      }
    }
    if (best) {
      best.link.classList.add("active");
      best.link.setAttribute("aria-current", "page");
    }
  }

  // Another service's API (``/<base>services/<name>/``) as the person signed in on this
  // page: the service's home answers, after the hub's OAuth redirects, who is signed in
  // and the service's own XSRF token. 404: the deployment does not run that service.
  async function serviceClient(hubBase, name, what) {
    const base = `${hubBase || "/"}services/${name}/`;
    let response;
    try {
      response = await fetch(base, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch {
      throw new ApiError(0, `${what} cannot be reached: check your connection.`);
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
      data = await response.json().catch(() => null);
    }
    if (!response.ok || !data || !data.xsrf) {
      const status = response.ok ? 502 : response.status;
      throw new ApiError(status, fallbackMessage(status, what), data);
    }
    return apiClient(base, what, () => data.xsrf);
  }

  markNavigation();

  window.classhub = Object.freeze({
    ApiError,
    action,
    apiClient,
    cell,
    clearProblem,
    confirmAction,
    errorText,
    fail,
    field,
    initErrorPage,
    isoWithOffset,
    loading,
    num,
    plural,
    readFromStore,
    say,
    serviceClient,
    showProblem,
    sizeText,
    startPolling,
    syncRows,
    uploadToStore,
    when,
    withButton,
    xsrfToken,
  });
})();
