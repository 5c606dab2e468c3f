//! Cek Akun (`/cek-akun`): a person gives the school's NPSN, their full name and birth date
//! (and their role) and learns, in plain words, where their account stands: its address
//! and state, when it is made, why it retires or is suspended; and when it is out of step
//! with Google, a button runs the repair `resync` makes (as the holder asks: what an
//! administrator did in Google stays for the helpdesk).

use super::{Public, Visitor, account_limit_key, birth_date, count, record, steady};
use crate::audit::{self, HeldList};
use crate::directory::model::{Account, DesiredState, Role};
use crate::directory::naming;
use crate::planner::{ActionKind, Asker};
use crate::reconciler::repair::Report;
use crate::web::Console;
use crate::web::pages::layout;
use crate::web::school::is_npsn;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// What the form sends (the repair's form sends it again, with the account).
#[derive(Debug, Default, Deserialize)]
pub struct Asked {
    #[serde(default)]
    token: String,
    #[serde(default)]
    npsn: String,
    #[serde(default)]
    nama: String,
    #[serde(default)]
    tanggal_lahir: String,
    #[serde(default)]
    peran: String,
    /// The account to repair (its key).
    #[serde(default)]
    akun: String,
}

/// A question that reads: the school, the name as compared, the birth date, the roles.
struct Question {
    npsn: String,
    name: String,
    birth_date: Date,
    roles: Option<&'static [Role]>,
}

/// The roles a person may say they have, as the form offers them.
const ROLES: [(&str, &str, &[Role]); 3] = [
    (
        "peserta_didik",
        "Peserta didik (siswa)",
        &[Role::PesertaDidik],
    ),
    ("pendidik", "Guru (pendidik)", &[Role::Pendidik]),
    (
        "tenaga_kependidikan",
        "Tenaga kependidikan, operator, kepala sekolah",
        &[
            Role::TenagaKependidikan,
            Role::Operator,
            Role::KepalaSekolah,
        ],
    ),
];

impl Asked {
    /// The question, or what is wrong with the form (said before any limit is taken: it
    /// tells nothing about anyone).
    fn question(&self) -> Result<Question, &'static str> {
        let npsn = self.npsn.trim();
        if !is_npsn(npsn) {
            return Err("NPSN sekolah terdiri dari 8 angka. Periksa kembali, lalu coba lagi.");
        }
        let name = naming::compared_name(&self.nama);
        if name.is_empty() || self.nama.len() > 200 {
            return Err("Tulis nama lengkap Anda seperti tertulis di Dapodik.");
        }
        let birth_date = birth_date(&self.tanggal_lahir)
            .ok_or("Tulis tanggal lahir Anda (hari-bulan-tahun), lalu coba lagi.")?;
        let roles = ROLES
            .iter()
            .find(|(value, ..)| *value == self.peran)
            .map(|(.., roles)| *roles);
        Ok(Question {
            npsn: npsn.to_owned(),
            name,
            birth_date,
            roles,
        })
    }
}

/// The accounts of the school whose name, birth date and role are the question's: those
/// the school index says may be (see [`naming::person_tag`]), read and compared.
fn matching(console: &Console, q: &Question) -> Result<Vec<Account>, crate::store::StoreError> {
    let store = console.daemon.store();
    let tag = naming::person_tag(&q.name, Some(q.birth_date));
    let mut found = Vec::new();
    for key in store.school_members_tagged(&q.npsn, &tag)? {
        let Some(account) = store.account(&key)? else {
            continue;
        };
        let same = account.birth_date == Some(q.birth_date)
            && naming::compared_name(&account.full_name) == q.name
            && q.roles.is_none_or(|roles| roles.contains(&account.role));
        if same {
            found.push(account);
        }
    }
    Ok(found)
}

