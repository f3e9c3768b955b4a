"use strict";
// Sorting and the family filter of the board's table. Hand-written, no libraries: the page works
// offline from file://. The page's Content-Security-Policy admits this script by its hash only.
(function () {
  var table = document.getElementById("board");
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filter = document.getElementById("family-filter");
  var count = document.getElementById("row-count");
  var state = {column: -1, descending: false};

  headers.forEach(function (header, column) {
    if (header.getAttribute("aria-sort")) {
      state = {column: column, descending: header.getAttribute("aria-sort") === "descending"};
    }
    header.querySelector("button").addEventListener("click", function () { sortBy(column); });
  });

  function key(row, column) { return row.cells[column].getAttribute("data-sort"); }
  function rank(row) { return Number(row.getAttribute("data-rank")); }
  function order(x, y) { return x < y ? -1 : x > y ? 1 : 0; }

  function compare(column, numeric, descending) {
    return function (a, b) {
      var x = key(a, column), y = key(b, column);
      if (x === "" || y === "") {  // not measured: last in either direction
        return x === y ? rank(a) - rank(b) : (x === "" ? 1 : -1);
      }
      var result = numeric ? Number(x) - Number(y) : order(x.toLowerCase(), y.toLowerCase()) || order(x, y);
      if (result === 0) { return rank(a) - rank(b); }
      return descending ? -result : result;
    };
  }

  function sortBy(column) {
    var header = headers[column];
    var descending = state.column === column ? !state.descending : header.getAttribute("data-first") === "descending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(compare(column, header.getAttribute("data-type") === "number", descending));
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    state = {column: column, descending: descending};
  }

  function applyFilter() {
    var family = filter.value, shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var keep = family === "" || row.getAttribute("data-family") === family;
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    });
    count.textContent = shown + " of " + body.rows.length + " records";
  }

  filter.addEventListener("change", applyFilter);
  applyFilter();
})();
