// bookmix dashboard: renders the embedded payload (see bookmix/report/data.py) into the page's sections.
// Plain browser JavaScript, no build step. In live mode (`bookmix serve`) it polls the JSON endpoint and re-renders
// when the campaign's results change, keeping the recipe and curves the user picked.
"use strict";

const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
const COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#a61e4d", "#5c940d",
                "#d9480f", "#1864ab"];
const TOP_CURVES = 5;        // recipes whose trials are drawn in the curves section before the user picks any
const BOARD_CHART_ROWS = 25; // recipes in the leaderboard chart (the table lists them all)

const state = { data: null, selectedRecipe: null, curveTrials: null, token: null };

// ---- small helpers ------------------------------------------------------------------------------------------------
function esc(s) {
  return String(s === null || s === undefined ? "" : s)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
function fmt(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return esc(x);
  if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3)) return x.toExponential(digits - 1);
  return Number(x.toPrecision(digits)).toString();
}
function fmtInt(x) { return x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"); }
function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}
function fmtBytes(b) {
  if (b === null || b === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(b < 10 && i ? 1 : 0)} ${units[i]}`;
}
function el(id) { return document.getElementById(id); }
function body(section) { return document.querySelector(`#${section} .body`); }
function table(headers, rows, opts = {}) {
  const th = headers.map(h => `<th class="${h.num ? "num" : ""}">${esc(h.label)}</th>`).join("");
  const trs = rows.map(r => `<tr${r.attrs || ""}>${r.cells.map((c, i) =>
    `<td class="${headers[i].num ? "num" : ""}">${c}</td>`).join("")}</tr>`).join("");
  const t = `<table${opts.id ? ` id="${opts.id}"` : ""}><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
  return opts.scroll ? `<div class="scroll">${t}</div>` : t;
}
function empty(text) { return `<div class="empty">${esc(text)}</div>`; }
function title(bookId) {
  return state.titleById.get(bookId) || bookId;
}
function bookIds(indices) { return indices.map(i => state.data.book_ids[i]); }
function plot(id, traces, layout) {
  const base = { margin: { l: 60, r: 20, t: 30, b: 50 }, font: { size: 12 }, paper_bgcolor: "#fff",
                 plot_bgcolor: "#fff", hovermode: "closest" };
  return Plotly.newPlot(id, traces, Object.assign(base, layout), PLOT_CONFIG);
}
function objectiveLabel() {
  const o = state.data.campaign.objective;
  const sense = { maximize: "higher is better", minimize: "lower is better" }[o.direction] || "direction unknown";
  return `${o.label} (${sense})`;
}

// ---- overview -----------------------------------------------------------------------------------------------------
function renderOverview(d) {
  const o = d.overview, c = o.counts, rem = o.remaining, comp = o.compute;
  const failed = (c.failed || 0) + (c.diverged || 0);
  const cards = [
    ["good", c.completed || 0, "completed"], ["run", c.running || 0, "running"], ["", c.pending || 0, "pending"],
    [failed ? "bad" : "", failed, "failed / diverged"], ["", o.total, "trials planned"],
    ["", fmtDuration(comp.train_seconds + comp.eval_seconds), "compute used"],
    ["", fmt(comp.tokens, 3), "tokens trained"], ["", fmt(comp.flops, 3), "FLOPs"],
    ["run", rem.trials ? fmtDuration(rem.eta_seconds) : o.total ? "done" : "–", "time remaining"],
  ];
  let html = `<div class="cards">${cards.map(([cls, v, k]) =>
    `<div class="card ${cls}"><div class="v">${typeof v === "number" ? fmtInt(v) : esc(v)}</div>` +
    `<div class="k">${esc(k)}</div></div>`).join("")}</div>`;
  html += `<div class="muted">Remaining: ${fmtInt(rem.trials)} trial(s) × ${fmtDuration(rem.seconds_per_trial)} ` +
          `per trial ÷ ${rem.workers} worker(s) (${esc(rem.source || "no estimate yet")}). ` +
          `Stages done: ${esc(d.campaign.stages.join(", ") || "none")}.</div>`;
  html += d.notes.map(n => `<div class="note">${esc(n)}</div>`).join("");
  html += `<div class="grid2"><div id="chart-progress" class="chart"></div><div id="chart-states" class="chart"></div></div>`;
  body("overview").innerHTML = html;

  const done = d.trials.filter(t => t.state === "completed" && t.objective !== null && t.finished_at)
    .sort((a, b) => a.finished_at - b.finished_at);
  const max = d.campaign.objective.maximize;
  let best = null;
  const bestY = done.map(t => (best = best === null ? t.objective : (max ? Math.max(best, t.objective)
                                                                         : Math.min(best, t.objective))));
  const x = done.map(t => new Date(t.finished_at * 1000));
  const stages = [...new Set(done.map(t => t.stage))];
  const traces = stages.map((s, i) => {
    const ts = done.filter(t => t.stage === s);
    return { type: "scatter", mode: "markers", name: s, x: ts.map(t => new Date(t.finished_at * 1000)),
             y: ts.map(t => t.objective), text: ts.map(t => `trial ${t.id}<br>recipe ${t.recipe_id}`),
             marker: { size: 6, color: COLORS[i % COLORS.length], opacity: 0.7 } };
  });
  traces.push({ type: "scatter", mode: "lines", name: "best so far", x, y: bestY, line: { color: "#111", shape: "hv" } });
  const charts = [];
  if (done.length) {
    charts.push(plot("chart-progress", traces, { title: { text: "Objective of finished trials" },
      xaxis: { title: { text: "finished at" } }, yaxis: { title: { text: objectiveLabel() } } }));
  } else {
    el("chart-progress").outerHTML = empty("No trial has finished yet.");
  }
  const names = ["completed", "running", "pending", "failed", "diverged"];
  charts.push(plot("chart-states", [{ type: "bar", x: names, y: names.map(n => c[n] || 0),
    marker: { color: ["#2b8a3e", "#2f6fde", "#adb5bd", "#c92a2a", "#e8590c"] } }],
    { title: { text: "Trials by state" }, yaxis: { title: { text: "trials" } } }));
  return charts;
}

// ---- leaderboard --------------------------------------------------------------------------------------------------
function settingsText(r) {
  const parts = [`${r.n_books} books`, `order ${r.order}`, `keep ${fmt(r.keep, 3)} (${r.pattern})`,
                 `grain ${r.grain}`, `${r.epochs} epoch(s)`];
  if (r.phases) parts.push(`${r.phases.length} phases`);
  return parts.join(" · ");
}
function renderLeaderboard(d) {
  const board = d.leaderboard;
  if (!board.length) { body("leaderboard").innerHTML = empty("No recipe has been planned yet."); return []; }
  const rows = board.map(r => ({
    attrs: ` class="row${r.id === state.selectedRecipe ? " selected" : ""}" data-recipe="${esc(r.id)}"`,
    cells: [r.rank === null ? "–" : r.rank, `<code>${esc(r.id)}</code>`, fmt(r.mean), r.stderr === null ? "–" : `± ${fmt(r.stderr, 2)}`,
            `${r.n_completed}/${r.n_trials}`, esc(r.stages.join(", ")), r.n_books, esc(r.order),
            fmt(r.keep, 3), esc(r.grain), r.epochs, esc(r.design || "")],
  }));
  const headers = [{ label: "#", num: true }, { label: "recipe" }, { label: objectiveLabel(), num: true },
                   { label: "stderr", num: true }, { label: "trials done", num: true }, { label: "stage" },
                   { label: "books", num: true }, { label: "order" }, { label: "keep", num: true },
                   { label: "grain" }, { label: "epochs", num: true }, { label: "design" }];
  body("leaderboard").innerHTML =
    `<div id="chart-leaderboard" class="chart tall"></div>` +
    `<p class="muted">Click a recipe for its books, order, sparsity, curves and samples. Error bars: standard error ` +
    `over seeds (one seed: the evaluation's own standard error).</p>` +
    table(headers, rows, { id: "leaderboard-table", scroll: true }) + `<div id="recipe-detail"></div>`;
  el("leaderboard-table").addEventListener("click", ev => {
    const tr = ev.target.closest("tr.row");
    if (tr) selectRecipe(tr.dataset.recipe, true);
  });
  const ranked = board.filter(r => r.rank !== null).slice(0, BOARD_CHART_ROWS).reverse();
  const charts = [];
  if (ranked.length) {
    charts.push(plot("chart-leaderboard", [{
      type: "scatter", mode: "markers", orientation: "h", x: ranked.map(r => r.mean), y: ranked.map(r => `#${r.rank} ${r.id}`),
      error_x: { type: "data", array: ranked.map(r => r.stderr || 0), visible: true, color: "#555" },
      text: ranked.map(r => settingsText(r)), marker: { size: 9, color: COLORS[0] },
      hovertemplate: "%{y}<br>%{x:.4g}<br>%{text}<extra></extra>",
    }], { title: { text: `Top ${ranked.length} recipes (mean ± stderr)` }, margin: { l: 170, r: 20, t: 30, b: 50 },
          xaxis: { title: { text: objectiveLabel() } }, height: Math.max(320, 22 * ranked.length + 90) }));
    el("chart-leaderboard").on("plotly_click", ev => selectRecipe(ev.points[0].y.split(" ")[1], true));
  } else {
    el("chart-leaderboard").outerHTML = empty("No trial has finished yet.");
  }
  if (state.selectedRecipe) charts.push(...renderRecipeDetail(state.selectedRecipe, false));
  return charts;
}
function selectRecipe(id, scroll) {
  state.selectedRecipe = id;
  document.querySelectorAll("#leaderboard-table tr.row").forEach(tr =>
    tr.classList.toggle("selected", tr.dataset.recipe === id));
  const recipe = state.data.leaderboard.find(r => r.id === id);
  if (recipe) {
    state.curveTrials = state.curveTrials || defaultCurveTrials(state.data);
    for (const t of recipe.trials) if (state.data.curves[t] && !state.curveTrials.includes(t)) state.curveTrials.push(t);
    renderCurves(state.data);
  }
  renderRecipeDetail(id, scroll);
}
function renderRecipeDetail(id, scroll) {
  const d = state.data, r = d.leaderboard.find(x => x.id === id), box = el("recipe-detail");
  if (!r || !box) return [];
  const trials = d.trials.filter(t => t.recipe_id === id);
  let html = `<div class="detail"><h3>Recipe <code>${esc(r.id)}</code>` +
             `${r.rank === null ? "" : ` — rank ${r.rank}, ${fmt(r.mean)} ± ${fmt(r.stderr, 2)}`}</h3>`;
  html += `<div>${esc(settingsText(r))}; sparsity chunk ${fmtInt(r.chunk_tokens)} tokens` +
          `${r.design ? `; design ${esc(r.design)}` : ""}</div>`;
  if (r.phases) {
    html += `<div>Phases: ${r.phases.map((p, i) => `${i + 1}. ${p.books.length} books, order ${esc(p.order)}`).join("; ")}</div>`;
  }
  html += `<h3>Books (${r.n_books}, in ${r.order === "as_listed" ? "reading" : "listed"} order)</h3><div class="books">` +
          bookIds(r.books).map(b => `<span class="tag" title="${esc(b)}">${esc(title(b))}</span>`).join("") + `</div>`;
  html += `<h3>Trials</h3>` + table(
    [{ label: "trial" }, { label: "seed", num: true }, { label: "stage" }, { label: "state" },
     { label: "objective", num: true }, { label: "stderr", num: true }, { label: "tokens", num: true },
     { label: "time", num: true }, { label: "error" }],
    trials.map(t => ({ cells: [`<code>${esc(t.id)}</code>`, t.seed, esc(t.stage), esc(t.state), fmt(t.objective),
      fmt(t.objective_stderr, 2), fmtInt(t.tokens), fmtDuration((t.train_seconds || 0) + (t.eval_seconds || 0)),
      esc(t.error || "")] })));
  html += `<div id="chart-recipe-curves" class="chart"></div>`;
  const samples = d.samples.filter(s => s.recipe_id === id);
  if (samples.length) html += `<h3>Samples</h3>` + samples.map(sampleBlock).join("");
  html += `</div>`;
  box.innerHTML = html;
  const traces = curveTraces(trials.map(t => t.id));
  const charts = [];
  if (traces.length) {
    charts.push(plot("chart-recipe-curves", traces, { title: { text: "This recipe's loss curves" },
      xaxis: { title: { text: curveAxis(trials.map(t => t.id)) } }, yaxis: { title: { text: "loss" } } }));
  } else {
    el("chart-recipe-curves").outerHTML = empty("No curve recorded for this recipe's trials yet.");
  }
  if (scroll) box.scrollIntoView({ block: "nearest" });
  return charts;
}

// ---- curves -------------------------------------------------------------------------------------------------------
function defaultCurveTrials(d) {
  const out = [];
  for (const r of d.leaderboard.filter(x => x.rank !== null).slice(0, TOP_CURVES)) {
    for (const t of r.trials) if (d.curves[t]) { out.push(t); break; }
  }
  if (!out.length) out.push(...Object.keys(d.curves).slice(0, TOP_CURVES));  // running trials before any finishes
  return out;
}
function curveAxis(ids) {
  const c = ids.map(id => state.data.curves[id]).find(Boolean);
  const any = c && Object.values(c)[0];
  return any && any.x_is === "step" ? "step" : "tokens";
}
function curveTraces(ids) {
  const traces = [];
  ids.forEach((id, i) => {
    const c = state.data.curves[id];
    if (!c) return;
    const color = COLORS[i % COLORS.length];
    for (const [name, dash] of [["loss", "solid"], ["heldout_loss", "dash"]]) {
      if (!c[name]) continue;
      traces.push({ type: "scatter", mode: "lines", name: `${id} ${name === "loss" ? "train" : "held-out"}`,
                    x: c[name].x, y: c[name].y, line: { color, dash, width: 1.6 }, legendgroup: id });
    }
  });
  return traces;
}
function renderCurves(d) {
  state.curveTrials = state.curveTrials || defaultCurveTrials(d);
  const ids = state.curveTrials.filter(t => d.curves[t]);
  if (!ids.length) { body("curves").innerHTML = empty("No loss curve recorded yet."); return []; }
  body("curves").innerHTML =
    `<p class="muted">Solid: training loss; dashed: held-out loss. Shown: the best trial of the top ${TOP_CURVES} ` +
    `recipes and every recipe you click in the leaderboard. <button id="curves-reset">reset</button></p>` +
    `<div id="chart-curves" class="chart tall"></div>`;
  el("curves-reset").addEventListener("click", () => { state.curveTrials = null; renderCurves(state.data); });
  return [plot("chart-curves", curveTraces(ids), { title: { text: `Loss curves of ${ids.length} trial(s)` },
    xaxis: { title: { text: curveAxis(ids) } }, yaxis: { title: { text: "loss" } } })];
}

// ---- findings -----------------------------------------------------------------------------------------------------
function effectTrace(rows, label, valueOf) {
  return {
    type: "scatter", mode: "markers", orientation: "h", x: rows.map(r => r.effect), y: rows.map(label),
    error_x: { type: "data", symmetric: false, visible: true, color: "#555",
               array: rows.map(r => (r.ci && r.ci[1] !== null ? r.ci[1] - r.effect : 0)),
               arrayminus: rows.map(r => (r.ci && r.ci[0] !== null ? r.effect - r.ci[0] : 0)) },
    marker: { size: 8, color: rows.map(r => (valueOf(r) ? COLORS[2] : "#98a2b3")) },
    hovertemplate: "%{y}<br>effect %{x:.4g}<extra></extra>",
  };
}
function renderFindings(d) {
  const f = d.findings;
  if (!f) {
    body("findings").innerHTML = empty("No findings yet.") +
      d.notes.filter(n => n.startsWith("findings")).map(n => `<div class="note">${esc(n)}</div>`).join("");
    return [];
  }
  const excludes = r => r.ci && r.ci[0] !== null && (r.ci[0] > 0 || r.ci[1] < 0);
  let html = `<p class="muted">Source: ${esc(d.findings_source)}. ${f.n_trials} trials of ${f.n_recipes} recipes over ` +
             `${f.n_books} books. Effects are on the objective oriented so that higher is better` +
             `${d.campaign.objective.maximize ? "" : " (the suite minimises, so its sign is flipped)"}; ` +
             `intervals are ${Math.round(100 * ((f.model || {}).level || 0.95))}% bootstrap intervals. Green: the ` +
             `interval excludes zero.</p>`;
  html += `<ul class="summary">${(f.summary || []).map(s => `<li>${esc(s)}</li>`).join("")}</ul>`;
  html += `<div class="grid2"><div id="chart-books" class="chart tall"></div><div id="chart-factors" class="chart tall"></div></div>`;
  const noise = Object.values(f.noise || {});
  const weight = Object.fromEntries((f.terms || []).map(t => [t.metric, t.weight]));
  html += `<h3>Noise floor</h3><p class="muted">Replicate std is the recipe × seed noise that can reorder recipes; ` +
          `the seeds' common effect (one initialisation better than another for every recipe) is removed first.</p>` + table(
    [{ label: "metric" }, { label: "objective weight", num: true }, { label: "replicate std", num: true }, { label: "seeds' common std", num: true },
     { label: "recipe signal std", num: true }, { label: "signal / noise", num: true }, { label: "p", num: true }, { label: "replicated recipes", num: true },
     { label: "verdict" }],
    noise.map(n => ({ cells: [esc(n.metric), fmt(weight[n.metric], 3), fmt(n.replicate_std, 3), fmt(n.seed_std, 3), fmt(n.signal_std, 3), fmt(n.snr, 3),
      fmt(n.p_value, 2), `${n.n_replicated}/${n.n_recipes}`, esc(n.sentence)] })), { scroll: true });
  const validity = Object.entries(f.validity || {});
  html += `<h3>Validity of each predictor</h3><p class="muted">Cross-validated over recipes: how well each model ` +
          `ranks trials it has not seen (Spearman; pairwise accuracy, 0.5 is a coin).</p>` + table(
    [{ label: "predictor" }, { label: "Spearman", num: true }, { label: "pairwise accuracy", num: true },
     { label: "folds", num: true }, { label: "trials", num: true }],
    validity.map(([name, v]) => ({ cells: [esc(name), fmt(v.spearman, 3), fmt(v.pairwise_accuracy, 3), v.folds, v.n] })),
    { id: "validity-table" });
  html += renderReliability(f);
  body("findings").innerHTML = html;

  const charts = reliabilityCharts(f);
  const books = [...(f.top_books || [])];
  for (const b of (f.bottom_books || [])) if (!books.find(x => x.book === b.book)) books.push(b);
  books.sort((a, b) => a.effect - b.effect);
  if (books.length) {
    charts.push(plot("chart-books", [effectTrace(books, b => (b.title ? `${b.title.slice(0, 32)} ·${b.book.slice(0, 4)}` : b.book), excludes)],
      { title: { text: "Book effects (best and worst)" }, margin: { l: 220, r: 20, t: 30, b: 50 },
        xaxis: { title: { text: "effect on the objective", zeroline: true } }, height: Math.max(360, 20 * books.length + 90) }));
  } else {
    el("chart-books").outerHTML = empty("No book effects.");
  }
  const factors = [...(f.factors || [])].sort((a, b) => a.effect - b.effect);
  if (factors.length) {
    charts.push(plot("chart-factors", [effectTrace(factors, x => `${x.factor} (${x.unit})`.slice(0, 48), x => x.clear)],
      { title: { text: "Factor effects (order, sparsity, set size, make-up)" }, margin: { l: 260, r: 20, t: 30, b: 50 },
        xaxis: { title: { text: "effect on the objective", zeroline: true } }, height: Math.max(360, 20 * factors.length + 90) }));
  } else {
    el("chart-factors").outerHTML = empty("No factor effects.");
  }
  return charts;
}

// ---- would an independent rerun agree? ----------------------------------------------------------------------------
function renderReliability(f) {
  const rel = f.reliability || {};
  const cands = Object.entries(rel.candidates || {});
  let html = `<h3>Would an independent rerun agree?</h3>`;
  if (!cands.length) return html + empty("Not measured (too few recipes, or analysed by an older bookmix).");
  html += `<p class="muted">The recipes are split in random halves, the effects fitted on each half alone and ` +
          `rank-correlated; projected to the whole campaign (Spearman–Brown), this is the agreement expected with a ` +
          `second campaign of the same size with other seeds and recipes. Placebo: the same with outcomes shuffled ` +
          `between recipes, which must be about zero.</p>` + table(
    [{ label: "level" }, { label: "units", num: true }, { label: "split-half ρ", num: true },
     { label: "rerun ρ", num: true }, { label: "placebo ρ", num: true }, { label: "trials for 0.7", num: true },
     { label: "trials for 0.8", num: true }],
    cands.map(([name, c]) => ({ cells: [esc(name) + (name === rel.level ? " (chosen)" : ""), c.units,
      fmt(c.split_half, 2), fmt(c.rerun_agreement, 2), fmt(c.placebo, 2), fmtInt(c.trials_for && c.trials_for["0.7"]),
      fmtInt(c.trials_for && c.trials_for["0.8"])] })), { id: "reliability-table" });
  html += `<div>Effects are read at the level of <b>${esc(rel.level)}</b>: ${esc(rel.reason || "")}.` +
          (rel.placebo_validity !== null && rel.placebo_validity !== undefined ?
            ` Placebo validity of the datamodel (outcomes shuffled): ${fmt(rel.placebo_validity, 2)}.` : "") + `</div>`;
  if ((f.groups || []).length) html += `<div id="chart-groups" class="chart tall"></div>`;
  const oos = ((f.out_of_sample || {}).predictors || {}).datamodel;
  if (oos) {
    html += `<h3>Out of sample</h3><div>${oos.n} fresh recipes that no fit saw: the datamodel's predictions rank ` +
            `their measured outcomes at Spearman ${fmt(oos.spearman, 2)} (pairwise accuracy ` +
            `${fmt(oos.pairwise_accuracy, 2)}, slope ${fmt(oos.slope, 2)}).</div><div id="chart-oos" class="chart"></div>`;
  }
  return html;
}
function reliabilityCharts(f) {
  const charts = [];
  const groups = [...(f.groups || [])].sort((a, b) => a.effect - b.effect);
  if (groups.length) {
    const clear = r => r.ci && r.ci[0] !== null && (r.ci[0] > 0 || r.ci[1] < 0);
    charts.push(plot("chart-groups", [effectTrace(groups, g => `${g.kind}=${g.group} (${g.books} books)`.slice(0, 48), clear)],
      { title: { text: `Kinds of book by ${(f.reliability || {}).level}: one more book of the kind` },
        margin: { l: 240, r: 20, t: 30, b: 50 }, xaxis: { title: { text: "effect on the objective", zeroline: true } },
        height: Math.max(320, 20 * groups.length + 90) }));
  }
  const oos = ((f.out_of_sample || {}).predictors || {}).datamodel;
  if (oos && oos.predicted && oos.predicted.length) {
    charts.push(plot("chart-oos", [{ type: "scatter", mode: "markers", x: oos.predicted, y: oos.measured,
      marker: { size: 9, color: COLORS[0] }, hovertemplate: "predicted %{x:.4g}<br>measured %{y:.4g}<extra></extra>" }],
      { title: { text: "Out of sample: predicted vs measured" }, xaxis: { title: { text: "predicted (higher is better)" } },
        yaxis: { title: { text: "measured (higher is better)" } } }));
  }
  return charts;
}

// ---- proposal and verification ------------------------------------------------------------------------------------
// The analysis works with "higher is better"; when the suite minimises (a loss), say what a number means in its units.
function negated(x, difference = false) {
  const o = state.data.campaign.objective;
  if (o.maximize || x === null || x === undefined) return "";
  return difference ? ` (${esc(o.label)} lower by ${fmt(x)})` : ` (a ${esc(o.label)} of ${fmt(-x)})`;
}
function renderProposal(d) {
  const p = d.proposal, v = d.verification;
  let html = "";
  if (p && p.recipe) {
    const r = p.recipe, books = r.books && r.books.length ? r.books
      : [...new Set((r.phases || []).flatMap(ph => ph.books || []))];
    const sp = r.sparsity || {};
    html += `<h3>Proposed recipe <code>${esc(r.id)}</code></h3>` +
            `<div>${books.length} books · order ${esc(r.order || "as_listed")} · keep ${fmt(sp.keep === undefined ? 1 : sp.keep, 3)} ` +
            `(${esc(sp.pattern || "stride")}) · grain ${esc(r.grain || "windows")} · ${r.epochs || 1} epoch(s)` +
            `${p.tokens ? ` · ${fmtInt(p.tokens)} tokens` : ""}</div>` +
            `<div>Predicted objective (higher is better): <b>${fmt(p.predicted)}</b>${negated(p.predicted)}; ` +
            `best observed: ${fmt(p.best_observed)}${negated(p.best_observed)}</div>` +
            (p.predictions ? `<div class="muted">Per predictor: ${Object.entries(p.predictions).map(([k, x]) =>
              `${esc(k)} ${fmt(x)}`).join(", ")}</div>` : "") +
            (p.notes || []).map(n => `<div class="note">${esc(n)}</div>`).join("") +
            `<div class="books">${books.map(b => `<span class="tag" title="${esc(b)}">${esc(title(b))}</span>`).join("")}</div>`;
  } else {
    html += empty("No proposal yet: the analysis proposes a recipe once enough trials have finished.");
  }
  const charts = [];
  if (v) {
    // recipe-level significance decides; the interval alone resamples too few recipes to say it
    const good = v.p_value !== null && v.p_value !== undefined ? v.improvement > 0 && v.p_value < 0.05 : v.ci && v.ci[0] > 0;
    html += `<h3>Verification against ${v.baselines ? v.baselines.length : "?"} random baselines</h3>` +
            `<div>Improvement over the baselines (higher is better): <b>${fmt(v.improvement)}</b>${negated(v.improvement, true)} ` +
            `[${fmt(v.ci && v.ci[0])}, ${fmt(v.ci && v.ci[1])}], one-sided p = ${fmt(v.p_value, 2)} (the recipe is the unit) ` +
            `(${v.n_proposal} proposal trials, ${v.n_baseline} baseline recipes` +
            `${v.n_baseline_trials ? ` over ${v.n_baseline_trials} trials` : ""}) ` +
            `<span class="tag ${good ? "good" : "bad"}">${good ? "better than the baselines" : "not clearly better"}</span></div>` +
            (v.percentile !== undefined ? `<div>Above ${fmt(v.percentile, 3)}% of the baseline recipes` +
              `${v.improvement_sd !== null && v.improvement_sd !== undefined ? `, ${fmt(v.improvement_sd, 3)} baseline SDs above their mean` : ""}; ` +
              `rank test p = ${fmt(v.p_rank, 2)} (the smallest this design can reach: ${fmt(v.p_rank_min, 2)})</div>` : "") +
            `<div id="chart-verify" class="chart"></div>`;
  } else {
    html += `<h3>Verification</h3>` + empty("Not run yet.");
  }
  body("proposal").innerHTML = html;
  const pts = d.verify_points;
  if (v && pts && (pts.proposal.length || pts.baselines.length)) {
    charts.push(plot("chart-verify", [
      { type: "box", name: "proposal", y: pts.proposal.map(x => x.objective), boxpoints: "all", jitter: 0.4,
        pointpos: 0, marker: { color: COLORS[2] }, text: pts.proposal.map(x => x.trial_id) },
      { type: "box", name: "baselines", y: pts.baselines.map(x => x.objective), boxpoints: "all", jitter: 0.4,
        pointpos: 0, marker: { color: "#868e96" }, text: pts.baselines.map(x => `${x.trial_id} (${x.recipe_id})`) },
    ], { title: { text: "Verification trials" }, yaxis: { title: { text: objectiveLabel() } }, showlegend: false }));
  } else if (v) {
    el("chart-verify").outerHTML = empty("The verification trials are not in the results store.");
  }
  return charts;
}

// ---- scale transfer -----------------------------------------------------------------------------------------------
// transfer.json: per proxy setting, each recipe's mean score at the proxy and at the target (higher is better), the
// rank flips beyond seed noise, and a verdict. One scatter per proxy; flipped pairs are drawn as red segments.
function renderTransfer(d) {
  const t = d.transfer;
  if (!t) {
    body("transfer").innerHTML = empty("Not run: add a transfer: section to the pipeline, or run `bookmix transfer CAMPAIGN`.");
    return [];
  }
  const names = Object.keys(t.proxies);
  const ci = (c, pct) => c ? ` [${pct ? fmt(100 * c[0], 2) + "%" : fmt(c[0], 2)}, ${pct ? fmt(100 * c[1], 2) + "%" : fmt(c[1], 2)}]` : "";
  const rows = names.map(n => {
    const p = t.proxies[n];
    return { cells: [esc(n), `${fmt(p.spearman, 2)}${ci(p.spearman_ci)}`, `${p.accuracy === null ? "–" : fmt(100 * p.accuracy, 2) + "%"}${ci(p.accuracy_ci, true)}`,
                     `${p.flips.n_flips} of ${p.flips.pairs}`,
                     `<span class="tag ${p.verdict === "transfers" ? "good" : "bad"}">${esc(p.verdict)}</span>`] };
  });
  const lost = ((t.proxies.campaign || {}).findings || []).filter(f => f.status === "reversed");
  body("transfer").innerHTML =
    `<p>Target <b>${esc(t.target.name)}</b>; ${t.recipes.length} recipes × ${t.seeds.length} seeds. ${esc(t.best.why)}.</p>` +
    table([{ label: "proxy" }, { label: "Spearman" }, { label: "decision accuracy" }, { label: "flips beyond noise" },
           { label: "verdict" }], rows) +
    (lost.length ? `<div class="note">Findings that did not transfer (reversed at the target): ${lost.map(f => esc(`${f.kind} ${f.name}`)).join(", ")}</div>` : "") +
    names.map((n, i) => `<div id="chart-transfer-${i}" class="chart"></div>`).join("");
  return names.map((n, i) => {
    const p = t.proxies[n], by = Object.fromEntries(p.points.map(q => [q.recipe, q]));
    const traces = [{ type: "scatter", mode: "markers", name: "recipes", x: p.points.map(q => q.proxy), y: p.points.map(q => q.target),
                      text: p.points.map(q => `${q.recipe} (${q.role})`), marker: { color: COLORS[0] } }];
    for (const f of p.flips.flips.slice(0, 50)) {
      const a = by[f.a], b = by[f.b];
      if (a && b) traces.push({ type: "scatter", mode: "lines", x: [a.proxy, b.proxy], y: [a.target, b.target],
                                line: { color: "#e03131", width: 1 }, hoverinfo: "skip", showlegend: false });
    }
    return plot(`chart-transfer-${i}`, traces, { title: { text: `${n}: proxy vs target (Spearman ${fmt(p.spearman, 2)})` },
      xaxis: { title: { text: "proxy score (higher is better)" } }, yaxis: { title: { text: "target score (higher is better)" } },
      showlegend: false });
  });
}

// ---- forecast -----------------------------------------------------------------------------------------------------
function renderForecast(d) {
  const f = d.forecast;
  if (!f) {
    const why = (d.notes.find(n => n.startsWith("forecast: ")) || "forecast: unavailable").slice("forecast: ".length);
    body("forecast").innerHTML = empty(`No forecast: ${why}.`);
    return [];
  }
  const rows = f.rows.map(r => r.error ? { cells: [esc(r.device), `<span class="note">${esc(r.error)}</span>`, "", "", "", "", "", ""] } : ({
    cells: [esc(r.name || r.device), r.calibrated ? "measured" : `default MFU ${fmt(100 * r.mfu, 2)}%`,
            fmt(r.tokens_per_s, 3), fmtDuration(r.trial_seconds), fmtDuration(r.remaining_seconds),
            fmtDuration(r.campaign_seconds), fmtBytes(r.memory_bytes), r.fits ? "yes" : `<span class="note">no</span>`],
  }));
  body("forecast").innerHTML =
    `<p class="muted">Model ${esc(f.model)} (${fmt(f.params, 3)} parameters), ${fmtInt(f.tokens_per_trial)} tokens per ` +
    `trial (median of finished trials), ${fmtInt(f.trials_total)} trials planned, ${fmtInt(f.trials_remaining)} to go. ` +
    `From <code>bookmix.forecast.estimate</code>; run <code>bookmix bench</code> on a device to calibrate it.</p>` +
    table([{ label: "device" }, { label: "throughput from" }, { label: "tokens/s", num: true },
           { label: "one trial", num: true }, { label: "what remains", num: true }, { label: "whole campaign", num: true },
           { label: "memory", num: true }, { label: "fits" }], rows, { id: "forecast-table" });
  return [];
}

// ---- samples ------------------------------------------------------------------------------------------------------
function sampleBlock(s) {
  const one = x => `<div class="sample"><div class="prompt">${esc(x.task || "")}: ${esc(x.prompt)}</div>` +
    (x.completions || []).map(c => `<div class="completion">${esc(String(c).replace(/\n{3,}/g, "\n\n").trim())}</div>`).join("") +
    `</div>`;
  let html = `<div><b>trial <code>${esc(s.trial_id)}</code></b> <span class="muted">recipe ${esc(s.recipe_id)}, ` +
             `objective ${fmt(s.objective)}</span></div>` + s.samples.map(one).join("");
  if (s.dialogue && s.dialogue.length) html += `<div class="muted">Dialogue layer:</div>` + s.dialogue.map(one).join("");
  return html;
}
function renderSamples(d) {
  body("samples").innerHTML = d.samples.length
    ? d.samples.map((s, i) => `<h3>#${i + 1}</h3>` + sampleBlock(s)).join("")
    : empty("No samples: the suite has no samples task, or no trial has finished yet.");
  return [];
}

// ---- the page -----------------------------------------------------------------------------------------------------
async function render(d) {
  const t0 = performance.now();
  state.data = d;
  state.titleById = new Map(d.book_ids.map((b, i) => [b, d.book_titles[i]]));
  const c = d.campaign;
  el("title").textContent = `bookmix · ${c.name}`;
  // "running" only while the driver holds the campaign's lock and trials remain: a report written by the driver at
  // the end (lock still held) must not read "running" forever.
  const remaining = d.overview.remaining.trials;
  const status = !d.overview.total ? "no trials yet" : !remaining ? "all trials finished"
    : c.running ? "running" : "stopped (resume with bookmix run)";
  el("subtitle").textContent = `${status} · objective ${objectiveLabel()}` +
    (c.model ? ` · model ${c.model.name || ""}` : "");
  el("footer").textContent = `Generated ${new Date(d.generated_at * 1000).toLocaleString()} from ${c.path}` +
    (state.live ? " · live: refreshes while the campaign runs" : "");
  if (state.selectedRecipe && !d.leaderboard.find(r => r.id === state.selectedRecipe)) state.selectedRecipe = null;
  const charts = [];
  const timings = {};  // per-section milliseconds, read by bench/report_scale.py
  for (const section of [renderOverview, renderLeaderboard, renderCurves, renderFindings, renderProposal, renderTransfer,
                         renderForecast, renderSamples]) {
    const s0 = performance.now();
    charts.push(...section(d));
    timings[section.name] = Math.round(performance.now() - s0);
  }
  await Promise.all(charts);
  window.bookmixRenderMs = performance.now() - t0;
  window.bookmixSectionMs = timings;
  document.body.dataset.rendered = String((Number(document.body.dataset.rendered) || 0) + 1);
  document.body.dataset.token = d.token;
}

async function poll() {
  try {
    const res = await fetch(state.live.endpoint, { cache: "no-store" });
    if (res.ok) {
      const d = await res.json();
      if (d.token !== state.token) { state.token = d.token; await render(d); }
    }
  } catch (err) {
    console.warn("bookmix: refresh failed, retrying", err);  // the server may be restarting; keep polling
  }
  setTimeout(poll, state.live.interval_ms);
}

function main() {
  const data = JSON.parse(el("bookmix-data").textContent);
  state.live = JSON.parse(el("bookmix-live").textContent);
  state.token = data.token;
  render(data).then(() => { if (state.live) setTimeout(poll, state.live.interval_ms); });
}
main();
