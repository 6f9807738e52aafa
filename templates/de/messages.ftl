# Mail text in German. Every mail's messages start with its name; the
# messages without one are shared by every mail.
#
# Variables: $name (whom the mail greets), $site_name, $date (when the mail
# was written, formatted with date-format); in mails with a link, $valid_for
# (how long it is valid, from valid-for) and $until (when it expires); $code
# (the 6-digit code); $new_email (the new address, masked); $codes_left
# (how many unused recovery codes are left, a number with plural forms).
#
# Formal address ("Sie") throughout, as is usual for account mail.

## Shared

hello = Hallo { $name },
signoff = Ihr { $site_name }-Team
# How long a link is valid: $count of $unit (day, hour, minute or second).
# German plural categories: one, other.
valid-for = { $unit ->
        [day] { $count ->
            [one] { $count } Tag
           *[other] { $count } Tage
        }
        [hour] { $count ->
            [one] { $count } Stunde
           *[other] { $count } Stunden
        }
        [minute] { $count ->
            [one] { $count } Minute
           *[other] { $count } Minuten
        }
       *[second] { $count ->
            [one] { $count } Sekunde
           *[other] { $count } Sekunden
        }
    }
# A strftime pattern; month and day names come in this catalogue's language.
date-format = %-d. %B %Y, %H:%M Uhr (UTC)

## Welcome mail, and the confirmation mail sent again on request

welcome-subject = { $site_name }: Willkommen
welcome-intro = Willkommen bei { $site_name }! Bitte bestätigen Sie Ihre E-Mail-Adresse, indem Sie diesen Link öffnen:
welcome-intro-html = Willkommen bei { $site_name }! Bitte bestätigen Sie Ihre E-Mail-Adresse:
welcome-button = Konto bestätigen
welcome-paste = Oder kopieren Sie diesen Link in die Adresszeile Ihres Browsers:
welcome-code = Oder geben Sie diesen Code dort ein, wo Sie sich registriert haben:
welcome-validity = Der Link und der Code sind { $valid_for } lang gültig, also bis zum { $until }. Sollten sie abgelaufen sein, können Sie auf der Website eine neue E-Mail anfordern.
welcome-ignore = Falls Sie kein Konto bei { $site_name } erstellt haben, können Sie diese E-Mail einfach ignorieren.

## Sent instead of a welcome mail when the address already has an account

account-exists-subject = { $site_name }: Konto bereits vorhanden
account-exists-intro = Soeben hat jemand – vermutlich Sie selbst – versucht, mit dieser E-Mail-Adresse ein neues Konto bei { $site_name } zu erstellen. Da Sie bereits ein Konto haben, wurde kein neues angelegt.
account-exists-sign-in = Wenn Sie das waren, melden Sie sich einfach mit Ihrem bestehenden Konto an. Falls Sie Ihr Passwort vergessen haben, können Sie es auf der Website zurücksetzen.
account-exists-ignore = Wenn Sie das nicht waren, können Sie diese E-Mail ignorieren: An Ihrem Konto hat sich nichts geändert.

## Password reset

password-reset-subject = { $site_name }: Passwort zurücksetzen
password-reset-intro = Wir haben eine Anfrage erhalten, das Passwort für Ihr Konto bei { $site_name } zurückzusetzen. Um ein neues Passwort festzulegen, öffnen Sie bitte diesen Link:
password-reset-intro-html = Wir haben eine Anfrage erhalten, das Passwort für Ihr Konto bei { $site_name } zurückzusetzen.
password-reset-button = Neues Passwort festlegen
password-reset-paste = Oder kopieren Sie diesen Link in die Adresszeile Ihres Browsers:
password-reset-validity = Der Link ist { $valid_for } lang gültig, also bis zum { $until }, und kann nur einmal verwendet werden: Sobald Ihr Passwort geändert wurde, funktioniert er nicht mehr.
password-reset-ignore = Falls Sie dies nicht angefordert haben, können Sie diese E-Mail ignorieren; Ihr Passwort bleibt unverändert.

## Password changed

password-changed-subject = { $site_name }: Passwort geändert
password-changed-intro = Das Passwort Ihres Kontos bei { $site_name } wurde am { $date } geändert.
password-changed-warning = Wenn Sie die Änderung selbst vorgenommen haben, ist nichts weiter zu tun. Andernfalls setzen Sie Ihr Passwort bitte umgehend auf der Website zurück und wenden Sie sich an uns.

## Sent to a new address, to confirm it

email-change-confirm-subject = { $site_name }: Bitte bestätigen Sie Ihre neue E-Mail-Adresse
email-change-confirm-intro = Diese E-Mail-Adresse soll künftig für ein Konto bei { $site_name } verwendet werden. Um zu bestätigen, dass dies Ihre neue Adresse ist, öffnen Sie bitte diesen Link:
email-change-confirm-intro-html = Diese E-Mail-Adresse soll künftig für ein Konto bei { $site_name } verwendet werden.
email-change-confirm-button = Neue Adresse bestätigen
email-change-confirm-paste = Oder kopieren Sie diesen Link in die Adresszeile Ihres Browsers:
email-change-confirm-validity = Der Link ist { $valid_for } lang gültig, also bis zum { $until }. Bis er geöffnet wird, behält das Konto seine bisherige Adresse.
email-change-confirm-ignore = Falls Sie dies nicht angefordert haben, können Sie diese E-Mail ignorieren; es ändert sich nichts.

