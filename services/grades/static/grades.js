// The grades service's pages (services/grades/pages.py): every read and change is a call
// to the service's REST API with the XSRF token of its _xsrf cookie; every answer is shown
// on the page. Data from the API is only ever put into the page with textContent and
// attributes, never as HTML. Dates are shown in the browser's time zone; dates typed into
// a datetime-local input are sent with the browser's UTC offset.
"use strict";

(function () {
  const body = document.body;
  const PREFIX = body.dataset.prefix;
  // the student's page reloads its assignments this often (the countdown ticks every second)
  const STUDENT_POLL_MS = 60000;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  const {
    ApiError,
    action,
    apiClient,
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
    sizeText,
    syncRows,
    uploadToStore,
    withButton,
  } = window.classhub;
  const api = apiClient(PREFIX, "The grades service");

  const DATE_FORMAT = {
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  };

  const when = (iso) => window.classhub.when(iso, DATE_FORMAT);

  function setTime(element, iso, empty) {
    element.dateTime = iso || "";
    element.textContent = iso ? when(iso) : empty || "";
  }

  // "2 days 3 h 04 min 05 s"
  function durationText(seconds) {
    let s = Math.max(0, Math.floor(seconds));
    const days = Math.floor(s / 86400);
    s -= days * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const pad = (n) => String(n).padStart(2, "0");
    if (days > 0) return `${plural(days, "day")} ${h} h ${pad(m)} min ${pad(s)} s`;
    if (h > 0) return `${h} h ${pad(m)} min ${pad(s)} s`;
    if (m > 0) return `${m} min ${pad(s)} s`;
    return `${s} s`;
  }

  function policyText(a) {
    if (!a.due_at) return "There is no due date.";
    if (a.late_policy === "refuse") return "Refused after the due date: submit before it.";
    const penalty = Number(a.late_penalty_percent || 0);
    return penalty > 0
      ? `Accepted after the due date, marked late, with a ${num(penalty)}% penalty on its points.`
      : "Accepted after the due date, marked late, without penalty.";
  }

  // a datetime-local input's value: null when empty, else the ISO text with the offset
  function inputIso(input, label) {
    const value = input.value;
    if (!value) return null;
    const date = new Date(value); // the browser's local time
    if (Number.isNaN(date.getTime())) throw new ApiError(0, `The ${label} is not a date and time.`);
    return isoWithOffset(date);
  }

  // an ISO instant as a datetime-local input's value, in the browser's time zone
  function inputValue(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    const seconds = date.getSeconds() ? `:${pad(date.getSeconds())}` : "";
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}${seconds}`
    );
  }

  function badge(element, text, kind) {
    element.textContent = text;
    element.className = `badge ${kind}`;
  }

  function showTimeZone() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    for (const el of document.querySelectorAll(".time-zone")) el.textContent = zone;
  }

  function gradeText(grade, maxPoints, late, penalty) {
    if (!grade) return "";
    let text = `${num(grade.points)} / ${num(maxPoints)}`;
    if (late && Number(penalty) > 0 && grade.final_points !== null) {
      text += ` (${num(grade.final_points)} after the ${num(penalty)}% late penalty)`;
    }
    return text;
  }

  // how a version was taken, for its row
  function takenBy(s) {
    if (s.kind === "deadline") return "taken at the due date by classhub";
    return s.collected_by ? `collected by ${s.collected_by}` : "";
  }

  function timingText(s) {
    if (!s.late) return "on time";
    return Number(s.penalty_percent) > 0 ? `late (${num(s.penalty_percent)}% penalty)` : "late";
  }

  // what a Submit took: the folder as saved on disk
  function takenText(taken) {
    if (!taken) return "";
    let text =
      `Taken at ${when(taken.at)}: ${plural(taken.files, "file")}, ${sizeText(taken.bytes)}, ` +
      "as saved on disk (save your notebooks first: unsaved changes are not in it).";
    if (taken.skipped_total > 0) {
      const names = (taken.skipped || []).slice(0, 3).map((x) => `${x.path} (${x.reason})`);
      text += ` Left out: ${names.join(", ")}${taken.skipped_total > names.length ? ", …" : ""}.`;
    }
    return text;
  }

  // ----------------------------------------------------------------- a student's page

  function initStudent() {
    const code = body.dataset.code;
    const base = `api/classes/${enc(code)}/assignments`;
    const list = $("assignments");
    // slug -> the instant (Date.now() milliseconds) of the student's due date, from
    // seconds_left: the countdown is right even when the computer's clock is not
    const deadlines = new Map();

    function tick() {
      const now = Date.now();
      for (const card of list.children) {
        const countdown = field(card, "countdown");
        const deadline = deadlines.get(card.dataset.slug);
        if (deadline === undefined) {
          countdown.textContent = "";
          countdown.className = "countdown";
          continue;
        }
        const left = (deadline - now) / 1000;
        if (left > 0) {
          countdown.textContent = `${durationText(left)} left`;
          countdown.className = `countdown fw-semibold ${left < 3600 ? "text-danger" : ""}`;
        } else {
          countdown.textContent = `The due date passed ${durationText(-left)} ago.`;
          countdown.className = "countdown fw-semibold text-body-secondary";
        }
        card.dataset.due = left > 0 ? "open" : "passed";
      }
    }

    function fillVersion(row, s, a) {
      row.dataset.version = String(s.version);
      row.dataset.counts = s.counts ? "true" : "false";
      field(row, "version").textContent = String(s.version);
      setTime(field(row, "when"), s.submitted_at);
      field(row, "by").textContent = takenBy(s);
      field(row, "timing").textContent = timingText(s);
      field(row, "files").textContent = `${plural(s.files, "file")}, ${sizeText(s.bytes)}`;
      field(row, "grade").textContent = s.grade
        ? gradeText(s.grade, a.max_points, s.late, s.penalty_percent)
        : "—";
      field(row, "counts").textContent = s.counts ? "counts" : "";
      // a plain link: the API answers it with a redirect to a short-lived download
      const download = field(row, "download");
      download.href = `${PREFIX}api/submissions/${enc(String(s.id))}/download?redirect=1`;
      download.title = `Download version ${s.version} as a zip`;
    }

    // what the card says of where the student stands (the same computation as the
    // teacher's page: services/grades/standing.py)
    function statusText(a) {
      const s = a.standing;
      if (!s) return "";
      if (s.state === "not_handed_in_yet") {
        return a.your_due_at
          ? "Not handed in yet. At your due date a copy of your folder is taken by itself."
          : "Not handed in yet.";
      }
      if (s.state === "missing") {
        return (
          "Missing: nothing was handed in by your due date" +
          (s.missing_reason ? ` (${s.missing_reason}).` : ".")
        );
      }
      const counting = (a.submissions || []).find((v) => v.counts);
      if (!counting) return "";
      let text = `Version ${counting.version} counts (${timingText(counting)}`;
      if (s.why === "chosen") text += ", chosen by your teacher";
      text += ")";
      if (s.late && s.penalty_source === "waived") text += "; your teacher waived the late penalty";
      else if (s.late && s.penalty_source === "override") {
        text += `; your teacher set your late penalty to ${num(s.penalty_percent)}%`;
      }
      return text + (s.state === "graded" ? "; graded." : "; no grade returned yet.");
    }

    function fillAssignment(card, a, loadedAt) {
      card.dataset.slug = a.slug;
      field(card, "title").textContent = a.title;
      field(card, "slug").textContent = a.slug;
      setTime(field(card, "due"), a.your_due_at, "No due date");
      field(card, "extended").hidden = !a.extended;
      if (a.seconds_left === null || a.seconds_left === undefined) deadlines.delete(a.slug);
      else deadlines.set(a.slug, loadedAt + a.seconds_left * 1000);
      field(card, "policy").textContent = policyText(a);
      field(card, "max-points").textContent = num(a.max_points);
      field(card, "folder").textContent = `${code}/assignments/${a.slug}`;
      const instructions = field(card, "instructions");
      instructions.textContent = a.instructions || "";
      instructions.hidden = !a.instructions;

      const versions = a.submissions || [];
      const table = field(card, "versions");
      syncRows(
        table.tBodies[0],
        versions,
        (s) => String(s.id),
        "version-row-template",
        (row, s) => fillVersion(row, s, a),
      );
      table.hidden = versions.length === 0;
      field(card, "versions-empty").hidden = versions.length > 0;
      const review = action(card, "review"); // the review page (static/review.js)
      review.hidden = versions.length === 0;
      review.href = `${PREFIX}classes/${enc(code)}/assignments/${enc(a.slug)}/review`;
      // each version is kept; at the cap Submit is refused (the versions are kept; the counting rule picks one)
      field(card, "versions-count").textContent = a.max_versions
        ? `${plural(versions.length, "version")} of at most ${a.max_versions} handed in`
        : "";

      field(card, "status").textContent = statusText(a);
      card.dataset.state = a.standing ? a.standing.state : "";

      // the grade of the version that counts, once returned
      const graded = versions.find((s) => s.counts && s.grade);
      const box = field(card, "grade-box");
      box.hidden = !graded;
      if (graded) {
        field(box, "grade").textContent =
          `${gradeText(graded.grade, a.max_points, graded.late, graded.penalty_percent)}` +
          ` for version ${graded.version}`;
        const perQuestion = field(box, "question-points");
        const given = graded.grade.questions || {};
        const items = (a.questions || []).filter((q) => given[q.key]);
        perQuestion.replaceChildren(
          ...items.map((q) => {
            const li = document.createElement("li");
            li.textContent = `${q.label}: ${num(given[q.key].points)} / ${num(q.points)}`;
            return li;
          }),
        );
        perQuestion.hidden = items.length === 0;
        const feedback = field(box, "feedback");
        feedback.textContent = graded.grade.feedback || "No written feedback.";
      }
      window.gradesAutograde.student(card, versions); // the automatic tests (autograde.js)
    }

    async function refresh() {
      const data = await api("GET", base);
      const loadedAt = Date.now();
      const items = data.assignments;
      syncRows(
        list,
        items,
        (a) => a.slug,
        "assignment-template",
        (card, a) => fillAssignment(card, a, loadedAt),
      );
      for (const slug of Array.from(deadlines.keys())) {
        if (!items.some((a) => a.slug === slug)) deadlines.delete(slug);
      }
      const storage = data.submission_storage;
      const storageLine = $("submission-storage");
      storageLine.hidden = !storage;
      if (storage) {
        storageLine.textContent =
          `Your handed-in versions (all classes) take ${sizeText(storage.used)} ` +
          `of the ${sizeText(storage.quota)} you may use.`;
      }
      const empty = $("assignments-empty");
      empty.hidden = items.length > 0;
      empty.textContent = "There is no assignment for you yet.";
      tick();
    }

    function showResult(card, kind, text) {
      const result = field(card, "result");
      result.className = `text-${kind}`;
      result.textContent = text;
      result.hidden = false;
    }

    list.addEventListener("click", async (event) => {
      const button = event.target.closest('button[data-action="submit"]');
      if (!button || button.disabled) return;
      const card = button.closest("article");
      const slug = card.dataset.slug;
      // busy while it runs (a double click sends one request); the outcome is shown in the card
      await withButton(button, async () => {
        showResult(card, "body-secondary", "Handing in a copy of your folder…");
        try {
          const s = await api("POST", `${base}/${enc(slug)}/submit`);
          const timing = s.late ? "late" : "on time";
          showResult(
            card,
            "success",
            (s.duplicate
              ? `Nothing changed since version ${s.version} (${timing}): it stays handed in.`
              : `Handed in: version ${s.version}, ${timing}.`) + ` ${takenText(s.taken)}`,
          );
        } catch (e) {
          showResult(card, "danger", errorText(e));
        }
      });
      await loading(refresh);
    });

    setInterval(tick, 1000);
    setInterval(() => {
      if (!document.hidden) loading(refresh);
    }, STUDENT_POLL_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) loading(refresh);
    });
    loading(refresh);
  }

  // ----------------------------------------------------------------- a teacher's page

  const STATUS_BADGES = {
    on_time: ["on time", "text-bg-success"],
    late: ["late", "text-bg-warning"],
    missing: ["missing", "text-bg-secondary"],
    not_handed_in_yet: ["not handed in yet", "text-bg-light"],
  };

  function initTeacher() {
    const code = body.dataset.code;
    const base = `api/classes/${enc(code)}`;
    let assignments = []; // the last list, for the editor and the panel
    let extensions = {};
    try {
      extensions = JSON.parse(body.dataset.extensions || "{}");
    } catch {
      extensions = {};
    }

    // ---- the assignments

    // the badge of an assignment's row: from its release (services/grades/rules.py)
    const RELEASE_BADGES = {
      scheduled: ["not released yet", "text-bg-info"],
      // students see it from its release date on; its files follow within seconds
      pending: ["released, pushing its starting files…", "text-bg-warning"],
      failed: ["released, starting files not pushed yet", "text-bg-danger"],
      released: ["released", "text-bg-success"],
      released_by_hand: ["released", "text-bg-success"],
      no_files: ["released, no starting files", "text-bg-warning"],
      archived: ["archived", "text-bg-secondary"],
    };

    function stateOf(a) {
      if (a.archived) return ["archived", "text-bg-secondary"];
      const known = a.release && RELEASE_BADGES[a.release.state];
      if (known) return known;
      if (a.release_at && new Date(a.release_at).getTime() > Date.now()) {
        return ["not released yet", "text-bg-info"];
      }
      return ["released", "text-bg-success"];
    }

    function fillAssignmentRow(row, a) {
      row.dataset.slug = a.slug;
      field(row, "title").textContent = a.title;
      field(row, "slug").textContent = a.slug;
      const [text, kind] = stateOf(a);
      badge(field(row, "state"), text, kind);
      setTime(field(row, "release"), a.release_at, "at once");
      setTime(field(row, "due"), a.due_at, "no due date");
      field(row, "points").textContent = num(a.max_points);
      field(row, "policy").textContent = policyText(a);
      const archive = action(row, "archive");
      archive.textContent = a.archived ? "Unarchive" : "Archive";
      archive.title = a.archived
        ? "Show it to students again and take submissions"
        : "Hide it from students and take no more submissions (grades stay)";
    }

    async function loadAssignments() {
      const data = await api("GET", `${base}/assignments`);
      assignments = data.assignments;
      const table = $("assignments");
      syncRows(
        table.tBodies[0],
        assignments,
        (a) => a.slug,
        "assignment-row-template",
        fillAssignmentRow,
      );
      table.hidden = assignments.length === 0;
      const empty = $("assignments-empty");
      empty.hidden = assignments.length > 0;
      empty.textContent = "No assignments yet: create one above.";
      const open = panel.dataset.slug && assignments.find((a) => a.slug === panel.dataset.slug);
      if (open) showPanelHead(open);
    }

    // ---- the editor

    const form = $("assignment-form");
    const input = (name) => form.elements.namedItem(name);

    function editorMode(a) {
      form.dataset.mode = a ? "edit" : "create";
      form.dataset.slug = a ? a.slug : "";
      form.dataset.revision = a ? String(a.revision) : "";
      $("editor-heading").textContent = a ? `Edit ${a.title}` : "New assignment";
      $("assignment-save").textContent = a ? "Save changes" : "Create assignment";
      $("assignment-cancel").hidden = !a;
      input("slug").disabled = Boolean(a);
      showReleaseBox(a);
      showQuestionsBox(a);
      if (!a) {
        form.reset();
        return;
      }
      input("slug").value = a.slug;
      input("title").value = a.title;
      input("instructions").value = a.instructions || "";
      input("max_points").value = num(a.max_points);
      input("release_at").value = inputValue(a.release_at);
      input("due_at").value = inputValue(a.due_at);
      input("late_policy").value = a.late_policy;
      input("late_penalty_percent").value = num(a.late_penalty_percent);
    }

    function policyChanged() {
      const refuse = input("late_policy").value === "refuse";
      input("late_penalty_percent").disabled = refuse;
      if (refuse) input("late_penalty_percent").value = "0";
    }
    input("late_policy").addEventListener("change", policyChanged);

    function editorBody() {
      const points = input("max_points").value.trim();
      const penalty = input("late_penalty_percent").value.trim();
      const data = {
        title: input("title").value,
        instructions: input("instructions").value,
        max_points: points === "" ? null : Number(points),
        release_at: inputIso(input("release_at"), "release date"),
        due_at: inputIso(input("due_at"), "due date"),
        late_policy: input("late_policy").value,
        late_penalty_percent: input("late_policy").value === "refuse" ? 0 : Number(penalty || 0),
      };
      if (data.max_points === null) throw new ApiError(0, "Give the maximum points.");
      return data;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await withButton($("assignment-save"), async () => {
        const data = editorBody();
        if (form.dataset.mode === "edit") {
          const slug = form.dataset.slug;
          const saved = await api("PATCH", `${base}/assignments/${enc(slug)}`, {
            ...data,
            revision: Number(form.dataset.revision),
          });
          say("success", `Saved ${saved.title}.`);
        } else {
          const created = await api("POST", `${base}/assignments`, {
            slug: input("slug").value.trim(),
            ...data,
          });
          extensions[created.slug] = extensions[created.slug] || [];
          say("success", `Created ${created.title} (${created.slug}).`);
          // stay on it: the release box below is where its starting files go
          editorMode(created);
          policyChanged();
          showNext(created);
          await loading(loadAssignments);
          await loading(loadGradebook);
          return;
        }
        editorMode(null);
        policyChanged();
        await loading(loadAssignments);
        await loading(loadGradebook);
      });
    });

    // ---- the editor's release box: state, starting files, "Release (again) now"

    const releaseBox = $("release-box");
    // states in which the box looks again every few seconds (something will change)
    const RELEASE_MOVING = new Set(["scheduled", "pending", "failed"]);
    // the files service's push states after which nothing changes by itself
    const PUSH_FINAL = new Set(["done", "failed", "cancelled"]);

    function releaseText(r, data) {
      switch (r.state) {
        case "scheduled":
          return `Scheduled for ${when(r.release_at)}: the starting files are pushed to every student then.`;
        case "pending":
          return "Due now: the starting files are being pushed to every student (within seconds).";
        case "failed":
          return (
            "The release failed; it is retried by itself" +
            (r.retry_at ? ` after ${when(r.retry_at)}` : "") +
            ", or click Release now."
          );
        case "released": {
          const push = data.push;
          const counts = push && push.counts ? Object.entries(push.counts) : [];
          const done = counts.length ? ` (${counts.map(([k, n]) => `${n} ${k}`).join(", ")})` : "";
          return `Released at ${when(r.released_at)}: ${plural(r.files, "starting file")} pushed to every student${done}.`;
        }
        case "no_files":
          return (
            `Released at ${when(r.released_at)} with no starting files yet: nothing was pushed. ` +
            "Upload them, then click Release again now."
          );
        case "released_by_hand":
          return "Released before releases were automatic: its starting files were pushed by hand, if at all.";
        case "archived":
          return "Archived: nothing is released.";
        default:
          return r.state;
      }
    }

    // after Create: what to do next, in the box where it is done
    function showNext(a) {
      const later = a.release_at && new Date(a.release_at).getTime() > Date.now();
      $("editor-next").textContent =
        `Next: upload the starting files below (optional: without them students start from an empty folder). ` +
        (later
          ? `They are pushed to every student at the release, ${when(a.release_at)}.`
          : "The assignment is released now: after uploading, click Release again now to push them.") +
        " Then follow the submissions in the assignments list.";
      $("editor-next").hidden = false;
    }

    // what the students have: the counts of the release push's deliveries
    function studentsText(r, data) {
      const counts = (data.push && data.push.counts) || {};
      const delivered = counts.delivered || 0;
      const waiting = counts.waiting || 0;
      const failed = counts.failed || 0;
      const box = $("release-students");
      box.dataset.delivered = String(delivered);
      box.dataset.waiting = String(waiting);
      if (!data.push) {
        if (r.state === "scheduled") return "Students have nothing of it yet.";
        if (r.state === "no_files") return "Students have no starting files.";
        return "";
      }
      const parts = [
        `${delivered} delivered`,
        `${waiting} waiting (they get them at their first start)`,
      ];
      if (failed) parts.push(`${failed} failed (click Release again now to retry)`);
      return `Students with the starting files: ${parts.join(", ")}.`;
    }

    function showRelease(data) {
      const r = data.release;
      releaseBox.dataset.state = r.state;
      // a push still running: the box looks again until its counts are final
      releaseBox.dataset.pushing = data.push && !PUSH_FINAL.has(data.push.status) ? "1" : "";
      $("release-state").textContent = releaseText(r, data);
      $("release-students").textContent = studentsText(r, data);
      $("release-error").hidden = !(r.state === "failed" && r.error);
      $("release-error").textContent = r.error ? `Failed: ${r.error}` : "";
      $("release-push").hidden = !r.push_url;
      if (r.push_url) $("release-push-link").href = r.push_url;
      $("release-push-status").textContent = data.push ? `push ${data.push.status}` : "";
      $("starting-files-link").href = r.upload_url;
      const button = $("release-now");
      button.hidden = r.state === "archived";
      button.textContent = RELEASE_MOVING.has(r.state) ? "Release now" : "Release again now";
      const list = $("starting-files");
      const empty = $("starting-files-empty");
      const files = data.starting_files;
      if (files === null) {
        list.hidden = true;
        empty.hidden = false;
        empty.textContent = data.files_error || "The starting files cannot be read right now.";
        return;
      }
      const items = document.createDocumentFragment();
      for (const f of files) {
        const li = document.createElement("li");
        li.textContent = `${f.path} (${sizeText(f.size)})`;
        items.append(li);
      }
      startingNotebooks(files.filter((f) => f.path.toLowerCase().endsWith(".ipynb")));
      list.replaceChildren(items);
      list.hidden = files.length === 0;
      empty.hidden = files.length > 0;
      empty.textContent =
        "No starting files yet: upload them (optional; students then start from an empty folder).";
    }

    async function loadRelease() {
      const slug = releaseBox.dataset.slug;
      if (!slug) return;
      const data = await api("GET", `${base}/assignments/${enc(slug)}/release`);
      if (releaseBox.dataset.slug === slug) showRelease(data);
    }

    function showReleaseBox(a) {
      releaseBox.hidden = !a;
      releaseBox.dataset.slug = a ? a.slug : "";
      releaseBox.dataset.state = "";
      if (!a) return;
      field(releaseBox, "slug").textContent = a.slug;
      $("editor-next").hidden = true;
      $("release-state").textContent = "";
      $("release-students").textContent = "";
      $("release-error").hidden = true;
      $("release-push").hidden = true;
      $("starting-files").hidden = true;
      $("starting-files-empty").hidden = false;
      $("starting-files-empty").textContent = "Loading the starting files…";
      $("starting-files-link").href =
        `${PREFIX.replace(/grades\/$/, "files/")}classes/${enc(code)}/assignments/${enc(a.slug)}`;
      loading(loadRelease);
    }

    // ---- the editor's questions box: import from a notebook, edit, save

    const questionsBox = $("questions-box");

    function startingNotebooks(files) {
      const select = $("questions-notebook");
      const options = files.map((f) => {
        const option = document.createElement("option");
        option.value = f.path;
        option.textContent = f.path;
        return option;
      });
      if (!options.length) {
        const none = document.createElement("option");
        none.value = "";
        none.textContent = "no starting notebook";
        options.push(none);
      }
      select.replaceChildren(...options);
    }

    function showQuestionsBox(a) {
      window.gradesAutograde.teacher(a); // the autograding box (autograde.js)
      questionsBox.hidden = !a;
      questionsBox.dataset.slug = a ? a.slug : "";
      input("max_points").readOnly = false;
      if (!a) return;
      startingNotebooks([]);
      $("questions-file").value = "";
      loading(loadQuestions);
    }

    function fillQuestionRow(tr, q) {
      tr.dataset.question = q.key || "";
      tr.dataset.origin = q.origin || "manual";
      field(tr, "label").value = q.label || "";
      field(tr, "points").value = q.points === undefined || q.points === null ? "" : num(q.points);
    }

    let newRows = 0;
    function showQuestions(list) {
      const keyed = list.map((q) => ({ ...q, rowKey: q.key || `new-${(newRows += 1)}` }));
      syncRows(
        $("questions").tBodies[0],
        keyed,
        (q) => q.rowKey,
        "question-row-template",
        fillQuestionRow,
      );
      questionsTotal();
    }

    function questionRows() {
      return Array.from($("questions").tBodies[0].rows, (tr) => {
        const q = {
          label: field(tr, "label").value,
          points: Number(field(tr, "points").value),
          origin: tr.dataset.origin || "manual",
        };
        if (tr.dataset.question) q.key = tr.dataset.question;
        return q;
      });
    }

    function questionsTotal() {
      const list = questionRows();
      const total = list.reduce((sum, q) => sum + (Number.isFinite(q.points) ? q.points : 0), 0);
      $("questions-total").textContent = list.length
        ? `${plural(list.length, "question")}, ${num(Math.round(total * 100) / 100)} points in all (the assignment's maximum).`
        : "No questions: the grade is one number.";
    }

    async function loadQuestions() {
      const slug = questionsBox.dataset.slug;
      if (!slug) return;
      const data = await api("GET", `${base}/assignments/${enc(slug)}/questions`);
      if (questionsBox.dataset.slug !== slug) return;
      showQuestions(data.questions);
      input("max_points").readOnly = data.questions.length > 0;
    }

    // a notebook's cells without their outputs: all the import reads
    function cellsOnly(nb) {
      if (!nb || !Array.isArray(nb.cells)) {
        throw new ApiError(0, "That file is not a Jupyter notebook.");
      }
      return {
        cells: nb.cells.map((c) => ({
          cell_type: c.cell_type,
          source: c.source,
          metadata: c.metadata || {},
        })),
      };
    }

    async function readNotebook() {
      const file = $("questions-file").files[0];
      if (file) return JSON.parse(await file.text());
      const path = $("questions-notebook").value;
      if (!path) throw new ApiError(0, "Choose a starting notebook or a notebook file first.");
      // through the files service, as the teacher (the grades service reads no files)
      const query = enc(`${questionsBox.dataset.slug}/${path}`);
      const unreadable = (status) =>
        new ApiError(
          status,
          "The starting notebook cannot be read here: open the starting files page once (the link " +
            "above) to sign in at the files service, or choose the notebook file from your computer.",
        );
      let link;
      try {
        const files = await serviceClient(body.dataset.hub, "files", "The files service");
        link = await files(
          "GET",
          `api/files/class/${enc(code)}/assignments/download?path=${query}`,
        );
      } catch (e) {
        throw unreadable(e.status || 0);
      }
      if (!link || !link.url) throw unreadable(200);
      let text;
      try {
        text = await readFromStore(link.url);
      } catch (e) {
        throw new ApiError(e.status, "The starting notebook could not be downloaded.");
      }
      return JSON.parse(text);
    }

    $("questions-import").addEventListener("click", async (event) => {
      const slug = questionsBox.dataset.slug;
      await withButton(event.currentTarget, async () => {
        let nb;
        try {
          nb = cellsOnly(await readNotebook());
        } catch (e) {
          if (e instanceof SyntaxError) {
            throw new ApiError(0, "That file is not a Jupyter notebook (not JSON).");
          }
          throw e;
        }
        const data = await api("POST", `${base}/assignments/${enc(slug)}/questions/import`, {
          notebook: nb,
          by: $("questions-by").value,
        });
        if (!data.questions.length) {
          say("warning", "The notebook defines no questions that way: nothing was imported.");
          return;
        }
        showQuestions(data.questions);
        say(
          "info",
          `Imported ${plural(data.questions.length, "question")}: check the labels and points, then save.`,
        );
      });
    });

    $("questions-add").addEventListener("click", () => {
      showQuestions([...questionRows(), { label: "", points: 1 }]);
    });

    $("questions").addEventListener("click", (event) => {
      const button = event.target.closest('button[data-action="remove"]');
      if (!button) return;
      button.closest("tr").remove();
      questionsTotal();
    });
    $("questions").addEventListener("input", questionsTotal);

    $("questions-save").addEventListener("click", async (event) => {
      const slug = questionsBox.dataset.slug;
      await withButton(event.currentTarget, async () => {
        const data = await api("PUT", `${base}/assignments/${enc(slug)}/questions`, {
          questions: questionRows(),
          revision: Number(form.dataset.revision),
        });
        form.dataset.revision = String(data.assignment.revision);
        input("max_points").value = num(data.assignment.max_points);
        input("max_points").readOnly = data.questions.length > 0;
        showQuestions(data.questions);
        say(
          "success",
          `Saved ${plural(data.questions.length, "question")} of ${data.assignment.title}.`,
        );
        await loading(loadAssignments);
        await loading(loadGradebook);
      });
    });

    const RELEASE_OUTCOMES = {
      pushed: ["success", "The starting files are being pushed to every student."],
      failed: ["danger", "The release failed: see the box below; it is retried by itself."],
      in_progress: ["info", "The release is being made right now."],
    };

    $("release-now").addEventListener("click", async (event) => {
      const slug = releaseBox.dataset.slug;
      const scheduled = releaseBox.dataset.state === "scheduled";
      const question = scheduled
        ? "Release the assignment now? Students see it and get its starting files at once."
        : "Push the starting files to every student again? Files they changed are kept.";
      if (!confirmAction(question)) return;
      await withButton(event.currentTarget, async () => {
        const answer = await api("POST", `${base}/assignments/${enc(slug)}/release`);
        if (releaseBox.dataset.slug === slug) showRelease(answer);
        const [kind, text] = RELEASE_OUTCOMES[answer.outcome] || ["info", "Done."];
        say(
          kind,
          answer.release.state === "no_files" ? "There are no starting files to push." : text,
        );
        await loading(loadAssignments);
      });
    });

    // the starting files, uploaded from here: the grades service has the files service
    // sign each upload, the browser sends the bytes to the store, then reports it done
    async function sendStartingFile(slug, file) {
      const path = `${base}/assignments/${enc(slug)}/starting-files`;
      const signed = await api("POST", path, { path: file.name, size: file.size });
      await uploadToStore(signed, file);
      await api("POST", `${path}/${enc(signed.id)}`);
    }

    $("starting-files-upload").addEventListener("click", async (event) => {
      const slug = releaseBox.dataset.slug;
      const chosen = Array.from($("starting-files-input").files);
      if (!chosen.length) {
        say("warning", "Choose the starting files to upload first.");
        return;
      }
      await withButton(event.currentTarget, async () => {
        const done = [];
        const failed = [];
        for (const file of chosen) {
          try {
            await sendStartingFile(slug, file);
            done.push(file.name);
          } catch (e) {
            failed.push(`${file.name}: ${e.message}`);
          }
        }
        $("starting-files-input").value = "";
        await loadRelease();
        const state = releaseBox.dataset.state;
        const next =
          state === "scheduled"
            ? "Students get them at the release."
            : RELEASE_MOVING.has(state)
              ? "Students get them with the release, in a moment."
              : "Students get them when you click Release again now.";
        if (failed.length) {
          say("danger", `Not uploaded: ${failed.join("; ")}`);
        } else {
          say("success", `Uploaded ${plural(done.length, "starting file")}. ${next}`);
        }
      });
    });

    $("release-reload").addEventListener("click", (event) =>
      withButton(event.currentTarget, loadRelease),
    );

    setInterval(() => {
      if (document.hidden || releaseBox.hidden) return;
      if (RELEASE_MOVING.has(releaseBox.dataset.state) || releaseBox.dataset.pushing) {
        loading(loadRelease);
      }
    }, 5000);

    $("assignment-cancel").addEventListener("click", () => {
      editorMode(null);
      policyChanged();
    });

    $("assignments").addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const slug = button.closest("tr").dataset.slug;
      const a = assignments.find((x) => x.slug === slug);
      if (!a) return;
      if (button.dataset.action === "edit") {
        editorMode(a);
        policyChanged();
        $("editor-section").scrollIntoView({ block: "start" });
      } else if (button.dataset.action === "open") {
        await withButton(button, () => openPanel(a));
      } else if (button.dataset.action === "archive") {
        const verb = a.archived ? "unarchive" : "archive";
        const question = a.archived
          ? `Unarchive ${a.title}? Students see it again and can submit.`
          : `Archive ${a.title}? Students no longer see it and cannot submit; ` +
            "its submissions and grades stay.";
        if (!confirmAction(question)) return;
        await withButton(button, async () => {
          const changed = await api("POST", `${base}/assignments/${enc(a.slug)}/${verb}`);
          say("success", `${changed.archived ? "Archived" : "Unarchived"} ${changed.title}.`);
          await loading(loadAssignments);
          await loading(loadGradebook);
        });
      } else if (button.dataset.action === "delete") {
        const question =
          `Delete ${a.title} for good? Only an assignment nobody has handed anything in ` +
          "for can be deleted; otherwise archive it.";
        if (!confirmAction(question)) return;
        await withButton(button, async () => {
          await api("DELETE", `${base}/assignments/${enc(a.slug)}`);
          say("success", `Deleted ${a.title}.`);
          await loading(loadAssignments);
          await loading(loadGradebook);
        });
      }
    });

    // ---- one assignment: submissions, grading, extensions

    const panel = $("assignment-panel");
    let rows = []; // the last submissions list of the open assignment

    function current() {
      return assignments.find((a) => a.slug === panel.dataset.slug);
    }

    function showPanelHead(a) {
      $("panel-title").textContent = a.title;
      $("panel-slug").textContent = a.slug;
      const assignmentPath = `classes/${enc(code)}/assignments/${enc(a.slug)}`;
      $("review-open").href = `${PREFIX}${assignmentPath}/review`;
      $("download-all").href = `${PREFIX}api/${assignmentPath}/download-all`;
    }

    async function openPanel(a) {
      if (panel.dataset.slug !== a.slug) {
        closeGrading();
        $("collect-report").hidden = true;
        $("submissions").tBodies[0].replaceChildren();
      }
      panel.dataset.slug = a.slug;
      showPanelHead(a);
      panel.hidden = false;
      showExtensions();
      await loadSubmissions();
      panel.scrollIntoView({ block: "start" });
    }

    function fillSubmission(row, r) {
      // the version that counts (services/grades/standing.py); its grade is the student's
      const latest = r.counting || r.latest;
      row.dataset.user = r.user;
      row.dataset.status = r.status;
      field(row, "user").textContent = r.user;
      const [text, kind] = STATUS_BADGES[r.status] || [r.status, "text-bg-light"];
      const status = field(row, "status");
      badge(status, text, kind);
      status.title = (r.standing && r.standing.missing_reason) || "";
      field(row, "versions").textContent = String(r.versions);
      setTime(field(row, "when"), latest ? latest.submitted_at : "", "—");
      const why = r.standing && r.standing.why === "chosen" ? ", chosen by a teacher" : "";
      const newer =
        r.latest && latest && r.latest.id !== latest.id
          ? `; latest: version ${r.latest.version}`
          : "";
      field(row, "detail").textContent = latest
        ? `version ${latest.version}${why}, ${plural(latest.files, "file")}, ${sizeText(latest.bytes)}` +
          (takenBy(latest) ? `, ${takenBy(latest)}` : "") +
          newer
        : (r.standing && r.standing.missing_reason) || "";
      const grade = latest && latest.grade;
      const a = current();
      field(row, "grade").textContent = grade
        ? `${gradeText(grade, a ? a.max_points : null, latest.late, latest.penalty_percent)}` +
          (grade.returned_at ? " · returned" : " · not returned")
        : latest
          ? "not graded"
          : "";
      const download = action(row, "download");
      download.hidden = !latest;
      download.dataset.submission = latest ? String(latest.id) : "";
      download.href = latest ? `${PREFIX}api/submissions/${latest.id}/download` : "#";
      action(row, "grade").hidden = !latest;
      const review = action(row, "review");
      review.hidden = !latest;
      review.href = a
        ? `${PREFIX}classes/${enc(code)}/assignments/${enc(a.slug)}/review?user=${enc(r.user)}`
        : "#";
    }

    async function loadSubmissions() {
      const slug = panel.dataset.slug;
      const data = await api("GET", `${base}/assignments/${enc(slug)}/submissions`);
      if (panel.dataset.slug !== slug) return;
      rows = data.students;
      syncRows(
        $("submissions").tBodies[0],
        rows,
        (r) => r.user,
        "submission-row-template",
        fillSubmission,
      );
      const counts = data.counts || {};
      // "missing" only once a deadline passed for somebody: before, nobody is missing
      const parts = [`${counts.on_time || 0} on time`, `${counts.late || 0} late`];
      if (counts.missing || !counts.not_handed_in_yet) parts.push(`${counts.missing || 0} missing`);
      if (counts.not_handed_in_yet) parts.push(`${counts.not_handed_in_yet} not handed in yet`);
      $("submission-counts").textContent =
        `${parts.join(" · ")} (${plural(rows.length, "student")})`;
      panel.dataset.questions = JSON.stringify(data.questions || []);
      fillStudents();
    }

    $("panel-reload").addEventListener("click", (event) =>
      withButton(event.currentTarget, loadSubmissions),
    );
    $("panel-close").addEventListener("click", () => {
      panel.hidden = true;
      panel.dataset.slug = "";
      closeGrading();
    });

    $("collect-now").addEventListener("click", async (event) => {
      const a = current();
      if (!a) return;
      const question =
        `Collect ${a.title} from every student now? A copy of each student's folder is ` +
        "taken, whether their class server runs or not.";
      if (!confirmAction(question)) return;
      await withButton(event.currentTarget, async () => {
        say("info", "Collecting…");
        const data = await api("POST", `${base}/assignments/${enc(a.slug)}/collect`);
        const items = document.createDocumentFragment();
        let collected = 0;
        for (const s of data.students) {
          const li = document.createElement("li");
          li.dataset.user = s.user;
          li.dataset.status = s.status;
          if (s.status === "collected") {
            collected += 1;
            const counting =
              s.counting_version && s.counting_version !== s.version
                ? ` (version ${s.counting_version} counts)`
                : "";
            li.textContent =
              `${s.user}: ` +
              (s.duplicate
                ? `unchanged since version ${s.version}`
                : `version ${s.version}, ${s.late ? "late" : "on time"}`) +
              counting;
          } else {
            li.textContent = `${s.user}: not collected: ${s.message || s.status}`;
          }
          items.append(li);
        }
        $("collect-results").replaceChildren(items);
        $("collect-report").hidden = false;
        say("success", `Collected ${collected} of ${plural(data.students.length, "student")}.`);
        await loadSubmissions();
        await loading(loadGradebook);
      });
    });

    // downloads: ask for a short-lived link, then follow it (the page stays)
    $("submissions").addEventListener("click", async (event) => {
      const link = event.target.closest('a[data-action="download"]');
      if (link) {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
          event.preventDefault();
          return;
        }
        event.preventDefault();
        try {
          const answer = await api(
            "GET",
            `api/submissions/${enc(link.dataset.submission)}/download`,
          );
          window.location.assign(answer.url);
        } catch (e) {
          fail(e);
        }
        return;
      }
      const button = event.target.closest('button[data-action="grade"]');
      if (button) {
        const row = rows.find((r) => r.user === button.closest("tr").dataset.user);
        if (row && (row.counting || row.latest)) openGrading(row, row.counting || row.latest);
      }
    });

    // ---- grading (the revision is the one of the last load: a grade saved meanwhile
    // by someone else is never overwritten, the API answers 409)

    const grading = $("grading");

    function closeGrading() {
      grading.hidden = true;
      grading.dataset.submission = "";
      grading.dataset.user = "";
    }

    function gradeStatus(latest) {
      const grade = latest.grade;
      if (!grade) return "Not graded yet.";
      const parts = [`Graded by ${grade.graded_by} on ${when(grade.graded_at)}`];
      parts.push(grade.returned_at ? `returned on ${when(grade.returned_at)}` : "not returned yet");
      return parts.join("; ") + ".";
    }

    // the assignment's questions (from the last submissions list): graded one by one
    function questions() {
      try {
        return JSON.parse(panel.dataset.questions || "[]");
      } catch {
        return [];
      }
    }

    function fillQuestions(version) {
      const list = questions();
      window.gradesQuestions.fill(
        list,
        (version.grade && version.grade.questions) || {},
        list.length > 0,
      );
    }

    function openGrading(row, version) {
      const latest = version;
      const a = current();
      grading.dataset.submission = String(latest.id);
      grading.dataset.user = row.user;
      grading.dataset.revision = String(latest.grade ? latest.grade.revision : 0);
      $("grading-user").textContent = row.user;
      $("grading-version").textContent = String(latest.version);
      $("grading-info").textContent =
        `Handed in ${when(latest.submitted_at)}` +
        (takenBy(latest) ? ` (${takenBy(latest)})` : "") +
        `, ${timingText(latest)}` +
        (latest.counts ? ", the version that counts" : ", not the version that counts") +
        `; ${plural(latest.files, "file")}, ${sizeText(latest.bytes)}.`;
      $("grade-max").textContent = a ? num(a.max_points) : "";
      if (a) $("grade-points").max = String(a.max_points);
      $("grade-points").value = latest.grade ? num(latest.grade.points) : "";
      $("grade-feedback").value = latest.grade ? latest.grade.feedback || "" : "";
      $("grade-status").textContent = gradeStatus(latest);
      fillQuestions(latest);
      grading.dataset.returnable = latest.grade && !latest.grade.returned_at ? "true" : "";
      syncReturnButton();
      grading.hidden = false;
      $("grade-points").focus();
      loading(() => loadVersions(row.user));
    }

    // every version of the student being graded, newest first, each with a plain
    // download link (the API answers it with a redirect to the snapshot), whether it
    // counts, and the buttons to grade it or make it count
    let versions = [];

    function fillVersion(li, v) {
      li.dataset.counts = v.counts ? "true" : "false";
      li.dataset.submission = String(v.id);
      field(li, "version").textContent = String(v.version);
      setTime(field(li, "when"), v.submitted_at, "");
      const a = current();
      field(li, "detail").textContent =
        `${timingText(v)}${takenBy(v) ? `, ${takenBy(v)}` : ""}, ${plural(v.files, "file")}, ` +
        sizeText(v.bytes) +
        (v.grade
          ? `, ${gradeText(v.grade, a ? a.max_points : null, v.late, v.penalty_percent)}`
          : "");
      field(li, "counts").hidden = !v.counts;
      field(li, "download").href = `${PREFIX}api/submissions/${v.id}/download?redirect=1`;
      action(li, "count").hidden = v.counts;
      action(li, "grade-version").hidden = String(v.id) === grading.dataset.submission;
    }

    function showStanding(data) {
      const s = data.standing;
      versions = data.submissions;
      syncRows(
        $("grading-versions"),
        versions,
        (v) => String(v.id),
        "version-row-template",
        fillVersion,
      );
      $("grading-versions-count").textContent = String(versions.length);
      const counting = versions.find((v) => v.counts);
      $("grading-counting").textContent = counting
        ? `version ${counting.version} counts (${s.why === "chosen" ? "chosen" : s.why === "first_late" ? "the first late one" : "the last on time"})`
        : "nothing counts yet";
      $("grading-default").hidden = s.why !== "chosen";
      const choice = s.choice || {};
      const override = choice.penalty_percent;
      $("penalty-mode").value =
        override === null || override === undefined
          ? "assignment"
          : Number(override) === 0
            ? "waive"
            : "override";
      $("penalty-percent").value = override === null || override === undefined ? "" : num(override);
      $("penalty-reason").value = choice.penalty_reason || "";
      penaltyModeChanged();
      const a = current();
      $("penalty-state").textContent =
        (s.late
          ? `The version that counts is late: ${num(s.penalty_percent)}% penalty` +
            (s.penalty_source === "assignment" ? " (the assignment's)" : "") +
            (s.final_points !== null
              ? `, so ${num(s.final_points)} of ${a ? num(a.max_points) : "?"}.`
              : ".")
          : "The version that counts is on time: no penalty.") +
        (choice.penalty_by
          ? ` Penalty set by ${choice.penalty_by} on ${when(choice.penalty_at)}.`
          : "");
    }

    async function loadVersions(user) {
      const slug = panel.dataset.slug;
      $("grading-versions-count").textContent = "…";
      const data = await api(
        "GET",
        `${base}/assignments/${enc(slug)}/students/${enc(user)}/submissions`,
      );
      if (panel.dataset.slug !== slug || grading.dataset.user !== user) return;
      showStanding(data);
    }

    async function gradedNow(submission) {
      grading.dataset.revision = String(submission.grade ? submission.grade.revision : 0);
      grading.dataset.returnable = submission.grade && !submission.grade.returned_at ? "true" : "";
      $("grade-status").textContent = gradeStatus(submission);
      syncReturnButton();
      await loading(loadSubmissions);
      if (grading.dataset.user) await loading(() => loadVersions(grading.dataset.user));
    }

    $("grading-versions").addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = Number(button.closest("li").dataset.submission);
      const v = versions.find((x) => x.id === id);
      const row = rows.find((r) => r.user === grading.dataset.user);
      if (!v || !row) return;
      if (button.dataset.action === "grade-version") {
        openGrading(row, v);
        return;
      }
      const reason = window.prompt(
        `Make version ${v.version} the one that counts for ${row.user}? Why (optional, kept in the audit log):`,
        "",
      );
      if (reason === null) return;
      await withButton(button, () => choose(row.user, v.id, reason));
    });

    $("grading-default").addEventListener("click", async (event) => {
      const user = grading.dataset.user;
      await withButton(event.currentTarget, () => choose(user, null, ""));
    });

    async function choose(user, submissionId, reason) {
      const data = await api(
        "PUT",
        `${base}/assignments/${enc(panel.dataset.slug)}/students/${enc(user)}/counts`,
        { submission_id: submissionId, reason },
      );
      showStanding(data);
      say(
        "success",
        submissionId === null
          ? `${user}: the default rule chooses the version that counts again.`
          : `${user}: version ${data.standing.counting_version} counts now.`,
      );
      await loading(loadSubmissions);
      await loading(loadGradebook);
    }

    function penaltyModeChanged() {
      const mode = $("penalty-mode").value;
      $("penalty-percent").disabled = mode !== "override";
      if (mode === "waive") $("penalty-percent").value = "0";
      $("penalty-reason").disabled = mode === "assignment";
    }
    $("penalty-mode").addEventListener("change", penaltyModeChanged);

    $("penalty-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const user = grading.dataset.user;
      if (!user) return;
      await withButton($("penalty-save"), async () => {
        const mode = $("penalty-mode").value;
        const percent =
          mode === "assignment" ? null : mode === "waive" ? 0 : Number($("penalty-percent").value);
        if (mode === "override" && $("penalty-percent").value === "") {
          throw new ApiError(0, "Give the percentage first.");
        }
        const data = await api(
          "PUT",
          `${base}/assignments/${enc(panel.dataset.slug)}/students/${enc(user)}/penalty`,
          { penalty_percent: percent, reason: $("penalty-reason").value },
        );
        showStanding(data);
        say("success", `${user}: late penalty saved.`);
        await loading(loadSubmissions);
        await loading(loadGradebook);
      });
    });

    // Return: only a grade that is saved and not returned yet
    function syncReturnButton() {
      $("grade-return").disabled = grading.dataset.returnable !== "true";
    }

    $("grade-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = grading.dataset.submission;
      if (!id) return;
      await withButton($("grade-save"), async () => {
        const points = $("grade-points").value.trim();
        const change = {
          feedback: $("grade-feedback").value,
          expected_revision: Number(grading.dataset.revision || 0),
        };
        const perQuestion = $("grade-questions").querySelectorAll("input[data-question]");
        if (perQuestion.length) {
          change.questions = {};
          for (const pointsInput of perQuestion) {
            if (pointsInput.value.trim() === "") {
              throw new ApiError(0, "Give the points of every question (0 is allowed).");
            }
            change.questions[pointsInput.dataset.question] = Number(pointsInput.value);
          }
        } else {
          if (points === "") throw new ApiError(0, "Give the points first.");
          change.points = Number(points);
        }
        try {
          const saved = await api("PUT", `api/submissions/${enc(id)}/grade`, change);
          await gradedNow(saved);
          say("success", `Saved the grade of ${saved.user}: ${num(saved.grade.points)} points.`);
        } catch (e) {
          if (e instanceof ApiError && e.status === 409) {
            $("grade-status").textContent = `${e.message} Use Reload to see it.`;
          }
          throw e;
        }
      });
      syncReturnButton();
      await loading(loadGradebook);
    });

    $("grade-return").addEventListener("click", async (event) => {
      const id = grading.dataset.submission;
      if (!id) return;
      await withButton(event.currentTarget, async () => {
        const returned = await api("POST", `api/submissions/${enc(id)}/return`);
        await gradedNow(returned);
        say("success", `Returned the grade to ${returned.user}: they can see it now.`);
      });
      syncReturnButton();
      await loading(loadGradebook);
    });

    $("grade-reload").addEventListener("click", async (event) => {
      const user = grading.dataset.user;
      await withButton(event.currentTarget, async () => {
        await loadSubmissions();
        const row = rows.find((r) => r.user === user);
        const shown = Number(grading.dataset.submission);
        if (row && (row.counting || row.latest)) {
          const again = await api(
            "GET",
            `${base}/assignments/${enc(panel.dataset.slug)}/students/${enc(user)}/submissions`,
          );
          openGrading(
            row,
            again.submissions.find((v) => v.id === shown) || row.counting || row.latest,
          );
        } else closeGrading();
      });
    });
    $("grade-close").addEventListener("click", closeGrading);

    // ---- extensions

    function showExtensions() {
      const items = (extensions[panel.dataset.slug] || [])
        .slice()
        .sort((x, y) => (x.user < y.user ? -1 : x.user > y.user ? 1 : 0));
      syncRows(
        $("extensions").tBodies[0],
        items,
        (e) => e.user,
        "extension-row-template",
        (row, e) => {
          row.dataset.user = e.user;
          field(row, "user").textContent = e.user;
          setTime(field(row, "due"), e.due_at);
          field(row, "reason").textContent = e.reason || "";
        },
      );
      $("extensions").hidden = items.length === 0;
      $("extensions-empty").hidden = items.length > 0;
    }

    function fillStudents() {
      const select = $("extension-user");
      const chosen = select.value;
      const options = rows.map((r) => {
        const option = document.createElement("option");
        option.value = r.user;
        option.textContent = r.user;
        return option;
      });
      select.replaceChildren(...options);
      if (rows.some((r) => r.user === chosen)) select.value = chosen;
    }

    $("extension-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const slug = panel.dataset.slug;
      const user = $("extension-user").value;
      await withButton(event.target.querySelector("[type=submit]"), async () => {
        if (!user) throw new ApiError(0, "Choose a student first.");
        const due = inputIso($("extension-due"), "new due date");
        if (!due) throw new ApiError(0, "Choose the new due date first.");
        const granted = await api(
          "PUT",
          `${base}/assignments/${enc(slug)}/extensions/${enc(user)}`,
          { due_at: due, reason: $("extension-reason").value },
        );
        const list = (extensions[slug] || []).filter((e) => e.user !== granted.user);
        list.push(granted);
        extensions[slug] = list;
        showExtensions();
        say("success", `${granted.user} now has until ${when(granted.due_at)}.`);
        $("extension-due").value = "";
        $("extension-reason").value = "";
      });
    });

    $("extensions").addEventListener("click", async (event) => {
      const button = event.target.closest('button[data-action="revoke"]');
      if (!button) return;
      const slug = panel.dataset.slug;
      const user = button.closest("tr").dataset.user;
      if (!confirmAction(`Revoke ${user}'s extension? The assignment's due date applies again.`)) {
        return;
      }
      await withButton(button, async () => {
        try {
          await api("DELETE", `${base}/assignments/${enc(slug)}/extensions/${enc(user)}`);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
        }
        extensions[slug] = (extensions[slug] || []).filter((e) => e.user !== user);
        showExtensions();
        say("success", `Revoked ${user}'s extension.`);
      });
    });

    // ---- the gradebook

    function headerCell(text, title) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      if (title) th.title = title;
      return th;
    }

    function cellText(c) {
      if (c.state === "graded") return num(c.points);
      if (c.state === "submitted") return "ungraded";
      if (c.state === "missing") return "missing";
      return "—"; // not handed in yet: the due date is still to come
    }

    async function loadGradebook() {
      const book = await api("GET", `${base}/gradebook`);
      const table = $("gradebook");
      const head = document.createElement("tr");
      head.append(headerCell("Student"));
      for (const a of book.assignments) {
        const th = headerCell(a.archived ? `${a.title} (archived)` : a.title, a.slug);
        th.dataset.slug = a.slug;
        const max = document.createElement("div");
        max.className = "small text-body-secondary fw-normal";
        max.textContent = `of ${num(a.max_points)}`;
        th.append(max);
        head.append(th);
        for (const q of a.questions || []) {
          const sub = headerCell(q.label, `${a.title}: ${q.label}`);
          sub.dataset.slug = a.slug;
          sub.dataset.question = q.key;
          sub.className = "small fw-normal text-body-secondary";
          const of = document.createElement("div");
          of.textContent = `of ${num(q.points)}`;
          sub.append(of);
          head.append(sub);
        }
      }
      head.append(headerCell("Total"), headerCell("Percent"));
      table.tHead.replaceChildren(head);
      const rowsOut = document.createDocumentFragment();
      for (const s of book.students) {
        const tr = document.createElement("tr");
        tr.dataset.user = s.user;
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = s.user;
        tr.append(name);
        // one element per cell (a 300 x 20 gradebook is 6,000 of them): its text, its
        // state and slug as attributes, a badge only when late
        s.cells.forEach((c, i) => {
          const td = document.createElement("td");
          td.dataset.slug = book.assignments[i].slug;
          td.dataset.state = c.state;
          td.textContent = cellText(c);
          if (c.state !== "graded") td.className = "text-body-secondary";
          if (c.state === "not_handed_in_yet") td.title = "not handed in yet";
          if (c.reason) td.title = c.reason;
          if (c.late) {
            const late = document.createElement("span");
            late.className = "badge text-bg-warning ms-1";
            late.dataset.field = "late";
            late.textContent = "late";
            td.append(late);
          }
          tr.append(td);
          // the points per question of the version that counts
          (book.assignments[i].questions || []).forEach((q, k) => {
            const qd = document.createElement("td");
            qd.dataset.slug = book.assignments[i].slug;
            qd.dataset.question = q.key;
            qd.className = "small text-body-secondary";
            const value = c.questions ? c.questions[k] : null;
            qd.textContent = value === null || value === undefined ? "" : num(value);
            tr.append(qd);
          });
        });
        const total = document.createElement("td");
        total.dataset.field = "total";
        // nothing graded yet: no total to show
        total.textContent = s.percent === null ? "—" : `${num(s.earned)} / ${num(s.possible)}`;
        const percent = document.createElement("td");
        percent.dataset.field = "percent";
        percent.textContent = s.percent === null ? "—" : `${num(s.percent)}%`;
        tr.append(total, percent);
        rowsOut.append(tr);
      }
      table.tBodies[0].replaceChildren(rowsOut);
      const empty = book.students.length === 0 || book.assignments.length === 0;
      table.hidden = empty;
      $("gradebook-empty").hidden = !empty;
      $("gradebook-empty").textContent =
        book.students.length === 0 ? "The class has no students yet." : "No assignments yet.";
    }

    $("gradebook-reload").addEventListener("click", (event) =>
      withButton(event.currentTarget, loadGradebook),
    );

    editorMode(null);
    policyChanged();
    loading(loadAssignments);
    loading(loadGradebook);
  }

  // ----------------------------------------------------------------- the home page

  function initHome() {
    const form = $("open-class");
    if (!form) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = $("open-code").value.trim().toLowerCase();
      if (!code) {
        say("danger", "Type a class code first.");
        return;
      }
      window.location.assign(`${PREFIX}classes/${enc(code)}`);
    });
  }

  // ----------------------------------------------------------------- start

  if (initErrorPage()) return;
  if (body.dataset.page === "class") {
    showTimeZone();
    if (body.dataset.teaches === "true") initTeacher();
    else initStudent();
  } else if (body.dataset.page === "home") {
    initHome();
  }
})();
