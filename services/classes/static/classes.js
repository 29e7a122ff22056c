// The classes service's pages (services/classes/pages.py): every change is a call to the
// service's REST API with the XSRF token of its _xsrf cookie; every answer is shown in an
// alert; server states are refreshed every few seconds without reloading the page.
// Data from the API is only ever put into the page with textContent and attributes,
// never as HTML.
"use strict";

(function () {
  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // ----------------------------------------------------------------- the API

  function xsrfToken() {
    // the service's cookie (path /services/<name>/) comes first in document.cookie
    for (const part of document.cookie.split(";")) {
      const [name, ...value] = part.trim().split("=");
      if (name === "_xsrf") return decodeURIComponent(value.join("="));
    }
    const meta = document.querySelector('meta[name="classhub-xsrf"]');
    return meta ? meta.content : "";
  }

  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }

  function fallbackMessage(status) {
    if (status === 502 || status === 503 || status === 504) {
      return `The classes service is not answering (HTTP ${status}); try again shortly.`;
    }
    if (status === 401 || status === 403) {
      return "This was refused, or your sign-in has ended: reload the page.";
    }
    return `The request failed (HTTP ${status}).`;
  }

  async function api(method, path, payload) {
    const init = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-XSRFToken": xsrfToken(), Accept: "application/json" },
    };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(PREFIX + path, init);
    } catch {
      throw new ApiError(0, "The classes service cannot be reached: check your connection.", null);
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
      throw new ApiError(response.status, "Your sign-in has ended: reload the page.", null);
    }
    if (!(data && typeof data.message === "string" && data.message)) {
      throw new ApiError(response.status, fallbackMessage(response.status), data);
    }
    // messages are shown as the API words them (they may start with a user name)
    const message =
      response.status >= 500
        ? `The classes service cannot answer right now: ${data.message}`
        : data.message;
    throw new ApiError(response.status, message, data);
  }

  // ----------------------------------------------------------------- alerts

  const statusAlert = $("status-alert");
  const actionAlert = $("action-alert");

  function say(kind, text, link) {
    actionAlert.className = `alert alert-${kind} alert-dismissible`;
    actionAlert.replaceChildren(document.createTextNode(text));
    if (link) {
      const a = document.createElement("a");
      a.className = "alert-link";
      a.href = link.href;
      a.textContent = link.text;
      actionAlert.append(" ", a);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", () => {
      actionAlert.hidden = true;
    });
    actionAlert.append(close);
    actionAlert.hidden = false;
  }

  function fail(error) {
    if (error instanceof ApiError) say("danger", error.message);
    else say("danger", `Something went wrong on this page (${error.message}); reload it.`);
  }

  function syncNote(answer) {
    return answer && answer.hub_sync === "pending"
      ? " JupyterHub could not be updated just now; the service catches up by itself."
      : "";
  }

  // Run refresh() now and every POLL_MS (not while the tab is hidden); its failures show
  // in the status alert until a refresh works again. Returns "refresh now".
  function startPolling(refresh) {
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
        statusAlert.hidden = true;
      } catch (e) {
        statusAlert.textContent =
          e instanceof ApiError ? e.message : `This page could not refresh (${e.message}).`;
        statusAlert.hidden = false;
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
    }, POLL_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) tick();
    });
    tick();
    return tick;
  }

  // ----------------------------------------------------------------- rows

  const field = (row, name) => row.querySelector(`[data-field="${name}"]`);
  const action = (row, name) => row.querySelector(`[data-action="${name}"]`);

  // Make tbody's rows match items (in order), keeping existing rows (and their focus);
  // new rows are clones of <template id=templateId>.
  function syncRows(tbody, items, keyOf, templateId, fill) {
    const template = $(templateId).content.firstElementChild;
    const old = new Map(Array.from(tbody.rows, (row) => [row.dataset.key, row]));
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let row = old.get(key);
      if (row) {
        old.delete(key);
      } else {
        row = template.cloneNode(true);
        row.dataset.key = key;
      }
      fill(row, item);
      const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (row !== expected) tbody.insertBefore(row, expected);
      previous = row;
    }
    for (const row of old.values()) row.remove();
  }

  // the same labels and badges as state_label() and BADGES in pages.py
  const BADGES = {
    running: "text-bg-success",
    starting: "text-bg-warning",
    stopping: "text-bg-warning",
    stopped: "text-bg-secondary",
  };

  function stateLabel(server) {
    if (server.state === "pending") return server.pending === "stop" ? "stopping" : "starting";
    if (server.state === "running" || server.state === "stopped") return server.state;
    return "unknown";
  }

  function setState(row, label) {
    row.dataset.state = label;
    const badge = field(row, "state");
    badge.textContent = label;
    badge.className = `badge ${BADGES[label] || "text-bg-light"}`;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  // ----------------------------------------------------------------- forms

  function names(text) {
    return String(text || "")
      .split(/[\s,;]+/)
      .filter(Boolean);
  }

  function number(value) {
    const text = String(value || "").trim();
    return text === "" ? null : Number(text); // NaN and null: the API says what is wrong
  }

  function environment(form) {
    return {
      image: form.get("image"),
      cpu_limit: number(form.get("cpu_limit")),
      mem_limit: String(form.get("mem_limit") || "").trim(),
      idle_timeout: number(form.get("idle_timeout")),
    };
  }

  // the image field of the class forms: the chosen image's description under it
  function describeImage(select) {
    const help = document.getElementById(`${select.id}-help`);
    if (help) help.textContent = select.selectedOptions[0]?.dataset.description || "";
  }

  for (const select of document.querySelectorAll("select[name=image]")) {
    select.addEventListener("change", () => describeImage(select));
  }

  async function withButton(button, work) {
    button.disabled = true;
    try {
      await work();
    } catch (e) {
      fail(e);
    } finally {
      button.disabled = false;
    }
  }

  // ----------------------------------------------------------------- My classes

  function initHome() {
    const me = body.dataset.user;
    const spawnBase = body.dataset.spawnBase;
    const taking = $("taking");
    const teaching = $("teaching");
    const createForm = $("create-class");

    function fillTaking(row, c) {
      const label = stateLabel(c.server);
      row.dataset.code = c.code;
      field(row, "code").textContent = c.code;
      field(row, "name").textContent = c.name;
      field(row, "term").textContent = c.term;
      setState(row, label);
      const launch = action(row, "launch");
      launch.href = spawnBase + enc(c.code);
      launch.hidden = label !== "stopped" || c.archived;
      const open = action(row, "open");
      open.href = c.server.url;
      open.hidden = label !== "running";
      action(row, "stop").hidden = label !== "running";
      field(row, "note").textContent = c.archived
        ? "Archived: it cannot start; your files are kept."
        : "";
    }

    function fillTeaching(row, c) {
      row.dataset.code = c.code;
      field(row, "link").href = `${PREFIX}classes/${enc(c.code)}`;
      field(row, "code").textContent = c.code;
      field(row, "name").textContent = c.name;
      field(row, "term").textContent = c.term;
      field(row, "teachers").textContent = c.teachers.join(", ");
      field(row, "students").textContent = String(c.student_count);
      field(row, "archived").hidden = !c.archived;
    }

    async function refresh() {
      const data = await api("GET", "api/classes");
      const mine = data.classes.filter((c) => c.role === "student");
      const others = data.classes.filter((c) => c.role !== "student");
      syncRows(taking.tBodies[0], mine, (c) => c.code, "taking-row-template", fillTaking);
      syncRows(teaching.tBodies[0], others, (c) => c.code, "teaching-row-template", fillTeaching);
      taking.hidden = mine.length === 0;
      $("taking-empty").hidden = mine.length > 0;
      $("taking-section").hidden = mine.length === 0 && (others.length > 0 || !!createForm);
      teaching.hidden = others.length === 0;
      $("teaching-empty").hidden = others.length > 0;
      $("teaching-section").hidden = others.length === 0 && !createForm;
    }

    const refreshNow = startPolling(refresh);

    taking.addEventListener("click", async (event) => {
      const button = event.target.closest('button[data-action="stop"]');
      if (!button) return;
      const code = button.closest("tr").dataset.code;
      await withButton(button, async () => {
        const answer = await api("DELETE", `api/classes/${enc(code)}/servers/${enc(me)}`);
        const done = answer.state === "stopped" ? "stopped" : "stopping";
        say("success", `Your server of ${code} is ${done}. Your files are kept.`);
      });
      refreshNow();
    });

    if (createForm) {
      createForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const form = new FormData(createForm);
        const payload = {
          code: String(form.get("code") || "").trim(),
          name: form.get("name"),
          term: form.get("term"),
          teachers: names(form.get("teachers")),
          environment: environment(form),
        };
        await withButton(createForm.querySelector("[type=submit]"), async () => {
          const created = await api("POST", "api/classes", payload);
          say("success", `Created class ${created.code} (${created.name}).${syncNote(created)}`, {
            href: `${PREFIX}classes/${enc(created.code)}`,
            text: "Open its page",
          });
          createForm.reset();
        });
        refreshNow();
      });
    }
  }

  // ----------------------------------------------------------------- a class's page

  // row colours by status (the API's message names the statuses as shown)
  const RESULTS = {
    added: "table-success",
    already_enrolled: "table-warning",
    duplicate: "table-warning",
    unknown_user: "table-danger",
    not_a_student: "table-danger",
    malformed: "table-danger",
  };

  function showReport(rows) {
    const table = $("import-report");
    const tbody = table.tBodies[0];
    tbody.replaceChildren();
    table.hidden = !rows;
    for (const r of rows || []) {
      const tr = document.createElement("tr");
      tr.dataset.status = r.status;
      if (RESULTS[r.status]) tr.className = RESULTS[r.status];
      for (const text of [String(r.line), r.username, r.status, r.message || ""]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      tbody.append(tr);
    }
  }

  function initClass() {
    const code = body.dataset.code;
    const base = `api/classes/${enc(code)}`;
    const roster = $("roster");
    const settings = $("class-settings");
    let archived = body.dataset.archived === "true";

    function fillRoster(row, s) {
      const label = stateLabel(s);
      row.dataset.user = s.username;
      field(row, "username").textContent = s.username;
      setState(row, label);
      const time = field(row, "last_activity");
      time.dateTime = s.last_activity || "";
      time.textContent = when(s.last_activity);
      action(row, "start").disabled = label !== "stopped" || archived;
      action(row, "stop").disabled = label !== "running";
      const open = action(row, "open");
      open.href = s.url;
      // on one shared origin only a server's owner opens it: teachers see the work read-only
      open.hidden = label !== "running" || body.dataset.openServers !== "true";
      action(row, "view").href =
        `${PREFIX}classes/${encodeURIComponent(code)}/students/${encodeURIComponent(s.username)}/work`;
    }

    async function refresh() {
      const data = await api("GET", `${base}/servers`);
      syncRows(
        roster.tBodies[0],
        data.servers,
        (s) => s.username,
        "roster-row-template",
        fillRoster,
      );
      roster.hidden = data.servers.length === 0;
      $("roster-empty").hidden = data.servers.length > 0;
      $("roster-count").textContent = String(data.servers.length);
    }

    function showClass(view) {
      archived = view.archived;
      body.dataset.archived = String(archived);
      $("class-name").textContent = view.name;
      $("class-term").textContent = view.term;
      $("class-teachers").textContent = view.teachers.join(", ") || "none";
      document.title = `${view.name} (${view.code}) · classhub`;
      $("archived-badge").hidden = !archived;
      $("archived-note").hidden = !archived;
      $("archive-button").textContent = archived ? "Unarchive class" : "Archive class";
      const values = {
        name: view.name,
        term: view.term,
        teachers: view.teachers.join(", "),
        ...view.environment,
      };
      for (const [name, value] of Object.entries(values)) {
        const input = settings.elements.namedItem(name);
        if (input) input.value = String(value);
      }
      describeImage(settings.elements.namedItem("image"));
    }

    for (const time of roster.querySelectorAll("time[datetime]")) {
      time.textContent = when(time.dateTime);
    }
    const refreshNow = startPolling(refresh);

    roster.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const user = button.closest("tr").dataset.user;
      const what = button.dataset.action;
      const server = `${base}/servers/${enc(user)}`;
      if (
        what === "remove" &&
        !window.confirm(
          `Remove ${user} from ${code}? Their class server stops; their files are kept.`,
        )
      ) {
        return;
      }
      await withButton(button, async () => {
        if (what === "start") {
          const answer = await api("POST", server);
          say(
            "success",
            `${user}'s server is ${answer.state === "running" ? "running" : "starting"}.`,
          );
        } else if (what === "stop") {
          const answer = await api("DELETE", server);
          say(
            "success",
            `${user}'s server is ${answer.state === "stopped" ? "stopped" : "stopping"}.`,
          );
        } else if (what === "remove") {
          await api("DELETE", `${base}/students/${enc(user)}`);
          say("success", `Removed ${user} from the roster. Their files are kept.`);
        }
      });
      refreshNow();
    });

    $("add-student").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("add-username");
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        const answer = await api("POST", `${base}/students`, { username: input.value.trim() });
        if (answer.added) {
          say("success", `Added ${answer.username} to the roster.${syncNote(answer)}`);
          input.value = "";
        } else {
          say("info", answer.message);
        }
      });
      refreshNow();
    });

    $("import-roster").addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = $("import-file").files[0];
      if (!file) {
        say("danger", "Choose a CSV file first.");
        return;
      }
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        let text;
        try {
          text = await file.text();
        } catch (e) {
          throw new ApiError(0, `The file cannot be read: ${e.message}`, null);
        }
        try {
          const report = await api("POST", `${base}/import`, { csv: text });
          showReport(report.rows);
          say("success", `${report.message}.${syncNote(report)}`);
        } catch (e) {
          showReport(e.data && Array.isArray(e.data.rows) ? e.data.rows : null);
          throw e;
        }
      });
      refreshNow();
    });

    settings.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(settings);
      const payload = {
        name: form.get("name"),
        term: form.get("term"),
        environment: environment(form),
      };
      if (form.has("teachers")) payload.teachers = names(form.get("teachers"));
      await withButton(settings.querySelector("[type=submit]"), async () => {
        const view = await api("PATCH", base, payload);
        showClass(view);
        say(
          "success",
          `Settings saved; a new environment applies to servers started from now on.${syncNote(view)}`,
        );
      });
      refreshNow();
    });

    $("archive-button").addEventListener("click", async () => {
      const target = !archived;
      if (
        target &&
        !window.confirm(
          `Archive ${code}? Every server of the class stops now; students' files are kept.`,
        )
      ) {
        return;
      }
      await withButton($("archive-button"), async () => {
        const view = await api("PATCH", base, { archived: target });
        showClass(view);
        if (target) {
          const stopped = (view.stopped_servers || []).length;
          say(
            "success",
            `Archived ${code}: ${stopped} server(s) stopped; students' files are kept.`,
          );
        } else {
          say("success", `${code} is no longer archived: its servers can start again.`);
        }
      });
      refreshNow();
    });
  }

  // ----------------------------------------------------------------- error pages

  function initError(page) {
    const seconds = Number(page.dataset.retry || 0);
    if (seconds > 0) setTimeout(() => window.location.reload(), seconds * 1000);
  }

  const errorPage = $("error-page");
  if (errorPage) initError(errorPage);
  else if (body.dataset.page === "home") initHome();
  else if (body.dataset.page === "class") initClass();
})();
