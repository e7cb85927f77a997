// w2sbench leaderboard: settings as tabs, the per-task columns behind a toggle, sortable tables, and the JSON
// download made from the embedded copy (works from file://). Rows carry numeric sort keys in data-sort; an
// empty key (undefined PGR) always sorts last. The baseline rows stay at the bottom. No dependencies.
(function () {
  "use strict";
  function key(row, col) {
    var cell = row.cells[col];
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null || raw === "") return null;
    var num = Number(raw);
    return isNaN(num) ? raw.toLowerCase() : num;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("baseline"); });
    var fixed = Array.prototype.slice.call(body.rows).filter(function (r) { return r.classList.contains("baseline"); });
    var desc = !th.classList.contains("sorted-desc");
    if (th.classList.contains("sorted-asc") === false && th.classList.contains("sorted-desc") === false) {
      desc = th.getAttribute("data-default") !== "asc";
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.classList.remove("sorted-asc", "sorted-desc"); });
    th.classList.add(desc ? "sorted-desc" : "sorted-asc");
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      if (x < y) return desc ? 1 : -1;
      if (x > y) return desc ? -1 : 1;
      return 0;
    });
    rows.concat(fixed).forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.leaderboard").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      if (!th.classList.contains("sortable")) return;
      th.setAttribute("tabindex", "0");
      th.addEventListener("click", function () { sortTable(table, col, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortTable(table, col, th); });
    });
  });

  // the per-task columns and the official weak / ceiling rows
  document.querySelectorAll("button.toggle-tasks").forEach(function (button) {
    button.addEventListener("click", function () {
      var table = document.getElementById(button.getAttribute("data-table"));
      var on = table.classList.toggle("show-tasks");
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Hide per-task PGR" : "Show per-task PGR and the official weak and ceiling accuracies";
    });
  });

  // settings as tabs: one section at a time (all of them without JavaScript)
  var tabs = document.querySelectorAll(".tabs .tab");
  var sections = document.querySelectorAll("section.setting");
  function show(name) {
    var found = false;
    sections.forEach(function (s) {
      var on = s.id === "setting-" + name;
      found = found || on;
      s.classList.toggle("active", on);
    });
    tabs.forEach(function (t) { t.classList.toggle("active", t.getAttribute("data-setting") === name); });
    return found;
  }
  if (tabs.length > 1) {
    document.body.classList.add("js");
    tabs.forEach(function (t) {
      t.addEventListener("click", function (e) {
        e.preventDefault();
        show(t.getAttribute("data-setting"));
        if (history.replaceState) history.replaceState(null, "", "#setting-" + t.getAttribute("data-setting"));
      });
    });
    var wanted = (location.hash || "").replace(/^#setting-/, "");
    if (!wanted || !show(wanted)) show(tabs[0].getAttribute("data-setting"));
  }

  // the JSON download from the copy embedded in this page
  var link = document.getElementById("download-json");
  var data = document.getElementById("leaderboard-data");
  if (link && data && window.Blob && window.URL && URL.createObjectURL) {
    var blob = new Blob([data.textContent], { type: "application/json" });
    link.href = URL.createObjectURL(blob);
  }
})();
