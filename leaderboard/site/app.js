// w2sbench leaderboard: sortable tables. Rows carry numeric sort keys in data-sort; an empty key
// (undefined PGR) always sorts last. The baseline rows stay at the bottom. No dependencies.
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
})();
