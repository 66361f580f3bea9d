// The generic list page (any of the 7 tables, configured by schema.js): server-side search, sort and
// paging; create, edit and delete; and every change from any machine applied in place as it arrives.
//
// Loading waits (bounded) for the table's channel to join, so the snapshot is taken after the live
// stream starts: nothing falls between the two. Changes that arrive while a page loads are held and
// applied after it, then the count is checked once with a head-only count query (the snapshot may or
// may not have included them). From then on each change goes through ListWindow (rows.js): placed where
// the sort and filter put it, counted or not, with stale versions ignored.

import { supabase } from './client.js'
import { debounce, h, mount, uid } from './dom.js'
import { confirmDialog, openRecordForm } from './form.js'
import { formatCell, formatMoney } from './format.js'
import { rowActionsFor, toolbarFor } from './listextras.js'
import { byWhom, lookups } from './lookups.js'
import { notify } from './notices.js'
import { presence } from './presence.js'
import { ListWindow, matcher, orderTerms } from './rows.js'
import { DEFS, VERBS, canWrite, capital, describe } from './schema.js'
import { sync } from './sync.js'

const PAGE_SIZE = 25
const FLASH_MS = 2400
const JOIN_WAIT_MS = 8000

/** A PostgREST filter value in double quotes (commas, parentheses and dots are then literal). */
const quoted = (value) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`

function parseSort(def, text) {
  const [key, dir] = String(text ?? '').split('.')
  const column = def.columns.find((c) => c.key === key && c.sortable)
  if (!column) return { ...def.defaultSort[0] }
  return { key, asc: dir !== 'desc' }
}

export class ListView {
  constructor({ table, me, params, onParams }) {
    this.table = table
    this.def = DEFS[table]
    this.me = me
    this.onParams = onParams
    this.q = params.get('q') ?? ''
    // Active filters by column, as in the URL (?stage=won&owner_id=me); unknown values are dropped.
    this.filters = Object.fromEntries((this.def.filters ?? [])
      .map((f) => [f.key, params.get(f.key)])
      .filter(([key, value]) => value && this.filterDef(key) && this.validFilter(this.filterDef(key), value)))
    this.sort = parseSort(this.def, params.get('sort'))
    this.page = Math.max(1, Number.parseInt(params.get('page') ?? '1', 10) || 1)
    this.loading = false
    this.loadSeq = 0
    this.held = []
    this.flashes = new Map() // id -> time the highlight started
    this.ownWrites = new Set() // "id@version" written from this tab: no notice for their echo
    this.saving = new Set() // ids being written from this tab (the echo may beat the HTTP response)
    this.totalEpoch = 0
    this.error = null
    this.window = this.newWindow()
    this.cleanups = []
    this.refFilters = [] // [filter, select] of filters whose choices are staff names
    this.refreshCount = debounce(() => this.fetchCount(), 300)
    this.refreshSum = debounce(() => this.fetchSum(), 300)
    this.refill = debounce(() => this.fetchRefill(), 200)
    this.build()
  }

  newWindow() {
    return new ListWindow({
      terms: orderTerms(this.def, this.sort),
      matches: this.matches(),
      searchColumns: [...this.def.search, ...Object.keys(this.filters)],
      pageSize: PAGE_SIZE,
      offset: (this.page - 1) * PAGE_SIZE,
    })
  }

  // --- lifecycle --------------------------------------------------------------------------------

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handleChange(change)),
      sync.onResync((table) => table === this.table && this.load()),
      lookups.onChange(() => {
        this.renderRows()
        for (const [filter, select] of this.refFilters) this.fillFilter(filter, select)
      }),
      presence.onChange(() => this.renderRows()),
    )
    await this.load()
  }

  destroy() {
    this.loadSeq++
    this.cleanups.forEach((fn) => fn())
    this.refreshCount.cancel()
    this.refreshSum.cancel()
    this.search.cancel()
    this.refill.cancel()
    clearTimeout(this.flashTimer)
  }

  params() {
    const params = new URLSearchParams()
    if (this.q) params.set('q', this.q)
    for (const [key, value] of Object.entries(this.filters)) params.set(key, value)
    const d = this.def.defaultSort[0]
    if (this.sort.key !== d.key || this.sort.asc !== d.asc) params.set('sort', `${this.sort.key}.${this.sort.asc ? 'asc' : 'desc'}`)
    if (this.page > 1) params.set('page', String(this.page))
    return params
  }

  /** A query for the rows this list shows (search and filters) in its order, unpaged: for extras such as CSV export. */
  query(columns = '*', options = undefined) {
    return this.ordered(this.baseQuery(columns, options))
  }

  /**
   * Rows this tab is about to write itself (e.g. an import): their live echo is placed but not announced.
   * Returns a function that forgets them again (when the write failed).
   */
  expectOwnWrites(rows) {
    const keys = rows.map((row) => `${row.id}@${row.version ?? 1}`)
    keys.forEach((key) => this.ownWrites.add(key))
    return () => keys.forEach((key) => this.ownWrites.delete(key))
  }

  /**
   * A write to row `id` this tab is about to make where the list updates from the live echo (no local
   * apply). Call the returned function with the saved row when done, or with nothing when it failed.
   */
  ownWrite(id) {
    this.saving.add(id)
    return (saved) => {
      this.saving.delete(id)
      if (saved) this.ownWrites.add(`${saved.id}@${saved.version}`)
    }
  }

  /** Reloads the current page from the server. */
  reload() {
    return this.load()
  }

  baseQuery(columns, options) {
    let query = supabase.from(this.table).select(columns, options)
    const q = this.q.trim()
    if (q) query = query.or(this.def.search.map((c) => `${c}.ilike.${quoted(`*${q}*`)}`).join(','))
    for (const [key, value] of Object.entries(this.filters)) query = query.eq(key, this.filterValue(value))
    return query
  }

  ordered(query) {
    for (const term of orderTerms(this.def, this.sort)) {
      query = query.order(term.key, { ascending: term.asc, nullsFirst: !term.asc })
    }
    return query
  }

  async load() {
    const seq = ++this.loadSeq
    this.loading = true
    this.held = []
    this.setBusy(true)
    await sync.whenJoined(this.table, JOIN_WAIT_MS)
    if (seq !== this.loadSeq) return
    const offset = (this.page - 1) * PAGE_SIZE
    const { data, count, error } = await this.ordered(this.baseQuery('*', { count: 'exact' })).range(offset, offset + PAGE_SIZE - 1)
    if (seq !== this.loadSeq) return
    if (error?.code === 'PGRST103' && this.page > 1) {
      // Past the end (rows were deleted meanwhile): show the first page instead.
      this.page = 1
      this.onParams(this.params())
      return this.load()
    }
    this.loading = false
    this.setBusy(false)
    if (error) {
      this.error = `Could not load ${this.def.title.toLowerCase()}: ${error.message}`
      this.render()
      return
    }
    this.error = null
    const previous = this.window
    this.window = this.newWindow()
    this.window.reset(data, count ?? data.length, previous)
    const held = this.held.splice(0)
    for (const change of held) this.apply(change, true)
    if (held.length) this.refreshCount()
    this.render()
    this.fetchSum()
  }

  /** The total of the list's money column over every filtered row: one aggregate query per currency. */
  async fetchSum() {
    if (!this.def.sum) return
    const seq = (this.sumSeq = (this.sumSeq ?? 0) + 1)
    const { data, error } = await this.baseQuery(`currency, ${this.def.sum}.sum()`)
    if (seq !== this.sumSeq) return // a newer total was asked for meanwhile
    if (error) {
      this.sumEl.textContent = ''
      return
    }
    const totals = data.filter((g) => Number(g.sum)).sort((x, y) => x.currency.localeCompare(y.currency))
    this.sumEl.textContent = `Total ${totals.length ? totals.map((g) => formatMoney(g.sum, g.currency)).join(' + ') : formatMoney(0)}`
    this.sumEl.dataset.value = totals.map((g) => `${g.currency}:${Number(g.sum)}`).join(',')
  }

  async fetchCount() {
    const epoch = this.totalEpoch
    const seq = this.loadSeq
    const { count, error } = await this.baseQuery('id', { count: 'exact', head: true })
    if (error || this.loading || seq !== this.loadSeq) return // failed, or the search/filters changed meanwhile
    if (epoch !== this.totalEpoch) {
      this.refreshCount() // changes arrived meanwhile: ask again
      return
    }
    this.window.total = count ?? this.window.total
    this.renderCount()
  }

  async fetchRefill() {
    const missing = PAGE_SIZE - this.window.rows.length
    if (missing <= 0 || this.window.beyond() === 0 || this.loading) return
    const from = this.window.offset + this.window.rows.length
    const seq = this.loadSeq
    const { data, error } = await this.ordered(this.baseQuery('*')).range(from, from + missing - 1)
    if (error || this.loading || seq !== this.loadSeq) return
    this.window.fill(data)
    this.renderRows()
  }

  // --- changes ----------------------------------------------------------------------------------

  handleChange(change) {
    if (change.table !== this.table) return
    if (this.loading) {
      this.held.push(change)
      return
    }
    this.apply(change, true)
    this.render()
  }

  apply(change, announce) {
    const before = this.window.total
    const result = this.window.apply(change)
    if (result.stale) return result
    this.refreshSum()
    if (this.window.total !== before) this.totalEpoch++
    if (result.placed) this.flash(result.id)
    if (result.countUnknown) this.refreshCount()
    if (result.refill) this.refill()
    if (announce) this.announce(change)
    return result
  }

  announce(change) {
    const row = change.record ?? change.old ?? {}
    const key = change.type === 'DELETE' ? `${row.id}@deleted` : `${row.id}@${row.version}`
    if (this.ownWrites.delete(key) || this.saving.has(row.id)) return
    const who = change.type === 'DELETE' ? '' : byWhom(row, this.me)
    const name = describe(this.table, row)
    notify(`${capital(this.def.singular)} “${name}” ${VERBS[change.type]}${who}`, {
      group: this.table,
      summary: (n) => `${n} changes to ${this.def.title.toLowerCase()}`,
    })
  }

  flash(id) {
    this.flashes.set(id, performance.now())
    clearTimeout(this.flashTimer)
    this.flashTimer = setTimeout(() => this.expireFlashes(), FLASH_MS + 50)
  }

  expireFlashes() {
    const now = performance.now()
    for (const [id, start] of this.flashes) {
      if (now - start >= FLASH_MS) {
        this.flashes.delete(id)
        this.tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.classList.remove('flash')
      }
    }
    if (this.flashes.size) this.flashTimer = setTimeout(() => this.expireFlashes(), 200)
  }

  // --- user actions -----------------------------------------------------------------------------

  setQuery(q) {
    if (q === this.q) return
    this.q = q
    this.page = 1
    this.onParams(this.params())
    this.load()
  }

  setFilter(key, value) {
    if (value) this.filters[key] = value
    else delete this.filters[key]
    this.page = 1
    this.onParams(this.params())
    this.load()
  }

  filterDef(key) {
    return this.def.filters?.find((f) => f.key === key)
  }

  validFilter(filter, value) {
    if (filter.options) return filter.options.some((o) => o.value === value)
    return value === 'me' || /^[0-9a-f-]{36}$/i.test(value)
  }

  filterValue(value) {
    return value === 'me' ? this.me.id : value
  }

  /** The search and the filters as a row test, for changes arriving live. */
  matches() {
    const search = matcher(this.def.search, this.q)
    const wanted = Object.entries(this.filters).map(([key, value]) => [key, String(this.filterValue(value))])
    return (row) => search(row) && wanted.every(([key, value]) => String(row[key]) === value)
  }

  setSort(key) {
    this.sort = this.sort.key === key ? { key, asc: !this.sort.asc } : { key, asc: true }
    this.page = 1
    this.onParams(this.params())
    this.renderHead()
    this.load()
  }

  goToPage(page) {
    this.page = page
    this.onParams(this.params())
    this.load()
    this.heading.focus()
  }

  async create() {
    const saved = await openRecordForm({
      table: this.table, row: null, me: this.me,
      onSaving: (id) => this.saving.add(id),
      onSaved: (row) => this.saved(row, null),
      onFailed: (id) => this.saving.delete(id),
    })
    this.focusAfterDialog(saved?.id)
  }

  async edit(row) {
    await openRecordForm({
      table: this.table, row, me: this.me,
      onSaving: (id) => this.saving.add(id),
      onSaved: (saved) => this.saved(saved, row),
      onFailed: (id) => this.saving.delete(id),
    })
    this.focusAfterDialog(row.id)
  }

  /** The dialog's opener may have been re-rendered away: focus the row's Edit button, else the heading. */
  focusAfterDialog(id) {
    if (this.el.contains(document.activeElement)) return
    const button = id ? this.tbody.querySelector(`tr[data-id="${CSS.escape(id)}"] [data-action="edit"]`) : null
    ;(button ?? this.heading).focus()
  }

  saved(row, before) {
    this.apply({ table: this.table, type: before ? 'UPDATE' : 'INSERT', record: row, old: before, source: 'local' }, false)
    this.render()
    this.saving.delete(row.id)
    let where = ''
    if (this.window.indexOf(row.id) < 0) {
      where = this.window.matches(row) ? ' (on another page of this list)' : ' (it does not match the search)'
    }
    notify(`${capital(this.def.singular)} “${describe(this.table, row)}” ${before ? 'saved' : 'added'}${where}`)
  }

  async remove(row) {
    const name = describe(this.table, row)
    const ok = await confirmDialog({
      title: `Delete ${this.def.singular}?`,
      message: `“${name}” will be deleted for everyone. This cannot be undone.`,
      confirmLabel: 'Delete',
      danger: true,
    })
    if (!ok) {
      this.focusAfterDialog(row.id)
      return
    }
    this.saving.add(row.id)
    const { data, error } = await supabase.from(this.table).delete().eq('id', row.id).select('id')
    this.saving.delete(row.id)
    if (error) {
      notify(`Could not delete “${name}”: ${error.message}`, { kind: 'error' })
      return
    }
    if (data.length === 0) {
      notify(`“${name}” was not deleted: it is already gone, or you may not delete it.`, { kind: 'error' })
      return
    }
    this.apply({ table: this.table, type: 'DELETE', record: null, old: row, source: 'local' }, false)
    this.render()
    this.focusAfterDialog(null)
    notify(`${capital(this.def.singular)} “${name}” deleted`)
  }

  // --- rendering --------------------------------------------------------------------------------

  build() {
    const def = this.def
    const headingId = uid('list-title')
    const searchId = uid('search')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, def.title)
    this.countEl = h('p', { class: 'count', 'aria-live': 'polite', dataset: { testid: 'count' } })
    this.sumEl = h('p', { class: 'count', dataset: { testid: 'sum' }, hidden: !def.sum })
    const newButton = def.canCreate !== false && canWrite(this.table, this.me)
      ? h('button', { type: 'button', onclick: () => this.create() }, `New ${def.singular}`)
      : null
    this.searchInput = h('input', {
      id: searchId, type: 'search', value: this.q, autocomplete: 'off',
      placeholder: def.search.map((c) => c.replace(/_/g, ' ')).join(', '),
    })
    const search = (this.search = debounce(() => this.setQuery(this.searchInput.value), 250))
    this.searchInput.addEventListener('input', search)
    const searchForm = h('form', { role: 'search', class: 'toolbar', onsubmit: (e) => { e.preventDefault(); search.cancel(); this.setQuery(this.searchInput.value) } },
      h('div', { class: 'field' }, h('label', { for: searchId }, `Search ${def.title.toLowerCase()}`), this.searchInput),
      (def.filters ?? []).map((filter) => this.filterField(filter)),
    )
    this.thead = h('thead')
    this.tbody = h('tbody')
    this.table_ = h('table', { class: 'list', 'aria-labelledby': headingId }, this.thead, this.tbody)
    this.empty = h('p', { class: 'empty', hidden: true })
    this.status = h('p', { class: 'list-status', role: 'alert', hidden: true })
    this.prev = h('button', { type: 'button', class: 'button-quiet', onclick: () => this.goToPage(this.page - 1) }, 'Previous page')
    this.next = h('button', { type: 'button', class: 'button-quiet', onclick: () => this.goToPage(this.page + 1) }, 'Next page')
    this.range = h('span', { class: 'range' })
    this.wrap = h('div', { class: 'list-wrap' }, this.status, this.table_, this.empty,
      h('nav', { class: 'pager', 'aria-label': `${def.title} pages` }, this.prev, this.range, this.next))
    this.el = h('section', { class: 'list-view', 'aria-labelledby': headingId, dataset: { table: this.table } },
      h('div', { class: 'view-head' }, this.heading, this.countEl, this.sumEl, h('div', { class: 'actions' }, newButton, toolbarFor(this))),
      searchForm,
      this.wrap,
    )
    this.renderHead()
  }

  /** A labelled select for one filter: "All" plus its values, or Anyone / Me / each staff member. */
  filterField(filter) {
    const id = uid(`filter-${filter.key}`)
    const select = h('select', { id, dataset: { filter: filter.key }, onchange: () => this.setFilter(filter.key, select.value) })
    this.fillFilter(filter, select)
    if (filter.ref) this.refFilters.push([filter, select])
    return h('div', { class: 'field field-filter' }, h('label', { for: id }, filter.label), select)
  }

  /** (Re)fills a filter's options; staff names may arrive after the page (lookups load once joined). */
  fillFilter(filter, select) {
    const choices = filter.options ?? [
      { value: 'me', label: 'Me' },
      ...[...lookups.map('staff').values()]
        .filter((row) => row && row.id !== this.me.id)
        .map((row) => ({ value: row.id, label: row.full_name }))
        .sort((x, y) => x.label.localeCompare(y.label)),
    ]
    const wanted = [filter.ref ? 'Anyone' : 'All', ...choices.map((c) => c.label)]
    if ([...select.options].map((o) => o.text).join('\n') === wanted.join('\n')) return
    select.replaceChildren(
      h('option', { value: '' }, wanted[0]),
      ...choices.map((c) => h('option', { value: c.value }, c.label)))
    select.value = this.filters[filter.key] ?? ''
  }

  setBusy(busy) {
    this.wrap.setAttribute('aria-busy', busy ? 'true' : 'false')
    this.el.dataset.state = busy ? 'loading' : 'ready'
  }

  renderHead() {
    const cells = this.def.columns.map((column) => {
      if (!column.sortable) return h('th', { scope: 'col' }, column.label)
      const active = this.sort.key === column.key
      return h('th', { scope: 'col', 'aria-sort': active ? (this.sort.asc ? 'ascending' : 'descending') : null },
        h('button', { type: 'button', onclick: () => this.setSort(column.key), dataset: { sort: column.key } }, column.label))
    })
    mount(this.thead, h('tr', {}, cells, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions'))))
  }

  render() {
    this.renderCount()
    this.renderRows()
  }

  renderCount() {
    const total = this.window.total
    const noun = total === 1 ? this.def.singular : this.def.title.toLowerCase()
    const filterCount = Object.keys(this.filters).length
    const filterText = filterCount ? ` (${filterCount} filter${filterCount > 1 ? 's' : ''})` : ''
    this.countEl.textContent = (this.q ? `${total} ${noun} matching “${this.q}”` : `${total} ${noun}`) + filterText
    this.countEl.dataset.total = String(total)
    const first = total === 0 ? 0 : this.window.offset + 1
    const last = this.window.offset + this.window.rows.length
    this.range.textContent = total === 0 ? 'No results' : `${first}–${last} of ${total}`
    this.prev.disabled = this.page <= 1
    this.next.disabled = this.window.offset + PAGE_SIZE >= total
  }

  renderRows() {
    if (!this.tbody) return
    // Keep keyboard focus on the same button across re-renders.
    const active = document.activeElement
    const focusId = this.tbody.contains(active) ? active.closest('tr')?.dataset.id : null
    const focusAction = focusId ? active.dataset.action : null

    const now = performance.now()
    const rows = this.window.rows.map((row) => this.renderRow(row, now))
    this.tbody.replaceChildren(...rows)
    this.status.hidden = !this.error
    this.status.textContent = this.error ?? ''
    this.empty.hidden = Boolean(this.error) || this.window.rows.length > 0 || this.loading
    const title = this.def.title.toLowerCase()
    if (Object.keys(this.filters).length) this.empty.textContent = `No ${title} match these filters${this.q ? ` and “${this.q}”` : ''}.`
    else this.empty.textContent = this.q ? `No ${title} match “${this.q}”.` : `No ${title} yet.`
    if (focusId && focusAction) {
      this.tbody.querySelector(`tr[data-id="${CSS.escape(focusId)}"] [data-action="${focusAction}"]`)?.focus()
    }
  }

  /** The signed-in person's own staff row (which they may edit but not delete). */
  isMe(row) {
    return this.table === 'staff' && row.id === this.me.id
  }

  /** "Priya Shah editing" when someone else has this row open (presence on the table's channel). */
  presenceBadge(row) {
    const people = presence.onRecord(this.table, row.id)
    if (!people.length) return null
    const text = people.map((p) => `${p.name} ${p.editing ? 'editing' : 'viewing'}`).join(', ')
    return h('span', { class: 'presence-badge', dataset: { testid: 'row-presence' } }, text)
  }

  renderRow(row, now) {
    const name = describe(this.table, row)
    const cells = this.def.columns.map((column, index) => {
      const value = column.value ? column.value(row) : row[column.key]
      const text = column.kind === 'ref' ? lookups.name(column.ref, value) : formatCell(value, column.kind, row, column)
      const content = [text]
      if (index === 0 && row.visibility === 'private') content.push(' ', h('span', { class: 'badge badge-private' }, 'Private'))
      if (index > 0) return h('td', { 'data-label': column.label, dataset: { col: column.key, kind: column.kind } }, content)
      return h('td', { 'data-label': column.label, dataset: { col: column.key, kind: column.kind } },
        h('strong', {}, h('a', { href: `/${this.table}/${row.id}`, dataset: { action: 'open' } }, content[0]), content.slice(1)), this.presenceBadge(row))
    })
    const writable = canWrite(this.table, this.me, row)
    const actions = h('td', { class: 'row-actions', 'data-label': 'Actions' },
      writable ? h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'edit' }, 'aria-label': `Edit ${name}`, onclick: () => this.edit(row) }, 'Edit') : null,
      writable && !this.isMe(row) ? h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'delete' }, 'aria-label': `Delete ${name}`, onclick: () => this.remove(row) }, 'Delete') : null,
      rowActionsFor(this, row),
    )
    const tr = h('tr', { dataset: { id: row.id, version: row.version } }, cells, actions)
    const started = this.flashes.get(row.id)
    if (started !== undefined && now - started < FLASH_MS) {
      tr.classList.add('flash')
      tr.style.animationDelay = `-${Math.round(now - started)}ms` // a re-render continues the highlight
    }
    return tr
  }
}
