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

  const {
    ApiError,
    action,
    apiClient,
    cell,
    confirmAction,
    field,
    initErrorPage,
    say,
    serviceClient,
    startPolling: poll,
    syncRows,
    when,
    withButton,
  } = window.classhub;
  const api = apiClient(PREFIX, "The classes service");

  const serviceApi = (name, what) => serviceClient(body.dataset.hub, name, what);

  // A copy of class ``from`` for a new term, after the classes service made ``to``: the
  // files service copies the material and starting files, the grades service the
  // assignments, each checking that the person teaches both classes. Either may fail
  // alone (the message says which); copying again finishes (what exists is kept).
  async function copyContent(from, to) {
    const parts = [];
    const failed = [];
    const steps = [
      [
        "files",
        "The files service",
        "material and starting files",
        async (files) => {
          const out = await files("POST", `api/classes/${enc(to)}/copy`, { from });
          const m = out.material.copied + out.material.skipped;
          const a = out.assignments.copied + out.assignments.skipped;
          parts.push(`${m} material file(s)`, `${a} starting file(s)`);
        },
      ],
      [
        "grades",
        "The grades service",
        "assignments",
        async (grades) => {
          const out = await grades("POST", `api/classes/${enc(to)}/copy-assignments`, { from });
          const n = out.copied.length + out.skipped.length;
          parts.push(`${n} assignment(s), archived until you date them`);
        },
      ],
    ];
    for (const [name, what, label, copy] of steps) {
      let client;
      try {
        client = await serviceApi(name, what);
      } catch (e) {
        if (e.status !== 404) failed.push(`${label} (${e.message})`);
        continue; // 404: this hub runs no such service, so there is nothing to copy
      }
      try {
        await copy(client);
      } catch (e) {
        failed.push(`${label} (${e.message})`);
      }
    }
    return { parts, failed };
  }
  const startPolling = (refresh) => poll(refresh, POLL_MS);

  function syncNote(answer) {
    return answer && answer.hub_sync === "pending"
      ? " JupyterHub could not be updated just now; the service catches up by itself."
      : "";
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

  // ----------------------------------------------------------------- My classes

  function initJoin() {
    const form = $("join-class");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await withButton(form.querySelector("[type=submit]"), async () => {
        const answer = await api("POST", "api/join", { join_code: form.elements.join_code.value });
        say(
          "success",
          answer.joined ? `You joined ${answer.name}. Reload to see it.` : answer.message,
        );
        form.reset();
      });
    });
  }

  function initHome() {
    initJoin();
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
      $("start-all").disabled = archived;
      if ($("delete-class")) $("delete-class").disabled = !archived;
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
    initClassOperations(refreshNow);

    roster.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const user = button.closest("tr").dataset.user;
      const what = button.dataset.action;
      const server = `${base}/servers/${enc(user)}`;
      if (
        what === "password" &&
        !confirmAction(`Give ${user} a new password? Their current session ends.`)
      ) {
        return;
      }
      if (
        what === "remove" &&
        !confirmAction(
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
        } else if (what === "password") {
          const answer = await api("POST", `${base}/students/${enc(user)}/password`, {});
          say(
            "success",
            `New password for ${user}: ${answer.password} (shown once). Their session ended.`,
          );
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

    function showAccounts(rows) {
      const tbody = $("accounts-report").tBodies[0];
      tbody.replaceChildren();
      for (const r of rows) {
        const tr = document.createElement("tr");
        tr.append(cell(r.line), cell(r.username), cell(r.status), cell(r.password || ""));
        tbody.append(tr);
      }
      $("accounts-report").hidden = false;
    }

    const newJoinCode = $("new-join-code");
    if (newJoinCode) {
      newJoinCode.addEventListener("click", async () => {
        if (!confirmAction("Make a new join code? The current one stops working.")) return;
        await withButton(newJoinCode, async () => {
          const answer = await api("POST", `${base}/join-code`, {});
          $("join-code").textContent = answer.join_code;
          say("success", `The new join code is ${answer.join_code}.`);
        });
      });
    }

    $("create-student").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const payload = { username: form.elements.username.value.trim() };
      if (form.elements.password.value) payload.password = form.elements.password.value;
      await withButton(form.querySelector("[type=submit]"), async () => {
        const answer = await api("POST", `${base}/accounts`, payload);
        showAccounts([
          { line: "", username: answer.username, status: "created", password: answer.password },
        ]);
        say(
          "success",
          `Created ${answer.username} and added them to the roster.${syncNote(answer)}`,
        );
        form.reset();
      });
      refreshNow();
    });

    // The CSV file chosen in input ``id``, or undefined after saying to choose one.
    function chosenCsv(id) {
      const file = $(id).files[0];
      if (!file) say("danger", "Choose a CSV file first.");
      return file;
    }

    // A chosen file's text; a file the browser cannot read is a message, not a crash.
    async function readText(file) {
      try {
        return await file.text();
      } catch (e) {
        throw new ApiError(0, `The file cannot be read: ${e.message}`, null);
      }
    }

    $("create-students-csv").addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = chosenCsv("new-students-file");
      if (!file) return;
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        const text = await readText(file);
        const answer = await api("POST", `${base}/accounts`, { csv: text });
        showAccounts(answer.rows);
        say("success", `${answer.message}; added to the roster.${syncNote(answer)}`);
        event.target.reset();
      });
      refreshNow();
    });

    $("import-roster").addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = chosenCsv("import-file");
      if (!file) return;
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        const text = await readText(file);
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
        !confirmAction(
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

  // what "start all" / "stop all" did, in words
  function bulkSummary(answer) {
    const verb = answer.action === "start" ? "started" : "stopped";
    const parts = [`${answer.done.length} ${verb}`];
    if (answer.unchanged.length) parts.push(`${answer.unchanged.length} already ${verb}`);
    const skipped = Object.keys(answer.skipped);
    if (skipped.length) parts.push(`${skipped.length} skipped (${skipped.join(", ")})`);
    const failed = Object.entries(answer.failed);
    if (failed.length) {
      parts.push(
        `${failed.length} refused: ${failed.map(([n, why]) => `${n}: ${why}`).join("; ")}`,
      );
    }
    return parts.join(", ");
  }

  function initClassOperations(refreshNow) {
    const code = body.dataset.code;
    const base = `api/classes/${enc(code)}`;
    for (const verb of ["start", "stop"]) {
      $(`${verb}-all`).addEventListener("click", async (event) => {
        const button = event.currentTarget;
        if (
          verb === "stop" &&
          !confirmAction(`Stop every server of ${code}? Unsaved work in them is lost.`)
        ) {
          return;
        }
        $("bulk-result").textContent =
          verb === "start" ? "Starting the servers…" : "Stopping the servers…";
        await withButton(button, async () => {
          const answer = await api("POST", `${base}/servers`, { action: verb });
          const text = bulkSummary(answer);
          $("bulk-result").textContent = text;
          say(Object.keys(answer.failed).length ? "warning" : "success", `${code}: ${text}.`);
        });
        refreshNow();
      });
    }
    const copyForm = $("copy-class");
    if (copyForm) {
      copyForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const form = new FormData(copyForm);
        const payload = {
          code: String(form.get("code") || "").trim(),
          name: form.get("name"),
          term: form.get("term"),
        };
        await withButton(copyForm.querySelector("[type=submit]"), async () => {
          const created = await api("POST", `${base}/copy`, payload);
          const link = { href: `${PREFIX}classes/${enc(created.code)}`, text: "Open its page" };
          say("info", `Copied ${code} to ${created.code}; copying its files and assignments…`);
          const done = await copyContent(code, created.code);
          say(
            done.failed.length ? "warning" : "success",
            `Copied ${code} to ${created.code} (${created.name}): teachers and environment` +
              done.parts.map((part) => `, ${part}`).join("") +
              "; no students." +
              (done.failed.length
                ? ` Not copied: ${done.failed.join("; ")}. Copy again to finish (what was copied stays).`
                : ""),
            link,
          );
        });
      });
    }
    const deleteButton = $("delete-class");
    if (deleteButton) {
      deleteButton.addEventListener("click", async () => {
        const typed = window.prompt(
          `Delete ${code} for good? Its roster and settings are removed; students' files are kept. Type the class code to confirm:`,
        );
        if (typed === null) return;
        if (typed.trim() !== code) {
          say("warning", `Not deleted: the code you typed is not ${code}.`);
          return;
        }
        await withButton(deleteButton, async () => {
          await api("DELETE", `${base}?confirm=${enc(code)}`);
          say("success", `Deleted ${code}.`, { href: PREFIX, text: "Back to My classes" });
          deleteButton.hidden = true;
        });
      });
    }
  }

  // ----------------------------------------------------------------- start

  // ----------------------------------------------------------------- sign-up

  // Signing up with a join code (templates/signup.html): the account is made and put on
  // the class's roster; then the hub's sign-in page, with the name filled in.
  function initSignup() {
    const form = $("signup");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      if (data.get("password") !== data.get("password2")) {
        say("warning", "The two passwords differ; type the same one twice.");
        return;
      }
      await withButton(form.querySelector("[type=submit]"), async () => {
        const made = await api("POST", "api/signup", {
          join_code: String(data.get("join_code") || ""),
          username: String(data.get("username") || "").trim(),
          password: String(data.get("password") || ""),
        });
        form.reset();
        say("success", `Welcome, ${made.username}: you are in ${made.name}. Sign in now.`, {
          href: `${body.dataset.login}?next=${enc(PREFIX)}`,
          text: "Sign in",
        });
      });
    });
  }

  if (initErrorPage()) return;
  if (body.dataset.page === "home") initHome();
  else if (body.dataset.page === "class") initClass();
  else if (body.dataset.page === "signup") initSignup();
})();
