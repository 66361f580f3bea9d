// One page of a server-sorted, server-filtered list, kept correct as changes arrive (no refetch).
//
// The page holds rows [offset, offset + pageSize) of the server's order plus the total that matches the
// filter. A change is placed where the same order puts it: inside the page, or nowhere when it sorts
// before the page (an earlier page) or after it while more rows follow (a later page). The comparator
// mirrors the server's ORDER BY: NULLs sort as the largest value (ASC NULLS LAST, DESC NULLS FIRST),
// text compares by code point (PostgreSQL's C collation and SQLite's BINARY), `id` breaks ties.

/** [{ key, asc, kind }] for a sort choice: the column's sort keys, then id ascending. */
export function orderTerms(def, sort) {
  const column = def.columns.find((c) => c.key === sort.key)
  const keys = column?.sortKeys ?? [sort.key]
  const kindOf = (key) => def.columns.find((c) => c.key === key)?.kind ?? 'text'
  return [...keys.map((key) => ({ key, asc: sort.asc, kind: kindOf(key) })), { key: 'id', asc: true, kind: 'text' }]
}

/** A number that orders ISO timestamps with microseconds ("…T10:00:00.123456+00:00" or no fraction). */
function timeKey(text) {
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) return null
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? ''
  const micros = Number((fraction + '000000').slice(3, 6))
  return ms * 1000 + micros
}

function sortValue(value, kind) {
  if (value === null || value === undefined) return null
  if (kind === 'timestamp') return timeKey(value)
  if (kind === 'number' || kind === 'money') return Number(value)
  if (kind === 'bool') return value ? 1 : 0
  return String(value)
}

export function comparator(terms) {
  return (a, b) => {
    for (const { key, asc, kind } of terms) {
      const x = sortValue(a[key], kind)
      const y = sortValue(b[key], kind)
      let c = 0
      if (x === null && y === null) c = 0
      else if (x === null) c = 1 // NULL is the largest value
      else if (y === null) c = -1
      else c = x < y ? -1 : x > y ? 1 : 0
      if (c !== 0) return asc ? c : -c
    }
    return 0
  }
}

/** Does `row` match the list's search (case-insensitive substring on the searched columns)? */
export function matcher(columns, query) {
  const needle = (query ?? '').trim().toLowerCase()
  if (!needle) return () => true
  return (row) => columns.some((col) => String(row[col] ?? '').toLowerCase().includes(needle))
}

/** `old` carries the row's columns (not only its key), so the filter can be evaluated on it. */
const hasColumns = (old, columns) => old && columns.every((c) => c in old)

/**
 * The newest version applied per id and the ids deleted, for any view that keeps rows from the change
 * stream: an event delivered twice (live and by catch-up, or the echo of this tab's own write) is
 * applied once, and an older version never replaces a newer one.
 */
export class Versions {
  constructor() {
    this.seen = new Map()
    this.gone = new Set()
  }

  /** A row from a server snapshot. */
  loaded(row) {
    this.seen.set(row.id, Math.max(this.seen.get(row.id) ?? 0, Number(row.version)))
    this.gone.delete(row.id)
  }

  /** Whether a DELETE of `id` is news (then it is recorded). */
  deleted(id) {
    if (!id || this.gone.has(id)) return false
    this.gone.add(id)
    return true
  }

  /** Whether an INSERT/UPDATE brings a version not applied yet (then it is recorded). */
  fresh(change) {
    const row = change.record
    const version = Number(row.version)
    const seen = this.seen.get(row.id) ?? -1
    // A row can come back into view unchanged (its parent became readable again): same version, INSERT.
    const comesBack = change.type === 'INSERT' && this.gone.has(row.id) && seen === version
    if (seen >= version && !comesBack) return false
    this.seen.set(row.id, version)
    this.gone.delete(row.id)
    return true
  }

  isGone(id) {
    return this.gone.has(id)
  }

