/**
 * The admin console's own texts, by key, `{name}` marking a parameter: its frame (navigation, who
 * is signed in), the pages' headings and the outcome of each change. The console is shown in
 * English whatever the browser asks for (its pages' `lang` is `en`); the pages' other texts are
 * in their templates.
 */
export const ADMIN_MESSAGES = Object.freeze({
  'nav.label': 'Console',
  'nav.overview': 'Overview',
  'nav.users': 'Users',
  'nav.groups': 'Groups',
  'nav.services': 'Services',
  'nav.sessions': 'Sessions',
  'nav.audit': 'Audit log',
  'nav.signedInAs': 'Signed in as',
  'nav.gateway': 'Gateway',
  'heading.signInFirst': 'Sign in first',
  'heading.notAdmin': 'Not an administrator',
  'heading.home': 'Administration',
  'heading.users': 'Users',
  'heading.user': 'User {user}',
  'heading.groups': 'Groups',
  'heading.services': 'Services',
  'heading.service': 'Service {service}',
  'heading.registered': 'Service {service} registered',
  'heading.rotated': 'New secrets for {service}',
  'heading.sessions': 'Active sessions',
  'heading.audit': 'Audit log',
  'heading.confirm': 'Confirm your password',
  'done.saved': 'Saved.',
  'done.enabled': 'Enabled.',
  'done.userCreated': 'User {user} created.',
  'done.userDisabled': 'Disabled and signed out everywhere.',
  'done.passwordSet': 'Password set; {ended} session(s) ended.',
  'done.userDeleted': 'User {user} deleted.',
  'done.addedTo': 'Added to {group}.',
  'done.removedFrom': 'Removed from {group}.',
  'done.signedOutEverywhere': 'Signed out everywhere ({ended} session(s)).',
  'done.sessionEnded': 'Session ended at the gateway and every service it reached.',
  'done.sessionGone': 'That session had already ended.',
  'done.groupCreated': 'Group {group} created.',
  'done.groupDeleted': 'Group {group} deleted.',
  'done.serviceDisabled': 'Disabled: its secret is refused and it receives no events.',
  'done.openToAll': 'Open to every user.',
  'done.accessSaved': 'Access rule saved.',
  'done.replayed': '{replayed} event(s) queued again.',
  'error.noUser': 'No user {user}.',
  'error.noGroup': 'No group {group}.',
  'error.noService': 'No service {service}.',
  'error.confirmDelete': 'Type the username to confirm the deletion.',
  'error.wrongPassword': 'Wrong password.'
})

export type AdminMessageKey = keyof typeof ADMIN_MESSAGES

/** The console's text of a key, its `{name}` parameters filled in. */
export const adminText = (key: AdminMessageKey, params: Record<string, string | number> = {}): string =>
  ADMIN_MESSAGES[key].replace(/\{(\w+)\}/g, (whole, name: string) => name in params ? String(params[name]) : whole)
