"use strict";
// The board's index: sorting of each suite's table, the suite and family filters, the search by model
// name, and the charts' highlighting of what is shown. Hand-written, no libraries: the page works
// offline from file://. The page's Content-Security-Policy admits this script by its hash only.
(function () {
  var suiteFilter = document.getElementById("suite-filter");
  var familyFilter = document.getElementById("family-filter");
  var search = document.getElementById("search");
  var count = document.getElementById("row-count");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.suite"));
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.board"));
  var series = Array.prototype.slice.call(document.querySelectorAll("g.s[data-r]"));
  var rows = [];  // every record's row: its key in the charts, family and lower-case model name
  var order = {};  // the built order of the rows: ties sort by it

  tables.forEach(function (table) {
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row, index) {
      var r = row.getAttribute("data-r");
      order[r] = index;
      rows.push({row: row, r: r, family: row.getAttribute("data-family"), model: key(row, 1).toLowerCase()});
    });
    sortable(table);
  });

  // A cell's sort key: its data-sort where the shown text is rounded or a dash ("" = not measured), else its text.
  function key(row, column) {
    var cell = row.cells[column];
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
  }

  function sortable(table) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var state = {column: -1, descending: false};
    headers.forEach(function (header, column) {
      if (header.getAttribute("aria-sort")) {
        state = {column: column, descending: header.getAttribute("aria-sort") === "descending"};
      }
      header.querySelector("button").addEventListener("click", function () {
        var descending = state.column === column ? !state.descending
                                                 : header.getAttribute("data-first") === "descending";
        sortRows(table, column, header.getAttribute("data-type") === "number", descending);
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        state = {column: column, descending: descending};
      });
    });
  }

  function sortRows(table, column, numeric, descending) {
    var body = table.tBodies[0];
    // Read every key once: a comparator that asked the DOM would do it n log n times.
    var keyed = Array.prototype.map.call(body.rows, function (row) {
      var text = key(row, column);
      return {row: row, missing: text === "", key: numeric ? Number(text) : text.toLowerCase(), text: text,
              built: order[row.getAttribute("data-r")]};
    });
    keyed.sort(function (a, b) {
      if (a.missing || b.missing) {  // not measured: last in either direction
        return a.missing === b.missing ? a.built - b.built : (a.missing ? 1 : -1);
      }
      var result = a.key < b.key ? -1 : a.key > b.key ? 1 : (a.text < b.text ? -1 : a.text > b.text ? 1 : 0);
      if (result === 0) { return a.built - b.built; }
      return descending ? -result : result;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
  }

  function apply() {
    var suite = suiteFilter ? suiteFilter.value : "";
    var family = familyFilter.value;
    var query = search.value.trim().toLowerCase();
    var chosen = {}, shown = 0, total = 0;
    sections.forEach(function (section) {
      section.hidden = suite !== "" && section.getAttribute("data-suite") !== suite;
    });
    rows.forEach(function (item) {
      var inSuite = !item.row.closest("section").hidden;
      var keep = inSuite && (family === "" || item.family === family) && (query === "" || item.model.indexOf(query) >= 0);
      item.row.hidden = !keep;
      total += inSuite ? 1 : 0;
      shown += keep ? 1 : 0;
      if (keep) { chosen[item.r] = true; }
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.machine-facts tbody tr"), function (row) {
      row.hidden = !chosen[row.getAttribute("data-r")];
    });
    var focus = family !== "" || query !== "";
    Array.prototype.forEach.call(document.querySelectorAll(".plots"), function (plots) {
      plots.classList.toggle("focus", focus);
    });
    series.forEach(function (line) { line.classList.toggle("on", focus && chosen[line.getAttribute("data-r")] === true); });
    count.textContent = shown + " of " + total + " records";
  }

  if (suiteFilter) { suiteFilter.addEventListener("change", apply); }
  familyFilter.addEventListener("change", apply);
  search.addEventListener("input", apply);
  apply();
})();