/// Where an account stands, as the page says it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Standing {
    /// Not in Google yet: made at the next rounds (`None`: a round runs now).
    Queued {
        next_round: Option<Timestamp>,
    },
    /// Something the daemon could not do by itself is held for the helpdesk.
    Held,
    /// In Google, its licence's assignment waiting in the journal.
    WaitingLicence,
    /// Ready, never signed in: the operator has the card with the first password.
    Ready,
    Active,
    /// Listed no more: suspended on `day` (already, when `ended`).
    Retiring {
        day: Date,
        ended: bool,
        /// Dapodik lists the person as `keluar` (said only to who matched).
        keluar: bool,
        /// The person's account on their new level.
        successor: Option<String>,
    },
    /// Suspended here for the terms of use: only the helpdesk lifts it.
    Suspended {
        reason: String,
    },
}

impl Standing {
    /// Whether the repair button is offered: the account should work in Google.
    fn repairable(&self) -> bool {
        match self {
            Standing::Retiring { ended, .. } => !ended,
            Standing::Suspended { .. } | Standing::Queued { .. } => false,
            _ => true,
        }
    }
}

/// What the store knows of a matched account, for [`standing`].
struct Facts {
    signed_in: bool,
    held: bool,
    licence_waiting: bool,
    /// For a retiring account: its suspension day, `keluar`, the new level's address.
    retiring: Option<(Date, bool, Option<String>)>,
    next_round: Option<Timestamp>,
}

/// Where `account` stands, from `facts`, `today`. Pure.
fn standing(account: &Account, facts: &Facts, today: Date) -> Standing {
    match &account.state {
        DesiredState::Suspended { reason, .. } => {
            return Standing::Suspended {
                reason: reason.clone(),
            };
        }
        DesiredState::Retiring { .. } => {
            if let Some((day, keluar, successor)) = &facts.retiring {
                return Standing::Retiring {
                    day: *day,
                    ended: *day <= today,
                    keluar: *keluar,
                    successor: successor.clone(),
                };
            }
        }
        DesiredState::Active => {}
    }
    if facts.held {
        Standing::Held
    } else if account.google.is_none() {
        Standing::Queued {
            next_round: facts.next_round,
        }
    } else if facts.licence_waiting {
        Standing::WaitingLicence
    } else if facts.signed_in {
        Standing::Active
    } else {
        Standing::Ready
    }
}

/// Where a matched account stands, from what the store knows of it.
fn look_up(console: &Console, account: &Account) -> Result<Standing, crate::store::StoreError> {
    let store = console.daemon.store();
    let config = console.daemon.config();
    let key = account.key();
    let subject = key.to_string();
    let today = crate::reconciler::today();
    let (held, pending) = {
        let changes = store.changes(true);
        let held = audit::held(&changes, HeldList::Quarantine, &subject)?.is_some()
            || audit::held(&changes, HeldList::Conflicts, &subject)?.is_some();
        (held, crate::journal::pending_for(&changes, &subject)?)
    };
    let retiring = match account.state {
        DesiredState::Retiring { since } => {
            let day = crate::planner::suspension_day(since, config.lifecycle.grace_days);
            let keluar = audit::history(&store, &subject)?
                .iter()
                .any(|e| e.detail.starts_with("retiring: listed as keluar"));
            let successor = store
                .active_elsewhere(account)?
                .map(|next| format!("{} ({})", next.email, next.jenjang.as_str().to_uppercase()));
            Some((day, keluar, successor))
        }
        _ => None,
    };
    let facts = Facts {
        signed_in: crate::access::of(&store, &key)?.is_some_and(|a| a.signed_in()),
        held,
        // Its assignment waits in the journal (for a licence to be free, or its turn).
        licence_waiting: pending.is_some_and(|e| e.action.kind == ActionKind::Licence),
        retiring,
        next_round: console.daemon.next_round(),
    };
    Ok(standing(account, &facts, today))
}

/// `GET /cek-akun`.
pub async fn form(visitor: Visitor) -> Response {
    let page = page(&visitor, &Asked::default(), html! {});
    visitor.page(page)
}

