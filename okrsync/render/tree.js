/* okrsync tree view: lazy, collapsible, searchable. Text goes in via textContent only. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("okrsync-data").textContent);
  var nodes = data.nodes;
  var children = data.children;
  var parent = data.parent;
  var MAX_MATCHES = 1000;
  var MAX_PROBLEMS = 500;
  var MAX_CHIPS = 12;
  var topEls = {};      // node index -> top-level <li> (roots and problem roots)
  var marked = [];      // rows currently highlighted
  var matches = [];     // revealed <li> of the current search, in order
  var cursor = -1;
  var haystack = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null && text !== "") e.textContent = String(text);
    return e;
  }

  function kids(i) { return children[i] || []; }

  function makeNode(i) {
    var n = nodes[i];
    var li = el("li", "node kind-" + n[0]);
    li.dataset.i = String(i);
    var row = el("div", "row");
    var k = kids(i);
    var tog = el("button", "toggle", k.length ? "\u25b8" : "\u00b7");
    tog.type = "button";
    if (!k.length) tog.disabled = true; else tog.setAttribute("aria-expanded", "false");
    row.appendChild(tog);
    row.appendChild(el("span", "main", n[1]));
    if (n[2]) row.appendChild(el("span", "sub", n[2]));
    if (n[5]) row.appendChild(el("span", "detail", n[5]));
    if (n[3]) row.appendChild(el("span", "meta", n[3]));
    var badges = n[4] || [];
    for (var b = 0; b < badges.length; b++) {
      row.appendChild(el("span", "badge badge-" + badges[b][0], badges[b][1]));
    }
    li.appendChild(row);
    return li;
  }

  function childList(li) {
    var ul = li.lastChild;
    return ul && ul.tagName === "UL" ? ul : null;
  }

  function expand(li) {
    var i = +li.dataset.i;
    var k = kids(i);
    if (!k.length) return;
    var ul = childList(li);
    if (!ul) {
      ul = el("ul", "children");
      ul.byIndex = {};
      var frag = document.createDocumentFragment();
      for (var c = 0; c < k.length; c++) {
        var child = makeNode(k[c]);
        if (!(k[c] in ul.byIndex)) ul.byIndex[k[c]] = child;
        frag.appendChild(child);
      }
      ul.appendChild(frag);
      li.appendChild(ul);
    }
    ul.hidden = false;
    li.classList.add("open");
    var tog = li.firstChild.firstChild;
    tog.textContent = "\u25be";
    tog.setAttribute("aria-expanded", "true");
  }

  function collapse(li) {
    var ul = childList(li);
    if (ul) ul.hidden = true;
    li.classList.remove("open");
    var tog = li.firstChild.firstChild;
    if (!tog.disabled) { tog.textContent = "\u25b8"; tog.setAttribute("aria-expanded", "false"); }
  }

  function expandTo(li, depth) {
    if (depth <= 0) return;
    expand(li);
    var ul = childList(li);
    if (!ul || depth === 1) return;
    for (var c = ul.firstChild; c; c = c.nextSibling) expandTo(c, depth - 1);
  }

  function fillTop(ul, list) {
    var frag = document.createDocumentFragment();
    for (var r = 0; r < list.length; r++) {
      var li = makeNode(list[r]);
      if (!(list[r] in topEls)) topEls[list[r]] = li;
      frag.appendChild(li);
    }
    ul.appendChild(frag);
  }

  /* Walk up `parent` to a top-level entry, then open the path down to node i. */
  function reveal(i) {
    var path = [];
    var seen = {};
    var j = i;
    while (j >= 0 && !seen[j]) {
      seen[j] = true;
      path.push(j);
      if (j in topEls) break;
      j = parent[j];
    }
    var top = path[path.length - 1];
    if (!(top in topEls)) return null;
    var li = topEls[top];
    for (var p = path.length - 2; p >= 0; p--) {
      expand(li);
      var ul = childList(li);
      var next = ul && ul.byIndex[path[p]];
      if (!next) return null;
      li = next;
    }
    return li;
  }

  function clearMarks() {
    for (var m = 0; m < marked.length; m++) marked[m].classList.remove("match");
    marked = [];
    matches = [];
    cursor = -1;
  }

  function search(raw) {
    clearMarks();
    var q = (raw || "").trim().toLowerCase();
    var count = document.getElementById("match-count");
    if (!q) { count.textContent = ""; return; }
    if (!haystack) {
      haystack = nodes.map(function (n) { return (n[1] + "\u0000" + n[2] + "\u0000" + n[5]).toLowerCase(); });
    }
    var found = [];
    for (var i = 0; i < haystack.length; i++) if (haystack[i].indexOf(q) !== -1) found.push(i);
    var shown = found.slice(0, MAX_MATCHES);
    for (var s = 0; s < shown.length; s++) {
      var li = reveal(shown[s]);
      if (!li) continue;
      li.firstChild.classList.add("match");
      marked.push(li.firstChild);
      matches.push(li);
    }
    var text = found.length + (found.length === 1 ? " match" : " matches");
    if (found.length > shown.length) text += " (first " + shown.length + " shown)";
    count.textContent = text;
    if (matches.length) { cursor = 0; matches[0].scrollIntoView({ block: "center" }); }
  }

  function nextMatch() {
    if (!matches.length) return;
    cursor = (cursor + 1) % matches.length;
    matches[cursor].scrollIntoView({ block: "center" });
    flash(matches[cursor]);
  }

  function flash(li) {
    var row = li.firstChild;
    row.classList.add("flash");
    setTimeout(function () { row.classList.remove("flash"); }, 1200);
  }

  function renderProblems() {
    var list = document.getElementById("problem-list");
    var problems = data.problems;
    document.getElementById("problem-count").textContent = "(" + problems.length + ")";
    if (!problems.length) { list.appendChild(el("li", "more none", "No problems found.")); return; }
    var frag = document.createDocumentFragment();
    for (var p = 0; p < Math.min(problems.length, MAX_PROBLEMS); p++) {
      var pr = problems[p];
      var li = el("li", "problem");
      li.appendChild(el("span", "badge badge-" + pr.code, pr.label));
      li.appendChild(el("span", "msg", pr.message));
      if (pr.resolution) li.appendChild(el("span", "fix", pr.resolution));
      for (var c = 0; c < Math.min(pr.nodes.length, MAX_CHIPS); c++) {
        var chip = el("button", "chip", nodes[pr.nodes[c]][1]);
        chip.type = "button";
        chip.dataset.i = String(pr.nodes[c]);
        li.appendChild(chip);
      }
      if (pr.nodes.length > MAX_CHIPS) li.appendChild(el("span", "more", " +" + (pr.nodes.length - MAX_CHIPS) + " more"));
      frag.appendChild(li);
    }
    if (problems.length > MAX_PROBLEMS) frag.appendChild(el("li", "more", (problems.length - MAX_PROBLEMS) + " more problems not listed"));
    list.appendChild(frag);
  }

  function onTreeClick(ev) {
    var t = ev.target;
    if (!(t instanceof Element)) return;
    var row = t.closest(".row");
    if (!row) return;
    var li = row.parentNode;
    if (li.classList.contains("open")) collapse(li); else expand(li);
  }

  function queryFromUrl() {
    var h = location.hash.replace(/^#/, "");
    var q = new URLSearchParams(h).get("q");
    if (q === null) q = new URLSearchParams(location.search).get("q");
    return q;
  }

  function init() {
    document.getElementById("summary").textContent = data.summary;
    var header = document.querySelector("header");
    document.documentElement.style.setProperty("--header-h", header.offsetHeight + "px");
    var input = document.getElementById("search");
    input.placeholder = data.searchPlaceholder;
    var tree = document.getElementById("tree");
    fillTop(tree, data.roots);
    for (var c = tree.firstChild; c; c = c.nextSibling) expandTo(c, data.expandDepth);
    if (data.problemRoots.length) {
      var sec = document.getElementById("problem-tree-section");
      sec.hidden = false;
      document.getElementById("problem-tree-title").textContent = data.problemRootsTitle;
      document.getElementById("problem-tree-note").textContent = data.problemRootsNote;
      var ptree = document.getElementById("problem-tree");
      fillTop(ptree, data.problemRoots);
      for (var pc = ptree.firstChild; pc; pc = pc.nextSibling) expandTo(pc, 3);
    }
    tree.addEventListener("click", onTreeClick);
    document.getElementById("problem-tree").addEventListener("click", onTreeClick);
    renderProblems();
    document.getElementById("problem-list").addEventListener("click", function (ev) {
      var t = ev.target;
      if (!(t instanceof Element) || !t.classList.contains("chip")) return;
      var li = reveal(+t.dataset.i);
      if (li) { li.scrollIntoView({ block: "center" }); flash(li); }
    });
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        search(input.value);
        history.replaceState(null, "", input.value ? "#q=" + encodeURIComponent(input.value) : location.pathname + location.search);
      }, 150);
    });
    input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); nextMatch(); } });
    document.getElementById("expand-all").addEventListener("click", function () {
      for (var c = tree.firstChild; c; c = c.nextSibling) expandTo(c, 3);
    });
    document.getElementById("collapse-all").addEventListener("click", function () {
      clearMarks();
      document.getElementById("match-count").textContent = "";
      var open = document.querySelectorAll("li.open");
      for (var o = 0; o < open.length; o++) collapse(open[o]);
    });
    var q = queryFromUrl();
    if (q) { input.value = q; search(q); }
  }

  init();
})();
