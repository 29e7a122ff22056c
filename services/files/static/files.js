// The files service's pages (services/files/pages.py): every change is a call to the
// service's REST API with the XSRF token of its _xsrf cookie; every answer is shown in an
// alert. File bytes go straight between the browser and the store: an upload is signed by
// the API, sent to the store as one PUT with the signed headers (classhub.uploadToStore),
// then reported done; a download follows a short-lived link from the API. Data from the
// API is only ever put into the page with textContent and attributes, never as HTML.
"use strict";

(function () {
  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const POLL_MS = 4000;
  // pushes whose delivery counts the list shows (when the list API does not give them)
  const COUNTED_PUSHES = 5;
  const MAX_INDENT = 8;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  const {
    action,
    apiClient,
    confirmAction,
    fail,
    field,
    initErrorPage,
    isoWithOffset,
    loading,
    plural,
    say,
    sizeText,
    startPolling: poll,
    syncRows,
    uploadToStore,
    when,
    withButton,
  } = window.classhub;
  const api = apiClient(PREFIX, "The files service");
  const startPolling = (refresh) => poll(refresh, POLL_MS);

  // ----------------------------------------------------------------- text

  function isoOfSeconds(seconds) {
    return seconds ? new Date(seconds * 1000).toISOString() : "";
  }

  // ----------------------------------------------------------------- the file tree

  // Folders before files at every level, then by name (as _sort_key in pages.py).
  function compareKeys(a, b) {
    const pa = a.split("/");
    const pb = b.split("/");
    const n = Math.min(pa.length, pb.length);
    for (let i = 0; i < n; i++) {
      const fa = i < pa.length - 1 ? 0 : 1;
      const fb = i < pb.length - 1 ? 0 : 1;
      if (fa !== fb) return fa - fb;
      if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
    }
    return pa.length - pb.length;
  }

  // The API's flat list as the rows of a folder tree (as tree_rows in pages.py).
  function treeRows(files) {
    const rows = [];
    const folders = new Map();
    const sorted = files.slice().sort((a, b) => compareKeys(a.path, b.path));
    for (const f of sorted) {
      const parts = f.path.split("/");
      for (let depth = 0; depth < parts.length - 1; depth++) {
        const path = parts.slice(0, depth + 1).join("/");
        let row = folders.get(path);
        if (!row) {
          row = {
            kind: "folder",
            path,
            name: parts[depth],
            depth,
            size: 0,
            count: 0,
            modified: null,
          };
          folders.set(path, row);
          rows.push(row);
        }
        row.size += f.size;
        row.count += 1;
      }
      rows.push({
        kind: "file",
        path: f.path,
        name: parts[parts.length - 1],
        depth: parts.length - 1,
        size: f.size,
        count: 1,
        modified: f.modified,
      });
    }
    return rows;
  }

  function cleanFolder(text) {
    return String(text || "")
      .trim()
      .replace(/^\/+|\/+$/g, "");
  }

  // ----------------------------------------------------------------- an area's page

  function initArea() {
    const area = body.dataset.area;
    const writable = body.dataset.writable === "true";
    // an assignment's starting files: one folder of the area, where uploads go
    const folder = body.dataset.folder || "";
    const base = `api/files/${area}`;
    const table = $("files");

    function downloadHref(path) {
      return `${PREFIX}${base}/download?${new URLSearchParams({ path, redirect: "1" })}`;
    }

    function fillFile(row, r) {
      const isFolder = r.kind === "folder";
      row.dataset.kind = r.kind;
      row.dataset.path = r.path;
      row.dataset.count = String(r.count);
      field(row, "cell").className = `name-cell depth-${Math.min(r.depth, MAX_INDENT)}`;
      field(row, "folder-name").textContent = `${r.name}/`;
      field(row, "folder-name").hidden = !isFolder;
      const name = field(row, "file-name");
      name.textContent = r.name;
      name.hidden = isFolder;
      for (const link of [name, action(row, "download")]) {
        if (isFolder) link.removeAttribute("href");
        else link.href = downloadHref(r.path);
      }
      action(row, "download").hidden = isFolder;
      field(row, "size").textContent = isFolder
        ? `${sizeText(r.size)} · ${plural(r.count, "file")}`
        : sizeText(r.size);
      const time = field(row, "modified");
      time.dateTime = isoOfSeconds(r.modified);
      time.textContent = r.modified ? when(time.dateTime) : "";
      const form = field(row, "rename-form");
      if (form && form.hidden) field(row, "rename-input").value = r.path;
    }

    function showUsage(data) {
      const used = $("used-text");
      if (!used) return;
      used.textContent = sizeText(data.used);
      $("quota-text").textContent = sizeText(data.quota);
      const bar = $("usage-bar");
      bar.max = data.quota;
      bar.value = Math.min(data.used, data.quota);
      bar.textContent = sizeText(data.used);
    }

    async function refresh() {
      const data = await api("GET", folder ? `${base}?${new URLSearchParams({ folder })}` : base);
      const rows = treeRows(data.files);
      syncRows(table.tBodies[0], rows, (r) => `${r.kind}:${r.path}`, "file-row-template", fillFile);
      table.hidden = rows.length === 0;
      $("files-empty").hidden = rows.length > 0;
      showUsage(data);
    }

    // a refresh after a change: its failure is said in the status alert
    const refreshNow = () => loading(refresh);

    for (const time of table.querySelectorAll("time[datetime]")) {
      if (time.dateTime) time.textContent = when(time.dateTime);
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshNow();
    });

    // downloads: ask for a link, then follow it (the page stays; the file is saved)
    table.addEventListener("click", async (event) => {
      const link = event.target.closest('a[data-action="download"]');
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      const path = link.closest("tr").dataset.path;
      try {
        const answer = await api("GET", `${base}/download?${new URLSearchParams({ path })}`);
        window.location.assign(answer.url);
      } catch (e) {
        fail(e);
      }
    });

    if (writable) initChanges({ base, table, refreshNow, folder });
    return refreshNow;
  }

  // ----------------------------------------------------------------- uploads, renames, deletes

  function initChanges({ base, table, refreshNow, folder: root }) {
    // uploads go into the page's folder (an assignment's), if it has one
    const inRoot = (path) => (root ? (path ? `${root}/${path}` : root) : path);
    const progress = $("upload-progress");
    const bar = $("upload-bar");
    const status = $("upload-status");

    function showProgress(text, loaded, total) {
      progress.hidden = false;
      status.textContent = text;
      bar.max = 100;
      bar.value = total ? Math.round((100 * loaded) / total) : 0;
    }

    async function upload(file, request, label) {
      const signed = await api("POST", `${base}/uploads`, request);
      await uploadToStore(signed, file, (loaded, total) =>
        showProgress(`${label}: ${Math.round((100 * loaded) / total)}%`, loaded, total),
      );
      showProgress(`${label}: checking…`, 1, 1);
      return api("POST", `${base}/uploads/${enc(signed.id)}`);
    }

    const filesForm = $("upload-files");
    filesForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("upload-input");
      const files = Array.from(input.files || []);
      if (files.length === 0) {
        say("danger", "Choose one or more files first.");
        return;
      }
      const folder = inRoot(cleanFolder($("upload-folder").value));
      const done = [];
      const failed = [];
      await withButton(filesForm.querySelector("[type=submit]"), async () => {
        for (const [i, file] of files.entries()) {
          const path = folder ? `${folder}/${file.name}` : file.name;
          const label = files.length > 1 ? `${file.name} (${i + 1} of ${files.length})` : file.name;
          showProgress(`${label}: starting…`, 0, 0);
          try {
            const answer = await upload(file, { path, size: file.size }, label);
            done.push(answer.path);
          } catch (e) {
            failed.push(`${file.name}: ${e.message}`);
          }
        }
      });
      progress.hidden = true;
      if (failed.length === 0) {
        say(
          "success",
          done.length === 1 ? `Uploaded ${done[0]}.` : `Uploaded ${done.length} files.`,
        );
        filesForm.reset();
      } else {
        const head = done.length
          ? `Uploaded ${plural(done.length, "file")}; not uploaded: `
          : "Not uploaded: ";
        say("danger", head + failed.join(" "));
      }
      await refreshNow();
    });

    const zipForm = $("upload-zip");
    zipForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = ($("zip-input").files || [])[0];
      if (!file) {
        say("danger", "Choose a zip file first.");
        return;
      }
      const folder = root
        ? inRoot(cleanFolder($("zip-folder").value))
        : cleanFolder($("zip-folder").value) || file.name.replace(/\.zip$/i, "");
      await withButton(zipForm.querySelector("[type=submit]"), async () => {
        try {
          const answer = await upload(file, { folder, size: file.size, unpack: true }, file.name);
          say(
            "success",
            `Unpacked ${plural(answer.files.length, "file")} (${sizeText(answer.bytes)}) into the folder ${answer.folder}.`,
          );
          zipForm.reset();
        } finally {
          progress.hidden = true;
        }
      });
      await refreshNow();
    });

    function showRename(row, shown) {
      const form = field(row, "rename-form");
      form.hidden = !shown;
      field(row, "label").hidden = shown;
      if (shown) {
        const input = field(row, "rename-input");
        input.value = row.dataset.path;
        input.focus();
        input.select();
      }
    }

    table.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const row = button.closest("tr");
      const { kind, path } = row.dataset;
      const what = button.dataset.action;
      if (what === "rename") {
        showRename(row, true);
      } else if (what === "rename-cancel") {
        showRename(row, false);
      } else if (what === "delete") {
        const count = Number(row.dataset.count || 0);
        const question =
          kind === "folder"
            ? `Delete the folder ${path} and the ${plural(count, "file")} in it? This cannot be undone.`
            : `Delete ${path}? This cannot be undone.`;
        if (!confirmAction(question)) return;
        await withButton(button, async () => {
          const query = new URLSearchParams({ path });
          if (kind === "folder") {
            const answer = await api("DELETE", `${base}/folder?${query}`);
            say("success", `Deleted the folder ${path} (${plural(answer.deleted, "file")}).`);
          } else {
            await api("DELETE", `${base}/file?${query}`);
            say("success", `Deleted ${path}.`);
          }
        });
        await refreshNow();
      }
    });

    table.addEventListener("submit", async (event) => {
      const form = event.target.closest('form[data-field="rename-form"]');
      if (!form) return;
      event.preventDefault();
      const row = form.closest("tr");
      const from = row.dataset.path;
      const to = field(row, "rename-input").value.trim();
      await withButton(form.querySelector("[type=submit]"), async () => {
        const answer = await api("POST", `${base}/rename`, { from, to });
        say("success", `Renamed ${answer.from} to ${answer.to}.`);
        showRename(row, false);
      });
      await refreshNow();
    });

    table.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      const form = event.target.closest('form[data-field="rename-form"]');
      if (form) showRename(form.closest("tr"), false);
    });
  }

  // ----------------------------------------------------------------- pushes

  const PUSH_BADGES = {
    scheduled: "text-bg-info",
    running: "text-bg-warning",
    done: "text-bg-success",
    failed: "text-bg-danger",
    cancelled: "text-bg-secondary",
  };
  const DELIVERY_BADGES = {
    delivered: "text-bg-success",
    waiting: "text-bg-warning",
    failed: "text-bg-danger",
  };
  const DELIVERY_NOTES = {
    waiting: "Not delivered yet: they get the files by themselves when they first start the class.",
    failed: "Not delivered: run the push again to retry.",
  };

  function badge(element, status, badges) {
    element.textContent = status || "unknown";
    element.className = `badge ${badges[status] || "text-bg-light"}`;
  }

  function countsText(counts) {
    const parts = [];
    for (const status of ["delivered", "waiting", "failed"]) {
      if (counts[status]) parts.push(`${counts[status]} ${status}`);
    }
    return parts.length ? parts.join(", ") : "no students";
  }

  function missing(push) {
    const counts = push.counts || {};
    return (
      (push.status === "done" || push.status === "failed") &&
      (push.status === "failed" || (counts.waiting || 0) + (counts.failed || 0) > 0)
    );
  }

  function initPushes() {
    const code = body.dataset.code;
    const base = `api/classes/${enc(code)}/pushes`;
    const table = $("pushes");
    const report = $("push-report");
    const details = new Map(); // push id -> the push with its students, for the counts
    let shown = null; // the id of the push whose report is open

    // a push of the list with what its newer details say (status, counts, ...)
    function withDetails(p) {
      const known = details.get(p.id);
      if (!known) return p;
      const { status, counts, files, bytes, error } = known;
      return { ...p, status, counts, files, bytes, error };
    }

    function updateRow(push) {
      const row = Array.from(table.tBodies[0].rows).find((r) => r.dataset.key === push.id);
      if (row) fillPush(row, withDetails(push));
    }

    function fillPush(row, p) {
      row.dataset.push = p.id;
      row.dataset.status = p.status;
      const time = field(row, "when");
      time.dateTime = p.at || "";
      time.textContent = when(p.at);
      field(row, "by").textContent = p.created_by ? `by ${p.created_by}` : "";
      badge(field(row, "status"), p.status, PUSH_BADGES);
      const files = p.files || [];
      field(row, "files").textContent =
        p.status === "scheduled" || p.status === "cancelled"
          ? "—"
          : `${plural(files.length, "file")} (${sizeText(p.bytes || 0)})`;
      field(row, "students").textContent = p.counts ? countsText(p.counts) : p.error || "";
      action(row, "report").hidden = p.status === "scheduled" || p.status === "cancelled";
      action(row, "run").hidden = !missing(p);
      action(row, "cancel").hidden = p.status !== "scheduled";
    }

    function listItems(list, delivery) {
      const items = document.createDocumentFragment();
      const add = (text) => {
        const li = document.createElement("li");
        li.textContent = text;
        items.append(li);
      };
      for (const p of delivery.added || []) add(`added: ${p}`);
      for (const p of delivery.updated || []) add(`updated: ${p}`);
      for (const c of delivery.conflicts || []) {
        add(
          `conflict: ${c.path} was changed by the student; the new version is saved as ${c.saved_as}`,
        );
      }
      for (const e of delivery.errors || []) add(`error: ${e.path}: ${e.message}`);
      const unchanged = (delivery.unchanged || []).length;
      if (unchanged) add(`${plural(unchanged, "file")} unchanged`);
      const skipped = (delivery.skipped || []).length;
      if (skipped) {
        add(`${plural(skipped, "file")} not changed since the last push: not delivered again`);
      }
      list.replaceChildren(items);
    }

    function fillStudent(row, s) {
      const summary = s.summary || {};
      row.dataset.user = s.user;
      row.dataset.status = s.status || "";
      field(row, "user").textContent = s.user;
      badge(field(row, "status"), s.status, DELIVERY_BADGES);
      field(row, "message").textContent = s.message || DELIVERY_NOTES[s.status] || "";
      for (const name of ["added", "updated", "unchanged", "conflicts", "errors"]) {
        field(row, name).textContent = s.status === "delivered" ? String(summary[name] || 0) : "";
      }
      const delivery = s.report || {};
      listItems(field(row, "items"), delivery);
      field(row, "details").hidden = s.status !== "delivered";
    }

    function showReport(push) {
      shown = push.id;
      report.hidden = false;
      const time = $("report-when");
      time.dateTime = push.at || "";
      time.textContent = when(push.at);
      badge($("report-status"), push.status, PUSH_BADGES);
      const students = (push.students || [])
        .slice()
        .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
      $("report-summary").textContent =
        push.status === "running"
          ? `Running… ${countsText(push.counts || {})} so far.`
          : `${plural(students.length, "student")}: ${countsText(push.counts || {})}.`;
      $("report-error").hidden = !push.error;
      $("report-error").textContent = push.error || "";
      $("report-run").hidden = !missing(push);
      const tbody = $("report-students").tBodies[0];
      syncRows(tbody, students, (s) => s.user, "report-row-template", fillStudent);
      $("report-students").hidden = students.length === 0;
      $("report-empty").hidden = students.length > 0;
    }

    async function loadReport(id) {
      const push = await api("GET", `${base}/${enc(id)}`);
      details.set(id, push);
      if (shown === id) showReport(push);
      updateRow(push);
      return push;
    }

    async function refresh() {
      const data = await api("GET", base);
      const pushes = data.pushes;
      // the delivery counts of the newest pushes that have deliveries (the details are
      // read after the list: newer than it)
      const counted = pushes
        .filter((p) => !p.counts && p.status !== "scheduled" && p.status !== "cancelled")
        .slice(0, COUNTED_PUSHES)
        .map((p) => p.id);
      if (shown && !counted.includes(shown)) counted.push(shown);
      details.clear();
      await Promise.all(counted.map((id) => loadReport(id)));
      const items = pushes.map(withDetails);
      syncRows(table.tBodies[0], items, (p) => p.id, "push-row-template", fillPush);
      table.hidden = items.length === 0;
      $("pushes-empty").hidden = items.length > 0;
      $("pushes-empty").textContent = "No pushes yet.";
    }

    const refreshNow = startPolling(refresh);

    // a link to one push's report (the grades page links a release's push so)
    const linked = /^#push=([0-9A-Za-z-]+)$/.exec(window.location.hash);
    if (linked) {
      open(linked[1]).catch(fail);
    }

    async function open(id) {
      shown = id;
      await loadReport(id);
      report.scrollIntoView({ block: "nearest" });
    }

    $("push-now").addEventListener("click", async (event) => {
      await withButton(event.currentTarget, async () => {
        const push = await api("POST", base, {});
        say("success", "The push has started: the report below shows each student's copy.");
        await open(push.id);
      });
      refreshNow();
    });

    $("schedule-push").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = $("push-at").value;
      const at = value ? new Date(value) : null; // the browser's local time
      if (!at || Number.isNaN(at.getTime())) {
        say("danger", "Choose a date and time first.");
        return;
      }
      if (at.getTime() <= Date.now()) {
        say("danger", "Choose a time in the future (or push now).");
        return;
      }
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        const push = await api("POST", base, { at: isoWithOffset(at) });
        say("success", `The push is scheduled for ${when(push.at)}.`);
        $("push-at").value = "";
      });
      refreshNow();
    });

    table.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = button.closest("tr").dataset.push;
      const what = button.dataset.action;
      if (what === "report") {
        await withButton(button, () => open(id));
        return;
      }
      if (what === "cancel" && !confirmAction("Cancel this scheduled push?")) return;
      await withButton(button, async () => {
        if (what === "cancel") {
          await api("DELETE", `${base}/${enc(id)}`);
          say("success", "The scheduled push is cancelled.");
        } else if (what === "run") {
          await runAgain(id);
        }
      });
      refreshNow();
    });

    async function runAgain(id) {
      const push = await api("POST", `${base}/${enc(id)}/run`);
      details.set(id, push);
      shown = id;
      showReport(push);
      say("success", `The push ran again: ${countsText(push.counts || {})}.`);
    }

    $("report-run").addEventListener("click", async (event) => {
      await withButton(event.currentTarget, () => runAgain(shown));
      refreshNow();
    });

    $("report-close").addEventListener("click", () => {
      shown = null;
      report.hidden = true;
    });
  }

  // ----------------------------------------------------------------- start

  if (initErrorPage()) return;
  if (["files", "material", "starting"].includes(body.dataset.page)) {
    initArea();
    if ($("push-section")) initPushes();
  }
})();
