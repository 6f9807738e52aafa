# Mail text in Spanish. Every mail's messages start with its name; the
# messages without one are shared by every mail.
#
# Variables: $name (whom the mail greets), $site_name, $date (when the mail
# was written, formatted with date-format); in mails with a link, $valid_for
# (how long it is valid, from valid-for) and $until (when it expires); $code
# (the 6-digit code); $new_email (the new address, masked); $codes_left
# (how many unused recovery codes are left, a number with plural forms).
#
# Informal address ("tú") throughout, as is usual in Spanish e-commerce;
# wording avoids gendered forms (e.g. "te damos la bienvenida").

## Shared

hello = Hola, { $name }:
signoff = El equipo de { $site_name }
# How long a link is valid: $count of $unit (day, hour, minute or second).
# Spanish plural categories: one, many (large round numbers such as
# 1000000), other.
valid-for = { $unit ->
        [day] { $count ->
            [one] { $count } día
            [many] { $count } días
           *[other] { $count } días
        }
        [hour] { $count ->
            [one] { $count } hora
            [many] { $count } horas
           *[other] { $count } horas
        }
        [minute] { $count ->
            [one] { $count } minuto
            [many] { $count } minutos
           *[other] { $count } minutos
        }
       *[second] { $count ->
            [one] { $count } segundo
            [many] { $count } segundos
           *[other] { $count } segundos
        }
    }
# A strftime pattern; month and day names come in this catalogue's language.
date-format = %-d de %B de %Y, %H:%M (UTC)

## Welcome mail, and the confirmation mail sent again on request

welcome-subject = { $site_name }: te damos la bienvenida
welcome-intro = ¡Te damos la bienvenida a { $site_name }! Confirma tu dirección de correo electrónico abriendo este enlace:
welcome-intro-html = ¡Te damos la bienvenida a { $site_name }! Confirma tu dirección de correo electrónico:
welcome-button = Confirmar mi cuenta
welcome-paste = O copia este enlace y pégalo en tu navegador:
welcome-code = O introduce este código en la página donde te registraste:
welcome-validity = El enlace y el código son válidos durante { $valid_for }, es decir, hasta el { $until }. Si han caducado, puedes solicitar un nuevo correo en el sitio web.
welcome-ignore = Si no has creado una cuenta en { $site_name }, puedes ignorar este mensaje.

## Sent instead of a welcome mail when the address already has an account

account-exists-subject = { $site_name }: ya tienes una cuenta
account-exists-intro = Alguien, probablemente tú, acaba de intentar crear una cuenta nueva en { $site_name } con esta dirección de correo electrónico. Como ya tienes una cuenta, no se ha creado ninguna nueva.
account-exists-sign-in = Si has sido tú, solo tienes que iniciar sesión con tu cuenta actual. Si has olvidado tu contraseña, puedes restablecerla en el sitio web.
account-exists-ignore = Si no has sido tú, puedes ignorar este mensaje: no se ha modificado nada en tu cuenta.

## Password reset

password-reset-subject = { $site_name }: restablecimiento de contraseña
password-reset-intro = Hemos recibido una solicitud para restablecer la contraseña de tu cuenta de { $site_name }. Para elegir una contraseña nueva, abre este enlace:
password-reset-intro-html = Hemos recibido una solicitud para restablecer la contraseña de tu cuenta de { $site_name }.
password-reset-button = Elegir una contraseña nueva
password-reset-paste = O copia este enlace y pégalo en tu navegador:
password-reset-validity = El enlace es válido durante { $valid_for }, es decir, hasta el { $until }, y solo puede usarse una vez: deja de funcionar en cuanto cambie tu contraseña.
password-reset-ignore = Si no lo has solicitado tú, puedes ignorar este mensaje; tu contraseña seguirá siendo la misma.

## Password changed

password-changed-subject = { $site_name }: se ha cambiado tu contraseña
password-changed-intro = La contraseña de tu cuenta de { $site_name } se cambió el { $date }.
password-changed-warning = Si la has cambiado tú, no tienes que hacer nada más. Si no, restablece tu contraseña en el sitio web de inmediato y ponte en contacto con nosotros.

## Sent to a new address, to confirm it