## Sent to the current address when a change is asked for

email-change-requested-subject = { $site_name }: Änderung der E-Mail-Adresse angefordert
email-change-requested-intro = Es wurde angefordert, die E-Mail-Adresse Ihres Kontos bei { $site_name } in { $new_email } zu ändern. Die Änderung wird erst wirksam, wenn der an die neue Adresse gesendete Link geöffnet wurde; bis dahin behält Ihr Konto diese Adresse.
email-change-requested-warning = Wenn Sie die Änderung veranlasst haben, ist nichts weiter zu tun. Andernfalls ändern Sie bitte umgehend Ihr Passwort auf der Website und wenden Sie sich an uns.

## Account deleted

account-deleted-subject = { $site_name }: Konto gelöscht
account-deleted-intro = Ihr Konto bei { $site_name } wurde gelöscht, ebenso alle darin gespeicherten personenbezogenen Daten. Dies ist die letzte Nachricht, die wir an diese Adresse senden.
account-deleted-warning = Falls Sie dies nicht veranlasst haben, wenden Sie sich bitte an uns.

## Two-step sign-in turned on

second-factor-enabled-subject = { $site_name }: Anmeldung in zwei Schritten aktiviert
second-factor-enabled-intro = Für Ihr Konto bei { $site_name } wurde am { $date } die Anmeldung in zwei Schritten aktiviert. Ab sofort benötigen Sie zum Anmelden Ihr Passwort und einen Code aus Ihrer Authenticator-App.
second-factor-enabled-recovery = Bewahren Sie Ihre Wiederherstellungscodes sicher auf: Falls Sie Ihr Handy verlieren, können Sie sich mit jedem dieser Codes einmal anstelle eines Codes aus der App anmelden.
second-factor-enabled-warning = Wenn Sie die Änderung selbst vorgenommen haben, ist nichts weiter zu tun. Andernfalls setzen Sie Ihr Passwort bitte umgehend auf der Website zurück und wenden Sie sich an uns.

## Two-step sign-in turned off

second-factor-disabled-subject = { $site_name }: Anmeldung in zwei Schritten deaktiviert
second-factor-disabled-intro = Für Ihr Konto bei { $site_name } wurde am { $date } die Anmeldung in zwei Schritten deaktiviert. Ab sofort genügt zum Anmelden Ihr Passwort, und Ihre Wiederherstellungscodes sind nicht mehr gültig.
second-factor-disabled-warning = Wenn Sie die Änderung selbst vorgenommen haben, ist nichts weiter zu tun. Andernfalls setzen Sie Ihr Passwort bitte umgehend auf der Website zurück, aktivieren Sie die Anmeldung in zwei Schritten erneut und wenden Sie sich an uns.

## A recovery code was used; says how many are left, and advises a new
## set when few are (the exact numbers go first: they win over categories)

recovery-code-used-subject = { $site_name }: Wiederherstellungscode verwendet
recovery-code-used-intro = Am { $date } wurde einer der Wiederherstellungscodes Ihres Kontos bei { $site_name } verwendet; dieser Code ist damit ungültig.
recovery-code-used-left = { $codes_left ->
        [0] Sie haben keine Wiederherstellungscodes mehr.
        [one] Sie haben noch { $codes_left } Wiederherstellungscode.
       *[other] Sie haben noch { $codes_left } Wiederherstellungscodes.
    }
recovery-code-used-advice = { $codes_left ->
        [0] Erstellen Sie bitte jetzt auf der Website neue, solange Sie Ihre Authenticator-App noch haben.
        [1] Erstellen Sie bitte bald auf der Website neue, bevor sie aufgebraucht sind, und bewahren Sie sie sicher auf; die bisherigen werden damit ungültig.
        [2] Erstellen Sie bitte bald auf der Website neue, bevor sie aufgebraucht sind, und bewahren Sie sie sicher auf; die bisherigen werden damit ungültig.
        [3] Erstellen Sie bitte bald auf der Website neue, bevor sie aufgebraucht sind, und bewahren Sie sie sicher auf; die bisherigen werden damit ungültig.
       *[other] Wenn nur noch wenige übrig sind, erstellen Sie auf der Website neue; die bisherigen werden damit ungültig.
    }
recovery-code-used-warning = Wenn Sie den Code selbst verwendet haben, ist nichts weiter zu tun. Andernfalls kennt jemand Ihr Passwort und einen Ihrer Wiederherstellungscodes: Setzen Sie Ihr Passwort bitte umgehend auf der Website zurück, erstellen Sie neue Wiederherstellungscodes und wenden Sie sich an uns.
