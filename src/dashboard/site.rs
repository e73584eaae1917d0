//! The HTML site: `index.html`, one page per dashboard, and the vendored chart library.
//!
//! Invariants: the site references nothing outside itself (no URL with a scheme; the library
//! is compiled into the binary from `dashboards/vendor/` and written next to the pages), so it
//! opens from `file://` with the network off; data is inlined as JSON with `<` escaped, so no
//! value can close the script element; every page states the tables and Delta versions it
//! holds, when it was built, and how many rows each bounded dataset left out. After the charts
//! have drawn (and after every filter change), the page writes the number of marks each visual
//! drew into `<pre id="medallion-marks">` as JSON, for tests and monitoring.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::data::DashboardData;
use super::spec::{ColumnKind, Dashboard, FilterKind, VisualKind};
use super::DashboardError;

/// The vendored library: (file name, bytes).
pub const VENDOR: &[(&str, &[u8])] = &[
    (
        "vega.min.js",
        include_bytes!("../../dashboards/vendor/vega.min.js"),
    ),
    (
        "vega-lite.min.js",
        include_bytes!("../../dashboards/vendor/vega-lite.min.js"),
    ),
    (
        "vega-embed.min.js",
        include_bytes!("../../dashboards/vendor/vega-embed.min.js"),
    ),
    (
        "LICENSE-vega-lite",
        include_bytes!("../../dashboards/vendor/LICENSE-vega-lite"),
    ),
    (
        "LICENSE-vega-embed",
        include_bytes!("../../dashboards/vendor/LICENSE-vega-embed"),
    ),
    ("NOTICE", include_bytes!("../../dashboards/vendor/NOTICE")),
    (
        "README.md",
        include_bytes!("../../dashboards/vendor/README.md"),
    ),
];

/// A built site: relative path → bytes.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// Files by path relative to the site root (`index.html`, `vendor/vega.min.js`).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Site {
    /// Writes every file under `dir` (created if needed).
    ///
    /// # Errors
    /// [`DashboardError::Io`] naming the file.
    pub fn write(&self, dir: &Path) -> Result<(), DashboardError> {
        for (rel, bytes) in &self.files {
            let path = dir.join(rel);
            let io = |e: std::io::Error| DashboardError::Io {
                path: path.clone(),
                message: e.to_string(),
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&path, bytes).map_err(io)?;
        }
        Ok(())
    }
}

