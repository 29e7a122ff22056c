// The grading form's questions, shared by the grades page (grades.js) and the review page
// (review.js): one number input per question in #grade-questions, whose sum is the
// points (#grade-points, read-only while there are questions). Loaded after classhub.js,
// before the page's script; used as window.gradesQuestions.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const { num } = window.classhub;

  // the points: the sum of the questions' points
  function sum() {
    let total = 0;
    for (const input of $("grade-questions").querySelectorAll("input[data-question]")) {
      total += Number(input.value || 0);
    }
    $("grade-points").value = String(Math.round(total * 100) / 100);
  }

  // The rows of the questions list ([{key, label, points}]) with the points given
  // ({key: {points}}); sumNow: set the points to their sum now (else they stay as they
  // are until a question's points change).
  function fill(list, given, sumNow) {
    const box = $("grade-questions");
    box.hidden = list.length === 0;
    $("grade-points").readOnly = list.length > 0;
    $("grade-points-derived").hidden = list.length === 0;
    const items = list.map((q) => {
      const tr = document.createElement("tr");
      tr.dataset.question = q.key;
      const label = document.createElement("td");
      label.textContent = `${q.label} (of ${num(q.points)})`;
      const cell = document.createElement("td");
      const input = document.createElement("input");
      input.type = "number";
      input.min = "0";
      input.max = String(q.points);
      input.step = "0.01";
      input.className = "form-control form-control-sm";
      input.dataset.question = q.key;
      input.setAttribute("aria-label", q.label);
      input.value = given[q.key] ? num(given[q.key].points) : "";
      input.addEventListener("input", sum);
      cell.append(input);
      tr.append(label, cell);
      return tr;
    });
    box.querySelector("tbody").replaceChildren(...items);
    if (sumNow) sum();
  }

  window.gradesQuestions = Object.freeze({ fill, sum });
})();
