/**
 * Every text a page of either plugin shows, in English: the reference table. Other locales
 * translate these keys; a key a locale lacks falls back to English. `{name}` is a parameter.
 */
export const EN = {
  // common
  'common.home': 'Home',
  'common.signIn': 'Sign in',
  'common.signInAgain': 'Sign in again',
  'common.signOut': 'Sign out',
  'common.signOutEverywhere': 'Sign out everywhere',
  'common.back': 'Back',
  'common.tryAgain': 'Try again',
  'common.signedInAs': 'Signed in as {user}.',
  'common.logoAlt': '{name} logo',
  'common.continueTo': 'to continue to {service}',

  // gateway: sign-in form
  'login.heading': 'Sign in',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.wrongPassword': 'Wrong username or password.',
  'login.lockedOut': 'Too many failed attempts for this account. Wait {minutes} minutes, then try again.',
  'login.sessionsLink': 'Your sessions',

  // gateway: sign-in links and access
  'link.invalid.heading': 'This sign-in link is no longer valid',
  'link.invalid.expired': 'It has expired or was already used. Go back to the application you came from and sign in again.',
  'link.invalid.used': 'It was used in the meantime. Go back to the application and sign in again.',
  'link.invalid.again': 'Sign in to {service} again',
  'link.invalid.account': 'Go to your account',
  'access.denied.heading': 'No access to {service}',
  'access.denied.message': 'You are signed in as {user}, but you do not have access to {service}. Ask an administrator for access, or sign out and sign in as someone else.',
  'access.denied.back': 'Back to {service}',
  'access.denied.switch': 'Sign out to switch account',
  'service.unreachable.heading': '{service} is not reachable',
  'service.unreachable.message': 'You are signed in, but {service} could not be told about your account, so it cannot let you in yet. Try again in a moment.',

  // gateway: errors
  'error.heading': 'Something went wrong',
  'error.internal': 'Something went wrong on our side. Try again in a moment.',
  'error.invalidRequest': 'This request was not valid. Go back and try again.',
  'error.unavailable.heading': 'Temporarily unavailable',
  'error.unavailable': 'The sign-in service is temporarily unavailable. Try again in a moment.',
  'error.rateLimit.heading': 'Too many attempts',
  'error.rateLimit': 'Too many sign-in attempts from your network in a short time. Wait {seconds} seconds, then try again.',
  'error.expiredForm.heading': 'This form has expired',
  'error.expiredForm': 'This form has expired or did not come from this site. Go back to sign-in and try again; nothing was changed.',
  'error.noCookie.heading': 'Cookies are needed to sign in',
  'error.noCookie': 'Your browser did not send back this site\'s sign-in cookie, so the form could not be checked. Cookies may be blocked for this site, or the page was opened over plain http while the cookie is only sent over https. Allow cookies (or use the https address), then try again.',
  'error.backToSignIn': 'Back to sign-in',
  'notFound.heading': 'Page not found',
  'notFound.message': 'There is no page at this address. Check the link, or start again from the home page.',

  // gateway: sign-out
  'logout.confirm.heading': 'Sign out?',
  'logout.confirm.message': 'You are signed in as {user}.',
  'logout.confirm.session': 'Ends your session in this browser, here and in every application you opened from it.',
  'logout.confirm.everywhere': 'Also ends your sessions on your other devices.',
  'logout.stay': 'Stay signed in',
  'logout.none.heading': 'You are signed out',
  'logout.none.message': 'Nobody is signed in in this browser.',
  'logout.done.heading': 'You are signed out',
  'logout.done.session': 'You are signed out of every application in this browser. Close the browser if it is a shared computer.',
  'logout.done.everywhere': 'You are signed out of every application, on every device. Close the browser if it is a shared computer.',

  // gateway: welcome
  'welcome.heading': 'Your account',
  'welcome.signedInAs': 'Signed in as',
  'welcome.nobody': 'Nobody is signed in.',

  // gateway: sessions
  'sessions.heading': 'Your sessions',
  'sessions.intro': 'Signed in as {user}. Each session is one browser; ending it signs that browser out of every application it opened.',
  'sessions.unknownBrowser': 'Unknown browser',
  'sessions.browserOn': '{browser} on {os}',
  'sessions.current': 'This browser',
  'sessions.address': 'Address',
  'sessions.unknownAddress': 'unknown',
  'sessions.started': 'Signed in',
  'sessions.lastSeen': 'Last active',
  'sessions.apps': 'Applications',
  'sessions.noApps': 'none yet',
  'sessions.end': 'End this session',
  'sessions.endLabel': 'End the session of {device}',
  'sessions.endOthers': 'Sign out all other sessions',
  'sessions.currentHint': 'To end this session, sign out.',

  // service: sign-out
  'service.logout.heading': 'Sign out',
  'service.logout.notSignedIn': 'You are not signed in.',
  'service.logout.leave': 'Leave this app',
  'service.logout.leaveHelp': 'Ends your session here only; you stay signed in elsewhere.',
  'service.logout.sessionHelp': 'Ends this browser\'s single sign-on session: here, at the sign-in service and in every app it reached. Other devices stay signed in.',
  'service.logout.everywhereHelp': 'Ends every session of yours, in every app, on every device.',
  'service.signedOut.app.heading': 'You left this app',
  'service.signedOut.app': 'You are still signed in at the sign-in service and in the other apps you use there, so coming back here may not ask for your password.',
  'service.signedOut.backToApp': 'Back to this app',
  'service.signedOut.heading': 'You are signed out',
  'service.signedOut.session': 'You are signed out of this browser: this app, the sign-in service and every app you reached through it in this browser. Your other devices stay signed in.',
  'service.signedOut.everywhere.heading': 'You are signed out everywhere',
  'service.signedOut.everywhere': 'You are signed out everywhere: every app, on every device.',
  'service.signedOut.unknown': 'You are signed out of this app.',
  'service.signedOut.gatewayUnreachable': 'The sign-in service could not be reached: you may still be signed in there.',
  'service.signOutAtGateway': 'Sign out at the sign-in service',
  'service.signedIn.heading': 'You are signed in',

  // service: sign-in errors
  'service.signIn.failed': 'Sign-in failed',
  'service.signIn.unavailable': 'Sign-in unavailable',
  'service.signIn.refused': 'Sign-in refused',
  'service.signIn.switchAccount': 'To sign in as someone else, sign out at the sign-in service first.',
  'service.error.heading': 'Request refused',
  'service.error.internalHeading': 'Error',
  'service.error.internal': 'Something went wrong on our side.',
  'service.error.details': 'Details: {detail}',
  'service.error.databaseHeading': 'Temporarily unavailable',
  'service.error.FST_SSO_SERVICE_GATEWAY_UNAVAILABLE': 'The sign-in service is unavailable. Try again in a moment.',
  'service.error.FST_SSO_SERVICE_GATEWAY_REFUSED': 'The sign-in service refused the request. Start the sign-in again.',
  'service.error.FST_SSO_SERVICE_NO_LOGIN_IN_PROGRESS': 'No sign-in is in progress in this browser session. Start the sign-in again.',
  'service.error.FST_SSO_SERVICE_NO_SESSION_COOKIE': 'Your browser did not send back this site\'s session cookie, so the sign-in cannot be finished. Cookies may be blocked for this site, or the page was opened over plain http while the cookie is only sent over https. Allow cookies (or use the https address) and sign in again.',
  'service.error.FST_SSO_SERVICE_ACCOUNT_DISABLED': 'This account is disabled.',
  'service.error.FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED': 'The application could not set up the account. Try again in a moment.',
  'service.error.FST_SSO_SERVICE_FRESH_LOGIN_NOT_CONFIRMED': 'The sign-in service did not confirm that the password was entered again.',
  'service.error.FST_SSO_SERVICE_DATABASE_UNAVAILABLE': 'This app cannot keep your session right now (its database is unavailable). Please try again in a few minutes.',
  'service.error.FST_SSO_SERVICE_TOO_MANY_SIGN_INS': 'Too many sign-in attempts from your address. Wait a minute and try again.',
  'service.error.FST_SSO_SERVICE_LIMITS_UNAVAILABLE': 'Sign-in is unavailable right now (this app cannot check its sign-in limits). Please try again in a minute.',
  'service.error.FST_CSRF_INVALID_TOKEN': 'This form has expired or did not come from this site. Go back, reload the page and try again.',
  'service.error.FST_CSRF_MISSING_SECRET': 'This form has expired or did not come from this site. Go back, reload the page and try again.'
} as const

/** A key of the messages table. */
export type MessageKey = keyof typeof EN
