import type { Database } from 'better-sqlite3'

/**
 * The gateway's own key/value settings, in a `settings` table of its SQLite database (made on
 * first use, outside the numbered migrations). One value per key, written once: the first
 * writer wins, so processes starting together on one file read the same value.
 * Used for the session secret generated when the app gives none.
 */
export function settingOf (db: Database, key: string, create: () => string): string {
  db.exec('CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID')
  db.prepare('INSERT OR IGNORE INTO settings (key, value, created_at) VALUES (?, ?, ?)').run(key, create(), Date.now())
  return (db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string }).value
}
