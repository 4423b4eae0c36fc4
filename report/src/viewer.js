// The trajectory viewer: filters over the embedded sample, rows rendered on demand.
(function () {
  "use strict";
  var rows = JSON.parse(document.getElementById("rows").textContent);
  var PAGE = 50;
  var limit = PAGE;
  var filters = {
    source: document.getElementById("f-source"),
    kind: document.getElementById("f-kind"),
    verdict: document.getElementById("f-verdict"),
    finish: document.getElementById("f-finish")
  };
  var problem = document.getElementById("f-problem");
  var list = document.getElementById("list");
  var more = document.getElementById("more");
  var shown = document.getElementById("shown");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  Object.keys(filters).forEach(function (key) {
    var values = {};
    rows.forEach(function (r) { values[r[key]] = (values[r[key]] || 0) + 1; });
    var all = el("option", null, "all (" + rows.length + ")");
    all.value = "";
    filters[key].appendChild(all);
    Object.keys(values).sort().forEach(function (v) {
      var o = el("option", null, v + " (" + values[v] + ")");
      o.value = v;
      filters[key].appendChild(o);
    });
    filters[key].addEventListener("change", function () { limit = PAGE; render(); });
  });
  problem.addEventListener("input", function () { limit = PAGE; render(); });
  more.addEventListener("click", function () { limit += PAGE; render(); });
  // Links from the "never solved" table filter the viewer to that problem.
  document.querySelectorAll("a[data-problem]").forEach(function (a) {
    a.addEventListener("click", function () {
      problem.value = a.getAttribute("data-problem");
      Object.keys(filters).forEach(function (k) { filters[k].value = ""; });
      limit = PAGE;
      render();
    });
  });

  function matches(r) {
    for (var key in filters) {
      if (filters[key].value !== "" && String(r[key]) !== filters[key].value) return false;
    }
    var p = problem.value.trim();
    return p === "" || r.problem.indexOf(p) !== -1;
  }

  function body(r) {
    var b = el("div", "body");
    var side = el("div", "side");
    side.appendChild(el("div", null, "user turn:"));
    side.appendChild(el("pre", null, r.user));
    b.appendChild(side);
    r.segments.forEach(function (s) {
      var head = s.kind + " · " + s.tokens + " tokens";
      if (s.hint) head += " · " + s.hint;
      if (s.hidden) head += " · " + s.hidden + " characters cut";
      b.appendChild(el("div", "seg-head", head));
      b.appendChild(el("pre", "seg seg-" + s.kind, s.text));
      if (s.tool) {
        var t = s.tool;
        var line = "ran (" + t.name + "): " + t.outcome + " · exit " +
          (t.exit === null ? "none" : t.exit) + " · " + t.ms + " ms" +
          (t.truncated ? " · output truncated" : "") +
          (t.error ? " · sandbox: " + t.error : "") +
          (t.figures_hidden ? " · " + t.figures_hidden + " figures not shown" : "");
        b.appendChild(el("div", "tool" + (t.outcome === "ok" ? "" : " failed"), line));
        if (t.figure) {
          var img = el("img", "figure");
          img.src = t.figure;
          img.alt = "a figure the block drew";
          b.appendChild(img);
        }
      }
    });
    var verdict = el("div", "side");
    verdict.appendChild(el("span", "badge " + r.verdict, r.verdict));
    verdict.appendChild(document.createTextNode(
      " answer: " + (r.answer === null ? "none extracted" : r.answer) +
      (r.score === null ? "" : " · score " + r.score) +
      (r.finish_detail ? " · " + r.finish_detail : "")));
    b.appendChild(verdict);
    if (r.grading) {
      var g = el("div", "side");
      g.appendChild(el("div", null, "grader detail:"));
      var text = r.grading;
      try { text = JSON.stringify(JSON.parse(r.grading), null, 1); } catch (e) { /* cut JSON */ }
      g.appendChild(el("pre", null, text));
      b.appendChild(g);
    }
    return b;
  }

  function card(r, open) {
    var d = el("details", "row");
    d.setAttribute("data-source", r.source);
    d.setAttribute("data-kind", r.kind);
    d.setAttribute("data-verdict", r.verdict);
    d.setAttribute("data-finish", r.finish);
    d.setAttribute("data-problem", r.problem);
    var tools = r.segments.filter(function (x) { return x.tool; }).length;
    d.setAttribute("data-tools", String(tools));
    var s = el("summary");
    s.appendChild(el("span", "badge " + r.verdict, r.verdict));
    s.appendChild(document.createTextNode(
      r.problem + " #" + r.sample + " · " + r.source + " · " + r.kind + " · " + r.mode +
      " · " + r.finish + " · " + r.completion_tokens + " tokens · " + tools + " tool calls · " +
      r.wall_s + " s"));
    d.appendChild(s);
    var built = false;
    d.addEventListener("toggle", function () {
      if (d.open && !built) { d.appendChild(body(r)); built = true; }
    });
    if (open) d.open = true;
    return d;
  }

  function render() {
    var hits = rows.filter(matches);
    list.textContent = "";
    hits.slice(0, limit).forEach(function (r, i) { list.appendChild(card(r, i === 0)); });
    shown.textContent = hits.length + " of " + rows.length + " sampled trajectories";
    more.hidden = hits.length <= limit;
  }
  render();
})();