/// Rows rendered by a table at most (the dataset's own limit bounds what is inlined).
pub const TABLE_ROWS_SHOWN: usize = 500;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON safe inside a `<script>` element.
fn script_json(v: &Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// Builds the site for `dashboards` with their data; `built_at` is stated on every page.
pub fn build(dashboards: &[(Dashboard, DashboardData)], built_at: &str) -> Site {
    let mut site = Site::default();
    for (name, bytes) in VENDOR {
        site.files.insert(format!("vendor/{name}"), bytes.to_vec());
    }
    site.files.insert(
        "index.html".into(),
        index(dashboards, built_at).into_bytes(),
    );
    for (d, data) in dashboards {
        site.files.insert(
            format!("{}.html", d.name),
            page(d, data, built_at).into_bytes(),
        );
    }
    site
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2329}
header{background:#1f4e79;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.9}
header a{color:#cfe3f5}
.holds{font-size:12.5px;color:#3b4651;background:#fff;border-bottom:1px solid #dde3e8;padding:8px 24px}
.controls{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-end;padding:12px 24px;background:#fff;border-bottom:1px solid #dde3e8;position:sticky;top:0;z-index:2}
.controls label{display:flex;flex-direction:column;font-size:12px;color:#56616b;gap:3px}
.controls select,.controls input{font-size:14px;padding:3px 6px}
.controls button{font-size:13px;padding:5px 10px}
nav.sheets{padding:6px 24px;font-size:14px} nav.sheets a{margin-right:14px}
section.sheet{padding:4px 24px 12px} section.sheet h2{font-size:18px;margin:14px 0 2px}
section.sheet>p{margin:0 0 8px;color:#56616b;font-size:13.5px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}
.card{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:10px 12px;min-width:0}
.card.wide{grid-column:1/-1}
.card h3{font-size:14.5px;margin:0 0 2px} .card .desc{font-size:12.5px;color:#56616b;margin:0 0 6px}
.card .note{font-size:12px;color:#8a5a00;margin:4px 0 0}
.vis{width:100%}
table.data{border-collapse:collapse;width:100%;font-size:12.5px}
table.data th{cursor:pointer;text-align:left;background:#eef2f5;position:sticky;top:0;padding:4px 6px;white-space:nowrap}
table.data td{padding:3px 6px;border-top:1px solid #eef0f2;vertical-align:top}
.tablewrap{max-height:420px;overflow:auto}
footer{font-size:12px;color:#56616b;padding:12px 24px 24px}
"#;

fn index(dashboards: &[(Dashboard, DashboardData)], built_at: &str) -> String {
    let mut items = String::new();
    for (d, data) in dashboards {
        let tables: Vec<String> = data
            .tables
            .iter()
            .map(|(t, v)| format!("{} v{v}", esc(t)))
            .collect();
        items.push_str(&format!(
            "<div class=\"card\"><h3><a href=\"{name}.html\">{title}</a></h3><p class=\"desc\">{desc}</p><p class=\"desc\">Reads {tables}.</p></div>\n",
            name = esc(&d.name),
            title = esc(&d.spec.title),
            desc = esc(&d.spec.description),
            tables = tables.join(", ")
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>medallion dashboards</title><style>{CSS}</style></head>\n<body><header><h1>Dashboards</h1><p>Built {built} from the curated tables of the lake. Open a dashboard:</p></header>\n<section class=\"sheet\"><div class=\"grid\">\n{items}</div></section>\n<footer>Charts drawn with Vega, Vega-Lite and vega-embed (BSD-3-Clause; see vendor/NOTICE), bundled in this folder: the pages work without a network.</footer></body></html>\n",
        built = esc(built_at)
    )
}

/// The page's machine-readable description: visuals, filters, datasets.
fn page_json(d: &Dashboard, data: &DashboardData) -> Value {
    let mut visuals = Vec::new();
    for (_, v) in d.visuals() {
        visuals.push(json!({
            "id": v.id,
            "kind": v.kind.as_str(),
            "dataset": v.dataset,
            "x": v.x,
            "columns": v.columns,
            "sort": v.sort,
            "descending": v.descending,
            "format": v.format,
            "cross_filter": v.cross_filter,
            "spec": super::vega::spec(d, v),
        }));
    }
    let filters: Vec<Value> = d
        .spec
        .filters
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "column": f.column,
                "kind": match f.kind { FilterKind::Select => "select", FilterKind::Range => "range" },
                "targets": d.filter_targets(f),
            })
        })
        .collect();
    let datasets: serde_json::Map<String, Value> = data
        .datasets
        .iter()
        .map(|(id, r)| (id.clone(), json!({"columns": r.columns, "rows": r.rows})))
        .collect();
    json!({"name": d.name, "visuals": visuals, "filters": filters, "datasets": datasets})
}

fn control(d: &Dashboard, data: &DashboardData, f: &super::spec::RawFilter) -> String {
    let label = esc(f.label.as_deref().unwrap_or(&f.id));
    let kind = data
        .datasets
        .iter()
        .find_map(|(id, _)| d.column_kind(id, &f.column))
        .unwrap_or(ColumnKind::Text);
    match f.kind {
        FilterKind::Select => {
            let mut values: Vec<String> = data
                .datasets
                .values()
                .flat_map(|r| r.rows.iter())
                .filter_map(|row| match row.get(&f.column)? {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    v => Some(v.to_string()),
                })
                .collect();
            values.sort();
            values.dedup();
            let opts: String = values
                .iter()
                .map(|v| format!("<option value=\"{0}\">{0}</option>", esc(v)))
                .collect();
            format!(
                "<label>{label}<select data-filter=\"{id}\"><option value=\"\">All</option>{opts}</select></label>",
                id = esc(&f.id)
            )
        }
        FilterKind::Range => {
            let ty = if kind == ColumnKind::Temporal {
                "date"
            } else {
                "number"
            };
            format!(
                "<label>{label} from<input type=\"{ty}\" step=\"any\" data-filter=\"{id}\" data-end=\"0\"></label><label>to<input type=\"{ty}\" step=\"any\" data-filter=\"{id}\" data-end=\"1\"></label>",
                id = esc(&f.id)
            )
        }
    }
}

fn page(d: &Dashboard, data: &DashboardData, built_at: &str) -> String {
    let spec = &d.spec;
    let tables: Vec<String> = data
        .tables
        .iter()
        .map(|(t, v)| format!("<code>{}</code> (Delta version {v})", esc(t)))
        .collect();
    let rows: usize = data.datasets.values().map(|r| r.rows.len()).sum();
    let bounded: Vec<String> = data
        .datasets
        .iter()
        .filter(|(_, r)| r.total > r.rows.len() as u64)
        .map(|(id, r)| format!("<b>{}</b>: {} of {} rows", esc(id), r.rows.len(), r.total))
        .collect();
    let ops_only = !data.tables.is_empty() && data.tables.keys().all(|t| t.starts_with("ops."));
    let holds = format!(
        "This page holds {rows} rows aggregated from {} as of the versions shown, built {}. {}{}",
        if tables.is_empty() {
            "no table".to_string()
        } else {
            tables.join(", ")
        },
        esc(built_at),
        if ops_only {
            "Run history only (rule results and the books of each batch): no student data."
        } else {
            "Curated data only: students appear by pseudonym, and counts of fewer than the small-cell minimum of students are blank."
        },
        if bounded.is_empty() {
            String::new()
        } else {
            format!(" Bounded datasets (rows left out): {}.", bounded.join("; "))
        }
    );
    let controls: String = spec
        .filters
        .iter()
        .map(|f| control(d, data, f))
        .collect::<Vec<_>>()
        .join("");
    let nav: String = spec
        .sheets
        .iter()
        .enumerate()
        .map(|(i, s)| format!("<a href=\"#sheet-{i}\">{}</a>", esc(&s.title)))
        .collect();
    let mut sheets = String::new();
    for (i, s) in spec.sheets.iter().enumerate() {
        sheets.push_str(&format!(
            "<section class=\"sheet\" id=\"sheet-{i}\"><h2>{}</h2><p>{}</p><div class=\"grid\">\n",
            esc(&s.title),
            esc(&s.description)
        ));
        for v in &s.visuals {
            let wide = matches!(v.kind, VisualKind::Table | VisualKind::Heatmap);
            let note = data
                .datasets
                .get(&v.dataset)
                .filter(|r| r.total > r.rows.len() as u64)
                .map(|r| {
                    let order = spec
                        .datasets
                        .get(&v.dataset)
                        .and_then(|ds| ds.order_by.clone())
                        .map(|o| format!(", the first by {o}"))
                        .unwrap_or_default();
                    format!(
                        "<p class=\"note\">Showing {} of {} rows{}.</p>",
                        r.rows.len(),
                        r.total,
                        esc(&order)
                    )
                })
                .unwrap_or_default();
            let cross = if v.cross_filter.is_empty() {
                String::new()
            } else {
                format!(
                    "<p class=\"desc\">{} here to filter: {}.</p>",
                    if v.kind == VisualKind::Bar {
                        "Click a bar"
                    } else {
                        "Drag across"
                    },
                    esc(&v.cross_filter.join(", "))
                )
            };
            sheets.push_str(&format!(
                "<div class=\"card{wide}\"><h3>{title}</h3><p class=\"desc\">{desc}</p>{cross}<div class=\"vis\" id=\"v-{id}\" data-kind=\"{kind}\"></div>{note}</div>\n",
                wide = if wide { " wide" } else { "" },
                title = esc(v.title.as_deref().unwrap_or(&v.id)),
                desc = esc(v.description.as_deref().unwrap_or("")),
                id = esc(&v.id),
                kind = v.kind.as_str(),
            ));
        }
        sheets.push_str("</div></section>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · medallion</title><style>{CSS}</style>\n\
<script src=\"vendor/vega.min.js\"></script><script src=\"vendor/vega-lite.min.js\"></script><script src=\"vendor/vega-embed.min.js\"></script></head>\n\
<body><header><h1>{title}</h1><p>{desc} · <a href=\"index.html\">all dashboards</a></p></header>\n\
<div class=\"holds\" id=\"holds\">{holds}</div>\n\
<div class=\"controls\">{controls}<button type=\"button\" id=\"clear\">Clear filters and selections</button></div>\n\
<nav class=\"sheets\">{nav}</nav>\n{sheets}\
<footer>Filters and selections can be shared as URL parameters (<code>?filter=value</code>, <code>?filter=from,to</code>, <code>?brush.VISUAL=from,to</code>, <code>?select.VISUAL=a,b</code>). Charts: Vega / Vega-Lite / vega-embed, BSD-3-Clause (vendor/NOTICE).</footer>\n\
<pre id=\"medallion-marks\" hidden></pre>\n\
<script type=\"application/json\" id=\"medallion-page\">{json}</script>\n<script>{js}</script></body></html>\n",
        title = esc(&spec.title),
        desc = esc(&spec.description),
        json = script_json(&page_json(d, data)),
        js = PAGE_JS,
    )
}

/// The page's script: filters rows per visual, draws, counts marks.
const PAGE_JS: &str = r#"
(function () {
  const page = JSON.parse(document.getElementById('medallion-page').textContent);
  const out = document.getElementById('medallion-marks');
  const state = { filters: {}, cross: {} };
  const views = {};
  const tableSort = {};
  for (const ds of Object.values(page.datasets)) {
    const t = ds.columns.filter(c => c.kind === 'temporal').map(c => c.name);
    for (const r of ds.rows) for (const c of t) if (r[c] != null) r[c] = Date.parse(r[c]);
  }
  const kindOf = (ds, col) => { const c = page.datasets[ds].columns.find(c => c.name === col); return c ? c.kind : 'text'; };
  const parseVal = (kind, s) => {
    if (s === '' || s == null) return null;
    if (kind === 'temporal') { const t = Date.parse(s); return isNaN(t) ? null : t; }
    if (kind === 'number') { const n = parseFloat(s); return isNaN(n) ? null : n; }
    return s;
  };
  const filterKind = f => { for (const v of page.visuals) if (f.targets.includes(v.id)) return kindOf(v.dataset, f.column); return 'text'; };
  function passes(row, v) {
    for (const f of page.filters) {
      if (!f.targets.includes(v.id)) continue;
      const val = state.filters[f.id]; if (val == null) continue;
      const x = row[f.column];
      if (f.kind === 'select') { if (x == null || String(x) !== val) return false; }
      else {
        if (x == null) return false;
        if (val[0] != null && x < val[0]) return false;
        if (val[1] != null && x > val[1]) return false;
      }
    }
    for (const src of page.visuals) {
      if (!src.cross_filter.includes(v.id)) continue;
      const c = state.cross[src.id]; if (!c) continue;
      const x = row[src.x];
      if (c.values) { if (!c.values.some(s => s === x || String(s) === String(x))) return false; }
      else if (x == null || x < c.range[0] || x > c.range[1]) return false;
    }
    return true;
  }
  const rowsFor = v => page.datasets[v.dataset].rows.filter(r => passes(r, v));
  function countMarks(mark) {
    if (!mark || !mark.items) return 0;
    if (mark.marktype === 'group') { let n = 0; for (const it of mark.items) for (const m of (it.items || [])) n += countMarks(m); return n; }
    return mark.role === 'mark' || (mark.role || '').endsWith('mark') ? mark.items.length : 0;
  }
  function fmt(x, kind) {
    if (x == null) return '';
    if (kind === 'temporal') return new Date(x).toISOString().slice(0, 10);
    if (typeof x === 'number') return Number.isInteger(x) ? String(x) : x.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
    return String(x);
  }
  function renderTable(v) {
    const el = document.getElementById('v-' + v.id);
    const s = tableSort[v.id] || (tableSort[v.id] = { col: v.sort, desc: v.descending });
    const rows = rowsFor(v);
    if (s.col) rows.sort((a, b) => {
      const x = a[s.col], y = b[s.col];
      const c = x == null ? 1 : y == null ? -1 : x < y ? -1 : x > y ? 1 : 0;
      return s.desc ? -c : c;
    });
    const shown = rows.slice(0, 500);
    const kinds = v.columns.map(c => kindOf(v.dataset, c));
    let h = '<div class="tablewrap"><table class="data"><thead><tr>';
    v.columns.forEach(c => { h += '<th data-col="' + c + '">' + c.replace(/_/g, ' ') + (s.col === c ? (s.desc ? ' ▼' : ' ▲') : '') + '</th>'; });
    h += '</tr></thead><tbody>';
    for (const r of shown) { h += '<tr>'; v.columns.forEach((c, i) => { const t = document.createElement('td'); t.textContent = fmt(r[c], kinds[i]); h += t.outerHTML; }); h += '</tr>'; }
    h += '</tbody></table></div>';
    if (rows.length > shown.length) h += '<p class="note">Showing ' + shown.length + ' of ' + rows.length + ' rows; sort or filter to see others.</p>';
    el.innerHTML = h;
    el.querySelectorAll('th').forEach(th => th.addEventListener('click', () => {
      const c = th.getAttribute('data-col');
      tableSort[v.id] = { col: c, desc: s.col === c ? !s.desc : false };
      renderTable(v); report();
    }));
    el.setAttribute('data-rows', String(shown.length));
    return shown.length;
  }
  function report() {
    const marks = {};
    for (const v of page.visuals) {
      if (v.kind === 'table') marks[v.id] = Number(document.getElementById('v-' + v.id).getAttribute('data-rows') || 0);
      else if (views[v.id]) marks[v.id] = countMarks(views[v.id].scenegraph().root);
    }
    out.textContent = JSON.stringify({ ready: true, filters: state.filters, cross: state.cross, marks: marks });
    document.body.setAttribute('data-ready', '1');
  }
  async function refresh(ids) {
    for (const v of page.visuals) {
      if (ids && !ids.includes(v.id)) continue;
      if (v.kind === 'table') { renderTable(v); continue; }
      const view = views[v.id]; if (!view) continue;
      await view.change('source', vega.changeset().remove(() => true).insert(rowsFor(v))).runAsync();
    }
    report();
  }
  function extract(v, val) {
    if (!val || typeof val !== 'object') return null;
    if (v.kind === 'bar') { const vs = val[v.x]; return Array.isArray(vs) && vs.length ? { values: vs } : null; }
    let r = val[v.x]; if (!Array.isArray(r)) r = Object.values(val).find(Array.isArray);
    return Array.isArray(r) && r.length === 2 ? { range: [Math.min(r[0], r[1]), Math.max(r[0], r[1])] } : null;
  }
  function readUrl() {
    const q = new URLSearchParams(location.search);
    for (const f of page.filters) {
      const s = q.get(f.id); if (s == null) continue;
      const kind = filterKind(f);
      if (f.kind === 'select') state.filters[f.id] = s;
      else { const [a, b] = s.split(','); state.filters[f.id] = [parseVal(kind, a), parseVal(kind, b)]; }
      document.querySelectorAll('[data-filter="' + f.id + '"]').forEach(el => {
        if (f.kind === 'select') el.value = s; else el.value = (s.split(',')[Number(el.getAttribute('data-end'))] || '');
      });
    }
    for (const v of page.visuals) {
      const b = q.get('brush.' + v.id), s = q.get('select.' + v.id);
      const kind = kindOf(v.dataset, v.x);
      if (b) { const [lo, hi] = b.split(',').map(x => parseVal(kind, x)); state.cross[v.id] = { range: [lo, hi] }; }
      if (s) state.cross[v.id] = { values: s.split(',').map(x => parseVal(kind, x)) };
    }
  }
  function wireControls() {
    document.querySelectorAll('[data-filter]').forEach(el => el.addEventListener('change', () => {
      const f = page.filters.find(f => f.id === el.getAttribute('data-filter'));
      const kind = filterKind(f);
      if (f.kind === 'select') state.filters[f.id] = el.value === '' ? null : el.value;
      else {
        const cur = state.filters[f.id] || [null, null];
        cur[Number(el.getAttribute('data-end'))] = parseVal(kind, el.value);
        state.filters[f.id] = cur[0] == null && cur[1] == null ? null : cur;
      }
      refresh(f.targets);
    }));
    document.getElementById('clear').addEventListener('click', () => {
      state.filters = {}; state.cross = {};
      document.querySelectorAll('[data-filter]').forEach(el => { el.value = ''; });
      refresh(null);
    });
  }
  // For scripting and tests: the views, the filter state, and a redraw.
  window.medallion = { views: views, state: state, refresh: refresh, report: report };
  async function main() {
    readUrl();
    wireControls();
    for (const v of page.visuals) {
      if (v.kind === 'table') { renderTable(v); continue; }
      const res = await vegaEmbed('#v-' + v.id, v.spec, { actions: false, renderer: 'svg' });
      views[v.id] = res.view;
      await res.view.change('source', vega.changeset().insert(rowsFor(v))).runAsync();
      if (v.cross_filter.length) {
        res.view.addSignalListener('sel', (_, val) => { state.cross[v.id] = extract(v, val); refresh(v.cross_filter); });
      }
    }
    report();
  }
  main().catch(e => { out.textContent = JSON.stringify({ ready: false, error: String(e && e.stack || e) }); document.body.setAttribute('data-ready', 'error'); });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlined_json_cannot_close_the_script() {
        let v = json!({"a": "</script><script>alert(1)</script>"});
        assert!(!script_json(&v).contains("</script"));
    }
}
