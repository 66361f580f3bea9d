// Display formats for list cells and notices (the browser's locale; values stay untouched in rows).

import { capital } from './schema.js'

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const thisYear = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' })
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' })
const money = new Map()

export function formatMoney(amount, currency = 'USD') {
  if (amount === null || amount === undefined) return ''
  if (!money.has(currency)) {
    try {
      money.set(currency, new Intl.NumberFormat(undefined, { style: 'currency', currency, maximumFractionDigits: 2 }))
    } catch {
      money.set(currency, new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }))
    }
  }
  return money.get(currency).format(Number(amount))
}

export function formatTimestamp(value) {
  if (!value) return ''
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return String(value)
  return d.getFullYear() === new Date().getFullYear() ? thisYear.format(d) : dateTime.format(d)
}

export function formatDate(value) {
  if (!value) return ''
  const d = new Date(`${value}T00:00:00Z`)
  return Number.isNaN(d.getTime()) ? String(value) : dateOnly.format(d)
}

/** Plain text for a list cell of `kind` (refs are resolved by the caller). */
export function formatCell(value, kind, row, column) {
  if (value === null || value === undefined || value === '') return ''
  switch (kind) {
    case 'money':
      return formatMoney(value, row.currency)
    case 'timestamp':
      return formatTimestamp(value)
    case 'date':
      return formatDate(value)
    case 'bool':
      return value ? 'Yes' : 'No'
    case 'enum':
      return capital(String(value))
    case 'tags':
      return value.join(', ')
    case 'number':
      return `${value}${column?.suffix ?? ''}`
    default:
      return String(value)
  }
}

/** Local-calendar boundaries around `now`: start of today, tomorrow, this month and next month. */
export function timeBounds(now = new Date()) {
  const y = now.getFullYear()
  const m = now.getMonth()
  const d = now.getDate()
  return {
    today: new Date(y, m, d),
    tomorrow: new Date(y, m, d + 1),
    month: new Date(y, m, 1),
    nextMonth: new Date(y, m + 1, 1),
  }
}
