/**
 * The admin console's own texts (its frame: navigation and who is signed in), by key. The console
 * is shown in English whatever the browser asks for (its pages' `lang` is `en`).
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
  'nav.gateway': 'Gateway'
})

export type AdminMessageKey = keyof typeof ADMIN_MESSAGES

/** The console's text of a key. */
export const adminText = (key: AdminMessageKey): string => ADMIN_MESSAGES[key]