  /** Lets the server's copy of `id` at `version` be applied again (a refused local change is undone). */
  reopen(id, version) {
    this.seen.set(id, Number(version) - 1)
  }
}

export class ListWindow {
  constructor({ terms, matches, searchColumns, pageSize, offset = 0 }) {
    this.compare = comparator(terms)
    this.matches = matches
    this.searchColumns = searchColumns
    this.pageSize = pageSize
    this.offset = offset
    this.rows = []
    this.total = 0
    this.versions = new Versions() // of rows on this page or not: nothing is counted twice
  }

  reset(rows, total, previous = null) {
    if (previous) this.versions = previous.versions
    this.rows = rows.slice()
    this.total = total
    for (const row of rows) this.versions.loaded(row)
  }

  indexOf(id) {
    return this.rows.findIndex((r) => r.id === id)
  }

  /** Rows after this page that match the filter (as far as the total says). */
  beyond() {
    return Math.max(0, this.total - this.offset - this.rows.length)
  }

  /**
   * Applies one change. Returns what happened:
   *   { stale }              an older version than the one shown: ignored
   *   { placed, id }         the row is (now) on this page
   *   { removed }            the row left this page
   *   { countUnknown }       the total may have changed but the event cannot tell (refetch the count)
   *   { refill }             the page lost a row while more rows follow (fetch the rows to fill it)
   */
  apply(change) {
    const out = { stale: false, placed: false, removed: false, countUnknown: false, refill: false, id: null }
    if (change.type === 'DELETE') {
      const id = change.old?.id
      out.id = id
      if (!this.versions.deleted(id)) {
        out.stale = true
        return out
      }
      const at = this.indexOf(id)
      if (at >= 0) {
        this.rows.splice(at, 1)
        this.total = Math.max(0, this.total - 1)
        out.removed = true
        out.refill = this.beyond() > 0
      } else if (hasColumns(change.old, this.searchColumns)) {
        if (this.matches(change.old)) this.total = Math.max(0, this.total - 1)
      } else {
        out.countUnknown = true
      }
      return out
    }

    const row = change.record
    out.id = row.id
    if (!this.versions.fresh(change)) {
      out.stale = true
      return out
    }
    const at = this.indexOf(row.id)
    const existing = at >= 0 ? this.rows[at] : null
    const nowMatches = this.matches(row)
    let wasMatching
    if (existing) wasMatching = true
    else if (change.type === 'INSERT') wasMatching = false
    else if (hasColumns(change.old, this.searchColumns)) wasMatching = this.matches(change.old)
    else wasMatching = null
    if (wasMatching === null) out.countUnknown = true
    else this.total = Math.max(0, this.total + (nowMatches ? 1 : 0) - (wasMatching ? 1 : 0))

    if (existing) this.rows.splice(at, 1)
    if (nowMatches && this.place(row)) {
      out.placed = true
    } else if (existing) {
      out.removed = true
      out.refill = this.beyond() > 0
    }
    return out
  }

  /** Inserts `row` at its sorted position when that position is on this page. */
  place(row) {
    let pos = this.rows.findIndex((r) => this.compare(row, r) < 0)
    if (pos === -1) pos = this.rows.length
    if (pos === 0 && this.offset > 0 && this.rows.length > 0) return false // an earlier page
    // After the last row shown: ours only if no matching row follows this page.
    if (pos === this.rows.length && (this.rows.length >= this.pageSize || this.beyond() - 1 > 0)) return false
    this.rows.splice(pos, 0, row)
    if (this.rows.length > this.pageSize) this.rows.pop() // pushed onto the next page
    return true
  }

  /** Merges rows fetched to fill a gap: new ids only, kept in order, page size respected. */
  fill(rows) {
    for (const row of rows) {
      if (this.indexOf(row.id) >= 0 || this.versions.isGone(row.id)) continue
      if (this.rows.length >= this.pageSize) break
      this.versions.loaded(row)
      const last = this.rows[this.rows.length - 1]
      if (!last || this.compare(row, last) > 0) this.rows.push(row)
    }
  }
}
