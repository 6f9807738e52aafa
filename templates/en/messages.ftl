# Mail text in English. Every mail's messages start with its name; the
# messages without one are shared by every mail.
#
# Variables: $name (whom the mail greets), $site_name, $date (when the mail
# was written, formatted with date-format); in mails with a link, $valid_for
# (how long it is valid, from valid-for) and $until (when it expires); $code
# (the 6-digit code); $new_email (the new address, masked); $codes_left
# (how many unused recovery codes are left, a number with plural forms).

## Shared

hello = Hello { $name },
signoff = The { $site_name } team
# How long a link is valid: $count of $unit (day, hour, minute or second).
valid-for = { $unit ->
        [day] { $count ->
            [one] { $count } day
           *[other] { $count } days
        }
        [hour] { $count ->
            [one] { $count } hour
           *[other] { $count } hours
        }
        [minute] { $count ->
            [one] { $count } minute
           *[other] { $count } minutes
        }
       *[second] { $count ->
            [one] { $count } second
           *[other] { $count } seconds
        }
    }
# A strftime pattern; month and day names come in this catalogue's language.
date-format = %-d %B %Y, %H:%M UTC

## Welcome mail, and the confirmation mail sent again on request

welcome-subject = { $site_name } Welcome Mail
welcome-intro = Welcome to { $site_name }! Please confirm your e-mail address by opening this link:
welcome-intro-html = Welcome to { $site_name }! Please confirm your e-mail address:
welcome-button = Confirm my account
welcome-paste = Or paste this link into your browser:
welcome-code = Or enter this code where you signed up:
welcome-validity = The link and the code are valid for { $valid_for } (until { $until }). If they have expired, you can ask for a new mail on the site.
welcome-ignore = If you did not create an account at { $site_name }, you can ignore this message.

## Sent instead of a welcome mail when the address already has an account

account-exists-subject = { $site_name } Account Already Exists
account-exists-intro = Someone, probably you, just tried to create a new { $site_name } account with this e-mail address. You already have an account, so no new one was created.
account-exists-sign-in = If it was you, simply sign in with your existing account. If you have forgotten your password, you can reset it on the site.
account-exists-ignore = If it was not you, you can ignore this message: nothing has changed on your account.

## Password reset

password-reset-subject = { $site_name } Password Reset
password-reset-intro = Someone asked to reset the password of your { $site_name } account. To choose a new password, open this link:
password-reset-intro-html = Someone asked to reset the password of your { $site_name } account.
password-reset-button = Choose a new password
password-reset-paste = Or paste this link into your browser:
password-reset-validity = The link is valid for { $valid_for } (until { $until }) and works once: it stops working as soon as your password changes.
password-reset-ignore = If you did not ask for this, you can ignore this message; your password stays as it is.

## Password changed

password-changed-subject = { $site_name } Password Changed
password-changed-intro = The password of your { $site_name } account was changed on { $date }.
password-changed-warning = If you changed it, there is nothing more to do. If you did not, reset your password on the site at once, and contact us.

## Sent to a new address, to confirm it

email-change-confirm-subject = { $site_name } Confirm Your New E-mail Address
email-change-confirm-intro = Someone asked to use this address for their { $site_name } account. To confirm that this is your new address, open this link:
email-change-confirm-intro-html = Someone asked to use this address for their { $site_name } account.
email-change-confirm-button = Confirm my new address
email-change-confirm-paste = Or paste this link into your browser:
email-change-confirm-validity = The link is valid for { $valid_for } (until { $until }). Until it is followed, the account keeps its old address.
email-change-confirm-ignore = If you did not ask for this, you can ignore this message; nothing changes.

## Sent to the current address when a change is asked for

email-change-requested-subject = { $site_name } E-mail Change Requested
email-change-requested-intro = Someone asked to change the e-mail address of your { $site_name } account to { $new_email }. The change takes effect once the link sent to the new address is followed; until then your account keeps this address.
email-change-requested-warning = If you asked for this, there is nothing more to do. If you did not, change your password on the site at once, and contact us.

## Account deleted

account-deleted-subject = { $site_name } Account Deleted
account-deleted-intro = Your { $site_name } account has been deleted, and the personal data it held has been erased. This is the last message we send to this address.
account-deleted-warning = If you did not ask for this, contact us.

## Two-step sign-in turned on

second-factor-enabled-subject = { $site_name } Two-Step Sign-In Turned On
second-factor-enabled-intro = Two-step sign-in was turned on for your { $site_name } account on { $date }. From now on, signing in needs your password and a code from your authenticator app.
second-factor-enabled-recovery = Keep your recovery codes somewhere safe: if you lose your phone, each of them signs you in once instead of a code from the app.
second-factor-enabled-warning = If you turned it on, there is nothing more to do. If you did not, reset your password on the site at once, and contact us.

## Two-step sign-in turned off

second-factor-disabled-subject = { $site_name } Two-Step Sign-In Turned Off
second-factor-disabled-intro = Two-step sign-in was turned off for your { $site_name } account on { $date }. From now on, your password alone signs you in, and your recovery codes no longer work.
second-factor-disabled-warning = If you turned it off, there is nothing more to do. If you did not, reset your password on the site at once, turn two-step sign-in back on, and contact us.

## A recovery code was used; says how many are left, and advises a new
## set when few are (the exact numbers go first: they win over categories)

recovery-code-used-subject = { $site_name } Recovery Code Used
recovery-code-used-intro = One of the recovery codes of your { $site_name } account was used on { $date }; that code no longer works.
recovery-code-used-left = { $codes_left ->
        [0] You have no recovery codes left.
        [one] You have { $codes_left } recovery code left.
       *[other] You have { $codes_left } recovery codes left.
    }
recovery-code-used-advice = { $codes_left ->
        [0] Create new ones on the site now, while you still have your authenticator app.
        [1] Create new ones on the site soon, before they run out, and keep them somewhere safe; the old ones then stop working.
        [2] Create new ones on the site soon, before they run out, and keep them somewhere safe; the old ones then stop working.
        [3] Create new ones on the site soon, before they run out, and keep them somewhere safe; the old ones then stop working.
       *[other] When only a few are left, create new ones on the site; the old ones then stop working.
    }
recovery-code-used-warning = If you used it, there is nothing more to do. If you did not, someone knows your password and has one of your recovery codes: reset your password on the site at once, create new recovery codes, and contact us.