/// `POST /cek-akun`.
pub async fn answer(
    visitor: Visitor,
    State(console): State<Arc<Console>>,
    Form(asked): Form<Asked>,
) -> Response {
    steady(&console, async {
        let question = match checked(&console, &visitor, &asked).await {
            Ok(question) => question,
            Err(refused) => return refused,
        };
        let found = console
            .blocking(move |c| -> Result<_, crate::store::StoreError> {
                let mut found = Vec::new();
                for account in matching(c, &question)? {
                    let standing = look_up(c, &account)?;
                    found.push((account, standing));
                }
                Ok(found)
            })
            .await;
        let found = match found {
            Ok(found) => found,
            Err(error) => return crate::web::Refusal::failed("-", &error).page(None),
        };
        if found.is_empty() {
            tracing::info!(address = %visitor.address, npsn = %asked.npsn.trim(), "cek-akun: no match");
            return page(&visitor, &asked, no_match()).into_response();
        }
        // The lookup is in each found account's history before the answer leaves.
        let subjects = found.iter().map(|(a, _)| a.key().to_string()).collect();
        let line = format!(
            "found on the Cek Akun page by {} (NPSN, name and birth date)",
            visitor.actor("cek-akun")
        );
        if let Err(error) = record(&console, subjects, "cek-akun", line).await {
            return crate::web::Refusal::failed("-", &error).page(None);
        }
        count(Public::Match);
        for (account, _) in &found {
            tracing::info!(address = %visitor.address, account = %account.key(), "cek-akun: found");
        }
        let body = html! { @for (account, standing) in &found { (account_part(&asked, &visitor, account, standing)) } };
        page(&visitor, &asked, body).into_response()
    })
    .await
}

/// The form's token, the question, the limits (one try of the address's and of the
/// school-and-name's allowance): the question, or the answer that refuses it.
async fn checked(
    console: &Arc<Console>,
    visitor: &Visitor,
    asked: &Asked,
) -> Result<Question, Response> {
    visitor.check_form(&asked.token)?;
    let question = asked.question().map_err(|wrong| {
        (
            StatusCode::BAD_REQUEST,
            page(visitor, asked, html! { p.error { (wrong) } }),
        )
            .into_response()
    })?;
    let account = account_limit_key("cek", &[&question.npsn, &question.name]);
    console.take_public(visitor.address, account).await?;
    Ok(question)
}

