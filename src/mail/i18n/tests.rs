//! Every built-in mail in every locale, fallbacks and overrides.

use std::path::Path;

use chrono::{TimeZone, Utc};
use fluent_bundle::FluentResource;
use fluent_syntax::ast;

use super::bundles::BUILT_IN_CATALOGUES;
use super::{Catalogues, Fill, Template, TemplateError};

fn ids(text: &str) -> Vec<String> {
    let resource = FluentResource::try_new(text.to_owned()).unwrap();
    let mut ids: Vec<String> = resource
        .entries()
        .filter_map(|e| match e {
            ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

fn fill(template: Template) -> Fill<'static> {
    let mut fill = template.sample();
    fill.now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).unwrap();
    fill
}

/// The text of `template` in `tag`, its sample values changed by `change`.
fn text_with(
    c: &Catalogues,
    template: Template,
    tag: &str,
    change: impl FnOnce(&mut Fill<'static>),
) -> String {
    let mut f = fill(template);
    change(&mut f);
    c.render(template, tag, &f).unwrap().text
}

#[test]
fn every_locale_has_every_message_and_renders_every_mail() {
    let english = ids(BUILT_IN_CATALOGUES[0].1);
    for template in Template::ALL {
        assert!(english.contains(&format!("{}-subject", template.prefix())));
    }
    let catalogues = Catalogues::built_in().unwrap();
    assert_eq!(catalogues.locales(), ["de", "en", "es", "fr"]);
    for (tag, text) in BUILT_IN_CATALOGUES {
        assert_eq!(ids(text), english, "{tag} has other messages than en");
        for template in Template::ALL {
            let mail = catalogues.render(template, tag, &fill(template)).unwrap();
            assert_eq!(mail.locale, tag);
            for part in [&mail.subject, &mail.text, &mail.html] {
                assert!(
                    !part.contains('{') && !part.contains('}'),
                    "{tag} {template:?}: {part}"
                );
            }
            assert!(mail.subject.starts_with("Ecoms"), "{tag}: {}", mail.subject);
            assert!(mail.html.contains(&format!("<html lang=\"{tag}\">")));
            assert!(mail.text.contains("Ann"));
            if tag != "en" {
                let english = catalogues.render(template, "en", &fill(template)).unwrap();
                assert_ne!(mail.subject, english.subject, "{tag} {template:?}");
                assert_ne!(mail.text, english.text, "{tag} {template:?}");
            }
        }
    }
}

#[test]
fn english_subjects_are_unchanged() {
    let c = Catalogues::built_in().unwrap();
    let subjects = [
        (Template::Welcome, "Ecoms Welcome Mail"),
        (Template::AccountExists, "Ecoms Account Already Exists"),
        (Template::PasswordReset, "Ecoms Password Reset"),
        (Template::PasswordChanged, "Ecoms Password Changed"),
        (
            Template::EmailChangeConfirm,
            "Ecoms Confirm Your New E-mail Address",
        ),
        (
            Template::EmailChangeRequested,
            "Ecoms E-mail Change Requested",
        ),
        (Template::AccountDeleted, "Ecoms Account Deleted"),
        (
            Template::SecondFactorEnabled,
            "Ecoms Two-Step Sign-In Turned On",
        ),
        (
            Template::SecondFactorDisabled,
            "Ecoms Two-Step Sign-In Turned Off",
        ),
        (Template::RecoveryCodeUsed, "Ecoms Recovery Code Used"),
    ];
    assert_eq!(subjects.len(), Template::ALL.len());
    for (template, subject) in subjects {
        let mail = c.render(template, "en", &fill(template)).unwrap();
        assert_eq!(mail.subject, subject);
    }
}

#[test]
fn recovery_codes_left_take_the_locale_plural_and_advice() {
    let c = Catalogues::built_in().unwrap();
    let cases = [
        (
            "en",
            0,
            "You have no recovery codes left. Create new ones on the site now",
        ),
        (
            "en",
            1,
            "You have 1 recovery code left. Create new ones on the site soon",
        ),
        (
            "en",
            3,
            "You have 3 recovery codes left. Create new ones on the site soon",
        ),
        ("en", 9, "You have 9 recovery codes left. When only a few"),
        ("fr", 0, "Il ne vous reste aucun code"),
        ("fr", 1, "Il vous reste 1 code de récupération."),
        ("fr", 2, "Il vous reste 2 codes de récupération."),
        ("de", 1, "noch 1 Wiederherstellungscode."),
        ("de", 7, "noch 7 Wiederherstellungscodes."),
        ("es", 1, "Te queda 1 código"),
        ("es", 8, "Te quedan 8 códigos"),
    ];
    for (tag, left, expected) in cases {
        let text = text_with(&c, Template::RecoveryCodeUsed, tag, |f| {
            f.codes_left = Some(left);
        });
        assert!(text.contains(expected), "{tag} {left}: {text}");
    }
}

#[test]
fn plurals_and_dates_come_from_the_locale() {
    let c = Catalogues::built_in().unwrap();
    let text = |tag: &str, secs: u64| {
        text_with(&c, Template::PasswordReset, tag, |f| {
            f.valid_for_secs = Some(secs);
        })
    };
    // 23:30 on 30 November plus the lifetime.
    assert!(text("en", 3600).contains("1 hour (until 1 December 2026, 00:30 UTC)"));
    assert!(text("en", 7200).contains("2 hours"));
    assert!(text("en", 90).contains("90 seconds"));
    assert!(text("de", 3600).contains("1 Stunde"));
    assert!(text("de", 172_800).contains("2 Tage"));
    assert!(text("de", 3600).contains("1. Dezember 2026"));
    assert!(text("fr", 60).contains("1 minute"));
    assert!(text("fr", 7200).contains("2 heures"));
    assert!(text("fr", 3600).contains("1 décembre 2026"));
    assert!(text("es", 3600).contains("1 hora"));
    assert!(text("es", 7200).contains("2 horas"));
    assert!(text("es", 3600).contains("diciembre de 2026"));
    // Far beyond any date: still a date, never a panic.
    assert!(!text("en", u64::MAX).is_empty());
}

#[test]
fn tags_fall_back_along_their_chain() {
    let c = Catalogues::built_in().unwrap();
    let locale = |tag: &str| {
        c.render(Template::Welcome, tag, &fill(Template::Welcome))
            .unwrap()
            .locale
    };
    assert_eq!(locale("fr-CA"), "fr");
    assert_eq!(locale("de-AT-1996"), "de");
    assert_eq!(locale("es-419"), "es");
    assert_eq!(locale("pt-BR"), "en");
    assert_eq!(locale(""), "en");
    assert_eq!(locale("not a tag"), "en");
    let german = Catalogues::load("de", None).unwrap();
    assert_eq!(german.default_locale(), "de");
    let mail = german
        .render(Template::Welcome, "pt-BR", &fill(Template::Welcome))
        .unwrap();
    assert_eq!(mail.locale, "de");
    assert_eq!(mail.subject, "Ecoms: Willkommen");
    assert!(matches!(
        Catalogues::load("it", None),
        Err(TemplateError::NoDefault(tag)) if tag == "it"
    ));
    assert_eq!(
        Catalogues::load("en-GB", None).unwrap().default_locale(),
        "en-GB"
    );
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn overrides_replace_single_files_and_the_rest_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "de/welcome_mail.txt",
        "{{ t.hello }} CODE {{ code }} {{ link }}\n",
    );
    // A layout in the style of the ones before the catalogues: its own
    // words and the formatted values.
    write(
        dir.path(),
        "es/password_reset.txt",
        "Hola {{ name }}: {{ link }} ({{ valid_for }}, {{ until }}, {{ date }})\n",
    );
    write(
        dir.path(),
        "fr/messages.ftl",
        "welcome-subject = { $site_name } : bonjour\n",
    );
    write(
        dir.path(),
        "it/messages.ftl",
        "hello = Ciao { $name },\nwelcome-subject = Benvenuto su { $site_name }\n",
    );
    write(dir.path(), "it/notes.md", "not a layout");
    write(dir.path(), ".git/config", "ignored");
    let c = Catalogues::load("en", Some(dir.path())).unwrap();
    let render = |tag: &str| {
        c.render(Template::Welcome, tag, &fill(Template::Welcome))
            .unwrap()
    };
    let de = render("de");
    assert!(
        de.text.starts_with("Hallo Ann, CODE 012345 https://"),
        "{}",
        de.text
    );
    assert!(
        de.html.contains("Willkommen bei Ecoms"),
        "the built-in de html stays"
    );
    let fr = render("fr-CA");
    assert_eq!(fr.subject, "Ecoms : bonjour");
    assert!(
        fr.text.contains("Bonjour Ann"),
        "other messages stay built in"
    );
    let it = render("it");
    assert_eq!(it.locale, "it");
    assert_eq!(it.subject, "Benvenuto su Ecoms");
    assert!(it.text.starts_with("Ciao Ann,"));
    assert!(
        it.text.contains("Welcome to Ecoms!"),
        "missing messages come from the default"
    );
    let en = render("en");
    assert_eq!(en.subject, "Ecoms Welcome Mail");
    let reset = c
        .render(
            Template::PasswordReset,
            "es",
            &fill(Template::PasswordReset),
        )
        .unwrap();
    assert!(
        reset.text.starts_with("Hola Ann: https://")
            && reset.text.contains(
                "(1 hora, 1 de diciembre de 2026, 00:30 (UTC), 30 de noviembre de 2026, 23:30 (UTC))"
            ),
        "{}",
        reset.text
    );
}

#[test]
fn a_broken_override_is_an_error_naming_its_file() {
    let cases = [
        ("de/messages.ftl", "welcome-subject = { $site_name\n"),
        ("de/messages.ftl", "welcome-subject = { $nobody }\n"),
        ("de/messages.ftl", "welcome-subject = { missing-message }\n"),
        ("de/messages.ftl", "date-format = %Q %\n"),
        (
            "de/messages.ftl",
            "valid-for = { $unit ->\n    [day] { $cuont } Tage\n   *[other] { $count }\n}\n",
        ),
        ("de/welcome_mail.html", "{% if %}"),
        ("de/welcome_mail.txt", "{{ t.no_such_message }}"),
        ("de/welcome_mail.txt", "{{ nothing_here }}"),
        ("de/account_deleted.txt", "\u{0}\u{fffe}{{"),
    ];
    for (file, text) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, text);
        let err = Catalogues::load("en", Some(dir.path()))
            .unwrap_err()
            .to_string();
        let path = dir.path().join(file).display().to_string();
        assert!(err.starts_with(&path), "{file} {text:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("de").with_extension(""), b"").ok();
    write(dir.path(), "not a tag!/messages.ftl", "hello = x\n");
    let err = Catalogues::load("en", Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a tag!"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("de")).unwrap();
    std::fs::write(dir.path().join("de/messages.ftl"), [0xff, 0xfe, 0x00]).unwrap();
    let err = Catalogues::load("en", Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("de/messages.ftl") && err.contains("UTF-8"),
        "{err}"
    );
    let missing = Catalogues::load("en", Some(Path::new("/no/such/folder")))
        .unwrap_err()
        .to_string();
    assert!(missing.starts_with("/no/such/folder"), "{missing}");
}
