// Names of referenced rows (owner, company, contact…) for lists, forms and notices, kept live.
//
// Staff, companies and platforms are small and loaded whole at sign-in; contacts and deals are fetched
// by id when a list shows a reference to one. Every cached row follows the realtime stream, so a renamed
// company is renamed in every list at once. Lists re-render when onChange() fires.

import { supabase } from './client.js'
import { LABEL_COLUMNS, describe } from './schema.js'
import { Listeners, debounce } from './dom.js'
import { sync } from './sync.js'

const PRELOADED = ['staff', 'companies', 'platforms']
const EXTRA_COLUMNS = { staff: ['email', 'role', 'is_active', 'user_id'] }
const MAX_ROWS = 1000
const CHUNK = 100
const SEARCH_LIMIT = 50

class Lookups {
  constructor() {
    this.rows = new Map() // table -> Map(id -> row)
    this.complete = new Set() // tables whose every readable row is cached
    this.partial = new Set() // tables too big for that: their first 1000 rows are cached for choices
    this.pending = new Map() // table -> Set(id) queued for fetching
    this.listeners = new Listeners()
    this.notify = debounce(() => this.listeners.emit(), 30)
    this.fetchMissing = debounce(() => this.flushPending(), 20)
  }

  columns(table) {
    return ['id', 'version', ...LABEL_COLUMNS[table], ...(EXTRA_COLUMNS[table] ?? [])].join(',')
  }

  map(table) {
    if (!this.rows.has(table)) this.rows.set(table, new Map())
    return this.rows.get(table)
  }

  clear() {
    this.rows.clear()
    this.complete.clear()
    this.partial.clear()
    this.pending.clear()
  }

  /** Loads the small tables whole, each once its channel has joined (no change falls in between). */
  async preload() {
    await Promise.all(PRELOADED.map(async (table) => {
      await sync.whenJoined(table)
      await this.loadAll(table)
    }))
  }

  async loadAll(table) {
    const { data, error } = await supabase.from(table).select(this.columns(table)).order(LABEL_COLUMNS[table][0]).limit(MAX_ROWS)
    if (error) throw new Error(`could not load ${table}: ${error.message}`)
    const map = this.map(table)
    map.clear()
    for (const row of data) map.set(row.id, row)
    if (data.length < MAX_ROWS) this.complete.add(table)
    this.notify()
  }

  /** The cached row, or undefined (then it is fetched, and onChange fires when it arrives). */
  get(table, id) {
    if (!id) return undefined
    const row = this.map(table).get(id)
    if (row === undefined && !this.complete.has(table)) {
      if (!this.pending.has(table)) this.pending.set(table, new Set())
      this.pending.get(table).add(id)
      this.fetchMissing()
    }
    return row
  }

  /** "Jane Smith" for a contacts id, "" for no id, "…" while loading, "(not visible)" when not readable. */
  name(table, id) {
    if (!id) return ''
    const row = this.get(table, id)
    if (row === null) return '(not visible)'
    return row === undefined ? (this.complete.has(table) ? '(not visible)' : '…') : describe(table, row)
  }

  async flushPending() {
    const batches = [...this.pending].map(([table, ids]) => [table, [...ids]])
    this.pending.clear()
    for (const [table, ids] of batches) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK)
        const { data, error } = await supabase.from(table).select(this.columns(table)).in('id', chunk)
        if (error) continue // shown as "…"; the next render asks again
        const map = this.map(table)
        for (const row of data) map.set(row.id, row)
        for (const id of chunk) if (!map.has(id)) map.set(id, null) // not readable (or gone)
      }
    }
    this.notify()
  }

  /**
   * Choices for a reference field: [{ value, label }] sorted by label. Tables of up to 1000 readable rows
   * are held whole; of a bigger one the first 1000 are offered and search() finds the others.
   */
  async choices(table) {
    if (!this.complete.has(table) && !this.partial.has(table)) {
      await this.loadAll(table)
      if (!this.complete.has(table)) this.partial.add(table)
    }
    return this.asChoices(table, [...this.map(table).values()])
  }

  /** Whether choices() of `table` holds only some of its rows (then forms offer a search). */
  isPartial(table) {
    return this.partial.has(table)
  }

  /** Up to 50 rows of `table` whose label columns contain every word of `text` ("jane smi"), as choices. */
  async search(table, text) {
    const words = text.trim().split(/\s+/).filter(Boolean).map((w) => w.replace(/[\\"]/g, '\\$&'))
    if (!words.length) return this.choices(table)
    let query = supabase.from(table).select(this.columns(table))
    for (const word of words) query = query.or(LABEL_COLUMNS[table].map((c) => `${c}.ilike."*${word}*"`).join(','))
    const { data, error } = await query.order(LABEL_COLUMNS[table][0]).limit(SEARCH_LIMIT)
    if (error) throw new Error(`could not search ${table}: ${error.message}`)
    const map = this.map(table)
    for (const row of data) map.set(row.id, row)
    return this.asChoices(table, data)
  }

  asChoices(table, rows) {
    return rows
      .filter(Boolean)
      .map((row) => ({ value: row.id, label: describe(table, row), row }))
      .sort((a, b) => a.label.localeCompare(b.label))
  }

  /** Keeps cached rows in step with a realtime change (any table). */
  apply(change) {
    if (!this.rows.has(change.table)) return
    const map = this.map(change.table)
    if (change.type === 'DELETE') {
      const id = change.old?.id
      if (map.has(id)) {
        map.delete(id)
        this.notify()
      }
      return
    }
    const row = change.record
    const known = map.get(row.id)
    if (known && known.version >= row.version) return
    // Not needed yet; but a new row of a table whose choices are cached in part is one to offer.
    if (known === undefined && !this.complete.has(change.table) && !(this.partial.has(change.table) && change.type === 'INSERT')) return
    map.set(row.id, row)
    this.notify()
  }

  onChange(fn) {
    return this.listeners.add(fn)
  }
}

export const lookups = new Lookups()

/** Who last changed `row`: "you", a staff member's name, or null when it was written outside the app. */
export function changedBy(row, me = null) {
  if (!row?.updated_by) return null
  return row.updated_by === me?.id ? 'you' : lookups.name('staff', row.updated_by)
}

/** " by Priya Shah", " by you" or " outside the app", to follow a verb in a notice. */
export function byWhom(row, me) {
  const who = changedBy(row, me)
  return who ? ` by ${who}` : ' outside the app'
}
