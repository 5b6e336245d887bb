//! The password policy (issue 5): at least 12 characters, not the username, not a common password.
//!
//! Comparisons ignore case and Vietnamese diacritics ("Mật khẩu" is compared as "mat khau"), so
//! that writing a refused password with accents or capitals does not make it acceptable. The list
//! of common passwords is `common-passwords.txt`, shipped inside the binary.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

/// The shortest acceptable password, in characters.
pub const MIN_CHARS: usize = 12;
/// The longest accepted password, in characters (argon2 on megabytes is a denial of service).
pub const MAX_CHARS: usize = 256;

/// Why a new password is refused. Each message is in Vietnamese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer than [`MIN_CHARS`] characters.
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    TooLong,
    /// It is, or contains, the username.
    ContainsUsername,
    /// It is a common password, a common password with digits or symbols around it, or too
    /// repetitive (fewer than 5 different characters).
    Common,
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordProblem::TooShort => write!(
                f,
                "Mật khẩu phải có ít nhất {MIN_CHARS} ký tự / the password must have at least {MIN_CHARS} characters"
            ),
            PasswordProblem::TooLong => write!(
                f,
                "Mật khẩu không được dài quá {MAX_CHARS} ký tự / the password must not be longer than {MAX_CHARS} characters"
            ),
            PasswordProblem::ContainsUsername => f.write_str(
                "Mật khẩu không được chứa tên đăng nhập / the password must not contain the username",
            ),
            PasswordProblem::Common => f.write_str(
                "Mật khẩu quá phổ biến, dễ đoán / the password is too common and easy to guess",
            ),
        }
    }
}

impl std::error::Error for PasswordProblem {}

const COMMON_TEXT: &str = include_str!("common-passwords.txt");

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_TEXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(fold)
        .collect()
});

/// How many passwords the shipped common list holds.
pub fn common_count() -> usize {
    COMMON.len()
}

/// Whether `password` is on the shipped list of common passwords (ignoring case and Vietnamese
/// diacritics).
pub fn is_common(password: &str) -> bool {
    COMMON.contains(&fold(password))
}

/// Lower case without Vietnamese diacritics: "Mật Khẩu Đẹp" becomes "mat khau dep". Combining
/// marks (decomposed input) are dropped as well.
pub fn fold(s: &str) -> String {
    const GROUPS: [(&str, char); 7] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ìíỉĩị", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ùúủũụưừứửữự", 'u'),
        ("ỳýỷỹỵ", 'y'),
        ("đ", 'd'),
    ];
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            continue;
        }
        match GROUPS.iter().find(|(g, _)| g.contains(c)) {
            Some(&(_, base)) => out.push(base),
            None => out.push(c),
        }
    }
    out
}

/// Only the letters and digits of a folded string.
fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Checks a new password for `username` against the policy.
pub fn check(username: &str, password: &str) -> Result<(), PasswordProblem> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if n > MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    let pw = fold(password);
    let user = fold(username.trim());
    let (pw_c, user_c) = (compact(&pw), compact(&user));
    let contains = if user_c.chars().count() >= 3 {
        pw.contains(&user) || pw_c.contains(&user_c)
    } else {
        // A two-letter username ("an") is inside too many honest passwords to refuse them all.
        !user_c.is_empty() && pw_c == user_c
    };
    if contains {
        return Err(PasswordProblem::ContainsUsername);
    }
    if COMMON.contains(&pw) || COMMON.contains(&pw_c) {
        return Err(PasswordProblem::Common);
    }
    // A common password with only digits and symbols around it ("Matkhau@2024!").
    let core = pw.trim_matches(|c: char| !c.is_alphabetic());
    if core.chars().count() >= 4 && (COMMON.contains(core) || COMMON.contains(&compact(core))) {
        return Err(PasswordProblem::Common);
    }
    let distinct: HashSet<char> = pw.chars().collect();
    if distinct.len() < 5 {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused_counting_characters_not_bytes() {
        assert_eq!(check("hoa.tran", "abc"), Err(PasswordProblem::TooShort));
        assert_eq!(
            check("hoa.tran", "Kéo dài 1ký"),
            Err(PasswordProblem::TooShort)
        );
        // 12 characters, more than 12 bytes.
        assert_eq!(check("hoa.tran", "Đường về 9 ô"), Ok(()));
        assert_eq!(
            check("hoa.tran", &"x7".repeat(200)),
            Err(PasswordProblem::TooLong)
        );
    }

    #[test]
    fn the_username_is_refused_in_any_case_with_or_without_accents_and_separators() {
        let u = "nguyen.van.an";
        for pw in [
            "nguyen.van.an",
            "NGUYEN.VAN.AN",
            "Nguyễn.Văn.An@2024",
            "NguyenVanAn2024!",
            "Nguyễn Văn An 1990",
            "xx-nguyen_van_an-xx",
        ] {
            assert_eq!(check(u, pw), Err(PasswordProblem::ContainsUsername), "{pw}");
        }
        assert_eq!(
            check("tran.thi.hoa", "TrầnThịHoa#1985"),
            Err(PasswordProblem::ContainsUsername)
        );
        // A two-letter username is refused only as the whole password.
        assert_eq!(check("an", "bàn ăn gỗ lim đẹp"), Ok(()));
        assert_eq!(check("hoa.tran", "sông Hồng chảy ra biển"), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_ignoring_case_and_accents() {
        assert!(common_count() > 2000, "{}", common_count());
        for pw in [
            "123456789012",
            "matkhau123456",
            "Matkhau123456",
            "Mậtkhẩu123456",
            "Abc@123456789",
            "admin@123456",
            "changegate123",
            "Changegate@2024",
            "password1234",
            "qwertyuiop123",
            "anhyeuem1234",
            "Password2024!!",
            "aaaaaaaaaaaa",
            "abababababab",
        ] {
            assert_eq!(
                check("le.thanh.tra", pw),
                Err(PasswordProblem::Common),
                "{pw}"
            );
        }
        assert!(is_common("MATKHAU123"));
        assert!(is_common("123456789"));
    }

    #[test]
    fn a_long_unusual_passphrase_is_accepted() {
        assert_eq!(check("do.minh.duc", "mưa phùn trên đèo Hải Vân 7"), Ok(()));
        assert_eq!(check("do.minh.duc", "correct horse battery staple"), Ok(()));
    }

    #[test]
    fn folding_removes_vietnamese_diacritics_precomposed_and_combining() {
        assert_eq!(fold("Mật Khẩu Đẹp Ở Ưu Ỹ"), "mat khau dep o uu y");
        // "ệ" decomposed: e + circumflex + dot below.
        assert_eq!(fold("Vie\u{302}\u{323}t"), "viet");
        assert_eq!(fold("ĐƯỜNG"), "duong");
    }

    #[test]
    fn messages_are_in_vietnamese_and_english() {
        for p in [
            PasswordProblem::TooShort,
            PasswordProblem::TooLong,
            PasswordProblem::ContainsUsername,
            PasswordProblem::Common,
        ] {
            let m = p.to_string();
            assert!(m.contains(" / "), "{m}");
        }
    }
}
