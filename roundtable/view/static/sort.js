// Sort a table by a column when its header is clicked; the table reads fine without this.
"use strict";
(function () {
  function key(text) {
    const n = Number(text);
    return text.trim() !== "" && !Number.isNaN(n) ? n : text.toLowerCase();
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;  // numbers before text
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = Array.from(table.tHead.rows[0].cells);
    heads.forEach(function (th, col) {
      th.setAttribute("aria-sort", "none");
      th.tabIndex = 0;
      th.title = "sort by " + th.textContent;
      function sort() {
        const down = th.getAttribute("aria-sort") === "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const r = compare(key(a.cells[col].textContent), key(b.cells[col].textContent));
          return down ? -r : r;
        });
        for (const row of rows) body.appendChild(row);
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }
})();
