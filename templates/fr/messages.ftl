# Mail text in French. Every mail's messages start with its name; the
# messages without one are shared by every mail.
#
# Variables: $name (whom the mail greets), $site_name, $date (when the mail
# was written, formatted with date-format); in mails with a link, $valid_for
# (how long it is valid, from valid-for) and $until (when it expires); $code
# (the 6-digit code); $new_email (the new address, masked); $codes_left
# (how many unused recovery codes are left, a number with plural forms).
#
# Formal address ("vous") throughout. The space before : ! ? ; is a narrow
# no-break space (U+202F), so the sign never wraps onto a line of its own.

## Shared

hello = Bonjour { $name },
signoff = L'équipe { $site_name }
# How long a link is valid: $count of $unit (day, hour, minute or second).
# French plural categories: one (0 and 1), many (large round numbers such
# as 1000000), other.
valid-for = { $unit ->
        [day] { $count ->
            [one] { $count } jour
            [many] { $count } jours
           *[other] { $count } jours
        }
        [hour] { $count ->
            [one] { $count } heure
            [many] { $count } heures
           *[other] { $count } heures
        }
        [minute] { $count ->
            [one] { $count } minute
            [many] { $count } minutes
           *[other] { $count } minutes
        }
       *[second] { $count ->
            [one] { $count } seconde
            [many] { $count } secondes
           *[other] { $count } secondes
        }
    }
# A strftime pattern; month and day names come in this catalogue's language.
date-format = %-d %B %Y à %H:%M (UTC)

## Welcome mail, and the confirmation mail sent again on request

welcome-subject = { $site_name } : Bienvenue
welcome-intro = Bienvenue sur { $site_name } ! Veuillez confirmer votre adresse e-mail en ouvrant ce lien :
welcome-intro-html = Bienvenue sur { $site_name } ! Veuillez confirmer votre adresse e-mail :
welcome-button = Confirmer mon compte
welcome-paste = Ou copiez ce lien dans la barre d'adresse de votre navigateur :
welcome-code = Ou saisissez ce code sur la page d'inscription :
welcome-validity = Le lien et le code sont valables { $valid_for }, soit jusqu'au { $until }. S'ils ont expiré, vous pouvez demander un nouvel e-mail sur le site.
welcome-ignore = Si vous n'avez pas créé de compte sur { $site_name }, vous pouvez ignorer ce message.

## Sent instead of a welcome mail when the address already has an account

account-exists-subject = { $site_name } : Vous avez déjà un compte
account-exists-intro = Quelqu'un, probablement vous, vient d'essayer de créer un nouveau compte { $site_name } avec cette adresse e-mail. Comme vous avez déjà un compte, aucun nouveau compte n'a été créé.
account-exists-sign-in = Si c'était vous, connectez-vous simplement avec votre compte existant. Si vous avez oublié votre mot de passe, vous pouvez le réinitialiser sur le site.
account-exists-ignore = Si ce n'était pas vous, vous pouvez ignorer ce message : rien n'a été modifié sur votre compte.

## Password reset

password-reset-subject = { $site_name } : Réinitialisation de votre mot de passe
password-reset-intro = Nous avons reçu une demande de réinitialisation du mot de passe de votre compte { $site_name }. Pour choisir un nouveau mot de passe, ouvrez ce lien :
password-reset-intro-html = Nous avons reçu une demande de réinitialisation du mot de passe de votre compte { $site_name }.
password-reset-button = Choisir un nouveau mot de passe
password-reset-paste = Ou copiez ce lien dans la barre d'adresse de votre navigateur :
password-reset-validity = Ce lien est valable { $valid_for }, soit jusqu'au { $until }, et ne peut être utilisé qu'une seule fois : il cesse de fonctionner dès que votre mot de passe est modifié.
password-reset-ignore = Si vous n'êtes pas à l'origine de cette demande, vous pouvez ignorer ce message ; votre mot de passe reste inchangé.

## Password changed

password-changed-subject = { $site_name } : Mot de passe modifié
password-changed-intro = Le mot de passe de votre compte { $site_name } a été modifié le { $date }.
password-changed-warning = Si c'est vous qui l'avez modifié, vous n'avez rien d'autre à faire. Sinon, réinitialisez immédiatement votre mot de passe sur le site et contactez-nous.

## Sent to a new address, to confirm it

