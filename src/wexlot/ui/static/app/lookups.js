// Names of referenced rows (owner, company, contact…) for lists, forms and notices, kept live.
//
// Staff, companies and platforms are small and loaded whole at sign-in; contacts and deals are fetched
// by id when a list shows a reference to one. Every cached row follows the realtime stream, so a renamed
// company is renamed in every list at once. Lists re-render when onChange() fires.

import { supabase } from './client.js'
import { LABEL_COLUMNS, describe } from './schema.js'
import { debounce } from './dom.js'
import { sync } from './sync.js'

const PRELOADED = ['staff', 'companies', 'platforms']
const EXTRA_COLUMNS = { staff: ['email', 'role', 'is_active', 'user_id'] }
const MAX_ROWS = 1000
const CHUNK = 100

class Lookups {
  constructor() {
    this.rows = new Map() // table -> Map(id -> row)
    this.complete = new Set() // tables whose every readable row is cached
    this.pending = new Map() // table -> Set(id) queued for fetching
    this.listeners = new Set()
    this.notify = debounce(() => this.listeners.forEach((fn) => fn()), 30)
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
    const { data, error } = await supabase.from(table).select(this.columns(table)).limit(MAX_ROWS)
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

  /** Choices for a reference field: [{ value, label }] sorted by label (at most 1000). */
  async choices(table) {
    if (!this.complete.has(table)) await this.loadAll(table)
    return [...this.map(table).values()]
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
    if (known === undefined && !this.complete.has(change.table)) return // not needed yet
    map.set(row.id, row)
    this.notify()
  }

  onChange(fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
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
