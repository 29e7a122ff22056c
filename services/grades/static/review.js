// The review page (services/grades/review.py, templates/review.html): a version's files,
// its notebooks rendered by the service in a sandboxed frame (nothing in them runs), the
// changes since another version, and, for teachers, the grading form beside it with the
// previous and next student, all without reloading the page. Every read and change is a
// call to the service's REST API, but the first view: the service puts the answers it
// needs (the students list, the student's versions, the version's files) in the page
// (#review-first-view) and names its notebook in the frame's src. Data is only ever put
// into the page with textContent and attributes, never as HTML. The place (student,
// version, file, comparison) is kept in the address's query, so a reload or a shared link
// opens the same view.
"use strict";

(function () {
  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const CODE = body.dataset.code;
  const SLUG = body.dataset.slug;
  const TEACHES = body.dataset.teaches === "true";
  const ME = body.dataset.user;
  const ASSIGNMENT = JSON.parse(body.dataset.assignment || "{}");
  const BASE = `api/classes/${encodeURIComponent(CODE)}/assignments/${encodeURIComponent(SLUG)}`;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const encPath = (path) => path.split("/").map(enc).join("/");

  const {
    ApiError,
    apiClient,
    clearProblem,
    num,
    say,
    showProblem: problem,
    sizeText,
    withButton,
  } = window.classhub;
  const api = apiClient(PREFIX, "The grades service");
  const when = (iso) => window.classhub.when(iso, { dateStyle: "medium", timeStyle: "short" });

  // ----------------------------------------------------------------- text

  function timing(v) {
    if (!v.late) return "on time";
    return Number(v.penalty_percent) > 0 ? `late (${num(v.penalty_percent)}% penalty)` : "late";
  }

  // how a version was taken (as on the grades page)
  function takenBy(v) {
    if (v.kind === "deadline") return "taken at the due date by classhub";
    return v.collected_by ? `collected by ${v.collected_by}` : "";
  }

  const STATUS_WORDS = {
    on_time: "on time",
    late: "late",
    missing: "missing",
    not_handed_in_yet: "not handed in yet",
  };

  // why the version that counts counts (services/grades/standing.py)
  const WHY_WORDS = {
    chosen: "chosen by a teacher",
    last_on_time: "the last on time",
    first_late: "the first late one",
  };

  function gradeText(v) {
    const g = v.grade;
    if (!g) return "";
    let text = `${num(g.points)} / ${num(ASSIGNMENT.max_points)}`;
    if (v.late && Number(v.penalty_percent) > 0 && g.final_points !== null) {
      text += ` (${num(g.final_points)} after the late penalty)`;
    }
    return text;
  }

  // ----------------------------------------------------------------- the place (query)

  // the place: in the query (the service opens the page on it), or in the #fragment of
  // an older link
  function readPlace() {
    const params = new URLSearchParams(window.location.search);
    for (const [key, value] of new URLSearchParams(window.location.hash.slice(1))) {
      params.set(key, value);
    }
    return {
      user: params.get("user") || "",
      version: params.get("version") || "",
      file: params.get("file") || "",
      since: params.get("since") || "",
    };
  }

  function writePlace() {
    const params = new URLSearchParams();
    if (TEACHES && state.user) params.set("user", state.user);
    if (state.version) params.set("version", String(state.version.id));
    if (state.path) params.set("file", state.path);
    if (state.since) params.set("since", state.since);
    history.replaceState(null, "", `${window.location.pathname}?${params.toString()}`);
  }

  // ----------------------------------------------------------------- state

  const state = {
    students: [], // teachers: the submissions list's rows
    user: "",
    versions: [], // the student's versions, newest first (each says whether it counts)
    standing: null, // where the student stands (the version that counts, why, penalty)
    questions: [], // the assignment's questions (graded one by one when there are any)
    version: null, // the version shown (submission view)
    files: [], // its files
    baseFiles: null, // the files of the version compared with
    path: "",
    since: "", // id of the version compared with, "" for none
    seq: 0, // the latest navigation: answers for an older one are dropped
  };
  const filesCache = new Map(); // version id -> files answer (a version never changes)
  const versionsCache = new Map(); // teachers: user -> their versions answer

  function versionsOf(user) {
    if (!versionsCache.has(user)) {
      const answer = api("GET", `${BASE}/students/${enc(user)}/submissions`);
      versionsCache.set(user, answer);
      answer.catch(() => versionsCache.delete(user));
    }
    return versionsCache.get(user);
  }

  async function versionFiles(id) {
    const key = String(id);
    if (!filesCache.has(key)) {
      const answer = api("GET", `api/submissions/${enc(key)}/files`);
      filesCache.set(key, answer);
      answer.catch(() => filesCache.delete(key));
    }
    return filesCache.get(key);
  }

  function firstShown(files, wanted) {
    if (wanted && files.some((f) => f.path === wanted)) return wanted;
    const notebook = files.find((f) => f.view === "notebook");
    if (notebook) return notebook.path;
    const text = files.find((f) => f.view === "text");
    return text ? text.path : files.length ? files[0].path : "";
  }

  // ----------------------------------------------------------------- showing a version

  // The notebook's frame. The next and previous students' notebooks are loaded ahead in
  // frames of their own, kept out of sight; moving to one swaps it in (id "viewer" goes to
  // the frame in sight). Every frame is sandboxed and its page served with a CSP that runs
  // nothing. A frame's data-loaded is the address it last finished loading.
  const frames = $("viewer").parentElement;
  const KEEP_AHEAD = 2;

  function makeFrame(src) {
    const frame = document.createElement("iframe");
    frame.className = "review-frame";
    frame.setAttribute("sandbox", "");
    frame.referrerPolicy = "no-referrer";
    frame.title = $("viewer").title;
    watch(frame);
    frame.src = src;
    return frame;
  }

  function watch(frame) {
    frame.addEventListener("load", () => {
      frame.dataset.loaded = frame.src;
    });
    // the page's first frame may have loaded before this script ran
    const done = frame.src && performance.getEntriesByName(frame.src);
    if (done && done.some((e) => e.initiatorType === "iframe")) frame.dataset.loaded = frame.src;
  }
  watch($("viewer"));

  function framesAhead() {
    return Array.from(frames.querySelectorAll("iframe.review-frame.ahead"));
  }

  function showSrc(src) {
    const current = $("viewer");
    const absolute = new URL(src, window.location.href).href;
    if (current.src === absolute) return;
    const ready = framesAhead().find((f) => f.src === absolute);
    if (!ready) {
      current.src = src;
      return;
    }
    current.removeAttribute("id");
    current.classList.add("ahead");
    ready.classList.remove("ahead");
    ready.id = "viewer";
    const ahead = framesAhead();
    for (const old of ahead.slice(0, Math.max(0, ahead.length - KEEP_AHEAD))) old.remove();
  }

  function loadAhead(src) {
    const absolute = new URL(src, window.location.href).href;
    if ($("viewer").src === absolute || framesAhead().some((f) => f.src === absolute)) return;
    const frame = makeFrame(src);
    frame.classList.add("ahead");
    frame.setAttribute("aria-hidden", "true");
    frame.tabIndex = -1;
    frames.append(frame);
    const ahead = framesAhead();
    for (const old of ahead.slice(0, Math.max(0, ahead.length - KEEP_AHEAD))) old.remove();
  }

  function showFrame() {
    const file = state.files.find((f) => f.path === state.path);
    const inBase = state.baseFiles && state.baseFiles.find((f) => f.path === state.path);
    const note = $("viewer-note");
    if (!state.path || (!file && !inBase)) {
      showSrc("about:blank");
      note.textContent = state.files.length ? "" : "This version holds no files.";
      return;
    }
    if (state.since) {
      const id = state.version.id;
      showSrc(
        `${PREFIX}api/submissions/${enc(id)}/diff/${enc(state.since)}/${encPath(state.path)}`,
      );
      const base = state.versions.find((v) => String(v.id) === state.since);
      note.textContent = `Changes to ${state.path} from version ${base ? base.version : "?"} to version ${state.version.version}.`;
    } else if (file && file.render_url) {
      showSrc(file.render_url);
      note.textContent = "";
    } else {
      showSrc("about:blank");
      note.textContent = `${state.path} cannot be shown here: download it from the list of files.`;
    }
  }

  function fileTabs() {
    const tabs = $("file-tabs");
    const shown = state.files.filter((f) => f.view);
    const items = shown.map((f) => {
      const li = document.createElement("li");
      li.className = "nav-item";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "nav-link" + (f.path === state.path ? " active" : "");
      button.dataset.path = f.path;
      button.textContent = f.path;
      button.setAttribute("role", "tab");
      button.setAttribute("aria-selected", f.path === state.path ? "true" : "false");
      li.append(button);
      return li;
    });
    tabs.replaceChildren(...items);
  }

  function changeText(file) {
    if (!state.baseFiles) return "";
    const before = state.baseFiles.find((f) => f.path === file.path);
    if (!before) return "added";
    return before.crc === file.crc && before.size === file.size ? "unchanged" : "changed";
  }

  function fileRows() {
    const tbody = $("files").tBodies[0];
    const template = $("file-row-template").content.firstElementChild;
    const rows = state.files.map((f) => {
      const tr = template.cloneNode(true);
      tr.dataset.key = f.path;
      tr.dataset.path = f.path;
      tr.querySelector('[data-field="path"]').textContent = f.path;
      tr.querySelector('[data-field="size"]').textContent = sizeText(f.size);
      tr.querySelector('[data-field="changed"]').textContent = changeText(f);
      const show = tr.querySelector('[data-action="show"]');
      show.hidden = !f.view;
      show.dataset.path = f.path;
      tr.querySelector('[data-action="download"]').href = f.download_url;
      if (f.path === state.path) tr.classList.add("table-active");
      return tr;
    });
    if (state.baseFiles) {
      for (const gone of state.baseFiles.filter(
        (b) => !state.files.some((f) => f.path === b.path),
      )) {
        const tr = template.cloneNode(true);
        tr.dataset.key = gone.path;
        tr.dataset.path = gone.path;
        tr.querySelector('[data-field="path"]').textContent = gone.path;
        tr.querySelector('[data-field="size"]').textContent = "";
        tr.querySelector('[data-field="changed"]').textContent = "removed";
        const show = tr.querySelector('[data-action="show"]');
        show.hidden = !gone.view;
        show.dataset.path = gone.path;
        tr.querySelector('[data-action="download"]').hidden = true;
        rows.push(tr);
      }
    }
    tbody.replaceChildren(...rows);
  }

  function versionOptions() {
    const select = $("version-select");
    select.replaceChildren(
      ...state.versions.map((v) => {
        const option = document.createElement("option");
        option.value = String(v.id);
        option.textContent =
          `${v.version} · ${when(v.submitted_at)} · ${timing(v)}` +
          (v.grade ? ` · ${gradeText(v)}` : "") +
          (v.counts ? " · counts" : "");
        return option;
      }),
    );
    if (state.version) select.value = String(state.version.id);
    const compare = $("compare-select");
    const others = state.versions.filter((v) => state.version && v.id !== state.version.id);
    const none = document.createElement("option");
    none.value = "";
    none.textContent = others.length ? "(none: show this version)" : "(no other version)";
    compare.replaceChildren(
      none,
      ...others.map((v) => {
        const option = document.createElement("option");
        option.value = String(v.id);
        option.textContent = `version ${v.version} · ${when(v.submitted_at)}`;
        return option;
      }),
    );
    compare.value = state.since;
    compare.disabled = !others.length;
  }

  function versionInfo(v) {
    if (!v) return "";
    return (
      `Handed in ${when(v.submitted_at)}` +
      (takenBy(v) ? ` (${takenBy(v)})` : "") +
      `, ${timing(v)}` +
      (v.counts ? ", the version that counts" : ", not the version that counts") +
      `; ${v.files} file${v.files === 1 ? "" : "s"}, ${sizeText(v.bytes)}.`
    );
  }

  function sidePanel() {
    const v = state.version;
    $("grading-version").textContent = v ? String(v.version) : "";
    $("grading-info").textContent = versionInfo(v);
    $("version-download").href = v
      ? `${PREFIX}api/submissions/${enc(v.id)}/download?redirect=1`
      : "#";
    if (TEACHES) fillGrading(v);
    else {
      const box = $("your-grade");
      box.hidden = !(v && v.grade);
      if (v && v.grade) {
        $("your-points").textContent = gradeText(v);
        $("your-feedback").textContent = v.grade.feedback || "No written feedback.";
      }
    }
  }

  function render() {
    versionOptions();
    fileTabs();
    fileRows();
    sidePanel();
    showFrame();
    writePlace();
  }

  // Show version ``id`` of the current student (its files; the file ``path`` if it has it).
  async function showVersion(id, path, since) {
    const seq = ++state.seq;
    const [answer, base] = await Promise.all([
      versionFiles(id),
      since ? versionFiles(since).catch(() => null) : Promise.resolve(null),
    ]);
    if (seq !== state.seq) return;
    // the freshest view of the version (a choice or a grade since its files were read)
    state.version = state.versions.find((v) => v.id === answer.submission.id) || answer.submission;
    state.files = answer.files;
    state.since = base ? String(since) : "";
    state.baseFiles = base ? base.files : null;
    state.path = firstShown(state.files.length ? state.files : state.baseFiles || [], path);
    clearProblem();
    render();
  }

  // ----------------------------------------------------------------- teachers: students

  const studentSelect = TEACHES ? $("student-select") : null;

  function listed() {
    const only = $("only-handed-in").checked;
    return state.students.filter((r) => !only || r.versions > 0 || r.user === state.user);
  }

  // the version that counts, as the submissions list computed it (services/grades/standing.py)
  function countingOf(row) {
    return row ? row.counting : null;
  }

  function studentOptions() {
    const rows = listed();
    studentSelect.replaceChildren(
      ...rows.map((r) => {
        const option = document.createElement("option");
        option.value = r.user;
        const counting = countingOf(r);
        const grade = counting && counting.grade ? ` · ${gradeText(counting)}` : "";
        option.textContent = `${r.user} · ${STATUS_WORDS[r.status] || r.status}${grade}`;
        return option;
      }),
    );
    studentSelect.value = state.user;
    const at = rows.findIndex((r) => r.user === state.user);
    $("student-position").textContent =
      at >= 0 ? `${at + 1} of ${rows.length}` : `${rows.length} students`;
    $("prev-student").disabled = at <= 0;
    $("next-student").disabled = at < 0 || at >= rows.length - 1;
  }

  async function showStudent(user, wanted) {
    const seq = ++state.seq;
    state.user = user;
    const row = state.students.find((r) => r.user === user);
    studentOptions();
    const counting = countingOf(row);
    // the versions and the counting version's files at once
    const versionsCall = versionsOf(user);
    if (counting) versionFiles(counting.id).catch(() => null);
    const data = await versionsCall;
    if (seq !== state.seq) return;
    takeAnswer(data);
    const pick =
      (wanted &&
        wanted.version &&
        state.versions.find((v) => String(v.id) === String(wanted.version))) ||
      state.versions.find((v) => v.counts) ||
      state.versions[0];
    if (!pick) {
      state.version = null;
      state.files = [];
      state.baseFiles = null;
      state.path = "";
      state.since = "";
      render();
      $("viewer-note").textContent = `${user} has handed in nothing for this assignment.`;
      return;
    }
    await showVersion(pick.id, wanted ? wanted.file : state.path, wanted ? wanted.since : "");
    afterViewerLoaded(warmNeighbours);
  }

  // Run ``then`` once the notebook in sight has loaded: the neighbours' notebooks, loaded
  // ahead in frames of their own, would otherwise compete with it for the CPU (three 5 MB
  // pages parsed at once made the first one take twice as long to appear).
  function afterViewerLoaded(then) {
    const viewer = $("viewer");
    if (!viewer.src || viewer.dataset.loaded === viewer.src) {
      then();
      return;
    }
    viewer.addEventListener("load", () => then(), { once: true });
  }

  function step(delta) {
    const rows = listed();
    const at = rows.findIndex((r) => r.user === state.user);
    const next = rows[at + delta];
    if (next) showStudent(next.user).catch(problem);
  }

  // Load the neighbours' versions, files and notebooks ahead (the notebooks in frames out
  // of sight), so moving to them shows them at once.
  function warmNeighbours() {
    const rows = listed();
    const at = rows.findIndex((r) => r.user === state.user);
    for (const row of [rows[at + 1], rows[at - 1]]) {
      const counting = countingOf(row);
      if (!counting) continue;
      versionsOf(row.user).catch(() => null);
      versionFiles(counting.id)
        .then((answer) => {
          if (state.since) return;
          const path = firstShown(answer.files, state.path);
          const file = answer.files.find((f) => f.path === path);
          if (file && file.render_url) loadAhead(file.render_url);
        })
        .catch(() => null);
    }
  }

  async function loadStudents(given) {
    const data = (given && given.students) || (await api("GET", `${BASE}/submissions`));
    state.students = data.students;
    state.questions = data.questions || [];
  }

  // The first view's answers, put in the page by the service (as the API gives them: the
  // students list for teachers, the student's versions, the shown version's files); they
  // go where the answers of those calls go, so the script makes none of them at first.
  function firstView() {
    const node = $("review-first-view");
    if (!node) return null;
    let first;
    try {
      first = JSON.parse(node.textContent);
    } catch {
      return null;
    }
    if (TEACHES && first.user && first.versions) {
      versionsCache.set(first.user, Promise.resolve(first.versions));
    }
    if (first.files) {
      filesCache.set(String(first.files.submission.id), Promise.resolve(first.files));
    }
    return first;
  }

  // a student's versions and standing (GET or PUT .../students/<user>/...): the page's
  // state, the cache, and the views of the versions kept with their files
  function takeAnswer(data) {
    state.versions = data.submissions;
    state.standing = data.standing || null;
    if (data.questions) state.questions = data.questions;
    if (TEACHES) versionsCache.set(state.user, Promise.resolve(data));
    for (const v of state.versions) {
      const cached = filesCache.get(String(v.id));
      if (cached) cached.then((answer) => (answer.submission = v)).catch(() => null);
      if (state.version && state.version.id === v.id) state.version = v;
    }
  }

  // ----------------------------------------------------------------- teachers: grading

  function fillGrading(v) {
    const grading = $("grading");
    $("grading-user").textContent = state.user;
    $("grade-max").textContent = num(ASSIGNMENT.max_points);
    $("grade-points").max = String(ASSIGNMENT.max_points || "");
    const g = v ? v.grade : null;
    grading.dataset.submission = v ? String(v.id) : "";
    grading.dataset.revision = String(g ? g.revision : 0);
    $("grade-points").value = g ? num(g.points) : "";
    $("grade-feedback").value = g ? g.feedback || "" : "";
    fillQuestions(v);
    fillCounting(v);
    gradeButtons(v);
    $("grade-status").textContent = !v
      ? ""
      : g
        ? `Graded by ${g.graded_by} on ${when(g.graded_at)}; ${g.returned_at ? `returned on ${when(g.returned_at)}` : "not returned yet"}.`
        : "Not graded yet.";
  }

  // Save for a version shown; Return for a grade not returned yet (after a button's work
  // too: withButton gives the button back enabled)
  function gradeButtons(v) {
    const g = v ? v.grade : null;
    $("grade-save").disabled = !v;
    $("grade-return").disabled = !(g && !g.returned_at);
  }

  // The assignment's questions, graded one by one (as on the grades page): the points are
  // their sum. The grade of the version shown, with its points per question.
  function fillQuestions(v) {
    const given = (v && v.grade && v.grade.questions) || {};
    // a grade given before there were questions keeps its points until questions are given
    window.gradesQuestions.fill(state.questions, given, Object.keys(given).length > 0);
  }

  // which version counts for this student and why; the version shown can be made to count
  function fillCounting(v) {
    const s = state.standing;
    const counting = state.versions.find((x) => x.counts);
    $("grading-counting").textContent = counting
      ? `Version ${counting.version} counts (${WHY_WORDS[s && s.why] || "the default rule"}).`
      : "Nothing counts yet.";
    $("count-this").hidden = !v || v.counts;
    $("count-default").hidden = !(s && s.why === "chosen");
  }

  async function choose(submissionId, button) {
    const user = state.user;
    let reason = "";
    if (submissionId !== null) {
      const v = state.versions.find((x) => x.id === submissionId);
      reason = window.prompt(
        `Make version ${v ? v.version : "?"} the one that counts for ${user}? Why (optional, kept in the audit log):`,
        "",
      );
      if (reason === null) return;
    }
    await withButton(button, async () => {
      const data = await api("PUT", `${BASE}/students/${enc(user)}/counts`, {
        submission_id: submissionId,
        reason,
      });
      if (state.user !== user) return;
      takeAnswer(data);
      const counting = state.versions.find((x) => x.counts) || null;
      for (const row of state.students) {
        if (row.user !== user) continue;
        row.counting = counting;
        row.standing = data.standing;
        if (counting) row.status = counting.late ? "late" : "on_time";
      }
      versionOptions();
      studentOptions();
      // the form keeps what is being typed: only what the choice changed
      $("grading-info").textContent = versionInfo(state.version);
      fillCounting(state.version);
      say(
        "success",
        submissionId === null
          ? `${user}: the default rule chooses the version that counts again.`
          : `${user}: version ${data.standing.counting_version} counts now.`,
      );
    });
  }

  function graded(submission) {
    // the version's new grade everywhere the page shows it
    state.version = submission;
    state.versions = state.versions.map((v) => (v.id === submission.id ? submission : v));
    versionsCache.set(
      state.user,
      Promise.resolve({
        standing: state.standing,
        questions: state.questions,
        submissions: state.versions,
      }),
    );
    const cached = filesCache.get(String(submission.id));
    if (cached) cached.then((answer) => (answer.submission = submission)).catch(() => null);
    for (const row of state.students) {
      if (row.latest && row.latest.id === submission.id) row.latest = submission;
      if (row.counting && row.counting.id === submission.id) row.counting = submission;
    }
    versionOptions();
    studentOptions();
    fillGrading(submission);
  }

  async function saveGrade() {
    const id = $("grading").dataset.submission;
    if (!id) return;
    const change = {
      feedback: $("grade-feedback").value,
      expected_revision: Number($("grading").dataset.revision || 0),
    };
    // per question when the assignment has questions (the service sums them)
    const perQuestion = $("grade-questions").querySelectorAll("input[data-question]");
    if (perQuestion.length) {
      change.questions = {};
      for (const input of perQuestion) {
        if (input.value.trim() === "") {
          say("danger", "Give the points of every question (0 is allowed).");
          return;
        }
        change.questions[input.dataset.question] = Number(input.value);
      }
    } else {
      const points = $("grade-points").value.trim();
      if (points === "") {
        say("danger", "Give the points first.");
        return;
      }
      change.points = Number(points);
    }
    const button = $("grade-save");
    if (button.disabled) return; // saving already: the buttons are set when that is done
    await withButton(button, async () => {
      try {
        const saved = await api("PUT", `api/submissions/${enc(id)}/grade`, change);
        graded(saved);
        say("success", `Saved the grade of ${saved.user}: ${num(saved.grade.points)} points.`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          $("grade-status").textContent = `${e.message} Open the student again to see it.`;
        }
        throw e;
      }
    });
    gradeButtons(state.version);
  }

  async function returnGrade() {
    const id = $("grading").dataset.submission;
    const button = $("grade-return");
    if (!id || button.disabled) return;
    await withButton(button, async () => {
      const returned = await api("POST", `api/submissions/${enc(id)}/return`);
      const { feedback_files_delivered: _, ...submission } = returned;
      graded(submission);
      say("success", `Returned the grade to ${returned.user}: they can see it now.`);
    });
    gradeButtons(state.version); // a returned grade is not returned again
  }

  // ----------------------------------------------------------------- events

  $("file-tabs").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-path]");
    if (!button) return;
    state.path = button.dataset.path;
    render();
  });
  $("files").addEventListener("click", (event) => {
    const button = event.target.closest('button[data-action="show"]');
    if (!button) return;
    state.path = button.dataset.path;
    render();
  });
  $("version-select").addEventListener("change", (event) => {
    showVersion(event.target.value, state.path, "").catch(problem);
  });
  $("compare-select").addEventListener("change", (event) => {
    showVersion(state.version.id, state.path, event.target.value).catch(problem);
  });

  if (TEACHES) {
    $("prev-student").addEventListener("click", () => step(-1));
    $("next-student").addEventListener("click", () => step(1));
    studentSelect.addEventListener("change", () => showStudent(studentSelect.value).catch(problem));
    $("only-handed-in").addEventListener("change", studentOptions);
    $("grade-form").addEventListener("submit", (event) => {
      event.preventDefault();
      saveGrade();
    });
    $("grade-form").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        saveGrade();
      }
    });
    $("grade-return").addEventListener("click", returnGrade);
    $("count-this").addEventListener("click", (event) => {
      if (state.version) choose(state.version.id, event.currentTarget);
    });
    $("count-default").addEventListener("click", (event) => choose(null, event.currentTarget));
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "j") step(1);
      else if (event.key === "k") step(-1);
      else if (event.key === "g") {
        event.preventDefault();
        const first = $("grade-questions").querySelector("input[data-question]");
        (first || $("grade-points")).focus();
      } else return;
    });
  }

  // ----------------------------------------------------------------- start

  async function start() {
    const place = readPlace();
    const given = firstView();
    if (TEACHES) {
      if (place.user && !(given && given.user === place.user)) {
        versionsOf(place.user).catch(() => null); // meanwhile
      }
      await loadStudents(given);
      if (!state.students.length) {
        $("review-empty").textContent = "This class has no students yet.";
        $("review-empty").hidden = false;
        return;
      }
      const first =
        state.students.find((r) => r.user === place.user) ||
        state.students.find((r) => r.versions > 0) ||
        state.students[0];
      await showStudent(first.user, place);
    } else {
      state.user = ME;
      const data =
        given && given.user === ME && given.versions
          ? given.versions
          : await api("GET", `${BASE}/students/${enc(ME)}/submissions`);
      takeAnswer(data);
      if (!state.versions.length) {
        $("review-empty").textContent = "You have handed in nothing for this assignment yet.";
        $("review-empty").hidden = false;
        render();
        return;
      }
      const pick =
        state.versions.find((v) => String(v.id) === place.version) ||
        state.versions.find((v) => v.counts) ||
        state.versions[0];
      await showVersion(pick.id, place.file, place.since);
    }
  }

  start().catch(problem);
})();