email-change-confirm-subject = { $site_name } : Confirmez votre nouvelle adresse e-mail
email-change-confirm-intro = Quelqu'un souhaite utiliser cette adresse pour son compte { $site_name }. Pour confirmer qu'il s'agit bien de votre nouvelle adresse, ouvrez ce lien :
email-change-confirm-intro-html = Quelqu'un souhaite utiliser cette adresse pour son compte { $site_name }.
email-change-confirm-button = Confirmer ma nouvelle adresse
email-change-confirm-paste = Ou copiez ce lien dans la barre d'adresse de votre navigateur :
email-change-confirm-validity = Ce lien est valable { $valid_for }, soit jusqu'au { $until }. Tant qu'il n'a pas été ouvert, le compte conserve son ancienne adresse.
email-change-confirm-ignore = Si vous n'êtes pas à l'origine de cette demande, vous pouvez ignorer ce message ; rien ne sera modifié.

## Sent to the current address when a change is asked for

email-change-requested-subject = { $site_name } : Demande de changement d'adresse e-mail
email-change-requested-intro = Quelqu'un a demandé à remplacer l'adresse e-mail de votre compte { $site_name } par { $new_email }. Le changement prendra effet dès que le lien envoyé à la nouvelle adresse aura été ouvert ; d'ici là, votre compte conserve cette adresse.
email-change-requested-warning = Si vous êtes à l'origine de cette demande, vous n'avez rien d'autre à faire. Sinon, changez immédiatement votre mot de passe sur le site et contactez-nous.

## Account deleted

account-deleted-subject = { $site_name } : Compte supprimé
account-deleted-intro = Votre compte { $site_name } a été supprimé, ainsi que les données personnelles qu'il contenait. C'est le dernier message que nous envoyons à cette adresse.
account-deleted-warning = Si vous n'êtes pas à l'origine de cette suppression, contactez-nous.

## Two-step sign-in turned on

second-factor-enabled-subject = { $site_name } : Connexion en deux étapes activée
second-factor-enabled-intro = La connexion en deux étapes a été activée pour votre compte { $site_name } le { $date }. Désormais, pour vous connecter, il vous faudra votre mot de passe et un code de votre application d'authentification.
second-factor-enabled-recovery = Conservez vos codes de récupération en lieu sûr : si vous perdez votre téléphone, chacun d'eux vous permet de vous connecter une fois à la place d'un code de l'application.
second-factor-enabled-warning = Si c'est vous qui l'avez activée, vous n'avez rien d'autre à faire. Sinon, réinitialisez immédiatement votre mot de passe sur le site et contactez-nous.

## Two-step sign-in turned off

second-factor-disabled-subject = { $site_name } : Connexion en deux étapes désactivée
second-factor-disabled-intro = La connexion en deux étapes a été désactivée pour votre compte { $site_name } le { $date }. Désormais, votre mot de passe suffit pour vous connecter, et vos codes de récupération ne fonctionnent plus.
second-factor-disabled-warning = Si c'est vous qui l'avez désactivée, vous n'avez rien d'autre à faire. Sinon, réinitialisez immédiatement votre mot de passe sur le site, réactivez la connexion en deux étapes et contactez-nous.

## A recovery code was used; says how many are left, and advises a new
## set when few are (the exact numbers go first: they win over categories)

recovery-code-used-subject = { $site_name } : Code de récupération utilisé
recovery-code-used-intro = L'un des codes de récupération de votre compte { $site_name } a été utilisé le { $date } ; ce code ne fonctionne plus.
recovery-code-used-left = { $codes_left ->
        [0] Il ne vous reste aucun code de récupération.
        [one] Il vous reste { $codes_left } code de récupération.
        [many] Il vous reste { $codes_left } codes de récupération.
       *[other] Il vous reste { $codes_left } codes de récupération.
    }
recovery-code-used-advice = { $codes_left ->
        [0] Créez-en de nouveaux sur le site dès maintenant, tant que vous disposez encore de votre application d'authentification.
        [1] Créez-en bientôt de nouveaux sur le site, avant d'en manquer, et conservez-les en lieu sûr ; les anciens cesseront alors de fonctionner.
        [2] Créez-en bientôt de nouveaux sur le site, avant d'en manquer, et conservez-les en lieu sûr ; les anciens cesseront alors de fonctionner.
        [3] Créez-en bientôt de nouveaux sur le site, avant d'en manquer, et conservez-les en lieu sûr ; les anciens cesseront alors de fonctionner.
       *[other] Lorsqu'il en restera peu, créez-en de nouveaux sur le site ; les anciens cesseront alors de fonctionner.
    }
recovery-code-used-warning = Si c'est vous qui l'avez utilisé, vous n'avez rien d'autre à faire. Sinon, quelqu'un connaît votre mot de passe et détient l'un de vos codes de récupération : réinitialisez immédiatement votre mot de passe sur le site, créez de nouveaux codes de récupération et contactez-nous.
