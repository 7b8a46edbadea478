export * from './kit.js'
export { EN as ENGLISH_MESSAGES, type MessageKey } from './messages-en.js'
export { RU as RUSSIAN_MESSAGES } from './messages-ru.js'
