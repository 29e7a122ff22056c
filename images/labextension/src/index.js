// classhub's JupyterLab extension (built by images/labextension/build.sh into
// images/singleuser/classhub_singleuser/labextension, shipped in the classhub-singleuser
// wheel). Three parts:
//
// - The Class panel (left sidebar): the class, its assignments with the student's own due
//   dates and where they stand, Submit (saves every open, changed document of the
//   assignment's folder first, then hands the folder in and shows what was taken),
//   returned feedback rendered as Markdown, and the class material with what changed.
// - The class and whose server it is, in the browser tab's title and in a bar at the top.
// - The session watch: when the sign-in session ends or the server is stopped, a dialog
//   says which and why, and offers to download the notebooks with unsaved changes.
//
// Who it talks to: its own server (classhub/api/context, the contents API), and, only on
// one shared origin and only in the owner's own server, the grades service at
// <hub base>/services/grades/ with the owner's own hub session, as the Grades page does.
// No credential of any kind is in this code or in the server it runs on.
// Data from an API is put into the page with textContent only; Markdown feedback goes
// through JupyterLab's sanitising Markdown renderer (untrusted).

import { IConnectionLost, ILabShell } from "@jupyterlab/application";
import { Dialog, showDialog } from "@jupyterlab/apputils";
import { PageConfig, URLExt } from "@jupyterlab/coreutils";
import { IDocumentManager } from "@jupyterlab/docmanager";
import { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import { ServerConnection } from "@jupyterlab/services";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";

const ID = "@classhub/jupyterlab-classhub";
const POLL_MS = 10000; // session watch while the tab is visible
const HIDDEN_POLL_MS = 60000;
const PANEL_REFRESH_MS = 30000;

const classIcon = new LabIcon({
  name: "classhub:class",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<path class="jp-icon3" fill="#616161" d="M12 3 1 9l11 6 9-4.9V17h2V9L12 3zM5 13.2v4L12 21l7-3.8v-4L12 17l-7-3.8z"/>' +
    "</svg>",
});

// ------------------------------------------------------------------ small helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function left(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const text = d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
  return seconds >= 0 ? `${text} left` : `${text} ago`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function messageOf(error) {
  return (error && error.message) || String(error);
}

// the server's own API (the server's base URL; JupyterLab's settings add its XSRF token)
async function serverJSON(path) {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(
    URLExt.join(settings.baseUrl, path),
    { cache: "no-store" },
    settings,
  );
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function contents(app, path, content = true) {
  try {
    return await app.serviceManager.contents.get(path, { content });
  } catch {
    return null; // missing (404) or unreadable: nothing to show
  }
}

// ------------------------------------------------------------------ the grades service

// The grades service as the Grades page reaches it: same origin, the person's own hub
// session (the service's OAuth cookie) and its XSRF token, read from its class page
// (JupyterHub checks XSRF on every script request with a cookie; a same-origin no-cors
// GET, like a page view, needs none). Only used on one shared origin, where the owner
// gate lets nobody but the owner open this page.
class GradesClient {
  constructor(servicesPrefix, code) {
    this.base = `${servicesPrefix}grades/`;
    this.code = code;
    this.xsrf = "";
  }

  async token() {
    if (this.xsrf) return this.xsrf;
    const response = await fetch(`${this.base}classes/${encodeURIComponent(this.code)}`, {
      mode: "no-cors",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" },
    });
    if (!response.ok) throw new Error(`the grades page answered HTTP ${response.status}`);
    // parsed as an inert document: nothing in it runs
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const meta = page.querySelector('meta[name="classhub-xsrf"]');
    if (!meta || !meta.content) {
      throw new Error("open the Grades page once to sign in to it, then refresh this panel");
    }
    this.xsrf = meta.content;
    return this.xsrf;
  }

  async call(method, path) {
    const xsrf = await this.token();
    const response = await fetch(this.base + path, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "X-XSRFToken": xsrf },
    });
    let data = null;
    if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
      data = await response.json();
    }
    if (!response.ok || data === null) {
      if (response.status === 403) this.xsrf = ""; // a new session: read the token again
      const text = data && data.message ? data.message : `HTTP ${response.status}`;
      const error = new Error(text);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  assignments() {
    return this.call("GET", `api/classes/${encodeURIComponent(this.code)}/assignments`);
  }

  submit(slug) {
    const c = encodeURIComponent(this.code);
    return this.call("POST", `api/classes/${c}/assignments/${encodeURIComponent(slug)}/submit`);
  }

  files(submissionId) {
    return this.call("GET", `api/submissions/${encodeURIComponent(submissionId)}/files`);
  }

  pageUrl() {
    return `${PageConfig.getOption("hubHost") || ""}${this.base}classes/${encodeURIComponent(this.code)}`;
  }
}

// ------------------------------------------------------------------ saving open documents

// The contexts of the documents open in the main area, once each.
function openContexts(app, docManager) {
  const seen = new Map();
  for (const widget of app.shell.widgets("main")) {
    const context = docManager.contextForWidget(widget);
    if (context && !seen.has(context.path)) seen.set(context.path, context);
  }
  return Array.from(seen.values());
}

// Save every open document under folder (a path ending in "/") with unsaved changes;
// the paths saved. A save that fails throws: nothing is handed in then.
async function saveOpenUnder(app, docManager, folder) {
  const saved = [];
  for (const context of openContexts(app, docManager)) {
    if (!context.path.startsWith(folder) || !context.model.dirty) continue;
    await context.save();
    if (context.model.dirty) throw new Error(`${context.path} could not be saved`);
    saved.push(context.path);
  }
  return saved;
}

// ------------------------------------------------------------------ the Class panel

// where the student stands (services/grades/standing.py: the state)
const STATE_TEXT = {
  not_handed_in_yet: "not handed in yet",
  missing: "missing",
  handed_in: "handed in",
  graded: "graded",
};

class ClassPanel extends Widget {
  constructor(app, docManager, rendermime, ctx) {
    super();
    this.app = app;
    this.docManager = docManager;
    this.rendermime = rendermime;
    this.ctx = ctx;
    this.klass = ctx.class;
    this.id = "classhub-class-panel";
    this.addClass("classhub-panel");
    this.title.icon = classIcon;
    this.title.caption = `Class: ${this.klass.name}`;
    const crossOrigin = Boolean(PageConfig.getOption("hubHost"));
    // the grades service only for the owner, in their own browser, on the hub's origin
    this.grades =
      ctx.own_server && !crossOrigin
        ? new GradesClient(ctx.services_prefix, this.klass.code)
        : null;
    this.results = new Map(); // slug -> the last Submit's result element
    this.build();
  }

  build() {
    const node = this.node;
    const head = el("header", "classhub-panel-head");
    head.append(el("h2", "", this.klass.name));
    head.append(
      el(
        "p",
        "classhub-who",
        this.ctx.own_server
          ? `Class ${this.klass.code} · your server`
          : `Class ${this.klass.code} · ${this.ctx.owner}'s server (you are ${this.ctx.viewer})`,
      ),
    );
    const refresh = el("button", "jp-mod-styled classhub-refresh", "Refresh");
    refresh.addEventListener("click", () => this.refresh());
    head.append(refresh);
    node.append(head);
    this.message = el("p", "classhub-message");
    this.message.hidden = true;
    node.append(this.message);
    node.append(el("h3", "", "Assignments"));
    this.assignmentList = el("div", "classhub-assignments");
    node.append(this.assignmentList);
    node.append(el("h3", "", "Material"));
    this.materialList = el("ul", "classhub-material");
    node.append(this.materialList);
  }

  say(text, kind = "info") {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
    this.message.hidden = !text;
  }

  onAfterShow() {
    this.refresh();
  }

  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      await Promise.all([this.loadAssignments(), this.loadMaterial()]);
    } finally {
      this.refreshing = false;
    }
  }

  // ---- assignments

  async loadAssignments() {
    let items;
    let fromGrades = false;
    if (this.grades) {
      try {
        items = (await this.grades.assignments()).assignments;
        fromGrades = true;
        this.say("");
      } catch (e) {
        this.say(`The grades service did not answer: ${messageOf(e)}.`, "error");
      }
    }
    if (!fromGrades) items = await this.assignmentsOnDisk();
    const list = this.assignmentList;
    const results = this.results;
    list.replaceChildren();
    if (!items.length) {
      list.append(el("p", "classhub-empty", "No assignment yet."));
      return;
    }
    for (const a of items) {
      list.append(await this.assignmentCard(a, fromGrades, results.get(a.slug)));
    }
  }

  // without the grades service: the assignment folders of the class folder
  async assignmentsOnDisk() {
    const dir = await contents(this.app, this.klass.assignments_dir);
    if (!dir || !Array.isArray(dir.content)) return [];
    return dir.content
      .filter((item) => item.type === "directory")
      .map((item) => ({ slug: item.name, title: item.name }))
      .sort((x, y) => x.slug.localeCompare(y.slug));
  }

  async assignmentCard(a, fromGrades, lastResult) {
    const card = el("article", "classhub-assignment");
    card.dataset.slug = a.slug;
    card.append(el("h4", "", a.title || a.slug));
    const folder = `${this.klass.assignments_dir}/${a.slug}`;
    const open = el("button", "classhub-link", `Folder: ${folder}`);
    open.addEventListener("click", () => {
      this.app.commands.execute("filebrowser:go-to-path", { path: `/${folder}` }).catch(() => {});
    });
    card.append(open);
    if (fromGrades) {
      const due = a.your_due_at;
      card.append(
        el(
          "p",
          "classhub-due",
          due
            ? `Due ${when(due)} (${left(a.seconds_left)})${a.extended ? ", extended for you" : ""}`
            : "No due date",
        ),
      );
      const st = a.standing || {};
      const versions = a.submissions || [];
      let state = STATE_TEXT[st.state] || st.state || "";
      if (st.counting_version) {
        state += `: version ${st.counting_version} counts, ${st.late ? "late" : "on time"}`;
      }
      if (versions.length) state += ` (${versions.length} version(s) handed in)`;
      card.append(el("p", "classhub-state", state));
      if (st.returned && st.final_points !== null && st.final_points !== undefined) {
        const penalty = Number(st.penalty_percent) ? ` after a ${st.penalty_percent}% penalty` : "";
        card.append(
          el("p", "classhub-grade", `Points: ${st.final_points} / ${a.max_points}${penalty}`),
        );
      }
    }
    const submit = el("button", "jp-mod-styled jp-mod-accept classhub-submit", "Submit");
    const result = lastResult || el("div", "classhub-result");
    this.results.set(a.slug, result);
    if (!this.ctx.own_server) {
      submit.disabled = true;
      submit.title = `Only ${this.ctx.owner} can hand in their work`;
    }
    submit.addEventListener("click", () => this.submit(a.slug, submit, result));
    card.append(submit, result);
    const feedback = await this.feedback(a.slug);
    if (feedback) card.append(feedback);
    return card;
  }

  async submit(slug, button, result) {
    button.disabled = true;
    // Without the grades service the Grades page opens in a new tab, opened here, within
    // the click: a browser lets a page open a tab only for a few seconds after a click
    // (5 s in Chromium), and saving may take longer. It is sent there once saved.
    const tab = this.grades ? null : window.open("", "_blank");
    const show = (text, kind) => {
      result.replaceChildren(el("p", "", text));
      result.dataset.kind = kind;
    };
    try {
      show("Saving your open files…", "info");
      const folder = `${this.klass.assignments_dir}/${slug}/`;
      const saved = await saveOpenUnder(this.app, this.docManager, folder);
      if (!this.grades) {
        this.openGradesPage(tab, saved, result);
        return;
      }
      show("Handing in a copy of your folder…", "info");
      const s = await this.grades.submit(slug);
      const timing = s.late ? "late" : "on time";
      const lines = [
        s.duplicate
          ? `Nothing changed since version ${s.version} (${timing}): it stays handed in.`
          : `Handed in: version ${s.version}, ${timing}, at ${when(s.taken && s.taken.at)}.`,
      ];
      if (saved.length) lines.push(`Saved first: ${saved.join(", ")}.`);
      if (s.taken && s.taken.skipped_total > 0) {
        const names = (s.taken.skipped || []).map((x) => `${x.path} (${x.reason})`);
        lines.push(
          `Left out: ${names.join(", ")}${s.taken.skipped_total > names.length ? ", …" : ""}.`,
        );
      }
      result.replaceChildren(...lines.map((line) => el("p", "", line)));
      result.dataset.kind = "success";
      const taken = await this.grades.files(s.id);
      const list = el("ul", "classhub-taken");
      for (const f of taken.files) list.append(el("li", "", `${f.path} (${size(f.size)})`));
      result.append(el("p", "", `What was taken (${taken.files.length} file(s)):`), list);
    } catch (e) {
      if (tab) tab.close();
      show(`Not handed in: ${messageOf(e)}`, "error");
    } finally {
      button.disabled = !this.ctx.own_server;
    }
    this.loadAssignments();
  }

  // the files saved: the Grades page of the class (on the hub's host) in the tab the click
  // opened, or, when the browser opened none, a link to it
  openGradesPage(tab, saved, result) {
    const url = new GradesClient(this.ctx.services_prefix, this.klass.code).pageUrl();
    const line = el("p", "", saved.length ? `Saved ${saved.join(", ")}. ` : "Nothing unsaved. ");
    if (tab) {
      tab.opener = null; // the Grades page gets no handle on this page
      tab.location.replace(url);
      line.append("Hand it in on the Grades page (opened in a new tab).");
    } else {
      const link = el("a", "", "Grades page");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      line.append("Hand it in on the ", link, " (your browser opened no new tab).");
    }
    result.replaceChildren(line);
    result.dataset.kind = "info";
  }

  // the returned feedback, rendered as Markdown by JupyterLab (sanitised, untrusted)
  async feedback(slug) {
    const path = `${this.klass.feedback_dir}/${slug}/feedback.md`;
    const file = await contents(this.app, path);
    if (!file || typeof file.content !== "string") return null;
    const box = el("section", "classhub-feedback");
    box.append(el("h5", "", `Feedback (${when(file.last_modified)})`));
    const renderer = this.rendermime.createRenderer("text/markdown");
    const model = this.rendermime.createModel({
      data: { "text/markdown": file.content },
      trusted: false,
    });
    await renderer.renderModel(model);
    box.append(renderer.node);
    return box;
  }

  // ---- material

  seenKey() {
    return `classhub:material-seen:${this.ctx.owner}/${this.ctx.server_name}`;
  }

  async loadMaterial() {
    const files = [];
    const walk = async (path, depth) => {
      const dir = await contents(this.app, path);
      if (!dir || !Array.isArray(dir.content)) return;
      for (const item of dir.content) {
        if (item.type === "directory") {
          if (depth < 2 && !item.name.startsWith(".")) await walk(item.path, depth + 1);
        } else {
          files.push(item);
        }
      }
    };
    await walk(this.klass.material_dir, 0);
    files.sort((x, y) => (y.last_modified || "").localeCompare(x.last_modified || ""));
    const seen = Number(window.localStorage.getItem(this.seenKey()) || 0);
    const list = this.materialList;
    list.replaceChildren();
    if (!files.length) {
      list.append(el("li", "classhub-empty", "No material yet."));
      return;
    }
    let newest = seen;
    for (const f of files.slice(0, 50)) {
      const changed = Date.parse(f.last_modified || "") || 0;
      newest = Math.max(newest, changed);
      const li = el("li", "");
      const link = el("button", "classhub-link", f.path.slice(this.klass.material_dir.length + 1));
      link.addEventListener("click", () => {
        this.app.commands.execute("docmanager:open", { path: f.path }).catch(() => {});
      });
      li.append(link);
      if (seen && changed > seen) li.append(el("span", "classhub-badge", "new"));
      if (/\.teacher-\d{4}-\d{2}-\d{2}/.test(f.name)) {
        li.append(el("span", "classhub-note", "your teacher's new version, beside yours"));
      }
      li.append(el("span", "classhub-when", when(f.last_modified)));
      list.append(li);
    }
    if (this.isVisible) window.localStorage.setItem(this.seenKey(), String(newest));
  }
}