/// `POST /cek-akun/perbaiki`: the question again and the account: the repair, in words.
pub async fn repair(
    visitor: Visitor,
    State(console): State<Arc<Console>>,
    Form(asked): Form<Asked>,
) -> Response {
    let found = steady(&console, async {
        let question = checked(&console, &visitor, &asked).await?;
        let wanted = asked.akun.trim().to_owned();
        let found = console
            .blocking(move |c| matching(c, &question))
            .await
            .map_err(|error| crate::web::Refusal::failed("-", &error).page(None))?;
        match found.into_iter().find(|a| a.key().to_string() == wanted) {
            Some(account) => Ok(account),
            None => Err(page(&visitor, &asked, no_match()).into_response()),
        }
    })
    .await;
    let account = match found {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    count(Public::Repair);
    let actor = visitor.actor("cek-akun");
    tracing::info!(address = %visitor.address, account = %account.key(), "cek-akun: repair asked");
    let config = console.daemon.config();
    let store = console.daemon.store();
    let repaired = crate::reconciler::repair::resync(
        &store,
        &console.daemon.client,
        &config,
        &account,
        crate::reconciler::today(),
        (&actor, Asker::Holder),
    )
    .await;
    let words = match &repaired {
        Ok(report) => repair_words(&account, report),
        Err(error) => {
            tracing::warn!(account = %account.key(), %error, "cek-akun: the repair failed");
            Outcome {
                class: "error",
                said: "Perbaikan belum dapat dilakukan karena Google tidak dapat dihubungi. Coba lagi beberapa saat lagi.".into(),
                done: Vec::new(),
            }
        }
    };
    let detail = repaired.ok().and_then(|r| r.to_do);
    let body = html! {
        p class=(words.class) id="hasil" { (words.said) }
        @if !words.done.is_empty() {
            ul { @for done in &words.done { li { (done) } } }
        }
        @if let Some(detail) = detail {
            details { summary { "Rincian untuk helpdesk" } pre { (detail) } }
        }
        p { a href="/cek-akun" { "Kembali ke Cek Akun" } }
    };
    visitor.page(layout("Perbaikan akun", None, body))
}

/// What a repair did, in words a pupil understands.
struct Outcome {
    class: &'static str,
    said: String,
    done: Vec<String>,
}

/// The words of a repair's report. Pure.
fn repair_words(account: &Account, report: &Report) -> Outcome {
    let done: Vec<String> = report.fixes.iter().flat_map(fix_words).collect();
    if account.state == DesiredState::Active && report.suspended_in_google {
        return Outcome {
            class: "error",
            said: "Akun Anda ditangguhkan oleh admin di Google. Penangguhan itu hanya dapat dicabut oleh helpdesk: minta operator sekolah Anda menghubungi helpdesk Akun belajar.id.".into(),
            done,
        };
    }
    match (report.healthy, done.is_empty()) {
        (true, true) => Outcome {
            class: "ok",
            said: "Akun Anda sudah sesuai dengan Google: tidak ada yang perlu diperbaiki. Jika masih tidak bisa masuk, gunakan Lupa kata sandi atau hubungi operator sekolah.".into(),
            done,
        },
        (true, false) => Outcome {
            class: "ok",
            said: "Akun Anda sudah diperbaiki dan sekarang sesuai dengan Google:".into(),
            done,
        },
        (false, _) => Outcome {
            class: "note",
            said: "Perbaikan belum selesai. Masalahnya sudah dicatat untuk helpdesk; operator sekolah Anda dapat menanyakannya.".into(),
            done,
        },
    }
}

/// One call of a repair in words.
fn fix_words(fix: &crate::reconciler::repair::Fix) -> Vec<String> {
    let said = match fix.kind {
        ActionKind::Create => "akun dibuat di Google",
        ActionKind::Undelete => "akun yang terhapus dipulihkan",
        ActionKind::Unsuspend => "penangguhan dicabut",
        ActionKind::Licence => "lisensi Google Workspace diberikan",
        ActionKind::CreateOrgUnit => "unit organisasi sekolah dibuat",
        _ => {
            return fix
                .fields
                .iter()
                .filter_map(|field| {
                    Some(match field.as_str() {
                        "name" => "nama diperbaiki sesuai Dapodik",
                        "orgUnitPath" => "akun dipindahkan ke unit organisasi sekolahnya",
                        "organizations" => "data sekolah diperbaiki",
                        "primaryEmail" => "alamat akun diperbaiki",
                        "externalIds" => "penanda akun diperbaiki",
                        "archived" => "akun dikeluarkan dari arsip",
                        "suspended" => "status penangguhan diperbaiki",
                        _ => return None,
                    })
                })
                .map(str::to_owned)
                .collect();
        }
    };
    vec![said.to_owned()]
}

/// The one answer for every question that matched nobody.
fn no_match() -> Markup {
    html! {
        div.note id="tidak-ditemukan" {
            p { strong { "Data tidak ditemukan." } }
            p { "Periksa kembali NPSN sekolah, nama lengkap (seperti tertulis di Dapodik) dan tanggal lahir Anda." }
            p { "Jika semuanya sudah benar, minta operator sekolah Anda memeriksa data Anda di Dapodik: ejaan nama, tanggal lahir, dan statusnya. Akun dibuat setelah data di Dapodik benar dan terkirim." }
        }
    }
}

/// One matched account: its address and where it stands, and the repair's button.
fn account_part(
    asked: &Asked,
    visitor: &Visitor,
    account: &Account,
    standing: &Standing,
) -> Markup {
    html! {
        section.akun {
            table {
                tr { th { "Nama" } td { (account.full_name) } }
                tr { th { "Alamat akun" } td.alamat { (account.email) } }
                tr { th { "Peran" } td { (account.role.words()) } }
                tr { th { "Jenjang" } td { (account.jenjang.as_str().to_uppercase()) } }
            }
            (standing_words(standing))
            @if standing.repairable() {
                form method="post" action="/cek-akun/perbaiki" {
                    (hidden(asked, visitor))
                    input type="hidden" name="akun" value=(account.key());
                    p { small { "Akun tidak bisa dipakai, atau nama dan sekolahnya di Google berbeda? Tekan tombol ini: data akun di Google dibandingkan dengan data Dapodik dan diperbaiki." } }
                    button type="submit" id="perbaiki" { "Perbaiki akun saya" }
                }
            }
        }
    }
}

/// What a standing says.
fn standing_words(standing: &Standing) -> Markup {
    match standing {
        Standing::Queued { next_round } => html! {
            p.note id="keadaan" {
                "Akun Anda belum ada di Google: akun sedang diantrekan untuk dibuat. "
                @match next_round {
                    Some(at) => { "Putaran pembuatan berikutnya diperkirakan pukul " (crate::display::pukul(*at)) ". " }
                    None => { "Putaran pembuatan sedang berjalan sekarang. " }
                }
                "Setelah akun dibuat, operator sekolah memberi Anda kartu akun berisi sandi pertama."
            }
        },
        Standing::Held => html! {
            p.note id="keadaan" { "Ada masalah dengan akun Anda yang belum dapat diselesaikan otomatis. Tekan \"Perbaiki akun saya\" untuk mencoba lagi; jika tetap gagal, helpdesk akan memeriksanya." }
        },
        Standing::WaitingLicence => html! {
            p.note id="keadaan" { "Akun Anda sudah dibuat di Google, tetapi masih menunggu lisensi Google Workspace. Lisensi diberikan otomatis begitu tersedia; sampai saat itu sebagian layanan belum bisa dipakai." }
        },
        Standing::Ready => html! {
            p.ok id="keadaan" { "Akun Anda siap dipakai, tetapi belum pernah digunakan untuk masuk. Mintalah kartu akun berisi sandi pertama kepada operator sekolah Anda, atau gunakan " a href="/lupa-sandi" { "Lupa kata sandi" } "." }
        },
        Standing::Active => html! {
            p.ok id="keadaan" { "Akun Anda aktif dan sudah pernah dipakai untuk masuk. Lupa sandinya? Gunakan " a href="/lupa-sandi" { "Lupa kata sandi" } "." }
        },
        Standing::Retiring {
            day,
            ended,
            keluar,
            successor,
        } => html! {
            p.note id="keadaan" {
                @if *keluar { "Data Anda di Dapodik berstatus keluar dari sekolah ini. " }
                @else { "Data Anda tidak lagi tercantum di Dapodik sekolah ini. " }
                @if *ended { "Karena itu akun ini sudah dinonaktifkan sejak " (crate::display::tanggal(*day)) ". " }
                @else { "Karena itu akun ini akan dinonaktifkan pada " (crate::display::tanggal(*day)) ". Simpan yang masih Anda perlukan sebelum hari itu. " }
                @if let Some(next) = successor { "Akun Anda di jenjang yang baru: " strong.baru { (next) } ". " }
                @else if !*keluar { "Jika Anda masih bersekolah di sini, minta operator sekolah memperbaiki data Anda di Dapodik." }
            }
        },
        Standing::Suspended { reason } => html! {
            p.error id="keadaan" {
                "Akun Anda ditangguhkan karena pelanggaran ketentuan penggunaan (" (reason) "). Penangguhan ini hanya dapat dicabut oleh helpdesk Akun belajar.id; minta operator sekolah Anda menghubungi helpdesk."
            }
        },
    }
}

/// The question again, as hidden fields of the repair's form.
fn hidden(asked: &Asked, visitor: &Visitor) -> Markup {
    html! {
        input type="hidden" name="token" value=(visitor.token);
        input type="hidden" name="npsn" value=(asked.npsn.trim());
        input type="hidden" name="nama" value=(asked.nama.trim());
        input type="hidden" name="tanggal_lahir" value=(asked.tanggal_lahir.trim());
        input type="hidden" name="peran" value=(asked.peran);
    }
}

/// The Cek Akun page: the form (filled again with what was asked) and `answer`.
fn page(visitor: &Visitor, asked: &Asked, answer: Markup) -> Markup {
    layout(
        "Cek Akun belajar.id",
        None,
        html! {
            (answer)
            p { "Cari akun belajar.id Anda dengan data sekolah dan data diri Anda seperti tercatat di Dapodik." }
            form method="post" action="/cek-akun" {
                input type="hidden" name="token" value=(visitor.token);
                label { "NPSN sekolah " input type="text" id="npsn" name="npsn" value=(asked.npsn) inputmode="numeric" maxlength="8" required; }
                label { "Nama lengkap " input type="text" id="nama" name="nama" value=(asked.nama) maxlength="200" autocomplete="name" required; }
                label { "Tanggal lahir " input type="date" id="tanggal_lahir" name="tanggal_lahir" value=(asked.tanggal_lahir) required; }
                label { "Peran "
                    select id="peran" name="peran" {
                        option value="" { "(semua)" }
                        @for (value, words, _) in ROLES {
                            option value=(value) selected[asked.peran == value] { (words) }
                        }
                    }
                }
                button type="submit" id="cek" { "Cek akun" }
            }
            p { small { "Lupa kata sandi? " a href="/lupa-sandi" { "Atur ulang di sini" } ". Data yang Anda isi hanya dipakai untuk mencari akun Anda." } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::GoogleLink;

    fn facts() -> Facts {
        Facts {
            signed_in: false,
            held: false,
            licence_waiting: false,
            retiring: None,
            next_round: None,
        }
    }

    #[test]
    fn where_an_account_stands() {
        let today = jiff::civil::date(2026, 12, 4);
        let mut account = Account::student("0012345678", "Siti Aminah", "siti@sd.belajar.id");
        let next = Timestamp::now();
        let waiting = Facts {
            next_round: Some(next),
            ..facts()
        };
        assert_eq!(
            standing(&account, &waiting, today),
            Standing::Queued {
                next_round: Some(next)
            }
        );
        account.google = Some(GoogleLink {
            id: "1".into(),
            suspended_by_us: false,
            licence: None,
            licence_freed: None,
        });
        assert_eq!(standing(&account, &facts(), today), Standing::Ready);
        let signed_in = Facts {
            signed_in: true,
            ..facts()
        };
        assert_eq!(standing(&account, &signed_in, today), Standing::Active);
        let licence = Facts {
            licence_waiting: true,
            ..facts()
        };
        assert_eq!(
            standing(&account, &licence, today),
            Standing::WaitingLicence
        );
        let held = Facts {
            held: true,
            ..facts()
        };
        assert_eq!(standing(&account, &held, today), Standing::Held);

        account.state = DesiredState::Retiring {
            since: jiff::civil::date(2026, 11, 20),
        };
        let day = jiff::civil::date(2026, 12, 20);
        let retiring = Facts {
            retiring: Some((day, true, None)),
            ..facts()
        };
        let said = standing(&account, &retiring, today);
        assert!(matches!(
            said,
            Standing::Retiring {
                ended: false,
                keluar: true,
                ..
            }
        ));
        assert!(said.repairable());
        let after = standing(&account, &retiring, jiff::civil::date(2026, 12, 21));
        assert!(matches!(after, Standing::Retiring { ended: true, .. }));
        assert!(!after.repairable());

        account.state = DesiredState::Suspended {
            reason: "spam".into(),
            since: today,
        };
        let said = standing(&account, &signed_in, today);
        assert_eq!(
            said,
            Standing::Suspended {
                reason: "spam".into()
            }
        );
        assert!(!said.repairable());
    }

    #[test]
    fn an_admins_suspension_is_left_to_the_helpdesk_in_words() {
        let account = Account::student("0012345678", "Siti Aminah", "siti@sd.belajar.id");
        let report = Report {
            suspended_in_google: true,
            ..Report::default()
        };
        let words = repair_words(&account, &report);
        assert!(
            words.said.contains("hanya dapat dicabut oleh helpdesk"),
            "{}",
            words.said
        );
        let moved = Report {
            healthy: true,
            fixes: vec![crate::reconciler::repair::Fix {
                kind: ActionKind::Update,
                fields: vec!["orgUnitPath".into(), "name".into()],
            }],
            ..Report::default()
        };
        let words = repair_words(&account, &moved);
        assert_eq!(words.class, "ok");
        assert_eq!(
            words.done,
            [
                "akun dipindahkan ke unit organisasi sekolahnya",
                "nama diperbaiki sesuai Dapodik"
            ]
        );
    }
}
