//! Mail in the shopper's language, over a real SMTP server: every shipped
//! locale, fallback chains, DEFAULT_LOCALE, UpdateProfile and operator
//! overrides of the text.

use std::time::Duration;

use account_service::proto::account::v1::{
    RequestPasswordResetRequest, ResendConfirmationRequest, UpdateProfileRequest,
};
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

on_both_backends!(
    each_shipped_locale_mails_in_its_language,
    tags_fall_back_and_the_default_locale_applies,
    malformed_tags_are_refused_and_change_nothing,
    a_changed_locale_changes_the_next_mail,
    overridden_text_is_used_and_the_rest_falls_back,
);

const WAIT: Duration = Duration::from_secs(20);

fn in_locale(email: &str, locale: &str) -> account_service::proto::account::v1::RegisterRequest {
    let mut request = registration(email);
    request.locale = locale.into();
    request
}

/// What each shipped locale's welcome mail says, in words no other locale
/// uses.
const WELCOME: [(&str, &str, &str, &str); 4] = [
    (
        "en",
        "Ecoms Welcome Mail",
        "Hello shopper,",
        "The link and the code are valid for 1 hour",
    ),
    (
        "de",
        "Willkommen",
        "Hallo shopper,",
        "Der Link und der Code sind 1 Stunde lang gültig",
    ),
    ("fr", "Bienvenue", "Bonjour shopper,", "valables 1 heure"),
    (
        "es",
        "bienvenida",
        "Hola, shopper:",
        "válidos durante 1 hora",
    ),
];

async fn each_shipped_locale_mails_in_its_language(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    for (i, (locale, subject, hello, validity)) in WELCOME.iter().enumerate() {
        let email = unique_email();
        let account = app.register(in_locale(&email, locale)).await.unwrap();
        assert_eq!(account.locale, *locale);
        assert_eq!(app.get_by_id(&account.id).await.unwrap().locale, *locale);
        let mails = smtp.wait_for(i * 2 + 1, WAIT).await;
        let mail = mails.iter().find(|m| m.to == email).unwrap();
        assert!(
            mail.subject.starts_with("Ecoms"),
            "{locale}: {}",
            mail.subject
        );
        assert!(mail.subject.contains(subject), "{locale}: {}", mail.subject);
        assert!(mail.text.contains(hello), "{locale}: {}", mail.text);
        assert!(mail.text.contains(validity), "{locale}: {}", mail.text);
        assert!(mail.html.contains(&format!("<html lang=\"{locale}\">")));
        assert_eq!(mail.content_language, *locale);
        assert!(mail.html.contains(hello), "{locale}: {}", mail.html);
        // The code and the link work whatever the language.
        assert_eq!(mail.code().len(), 6);
        let response = app.http.get(mail.link()).send().await.unwrap();
        assert_eq!(response.headers()["location"], HOMEPAGE);
        // A second kind of mail, in the same language.
        app.client
            .clone()
            .request_password_reset(RequestPasswordResetRequest {
                email: email.clone(),
            })
            .await
            .unwrap();
        let mails = smtp.wait_for(i * 2 + 2, WAIT).await;
        let reset = mails.iter().filter(|m| m.to == email).nth(1).unwrap();
        let english = ["Password Reset", "Someone asked to reset"];
        if *locale == "en" {
            assert_eq!(reset.subject, "Ecoms Password Reset");
        } else {
            assert!(english
                .iter()
                .all(|w| !reset.subject.contains(w) && !reset.text.contains(w)));
            assert!(reset.text.contains(hello), "{locale}: {}", reset.text);
        }
    }
}

async fn tags_fall_back_and_the_default_locale_applies(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend.clone())
        .set_all(smtp_settings(smtp.url()))
        .await;
    // fr-CA has no text of its own: French. pt-BR has none at all: the
    // default. The tag is kept as the shopper gave it (canonical).
    for (i, (given, kept, hello)) in [
        ("fr-ca", "fr-CA", "Bonjour shopper,"),
        ("pt-BR", "pt-BR", "Hello shopper,"),
        ("", "en", "Hello shopper,"),
        ("  DE  ", "de", "Hallo shopper,"),
    ]
    .into_iter()
    .enumerate()
    {
        let email = unique_email();
        let account = app.register(in_locale(&email, given)).await.unwrap();
        assert_eq!(account.locale, kept, "{given:?}");
        let mails = smtp.wait_for(i + 1, WAIT).await;
        let mail = mails.iter().find(|m| m.to == email).unwrap();
        assert!(mail.text.starts_with(hello), "{given:?}: {}", mail.text);
    }
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM accounts WHERE locale = ''")
            .await,
        1,
        "an empty locale is stored as none, so it follows DEFAULT_LOCALE"
    );

    let smtp = SmtpServer::start(Behaviour::Accept);
    let german = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("DEFAULT_LOCALE", "de")
        .await;
    let email = unique_email();
    let account = german.register(registration(&email)).await.unwrap();
    assert_eq!(account.locale, "de");
    let other = german
        .register(in_locale(&unique_email(), "it"))
        .await
        .unwrap();
    assert_eq!(other.locale, "it");
    let mails = smtp.wait_for(2, WAIT).await;
    for mail in &mails {
        assert!(mail.subject.contains("Willkommen"), "{}", mail.subject);
        assert!(mail.text.starts_with("Hallo shopper,"));
    }
}

