//! The school report as one self-contained HTML page (inline style and SVG, nothing
//! fetched), to send to a school or a district office: a bar per school of its accounts
//! by what they need (signed in, never signed in, retiring, suspended), the figures, and
//! for one school its retiring and held accounts.

use super::school::School;
use crate::directory::model::Role;
use crate::display;
use crate::display::html as esc;
use jiff::Timestamp;
use std::fmt::Write;

/// Schools drawn in the chart (all are in the table).
const CHARTED: usize = 200;

/// The segments of a school's bar: label, colour, count.
fn segments(school: &School) -> [(&'static str, &'static str, u64); 4] {
    [
        ("signed in", "#2e7d32", school.signed_in),
        ("never signed in", "#f9a825", school.never_signed_in),
        ("retiring", "#5c8fd6", school.accounts.retiring),
        ("suspended", "#757575", school.accounts.suspended),
    ]
}

pub fn page(
    schools: &[School],
    generated: Timestamp,
    scanned: Option<Timestamp>,
    detail: bool,
) -> String {
    let mut html = String::new();
    let title = match (detail, schools.first()) {
        (true, Some(school)) => format!("School {}", esc(&school.npsn)),
        _ => display::count(schools.len() as u64, "school", "schools"),
    };
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>belajar.id accounts: {title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
h1{{font-size:1.4em}} h2{{font-size:1.1em;margin-top:1.6em}}
table{{border-collapse:collapse;margin:.5em 0}}
td,th{{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}}
td:first-child,th:first-child,.l{{text-align:left}}
.legend span{{display:inline-block;margin-right:1.2em}}
.legend i{{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}}
.held{{color:#c62828;font-weight:bold}}
small{{color:#666}}
</style></head><body>
<h1>belajar.id accounts: {title}</h1>
<p><small>Made by belajar-sync on {generated}. Signed in: the Google user was seen signed into at least once (as of the last scan of Google: {scanned}).</small></p>
"#,
        generated = esc(&display::time(generated)),
        scanned = esc(&super::school::time_or_never(scanned)),
    );
    chart(&mut html, schools);
    figures(&mut html, schools);
    if detail && let Some(school) = schools.first() {
        lists(&mut html, school);
    }
    html.push_str("</body></html>\n");
    html
}

/// One bar per school, each the width of the page (the shares of its accounts).
fn chart(html: &mut String, schools: &[School]) {
    let shown = &schools[..schools.len().min(CHARTED)];
    let (label_w, bar_w, row_h) = (110.0, 560.0, 26.0);
    let height = row_h * shown.len() as f64 + 10.0;
    html.push_str("<h2>Accounts by what they need</h2>\n<div class=\"legend\">");
    if let Some(first) = shown.first() {
        for (label, colour, _) in segments(first) {
            let _ = write!(
                html,
                "<span><i style=\"background:{colour}\"></i>{label}</span>"
            );
        }
    }
    html.push_str("<span class=\"held\">● held for a person</span></div>\n");
    let _ = writeln!(
        html,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"accounts per school\">",
        label_w + bar_w + 240.0
    );
    for (i, school) in shown.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let total = school.accounts.total().max(1) as f64;
        let _ = writeln!(
            html,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text>",
            y + 15.0,
            esc(&school.npsn)
        );
        let mut x = label_w;
        for (label, colour, n) in segments(school) {
            if n == 0 {
                continue;
            }
            let w = bar_w * n as f64 / total;
            let _ = writeln!(
                html,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" fill=\"{colour}\"><title>{}: {n} {label}</title></rect>",
                esc(&school.npsn)
            );
            x += w;
        }
        let held = if school.held > 0 {
            format!(
                " <tspan fill=\"#c62828\" font-weight=\"bold\">● {} held</tspan>",
                school.held
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            html,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\">{} · {} signed in{held}</text>",
            label_w + bar_w + 8.0,
            y + 15.0,
            school.accounts.total(),
            super::school::percent(school.activation)
        );
    }
    html.push_str("</svg>\n");
    if schools.len() > shown.len() {
        let _ = writeln!(
            html,
            "<p><small>The chart shows the first {CHARTED} schools; the table lists all {}.</small></p>",
            schools.len()
        );
    }
}

fn figures(html: &mut String, schools: &[School]) {
    html.push_str("<h2>Figures</h2>\n<table><tr><th>school</th><th>accounts</th><th>active</th><th>signed in</th><th>never signed in</th><th>share</th><th>retiring</th><th>next suspension</th><th>suspended</th><th>held</th><th>last change</th></tr>\n");
    for s in schools {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
            esc(&s.npsn),
            s.accounts.total(),
            s.accounts.active,
            s.signed_in,
            s.never_signed_in,
            super::school::percent(s.activation),
            s.accounts.retiring,
            s.next_suspension
                .map_or_else(|| "–".to_owned(), |d| d.to_string()),
            s.accounts.suspended,
            if s.held > 0 { " class=\"held\"" } else { "" },
            s.held,
            s.last_change
                .map_or_else(|| "never".to_owned(), |t| esc(&display::time(t)))
        );
    }
    html.push_str("</table>\n");
}

/// One school's roles, retiring accounts and held accounts.
fn lists(html: &mut String, school: &School) {
    if let Some(n) = school.without_licence {
        let _ = writeln!(
            html,
            "<h2>Licences</h2>\n<p>{}</p>",
            display::count(
                n,
                "active account without a licence",
                "active accounts without a licence"
            )
        );
    }
    html.push_str("<h2>By role</h2>\n<table><tr><th>role</th><th>active</th><th>retiring</th><th>suspended</th></tr>\n");
    for role in Role::ALL {
        if let Some(st) = school.roles.get(role.as_str()) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                role.words(),
                st.active,
                st.retiring,
                st.suspended
            );
        }
    }
    html.push_str("</table>\n<h2>Retiring: suspended unless Dapodik lists them again</h2>\n");
    if school.retiring.is_empty() {
        html.push_str("<p>None.</p>\n");
    } else {
        html.push_str(
            "<table><tr><th>account</th><th class=\"l\">address</th><th class=\"l\">name</th><th>suspended on</th></tr>\n",
        );
        for r in &school.retiring {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
                esc(&r.account),
                esc(&r.email),
                esc(&r.name),
                r.suspend_on
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Held for a person</h2>\n");
    if school.held_accounts.is_empty() {
        html.push_str("<p>None.</p>\n");
    } else {
        html.push_str("<table><tr><th>account</th><th class=\"l\">address</th><th class=\"l\">why</th></tr>\n");
        for h in &school.held_accounts {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}: {}</td></tr>",
                esc(&h.account),
                esc(&h.email),
                h.list,
                esc(&h.reason)
            );
        }
        html.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_directory_is_escaped() {
        assert_eq!(
            esc("<script>\"a\" & b</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; b&lt;/script&gt;"
        );
    }
}
