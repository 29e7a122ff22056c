// Autograding on the grades pages (services/grades/autogradeapi.py): the teacher's
// autograding box (tests, switches, "Grade all", progress), the student's automatic tests
// on each assignment card, and the result beside the notebook on the review page. Loaded
// after classhub.js, before the page's script; used as window.gradesAutograde. Data from
// the API only ever goes into the page as text.
"use strict";

(function () {
  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const { apiClient, errorText, field, num, say, withButton } = window.classhub;
  const api = apiClient(PREFIX, "The grades service");
  const POLL_MS = 3000;
  const STATES = {
    queued: "is waiting to be graded…",
    running: "is being graded…",
    failed: "could not be graded",
  };

  function code() {
    const parts = location.pathname.split("/classes/");
    return parts.length > 1 ? decodeURIComponent(parts[1].split("/")[0]) : "";
  }

  function testItem(t) {
    const li = document.createElement("li");
    const mark = t.status === "pass" ? "✓" : "✗";
    let text = `${mark} ${t.id}: ${num(t.score)} / ${num(t.points)}`;
    if (t.visibility !== "visible") text += ` (${t.visibility})`;
    if (t.status !== "pass") text += ` — ${t.status}${t.message ? `: ${t.message}` : ""}`;
    li.textContent = text;
    li.dataset.status = t.status;
    return li;
  }

  // a cell that did not finish cleanly: why the tests after it failed or did not run
  function cellItem(c) {
    const li = document.createElement("li");
    li.textContent = `${c.label} stopped: ${c.error || c.status}`;
    li.dataset.status = c.status;
    return li;
  }

  function cellList(list, cells) {
    list.replaceChildren(...cells.map(cellItem));
    list.hidden = cells.length === 0;
  }

  function resultText(answer) {
    if (!answer.state && !answer.result) return "Not graded automatically.";
    if (answer.state && answer.state !== "done") {
      return (
        `This version ${STATES[answer.state] || `is ${answer.state}`}` +
        (answer.reason ? ` (${answer.reason})` : "")
      );
    }
    const r = answer.result;
    let text = `${num(r.score)} of ${num(r.points)} points from the tests shown`;
    if (!r.complete && r.reason) text += `; ${r.reason}`;
    return text;
  }

  // ------------------------------------------------------------------ the student's card

  const watching = new Map(); // card -> submission id being polled
  const shownFor = new Map(); // card -> the newest and counting versions last chosen from

  // The newest version's tests (a Submit is graded at once when the teacher switched
  // that on); when the newest has none, those of the version that counts (which "Grade
  // all" grades).
  async function showStudent(card, id, fallback) {
    const box = field(card, "autograde-box");
    let answer;
    try {
      answer = await api("GET", `api/submissions/${enc(String(id))}/autograde`);
    } catch (e) {
      field(card, "autograde-state").textContent = errorText(e);
      return;
    }
    if (watching.get(card) !== id) return;
    if (fallback && !answer.state && !answer.result) {
      watching.set(card, fallback.id);
      field(card, "autograde-version").textContent = String(fallback.version);
      showStudent(card, fallback.id, null);
      return;
    }
    box.hidden = !answer.configured && !answer.state;
    field(card, "autograde-state").textContent = resultText(answer);
    field(card, "autograde-tests").replaceChildren(
      ...(answer.result ? answer.result.tests.map(testItem) : []),
    );
    cellList(field(card, "autograde-cells"), answer.result ? answer.result.cells : []);
    if (answer.state === "queued" || answer.state === "running") {
      setTimeout(() => {
        if (watching.get(card) === id) showStudent(card, id, null);
      }, POLL_MS);
    }
  }

  function student(card, versions) {
    if (!field(card, "autograde-box")) return;
    const newest = versions.reduce((a, b) => (a && a.version > b.version ? a : b), null);
    if (!newest) {
      field(card, "autograde-box").hidden = true;
      watching.delete(card);
      shownFor.delete(card);
      return;
    }
    const counting = versions.find((v) => v.counts);
    const fallback = counting && counting.id !== newest.id ? counting : null;
    const key = `${newest.id}:${fallback ? fallback.id : ""}`;
    if (shownFor.get(card) === key) return; // the same versions as last time
    shownFor.set(card, key);
    field(card, "autograde-version").textContent = String(newest.version);
    watching.set(card, newest.id);
    showStudent(card, newest.id, fallback);
  }

  // ------------------------------------------------------------------ the teacher's box

  let current = null; // the assignment shown
  let timer = null;

  function base() {
    return `api/classes/${enc(code())}/assignments/${enc(current.slug)}/autograde`;
  }

  function showConfig(data) {
    const config = data.config;
    const select = $("autograde-image");
    select.replaceChildren(
      ...data.images.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        return option;
      }),
    );
    select.value = config ? config.image : data.default_image;
    $("autograde-path").value = config ? config.notebook_path : "";
    $("autograde-on-submit").checked = Boolean(config && config.on_submit);
    $("autograde-show-hidden").checked = Boolean(config && config.show_hidden);
    $("autograde-run").disabled = !config;
    $("autograde-tests").textContent = config
      ? `${config.tests.length} tests: ` +
        config.tests.map((t) => `${t.id} (${num(t.points)}, ${t.visibility})`).join(", ")
      : "No tests yet.";
    const p = data.progress;
    $("autograde-progress").textContent = p.total
      ? `${p.queued} queued · ${p.running} running · ${p.done} done · ${p.failed} failed`
      : "";
    const failed = $("autograde-failed");
    failed.replaceChildren(
      ...data.failed.map((f) => {
        const li = document.createElement("li");
        li.textContent = `${f.user}, version ${f.version}: ${f.reason}`;
        return li;
      }),
    );
    failed.hidden = data.failed.length === 0;
    clearTimeout(timer);
    if (p.queued + p.running > 0) timer = setTimeout(load, POLL_MS);
  }

  async function load() {
    if (!current) return;
    const slug = current.slug;
    try {
      const data = await api("GET", base());
      if (current && current.slug === slug) showConfig(data);
    } catch (e) {
      $("autograde-progress").textContent = errorText(e);
    }
  }

  function teacher(a) {
    const box = $("autograde-box");
    if (!box) return;
    current = a || null;
    box.hidden = !a;
    box.dataset.slug = a ? a.slug : "";
    $("autograde-source").value = "";
    $("autograde-files").value = "";
    clearTimeout(timer);
    if (a) load();
  }

  async function save() {
    const payload = {
      notebook_path: $("autograde-path").value.trim(),
      image: $("autograde-image").value,
      on_submit: $("autograde-on-submit").checked,
      show_hidden: $("autograde-show-hidden").checked,
    };
    const file = $("autograde-source").files[0];
    if (file) {
      try {
        payload.source = JSON.parse(await file.text());
      } catch {
        say("danger", `${file.name} is not a notebook (it is not JSON).`);
        return;
      }
    }
    const files = Array.from($("autograde-files").files);
    if (files.length) {
      payload.test_files = await Promise.all(
        files.map(async (f) => ({
          name: f.name,
          source: await f.text(),
          points: Number($("autograde-files-points").value || 0),
          visibility: $("autograde-files-visibility").value,
        })),
      );
    }
    showConfig(await api("PUT", base(), payload));
    say("success", "Autograding saved.");
  }

  async function run() {
    const data = await api("POST", `${base()}/run`, {});
    showConfig(data);
    say(
      "success",
      `${data.queued} of ${data.versions} counting versions queued for grading` +
        " (versions already graded with these tests are not graded again).",
    );
  }

  // ------------------------------------------------------------------ the review page

  async function showReview(id) {
    const box = $("autograde-result");
    let answer;
    try {
      answer = await api("GET", `api/submissions/${enc(String(id))}/autograde`);
    } catch (e) {
      box.hidden = false;
      $("autograde-result-state").textContent = errorText(e);
      return;
    }
    if ($("grading").dataset.submission !== String(id)) return;
    box.hidden = !answer.configured && !answer.state;
    $("autograde-result-state").textContent = resultText(answer);
    const r = answer.result;
    $("autograde-result-tests").replaceChildren(...(r ? r.tests.map(testItem) : []));
    cellList($("autograde-result-cells"), r ? r.cells : []);
    const flags = [
      ...(r ? r.flags : []),
      ...(r ? r.cell_flags.map((f) => `${f.grade_id}: ${f.message}`) : []),
    ];
    const list = $("autograde-result-flags");
    list.replaceChildren(
      ...flags.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }),
    );
    list.hidden = flags.length === 0;
    if (answer.state === "queued" || answer.state === "running") {
      setTimeout(() => {
        if ($("grading").dataset.submission === String(id)) showReview(id);
      }, POLL_MS);
    }
  }

  function init() {
    const saveButton = $("autograde-save");
    if (saveButton) {
      saveButton.addEventListener("click", () => withButton(saveButton, save));
      const runButton = $("autograde-run");
      runButton.addEventListener("click", () => withButton(runButton, run));
    }
    const grading = $("grading");
    if (grading && $("autograde-result")) {
      new MutationObserver(() => {
        if (grading.dataset.submission) showReview(grading.dataset.submission);
      }).observe(grading, { attributes: true, attributeFilter: ["data-submission"] });
    }
  }

  init();
  window.gradesAutograde = Object.freeze({ student, teacher });
})();