async fn malformed_tags_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        "12",
        "en_",
        "de DE",
        "fr-CA-",
        "ü",
        "x".repeat(60 * 1024).as_str(),
        "en-\u{130}",
    ] {
        let status = app
            .register(in_locale(&unique_email(), bad))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(
            violations(&status),
            vec![("locale".into(), "Enter a valid language tag.".into())],
            "{bad:?}"
        );
    }
    assert_eq!(app.db.count("accounts").await, 0);

    let account = app
        .register(in_locale(&unique_email(), "fr"))
        .await
        .unwrap();
    let status = app
        .client
        .clone()
        .update_profile(UpdateProfileRequest {
            id: account.id.clone(),
            update_mask: Some(FieldMask {
                paths: vec!["locale".into()],
            }),
            locale: "not a tag".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![("locale".into(), "Enter a valid language tag.".into())]
    );
    assert_eq!(app.get_by_id(&account.id).await.unwrap().locale, "fr");
}

async fn a_changed_locale_changes_the_next_mail(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("EMAIL_RESEND_COOLDOWN", "0")
        .await;
    let email = unique_email();
    let account = app.register(in_locale(&email, "es")).await.unwrap();
    smtp.wait_for(1, WAIT).await;
    let update = |locale: &str| UpdateProfileRequest {
        id: account.id.clone(),
        update_mask: Some(FieldMask {
            paths: vec!["locale".into()],
        }),
        locale: locale.into(),
        ..Default::default()
    };
    let updated = app
        .client
        .clone()
        .update_profile(update("de-CH"))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(updated.locale, "de-CH");
    app.client
        .clone()
        .resend_confirmation(ResendConfirmationRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    let mails = smtp.wait_for(2, WAIT).await;
    assert!(mails[0].text.starts_with("Hola, shopper:"));
    assert!(
        mails[1].text.starts_with("Hallo shopper,"),
        "{}",
        mails[1].text
    );
    assert_ne!(mails[0].code(), mails[1].code());

    // An empty locale in the mask goes back to the default.
    let reset = app
        .client
        .clone()
        .update_profile(update(""))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(reset.locale, "en");
}

async fn overridden_text_is_used_and_the_rest_falls_back(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("de")).unwrap();
    std::fs::create_dir_all(dir.path().join("it")).unwrap();
    std::fs::write(
        dir.path().join("de/messages.ftl"),
        "welcome-subject = { $site_name }: Herzlich willkommen, { $name }!\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("it/messages.ftl"),
        "hello = Ciao { $name },\nwelcome-subject = Benvenuto su { $site_name }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("it/welcome_mail.txt"),
        "{{ t.hello }}\n\nCODICE: {{ code }}\n{{ link }}\n",
    )
    .unwrap();
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("TEMPLATES_DIR", dir.path().to_str().unwrap())
        .await;
    let german = unique_email();
    app.register(in_locale(&german, "de")).await.unwrap();
    let italian = unique_email();
    app.register(in_locale(&italian, "it-IT")).await.unwrap();
    let mails = smtp.wait_for(2, WAIT).await;
    let de = mails.iter().find(|m| m.to == german).unwrap();
    assert_eq!(de.subject, "Ecoms: Herzlich willkommen, shopper!");
    assert!(
        de.text.contains("Bitte bestätigen Sie"),
        "the rest stays built in"
    );
    let it = mails.iter().find(|m| m.to == italian).unwrap();
    assert_eq!(it.subject, "Benvenuto su Ecoms");
    assert!(it.text.starts_with("Ciao shopper,"), "{}", it.text);
    assert!(it.text.contains("CODICE: "), "{}", it.text);
    assert!(
        it.html.contains("Welcome to Ecoms!"),
        "no Italian html: the default's words"
    );
    assert_eq!(it.content_language, "it");
    // The overridden code and link are the real ones.
    let response = app.http.get(it.link()).send().await.unwrap();
    assert_eq!(response.headers()["location"], HOMEPAGE);
}

/// Runs the binary until it stops (it should not start) and returns its
/// exit code and error output.
fn failed_start(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_account-service"));
    command
        .env("DATABASE_URL", "sqlite::memory:")
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .current_dir(cwd.path());
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_broken_override_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fr")).unwrap();
    let file = dir.path().join("fr/messages.ftl");
    std::fs::write(&file, "hello = Bonjour { $name\n").unwrap();
    let (code, stderr) = failed_start(&[("TEMPLATES_DIR", dir.path().to_str().unwrap())]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");

    let layout = dir.path().join("fr/welcome_mail.html");
    std::fs::write(&file, "hello = Bonjour { $name },\n").unwrap();
    std::fs::write(&layout, "<p>{{ t.no_such_words }}</p>").unwrap();
    let (code, stderr) = failed_start(&[("TEMPLATES_DIR", dir.path().to_str().unwrap())]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&layout.display().to_string()), "{stderr}");

    let (code, stderr) = failed_start(&[("DEFAULT_LOCALE", "it")]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("DEFAULT_LOCALE"), "{stderr}");
    let (code, stderr) = failed_start(&[("DEFAULT_LOCALE", "no tag")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("DEFAULT_LOCALE"), "{stderr}");
}

#[test]
fn check_config_checks_the_mail_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pt-BR")).unwrap();
    let file = dir.path().join("pt-BR/messages.ftl");
    std::fs::write(&file, "hello = Olá { $name },\n").unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_account-service"))
            .arg("check-config")
            .env("DATABASE_URL", "sqlite::memory:")
            .env("TEMPLATES_DIR", dir.path())
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("mail locales: de, en, es, fr, pt-BR (default en)"),
        "{stdout}"
    );

    std::fs::write(&file, "hello = Olá { $nome },\n").unwrap();
    let output = run();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}
