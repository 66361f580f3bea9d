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

export class ListWindow {
  constructor({ terms, matches, searchColumns, pageSize, offset = 0 }) {
    this.compare = comparator(terms)
    this.matches = matches
    this.searchColumns = searchColumns
    this.pageSize = pageSize
    this.offset = offset
    this.rows = []
    this.total = 0
    // Newest version applied per id (on this page or not) and ids deleted: an event delivered twice
    // (live and by catch-up, or the echo of this tab's own write) must not be counted twice.
    this.seen = new Map()
    this.gone = new Set()
  }

  reset(rows, total, previous = null) {
    if (previous) {
      this.seen = previous.seen
      this.gone = previous.gone
    }
    this.rows = rows.slice()
    this.total = total
    for (const row of rows) {
      this.seen.set(row.id, Math.max(this.seen.get(row.id) ?? 0, Number(row.version)))
      this.gone.delete(row.id)
    }
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
      if (this.gone.has(id)) {
        out.stale = true
        return out
      }
      this.gone.add(id)
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
    const version = Number(row.version)
    const seen = this.seen.get(row.id) ?? -1
    // A row can come back into view unchanged (its parent became readable again): same version, INSERT.
    const comesBack = change.type === 'INSERT' && this.gone.has(row.id) && seen === version
    if (seen >= version && !comesBack) {
      out.stale = true
      return out
    }
    this.seen.set(row.id, version)
    this.gone.delete(row.id)
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
      if (this.indexOf(row.id) >= 0 || this.gone.has(row.id)) continue
      if (this.rows.length >= this.pageSize) break
      this.seen.set(row.id, Math.max(this.seen.get(row.id) ?? 0, Number(row.version)))
      const last = this.rows[this.rows.length - 1]
      if (!last || this.compare(row, last) > 0) this.rows.push(row)
    }
  }
}