// ------------------------------------------------------------------ title and top bar

function labelOf(ctx) {
  const place = ctx.class ? ctx.class.name : ctx.server_name || "JupyterLab";
  return ctx.own_server ? place : `${ctx.owner}'s server · ${place}`;
}

function installTitle(ctx) {
  const prefix = `${labelOf(ctx)} | `;
  const apply = () => {
    if (!document.title.startsWith(prefix)) document.title = prefix + document.title;
  };
  apply();
  const titleNode = document.querySelector("title");
  if (titleNode) {
    new MutationObserver(apply).observe(titleNode, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  }
}

function topBar(ctx) {
  const bar = new Widget();
  bar.id = "classhub-top-bar";
  bar.addClass("classhub-top-bar");
  const what = ctx.class ? `${ctx.class.name} (${ctx.class.code})` : ctx.server_name || "";
  const owner = ctx.own_server ? "your server" : `${ctx.owner}'s server`;
  bar.node.append(el("span", "classhub-top-class", what));
  bar.node.append(el("span", "classhub-top-owner", owner));
  if (!ctx.own_server) {
    bar.addClass("classhub-not-yours");
    bar.node.append(el("span", "classhub-top-viewer", `you are ${ctx.viewer}`));
  }
  return bar;
}

// ------------------------------------------------------------------ the session watch

const ENDINGS = {
  stopped: {
    title: "Your server was stopped",
    why:
      "This server is no longer running: your teacher or an administrator stopped it, " +
      "it was stopped after being unused for a while, or it was stopped from another " +
      "tab. Your saved files are kept; changes not saved cannot be saved any more.",
  },
  ended: {
    title: "Your session has ended",
    why:
      "You are no longer signed in here: you (or someone with your account) signed in " +
      "in another browser or on another device, or an administrator ended this session. " +
      "Only one session at a time is allowed. Your server and your saved files are kept; " +
      "changes not saved here cannot be saved any more.",
  },
  signedout: {
    title: "You are signed out",
    why:
      "You signed out (in this or another tab), or your session ended after a long " +
      "time without use. Your server and your saved files are kept; changes not saved " +
      "here cannot be saved any more.",
  },
};

// What the server's address answers tells which. Redirects are followed: when the server
// is gone, its address leads to the hub (/user/... -> /hub/user/...), which answers 424
// (not running) or sends a stopping server to its spawn-pending page; a browser without a
// session ends on the hub's sign-in page. 403: the owner gate (one origin) or the server
// itself (per-user origins) refuses this browser's session, which is no longer the live
// one.
async function sessionState(ctxUrl) {
  // A same-origin "no-cors" GET: JupyterHub (the hub, and the server's HubOAuth) checks
  // no XSRF token for it, as for a page view, so it is answered with this browser's
  // session whichever of the two answers; the answer is readable (same origin).
  let response;
  try {
    response = await fetch(ctxUrl, {
      mode: "no-cors",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
  } catch {
    return "unknown"; // the network, the proxy, a redirect loop: not a verdict
  }
  if (response.type === "opaque") return "unknown"; // left this origin: not readable
  const hubPrefix = PageConfig.getOption("hubPrefix") || "/hub/";
  const path = new URL(response.url || ctxUrl, window.location.href).pathname;
  if (response.status === 424) return "stopped";
  if (response.status === 401 || response.status === 403) return "ended";
  if (response.redirected) {
    if (path.startsWith(`${hubPrefix}login`)) return "signedout";
    if (path.startsWith(`${hubPrefix}spawn`)) return "stopped";
    return "unknown";
  }
  if (response.ok) return "ok";
  if (response.status === 503) {
    const text = await response.text().catch(() => "");
    if (/no longer running|not running/i.test(text)) return "stopped";
  }
  return "unknown";
}

// the dialogs of JupyterLab that an ended session or a stopped server brings
const NOISE = /kernel|connection|forbidden|save error|unreachable|not running/i;

function downloadText(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function unsaved(app, docManager) {
  return openContexts(app, docManager).filter((c) => c.model.dirty);
}

function downloadUnsaved(contexts) {
  for (const c of contexts) {
    const name = c.path.split("/").pop();
    if (name.endsWith(".ipynb")) {
      downloadText(
        name,
        `${JSON.stringify(c.model.toJSON(), null, 1)}\n`,
        "application/x-ipynb+json",
      );
    } else {
      downloadText(name, c.model.toString(), "text/plain");
    }
  }
}

class SessionWatch {
  constructor(app, docManager, ctx) {
    this.app = app;
    this.docManager = docManager;
    this.ctx = ctx;
    const settings = ServerConnection.makeSettings();
    this.url = URLExt.join(settings.baseUrl, "classhub/api/context");
    this.over = null;
    this.checking = null;
  }

  start() {
    const tick = () => {
      if (this.over) return;
      this.check();
      this.timer = setTimeout(tick, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    };
    this.timer = setTimeout(tick, POLL_MS);
    window.addEventListener("focus", () => this.check());
    this.app.serviceManager.connectionFailure.connect(() => this.check());
  }

  check() {
    if (this.over || this.checking) return this.checking;
    this.checking = (async () => {
      try {
        const state = await sessionState(this.url);
        if (state in ENDINGS) await this.end(state);
      } finally {
        this.checking = null;
      }
    })();
    return this.checking;
  }

  async end(state) {
    if (this.over) return;
    this.over = state;
    clearTimeout(this.timer);
    const ending = ENDINGS[state];
    document.body.dataset.classhubSession = state;
    const banner = new Widget();
    banner.id = "classhub-session-ended";
    banner.addClass("classhub-ended-bar");
    banner.node.textContent = `${ending.title}. Changes can no longer be saved here.`;
    this.app.shell.add(banner, "top", { rank: 0 });

    const body = new Widget();
    body.addClass("classhub-ended");
    body.node.append(el("p", "classhub-ended-why", ending.why));
    const dirty = unsaved(this.app, this.docManager);
    if (dirty.length) {
      body.node.append(
        el("p", "", `Open with unsaved changes: ${dirty.map((c) => c.path).join(", ")}.`),
      );
      const download = el(
        "button",
        "jp-mod-styled jp-mod-accept classhub-download",
        `Download unsaved notebooks (${dirty.length})`,
      );
      download.addEventListener("click", () => downloadUnsaved(unsaved(this.app, this.docManager)));
      body.node.append(download);
    } else {
      body.node.append(el("p", "", "No open document has unsaved changes."));
    }
    // JupyterLab's own dialogs about it ("Kernel died unexpectedly", a save refused with
    // "Forbidden", a lost connection) say nothing true any more: closed, and kept away
    Dialog.flush();
    Dialog.tracker.widgetAdded.connect((_, dialog) => {
      if (dialog.node.querySelector(".classhub-ended")) return;
      if (NOISE.test(dialog.node.textContent || "")) dialog.dispose();
    });
    const hub = `${PageConfig.getOption("hubHost") || ""}${PageConfig.getOption("hubPrefix") || "/hub/"}`;
    const again = state === "stopped" ? "Start it again" : "Sign in again";
    const answer = await showDialog({
      title: ending.title,
      body,
      buttons: [
        Dialog.cancelButton({ label: "Stay on this page" }),
        Dialog.okButton({ label: again }),
      ],
    });
    if (answer.button.accept) {
      const target =
        state === "stopped" && this.ctx.class
          ? `${hub}spawn/${encodeURIComponent(this.ctx.owner)}/${encodeURIComponent(this.ctx.server_name)}`
          : `${hub}login`;
      window.location.assign(target);
    }
  }
}

// ------------------------------------------------------------------ the plugins

let watch = null;

const plugin = {
  id: `${ID}:plugin`,
  description: "The Class panel, the class and owner in the title and a top bar, the session watch",
  autoStart: true,
  requires: [IDocumentManager, IRenderMimeRegistry],
  optional: [ILabShell],
  activate: async (app, docManager, rendermime) => {
    let ctx;
    try {
      ctx = await serverJSON("classhub/api/context");
    } catch (e) {
      console.warn("classhub: no context from the server:", messageOf(e));
      return;
    }
    installTitle(ctx);
    app.shell.add(topBar(ctx), "top", { rank: 1000 });
    watch = new SessionWatch(app, docManager, ctx);
    watch.start();
    if (ctx.class) {
      const panel = new ClassPanel(app, docManager, rendermime, ctx);
      app.shell.add(panel, "left", { rank: 50 });
      setInterval(() => {
        if (panel.isVisible && !document.hidden && !watch.over) panel.refresh();
      }, PANEL_REFRESH_MS);
    }
  },
};

// Replaces JupyterLab's "Server unavailable or unreachable" dialog (the hub extension's,
// switched off in page_config.json): a lost connection is checked by the session watch,
// which says what happened.
const connectionLost = {
  id: `${ID}:connectionlost`,
  description: "Says why the server cannot be reached (session ended, server stopped)",
  autoStart: true,
  provides: IConnectionLost,
  activate: () => async () => {
    if (watch) await watch.check();
  },
};

export default [plugin, connectionLost];