email-change-confirm-subject = { $site_name }: confirma tu nueva dirección de correo electrónico
email-change-confirm-intro = Alguien ha solicitado usar esta dirección para su cuenta de { $site_name }. Para confirmar que es tu nueva dirección, abre este enlace:
email-change-confirm-intro-html = Alguien ha solicitado usar esta dirección para su cuenta de { $site_name }.
email-change-confirm-button = Confirmar mi nueva dirección
email-change-confirm-paste = O copia este enlace y pégalo en tu navegador:
email-change-confirm-validity = El enlace es válido durante { $valid_for }, es decir, hasta el { $until }. Mientras no se abra, la cuenta conservará su dirección anterior.
email-change-confirm-ignore = Si no lo has solicitado tú, puedes ignorar este mensaje; no cambiará nada.

## Sent to the current address when a change is asked for

email-change-requested-subject = { $site_name }: solicitud de cambio de dirección de correo electrónico
email-change-requested-intro = Alguien ha solicitado cambiar la dirección de correo electrónico de tu cuenta de { $site_name } a { $new_email }. El cambio se hará efectivo cuando se abra el enlace enviado a la nueva dirección; hasta entonces, tu cuenta conservará esta dirección.
email-change-requested-warning = Si lo has solicitado tú, no tienes que hacer nada más. Si no, cambia tu contraseña en el sitio web de inmediato y ponte en contacto con nosotros.

## Account deleted

account-deleted-subject = { $site_name }: cuenta eliminada
account-deleted-intro = Tu cuenta de { $site_name } se ha eliminado, junto con los datos personales que contenía. Este es el último mensaje que enviaremos a esta dirección.
account-deleted-warning = Si no lo has solicitado tú, ponte en contacto con nosotros.

## Two-step sign-in turned on

second-factor-enabled-subject = { $site_name }: se ha activado el inicio de sesión en dos pasos
second-factor-enabled-intro = El inicio de sesión en dos pasos de tu cuenta de { $site_name } se activó el { $date }. A partir de ahora, para iniciar sesión necesitarás tu contraseña y un código de tu aplicación de autenticación.
second-factor-enabled-recovery = Guarda tus códigos de recuperación en un lugar seguro: si pierdes el móvil, cada uno de ellos te permite iniciar sesión una vez en lugar de un código de la aplicación.
second-factor-enabled-warning = Si lo has activado tú, no tienes que hacer nada más. Si no, restablece tu contraseña en el sitio web de inmediato y ponte en contacto con nosotros.

## Two-step sign-in turned off

second-factor-disabled-subject = { $site_name }: se ha desactivado el inicio de sesión en dos pasos
second-factor-disabled-intro = El inicio de sesión en dos pasos de tu cuenta de { $site_name } se desactivó el { $date }. A partir de ahora basta con tu contraseña para iniciar sesión, y tus códigos de recuperación ya no funcionan.
second-factor-disabled-warning = Si lo has desactivado tú, no tienes que hacer nada más. Si no, restablece tu contraseña en el sitio web de inmediato, vuelve a activar el inicio de sesión en dos pasos y ponte en contacto con nosotros.

## A recovery code was used; says how many are left, and advises a new
## set when few are (the exact numbers go first: they win over categories)

recovery-code-used-subject = { $site_name }: se ha usado un código de recuperación
recovery-code-used-intro = Uno de los códigos de recuperación de tu cuenta de { $site_name } se usó el { $date }; ese código ya no funciona.
recovery-code-used-left = { $codes_left ->
        [0] No te queda ningún código de recuperación.
        [one] Te queda { $codes_left } código de recuperación.
        [many] Te quedan { $codes_left } códigos de recuperación.
       *[other] Te quedan { $codes_left } códigos de recuperación.
    }
recovery-code-used-advice = { $codes_left ->
        [0] Crea códigos nuevos en el sitio web ahora, mientras aún tengas tu aplicación de autenticación.
        [1] Crea códigos nuevos en el sitio web pronto, antes de que se te acaben, y guárdalos en un lugar seguro; los anteriores dejarán de funcionar.
        [2] Crea códigos nuevos en el sitio web pronto, antes de que se te acaben, y guárdalos en un lugar seguro; los anteriores dejarán de funcionar.
        [3] Crea códigos nuevos en el sitio web pronto, antes de que se te acaben, y guárdalos en un lugar seguro; los anteriores dejarán de funcionar.
       *[other] Cuando te queden pocos, crea códigos nuevos en el sitio web; los anteriores dejarán de funcionar.
    }
recovery-code-used-warning = Si lo has usado tú, no tienes que hacer nada más. Si no, alguien conoce tu contraseña y tiene uno de tus códigos de recuperación: restablece tu contraseña en el sitio web de inmediato, crea códigos de recuperación nuevos y ponte en contacto con nosotros.
