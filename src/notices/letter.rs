//! The text of a notice, in Bahasa Indonesia: what happens to the account, on which day,
//! what to save before, and where the person's new account is when they have one. Pure.

use crate::directory::model::{Account, Jenjang};
use crate::display::tanggal;
use jiff::civil::Date;

/// A notice ready to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Letter {
    pub subject: String,
    pub body: String,
}

/// The notice `days` days before `account` is suspended on `suspend_on`; `successor` is
/// the person's active account on another level, if any (a student who moved up).
pub fn compose(
    account: &Account,
    suspend_on: Date,
    days: i64,
    successor: Option<&Account>,
) -> Letter {
    let day = tanggal(suspend_on);
    let subject = format!(
        "Akun belajar.id {} akan dinonaktifkan pada {day}",
        account.email
    );
    let when = match days {
        1 => "besok".to_owned(),
        d => format!("{d} hari lagi"),
    };
    let mut body = format!(
        "Yth. {name},\n\
         \n\
         Akun belajar.id Anda, {email}, tidak lagi tercatat aktif di Dapodik untuk jenjang \
         {jenjang} di sekolah dengan NPSN {npsn}. Karena itu akun ini akan dinonaktifkan \
         pada {day} ({when}). Sejak hari itu Anda tidak dapat lagi masuk ke Gmail, Google \
         Drive, Google Classroom, dan layanan lain dengan akun ini.\n\
         \n\
         Sebelum {day}, simpanlah yang masih Anda perlukan:\n\
         - berkas di Google Drive, foto, dan email penting: unduh semuanya sekaligus di \
         https://takeout.google.com dengan masuk memakai akun ini;\n\
         - dokumen yang dibagikan kepada Anda: minta pemiliknya membagikannya ke akun \
         Anda yang lain;\n\
         - tugas dan nilai di Google Classroom yang ingin Anda simpan.\n\
         \n",
        name = account.full_name,
        email = account.email,
        jenjang = level_name(account.jenjang),
        npsn = account.npsn,
    );
    match successor {
        Some(next) => body.push_str(&format!(
            "Akun belajar.id Anda yang baru untuk jenjang {} adalah {}. Gunakan akun itu \
             mulai sekarang; kata sandi pertamanya diberikan oleh operator sekolah Anda.\n\n",
            level_name(next.jenjang),
            next.email
        )),
        None => body.push_str(
            "Jika Anda masih bersekolah atau bekerja di sekolah tersebut, mintalah operator \
             sekolah memperbarui data Anda di Dapodik sebelum tanggal itu: akun ini akan \
             tetap aktif.\n\n",
        ),
    }
    body.push_str(
        "Email ini dikirim otomatis oleh pengelola Akun belajar.id; mohon tidak membalasnya. \
         Pertanyaan dapat diajukan kepada operator sekolah Anda.\n",
    );
    Letter { subject, body }
}

/// The level as schools name it.
fn level_name(jenjang: Jenjang) -> &'static str {
    match jenjang {
        Jenjang::Paud => "PAUD",
        Jenjang::Sd => "SD",
        Jenjang::Smp => "SMP",
        Jenjang::Sma => "SMA",
        Jenjang::Smk => "SMK",
        Jenjang::Slb => "SLB",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Role;

    #[test]
    fn a_student_who_moved_up_is_told_the_day_and_the_new_account() {
        let old = Account::student("0012345678", "Siti Aminah", "siti.aminah@sd.belajar.id");
        let mut new = old.clone();
        new.jenjang = Jenjang::Smp;
        new.email = "siti.aminah@smp.belajar.id".into();
        let letter = compose(&old, jiff::civil::date(2027, 1, 4), 30, Some(&new));
        assert_eq!(
            letter.subject,
            "Akun belajar.id siti.aminah@sd.belajar.id akan dinonaktifkan pada Senin, 4 Januari 2027"
        );
        assert!(letter.body.starts_with("Yth. Siti Aminah,"));
        assert!(letter.body.contains("(30 hari lagi)"), "{}", letter.body);
        assert!(letter.body.contains("https://takeout.google.com"));
        assert!(
            letter
                .body
                .contains("jenjang SMP adalah siti.aminah@smp.belajar.id")
        );
    }

    #[test]
    fn without_a_new_account_the_school_operator_is_named() {
        let mut teacher = Account::student("0012345678", "Budi", "budi@guru.sd.belajar.id");
        teacher.role = Role::Pendidik;
        let letter = compose(&teacher, jiff::civil::date(2027, 1, 4), 3, None);
        assert!(letter.body.contains("(3 hari lagi)"));
        assert!(letter.body.contains("memperbarui data Anda di Dapodik"));
    }
}
