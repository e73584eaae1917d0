//! Dashboards: the shipped YAMLs built from generated data into a site that draws in headless
//! Chromium with the network blocked; located validation errors; `serve`'s API; QuickSight
//! requests checked against the service model (botocore) and sent to moto.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::TestProject;

const DASHBOARDS: &[&str] = &["at_risk", "attendance", "data_quality", "performance"];

/// A project with generated data promoted to curated (with defects, so the quality pages
/// have quarantined rows to show).
fn lake() -> TestProject {
    let p = TestProject::new();
    let inbox = p.generate(80, 28, 0.02);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    p
}

fn chromium() -> Option<&'static str> {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if bin.is_none() {
        assert!(
            std::env::var("MEDALLION_REQUIRE_CHROMIUM").is_err(),
            "Chromium is required but not installed"
        );
        eprintln!("NOTE: Chromium not installed; dashboard pages were checked without a browser");
    }
    bin
}

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Name resolution blocked: a page that needed the network would draw nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=20000",
];

/// Loads `url` and returns the JSON the page wrote into `#medallion-marks`.
fn marks(bin: &str, url: &str) -> Value {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"medallion-marks\" hidden=\"\">")
        .unwrap_or_else(|| panic!("no marks element in {url}: {}", &dom[..dom.len().min(2000)]));
    let rest = &dom[start..];
    let json = &rest[rest.find('>').unwrap() + 1..rest.find("</pre>").unwrap()];
    let json = json
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("marks of {url}: {e}: {json}"))
}

fn screenshot(bin: &str, url: &str, shot: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1400,2200")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::metadata(shot).unwrap().len() > 20_000,
        "empty screenshot {}",
        shot.display()
    );
}

fn mark(m: &Value, visual: &str) -> u64 {
    m["marks"][visual]
        .as_u64()
        .unwrap_or_else(|| panic!("no mark count for {visual}: {m}"))
}

#[test]
fn shipped_dashboards_build_and_draw_offline_and_filters_link_charts() {
    let p = lake();
    let list = p.ok(&["dashboard", "list"]).stdout;
    for d in DASHBOARDS {
        assert!(list.contains(d), "{list}");
    }
    let site = p.path("site");
    let out = p
        .ok(&["dashboard", "build", "--out", site.to_str().unwrap()])
        .stdout;
    assert!(out.contains("Site written to"), "{out}");
    for f in [
        "index.html",
        "vendor/vega.min.js",
        "vendor/vega-lite.min.js",
        "vendor/vega-embed.min.js",
        "vendor/LICENSE-vega-lite",
        "vendor/NOTICE",
    ] {
        assert!(site.join(f).is_file(), "{f} missing");
    }
    let ident = regex::Regex::new(r"\bS\d{6}\b|@example|student_name").unwrap();
    for d in DASHBOARDS {
        let html = std::fs::read_to_string(site.join(format!("{d}.html"))).unwrap();
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "{d}: external reference"
        );
        assert!(
            html.contains("Delta version"),
            "{d}: the page must say which versions it holds"
        );
        assert!(
            !ident.is_match(&html),
            "{d}: a direct identifier reached the page"
        );
    }
    let at_risk = std::fs::read_to_string(site.join("at_risk.html")).unwrap();
    assert!(
        at_risk.contains("curated.at_risk_students"),
        "tables named on the page"
    );
    assert!(
        regex::Regex::new(r"p_[0-9a-f]{40}")
            .unwrap()
            .is_match(&at_risk),
        "students by pseudonym"
    );

    let Some(bin) = chromium() else { return };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboards");
    std::fs::create_dir_all(&shots).unwrap();
    let url = |page: &str| format!("file://{}/{page}", site.display());
    for d in DASHBOARDS {
        let m = marks(bin, &url(&format!("{d}.html")));
        assert_eq!(m["ready"], true, "{d}: {m}");
        for (id, n) in m["marks"].as_object().unwrap() {
            assert!(
                n.as_u64().unwrap() > 0,
                "{d}: visual {id} drew nothing: {m}"
            );
        }
        screenshot(
            bin,
            &url(&format!("{d}.html")),
            &shots.join(format!("{d}.png")),
        );
    }
    // A filter (course) changes what the linked charts show.
    let all = marks(bin, &url("performance.html"));
    let courses = std::fs::read_to_string(site.join("performance.html")).unwrap();
    let course = regex::Regex::new(r#"<option value="([A-Z]{3}\d{3})">"#)
        .unwrap()
        .captures(&courses)
        .expect("a course option")[1]
        .to_string();
    let one = marks(bin, &url(&format!("performance.html?course={course}")));
    assert_eq!(one["filters"]["course"], course.as_str());
    assert!(
        mark(&one, "student_table") < mark(&all, "student_table"),
        "{one}\n{all}"
    );
    assert!(mark(&one, "grade_vs_attendance") < mark(&all, "grade_vs_attendance"));
    // Brushing the histogram (as a URL state) filters the scatter plot and the table only.
    let brushed = marks(bin, &url("performance.html?brush.grade_histogram=85,100"));
    assert!(
        mark(&brushed, "grade_vs_attendance") < mark(&all, "grade_vs_attendance"),
        "{brushed}"
    );
    assert!(mark(&brushed, "student_table") < mark(&all, "student_table"));
    assert_eq!(
        mark(&brushed, "trend_boxplot"),
        mark(&all, "trend_boxplot"),
        "not a target"
    );
    // The same through the charts themselves: a click on a bar (real pointer events, as Vega
    // receives them) and a brush drawn on the histogram (its pixel signal set).
    let page = std::fs::read_to_string(site.join("performance.html")).unwrap();
    let probe = r#"<script>
(async function () {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  while (document.body.getAttribute('data-ready') !== '1') await sleep(50);
  const m = () => JSON.parse(document.getElementById('medallion-marks').textContent).marks;
  const out = {};
  const b = window.medallion.views['grade_bands'];
  const el = b.container().querySelector('.mark-rect path');
  const r = el.getBoundingClientRect();
  const o = {bubbles: true, cancelable: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2, pointerId: 1, isPrimary: true};
  for (const t of ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click'])
    el.dispatchEvent(t.startsWith('pointer') ? new PointerEvent(t, o) : new MouseEvent(t, o));
  await sleep(300);
  out.clicked = m();
  document.getElementById('clear').click();
  await sleep(300);
  const h = window.medallion.views['grade_histogram'];
  h.signal('sel_x', [0, 60]); await h.runAsync(); await sleep(300);
  out.brushed = m();
  document.title = 'PROBE ' + JSON.stringify(out);
})();
</script></body>"#;
    std::fs::write(site.join("probe.html"), page.replace("</body>", probe)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = Command::new(bin)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url("probe.html"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let title = &dom[dom.find("<title>PROBE ").expect("probe ran") + 13..];
    let probe: Value = serde_json::from_str(&title[..title.find("</title>").unwrap()]).unwrap();
    assert_ne!(
        probe["clicked"]["grade_histogram"], all["marks"]["grade_histogram"],
        "{probe}"
    );
    assert_eq!(
        probe["clicked"]["student_table"], all["marks"]["student_table"],
        "not a target"
    );
    assert!(
        probe["brushed"]["student_table"].as_u64().unwrap() < mark(&all, "student_table"),
        "{probe}"
    );
    // A week range narrows the attendance trend.
    let att = marks(bin, &url("attendance.html"));
    let week = marks(bin, &url("attendance.html?week=2026-09-07,2026-09-20"));
    assert!(
        mark(&week, "weekly_trend") < mark(&att, "weekly_trend"),
        "{week}\n{att}"
    );
}

#[test]
fn dashboard_mistakes_are_located_and_all_reported() {
    let p = lake();
    let dir = p.path("dashboards");
    std::fs::write(
        dir.join("broken_key.yaml"),
        "title: T\ndatasets:\n  a: {table: curated.course_summary}\nsheets:\n  - title: S\n    visuals:\n      - id: k\n        type: kpi\n        dataset: a\n        value: enrolled\n        colour: red\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken_column.yaml"),
        "title: T\ndatasets:\n  a:\n    table: curated.course_summary\n  b:\n    table: trusted.attendance\nsheets:\n  - title: S\n    visuals:\n      - id: k\n        type: kpi\n        dataset: a\n        value: enrolment\n      - id: h\n        type: histogram\n        dataset: a\n        x: course_id\n",
    )
    .unwrap();
    let r = p.run(&["dashboard", "build", "--out", "site"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("broken_key.yaml:11:9: sheets[0].visuals[0].colour: unknown field `colour`"),
        "{e}"
    );
    assert!(e.contains("broken_column.yaml:6:5: datasets.b.table: `trusted.attendance`: dashboards read curated tables only"), "{e}");
    assert!(e.contains("broken_column.yaml:13:9: sheets[0].visuals[0].value: unknown column `enrolment` (the dataset has: course_id"), "{e}");
    assert!(e.contains("broken_column.yaml:17:9: sheets[0].visuals[1].x: `course_id` is text; the x of a histogram must be a number"), "{e}");
    // `list` reads the files without the lake and names the broken one.
    let l = p.run(&["dashboard", "list"]);
    assert_eq!(l.code, 2);
    assert!(l.stderr.contains("broken_key.yaml:11:9"), "{}", l.stderr);
    std::fs::remove_file(dir.join("broken_key.yaml")).unwrap();
    std::fs::remove_file(dir.join("broken_column.yaml")).unwrap();
    let r = p.run(&["dashboard", "build", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no dashboard `nope`"), "{}", r.stderr);

    // QuickSight: the dry run writes every request, and each one passes the service model.
    let yaml = std::fs::read_to_string(p.path("medallion.yaml")).unwrap();
    std::fs::write(
        p.path("medallion.yaml"),
        format!("{yaml}\naws:\n  region: eu-west-1\n  bucket_prefix: school\n  kms_key_alias: alias/medallion\n  glue_database_prefix: medallion\n  quicksight:\n    account_id: \"123456789012\"\n    principal: arn:aws:quicksight:eu-west-1:123456789012:group/default/analysts\n"),
    )
    .unwrap();
    let dry = p.path("qs");
    let out = p
        .ok(&["dashboard", "deploy", "--dry-run", dry.to_str().unwrap()])
        .stdout;
    assert!(
        out.contains("aws quicksight create-dashboard --cli-input-json file://"),
        "{out}"
    );
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(dry.join("dashboard-performance.json")).unwrap(),
    )
    .unwrap();
    let def = &dash["Definition"];
    assert_eq!(def["Sheets"].as_array().unwrap().len(), 2);
    let visual_ids: Vec<String> = def["Sheets"][0]["Visuals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_object().unwrap().values().next().unwrap()["VisualId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        visual_ids.contains(&"grade_histogram".to_string()),
        "{visual_ids:?}"
    );
    let set: Value = serde_json::from_str(
        &std::fs::read_to_string(dry.join("data-set-medallion-at-risk-list.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(set["ImportMode"], "DIRECT_QUERY");
    let sql = set["PhysicalTableMap"]["list"]["CustomSql"]["SqlQuery"]
        .as_str()
        .unwrap();
    assert!(
        sql.contains("medallion_curated.at_risk_students") && !sql.contains("LIMIT"),
        "{sql}"
    );
    crate::harness::botocore_accepts("quicksight_validate.py", &dry, "QuickSight requests");
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(p: &TestProject, args: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
    let mut cmd = Command::new(crate::harness::BIN);
    cmd.arg("--project").arg(&p.root).arg("serve").args(args);
    cmd.env_remove("MEDALLION_API_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).to_string();
    match line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
    {
        Some(addr) => Ok(Server {
            child,
            addr: addr.to_string(),
        }),
        None => {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let status = child.wait().unwrap();
            Err(format!("{status}: {err}"))
        }
    }
}

/// One HTTP/1.1 request; returns (status, JSON or text body).
fn http(s: &Server, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(c, "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n", s.addr).unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(s: &Server, path: &str) -> (u16, Value) {
    let (code, body) = http(s, "GET", path, None);
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

#[test]
fn serve_answers_read_only_json_over_curated_tables() {
    let p = lake();
    std::fs::write(
        p.path("catalog/queries/raw_peek.sql"),
        "SELECT * FROM raw.attendance\n",
    )
    .unwrap();
    let s = serve(&p, &["--port", "0"], &[]).unwrap();
    let (code, page) = http(&s, "GET", "/", None);
    assert_eq!(code, 200);
    assert!(page.contains("performance.html"), "{page}");
    let (code, js) = http(&s, "GET", "/vendor/vega-lite.min.js", None);
    assert_eq!(code, 200);
    assert!(js.len() > 100_000);

    let (code, t) = json(&s, "/api/v1/tables");
    assert_eq!(code, 200);
    let names: Vec<&str> = t["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["table"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"curated.at_risk_students"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("curated.")), "{names:?}");
    let (code, one) = json(&s, "/api/v1/tables/curated.at_risk_students");
    assert_eq!(code, 200);
    assert!(
        one["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "risk_level"),
        "{one}"
    );
    for refused in [
        "/api/v1/tables/trusted.attendance",
        "/api/v1/tables/raw.grades",
        "/api/v1/tables/ops.promotions",
        "/api/v1/query/raw_peek",
        "/api/v1/sql?q=SELECT%201",
        "/api/v1/query/at_risk_by_course?sql=SELECT%201",
    ] {
        let (code, e) = json(&s, refused);
        assert_eq!(code, 403, "{refused}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().len() > 10, "{e}");
    }
    let (code, e) = json(&s, "/api/v1/tables/curated.nope");
    assert_eq!((code, e["error"]["code"].as_str()), (404, Some("no_table")));
    let (code, _) = json(&s, "/api/v1/query/nope");
    assert_eq!(code, 404);
    let (code, e) = json(&s, "/api/v1/query/grade_distribution");
    assert_eq!(code, 400, "a missing parameter: {e}");
    let (code, e) = json(&s, "/api/v1/nothing");
    assert_eq!(code, 404, "{e}");
    let (code, body) = http(&s, "POST", "/api/v1/tables", None);
    assert_eq!(code, 405, "{body}");
    assert!(body.contains("read_only"));

    // Pagination: pages partition the rows.
    let (code, p1) = json(&s, "/api/v1/query/at_risk_by_course?page_size=3");
    assert_eq!(code, 200, "{p1}");
    let total = p1["total_rows"].as_u64().unwrap();
    assert!(total > 3, "{p1}");
    assert_eq!(p1["rows"].as_array().unwrap().len(), 3);
    assert_eq!(p1["next_page"], 2);
    let last = total.div_ceil(3);
    let (_, pl) = json(
        &s,
        &format!("/api/v1/query/at_risk_by_course?page_size=3&page={last}"),
    );
    assert_eq!(
        pl["rows"].as_array().unwrap().len() as u64,
        total - 3 * (last - 1)
    );
    assert_eq!(pl["next_page"], Value::Null);
    let (_, p2) = json(&s, "/api/v1/query/at_risk_by_course?page_size=3&page=2");
    assert_ne!(p1["rows"], p2["rows"]);
    let (code, _) = json(&s, "/api/v1/query/at_risk_by_course?page=0");
    assert_eq!(code, 400);
    let course = p1["rows"][0]["course_id"].as_str().unwrap().to_string();
    let (code, g) = json(
        &s,
        &format!("/api/v1/query/grade_distribution?course={course}"),
    );
    assert_eq!(code, 200, "{g}");
    drop(s);

    // Beyond loopback a token is required; with a token, every request needs it.
    let err = serve(&p, &["--port", "0", "--bind", "0.0.0.0"], &[])
        .err()
        .expect("refused");
    assert!(err.contains("MEDALLION_API_TOKEN"), "{err}");
    let s = serve(&p, &["--port", "0"], &[("MEDALLION_API_TOKEN", "s3cret")]).unwrap();
    let (code, body) = http(&s, "GET", "/api/v1/tables", None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("unauthorized"));
    let (code, _) = http(&s, "GET", "/api/v1/tables", Some("wrong"));
    assert_eq!(code, 401);
    let (code, _) = http(&s, "GET", "/api/v1/tables", Some("s3cret"));
    assert_eq!(code, 200);
}

/// `dashboard deploy` against moto: what moto received is read back from `/moto-api/data.json`
/// (moto cannot describe QuickSight resources to the Rust SDK).
#[cfg(feature = "aws")]
#[test]
fn deploy_sends_data_source_data_sets_and_dashboards_to_quicksight() {
    let Some(m) = crate::aws::moto() else { return };
    let p = lake();
    let yaml = std::fs::read_to_string(p.path("medallion.yaml")).unwrap();
    std::fs::write(
        p.path("medallion.yaml"),
        format!("{yaml}\naws:\n  region: us-east-1\n  endpoint: {}\n  bucket_prefix: school\n  kms_key_alias: alias/medallion\n  glue_database_prefix: medallion\n  quicksight:\n    account_id: \"123456789012\"\n    principal: arn:aws:quicksight:us-east-1:123456789012:group/default/analysts\n", m.endpoint),
    )
    .unwrap();
    let r = p.run_env(&["dashboard", "deploy"], &crate::aws::ENV);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("created  data source medallion-athena"),
        "{}",
        r.stdout
    );
    for d in ["at-risk", "attendance", "data-quality", "performance"] {
        assert!(
            r.stdout.contains(&format!("dashboard medallion-{d}")),
            "{}",
            r.stdout
        );
    }
    let addr = m.endpoint.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET /moto-api/data.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    // moto may answer chunked; the JSON object starts at the first brace.
    let body = &body[body.find('{').unwrap()..body.rfind('}').unwrap() + 1];
    let data: Value = serde_json::from_str(body).unwrap();
    let qs = &data["quicksight"];
    let sources = qs["QuickSightDataSource"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        sources[0]["data_source_parameters"]["AthenaParameters"]["WorkGroup"],
        "medallion"
    );
    let sets: Vec<&str> = qs["QuicksightDataSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["arn"].as_str().unwrap())
        .collect();
    assert_eq!(sets.len(), 13, "{sets:?}");
    let dashboards = qs["QuicksightDashboard"].as_array().unwrap();
    assert_eq!(dashboards.len(), 4);
    let perf = dashboards
        .iter()
        .find(|d| d["dashboard_id"] == "medallion-performance")
        .unwrap();
    assert_eq!(
        perf["dashboard_publish_options"]["AdHocFilteringOption"]["AvailabilityStatus"], "ENABLED",
        "{perf}"
    );
    let def = &perf["definition"];
    let sheet0 = def["Sheets"][0]["Visuals"].to_string();
    for id in [
        "grade_histogram",
        "grade_vs_attendance",
        "student_table",
        "HistogramVisual",
        "ScatterPlotVisual",
        "TableVisual",
    ] {
        assert!(sheet0.contains(id), "{id} missing from {sheet0}");
    }
    assert!(
        def["FilterGroups"].to_string().contains("course_id"),
        "{}",
        def["FilterGroups"]
    );
    assert!(def["ParameterDeclarations"]
        .to_string()
        .contains("\"course\""));

    // `aws policies` states what QuickSight's role needs.
    let pol: Value =
        serde_json::from_str(&p.run_env(&["aws", "policies"], &crate::aws::ENV).stdout).unwrap();
    let role = pol["quicksight_service_role"].to_string();
    for need in [
        "kms:Decrypt",
        "school-curated/*",
        "school-ops/athena-results/*",
        "athena:StartQueryExecution",
        "workgroup/medallion",
        "medallion_curated",
    ] {
        assert!(role.contains(need), "{need} missing from {role}");
    }
}
