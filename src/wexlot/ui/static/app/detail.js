// One record's page (/<table>/<id>): its fields, related records and a timeline of activities and
// interactions, all following the change stream in place, plus who else has the record open.
//
// Each related list is a query with one relation (`column = value`, or `column in (…)`); a change to
// that table is placed or removed by testing the same relation on the changed row, version-checked
// like the lists. Only when a relation's set of values changes (a contact joins the company whose
// interactions are shown) is that one section refetched.

import { supabase } from './client.js'
import { debounce, h, mount, uid } from './dom.js'
import { confirmDialog, openRecordForm } from './form.js'
import { formatCell, formatMoney, formatTimestamp } from './format.js'
import { byWhom, lookups } from './lookups.js'
import { notify } from './notices.js'
import { presence } from './presence.js'
import { Versions } from './rows.js'
import { DEFS, canWrite, capital, describe, plainLabel } from './schema.js'
import { sync } from './sync.js'

const LIMIT = 50
const FLASH_MS = 2400

/** What each table's page shows besides its fields: related lists, timeline sources, quick actions. */
const LAYOUT = {
  contacts: {
    related: (row) => [{ table: 'deals', key: 'contact_id', value: row.id }],
    timeline: (row) => [{ table: 'activities', key: 'contact_id', value: row.id }, { table: 'interactions', key: 'contact_id', value: row.id }],
    quick: (row) => [['activities', { contact_id: row.id, company_id: row.company_id }], ['interactions', { contact_id: row.id }], ['deals', { contact_id: row.id, company_id: row.company_id }]],
  },
  companies: {
    related: (row) => [{ table: 'contacts', key: 'company_id', value: row.id }, { table: 'deals', key: 'company_id', value: row.id }],
    // Interactions belong to contacts: the company's are those of its contacts (the set follows the contacts list).
    timeline: (row) => [{ table: 'activities', key: 'company_id', value: row.id }, { table: 'interactions', key: 'contact_id', from: 'contacts' }],
    quick: (row) => [['contacts', { company_id: row.id }], ['deals', { company_id: row.id }], ['activities', { company_id: row.id }]],
  },
  deals: {
    related: () => [],
    timeline: (row) => [
      { table: 'activities', key: 'deal_id', value: row.id },
      ...(row.contact_id ? [{ table: 'interactions', key: 'contact_id', value: row.contact_id }] : []),
    ],
    quick: (row) => [['activities', { deal_id: row.id, contact_id: row.contact_id, company_id: row.company_id }]],
  },
  staff: {
    related: (row) => [{ table: 'deals', key: 'owner_id', value: row.id }, { table: 'contacts', key: 'owner_id', value: row.id }],
    timeline: (row) => [{ table: 'activities', key: 'assigned_to', value: row.id }, { table: 'interactions', key: 'staff_id', value: row.id }],
    quick: () => [],
  },
  platforms: {
    related: () => [],
    timeline: (row) => [{ table: 'interactions', key: 'platform_id', value: row.id }],
    quick: () => [],
  },
  activities: { related: () => [], timeline: () => [], quick: () => [] },
  interactions: { related: () => [], timeline: () => [], quick: () => [] },
}

const ORDER = {
  deals: { key: 'updated_at', asc: false },
  contacts: { key: 'updated_at', asc: false },
  activities: { key: 'due_at', asc: false },
  interactions: { key: 'occurred_at', asc: false },
}

/** When an item happened, for the timeline: an interaction's time; an activity's completion, due date or creation. */
const when = (table, row) => (table === 'interactions' ? row.occurred_at : row.completed_at ?? row.due_at ?? row.created_at)

/** One related list: the rows of `table` whose `key` equals `value` (or is in the values of another section). */
class Section {
  constructor({ table, key, value = null, from = null }) {
    this.table = table
    this.key = key
    this.value = value
    this.from = from // the section whose row ids are this one's values
    this.rows = new Map()
    this.total = 0
    this.loaded = false
  }

  values(sections) {
    if (!this.from) return [this.value]
    return [...(sections.find((s) => s.table === this.from && !s.from)?.rows.keys() ?? [])]
  }

  async load(sections) {
    const values = this.values(sections)
    this.rows.clear()
    this.total = 0
    if (values.length === 0) {
      this.loaded = true
      return
    }
    const order = ORDER[this.table] ?? { key: 'updated_at', asc: false }
    const base = supabase.from(this.table).select('*', { count: 'exact' })
    const filtered = values.length === 1 && !this.from ? base.eq(this.key, values[0]) : base.in(this.key, values)
    const { data, count, error } = await filtered.order(order.key, { ascending: order.asc, nullsFirst: false }).order('id').limit(LIMIT)
    if (error) throw new Error(`could not load ${DEFS[this.table].title.toLowerCase()}: ${error.message}`)
    for (const row of data) this.rows.set(row.id, row)
    this.total = count ?? data.length
    this.loaded = true
  }

  /** Whether every related row is loaded (then a row not held here was not in the relation). */
  get complete() {
    return this.rows.size >= this.total
  }

  /**
   * Applies a change to this section's table. Returns 'changed', 'recount' (the total may have changed
   * but the event cannot tell: a row beyond the loaded ones) or null.
   */
  apply(change, sections) {
    const values = new Set(this.values(sections))
    // Was the row in the relation before? Known rows were; else the old row says (null: cannot tell).
    const before = (id, old) => (this.rows.has(id) ? true : old && this.key in old ? values.has(old[this.key]) : this.complete ? false : null)
    if (change.type === 'DELETE') {
      const id = change.old?.id
      const was = before(id, change.old)
      this.rows.delete(id)
      if (was === null) return 'recount'
      if (!was) return null
      this.total = Math.max(0, this.total - 1)
      return 'changed'
    }
    const row = change.record
    const known = this.rows.get(row.id)
    if (known && Number(known.version) >= Number(row.version)) return null
    const was = change.type === 'INSERT' ? false : before(row.id, change.old)
    const inside = values.has(row[this.key])
    if (inside) this.rows.set(row.id, row)
    else this.rows.delete(row.id)
    if (was === null) return 'recount'
    if (was === inside) return known || inside ? 'changed' : null
    this.total = Math.max(0, this.total + (inside ? 1 : -1))
    return 'changed'
  }
}

export class DetailView {
  constructor({ table, id, me }) {
    this.table = table
    this.id = id
    this.me = me
    this.def = DEFS[table]
    this.layout = LAYOUT[table]
    this.row = null
    this.gone = null // why the record is no longer shown (deleted / not visible)
    this.sections = []
    this.timeline = []
    this.loading = true
    this.held = []
    this.flashUntil = 0
    this.cleanups = []
    this.ownVersions = new Set()
    this.loadSeq = 0
    this.deleting = false
    this.saving = false
    this.reloadSection = debounce((section) => this.refetch(section), 200)
    this.build()
  }

  build() {
    const headingId = uid('detail-title')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, this.def.title)
    this.crumb = h('p', { class: 'crumb' }, h('a', { href: `/${this.table}` }, `← ${this.def.title}`))
    this.others = h('p', { class: 'presence-note', 'aria-live': 'polite', hidden: true, dataset: { testid: 'presence' } })
    this.banner = h('p', { class: 'form-error', role: 'alert', hidden: true, dataset: { testid: 'gone' } })
    this.actions = h('div', { class: 'actions' })
    this.fields = h('dl', { class: 'record-fields' })
    this.meta = h('p', { class: 'muted record-meta' })
    this.relatedEl = h('div', { class: 'related' })
    this.timelineEl = h('ol', { class: 'timeline', 'aria-label': 'Timeline' })
    this.timelineSection = h('section', { class: 'panel', 'aria-labelledby': `${headingId}-tl` },
      h('h2', { id: `${headingId}-tl` }, 'Timeline'), this.timelineEl)
    this.el = h('section', { class: 'detail-view', 'aria-labelledby': headingId, dataset: { table: this.table, state: 'loading' } },
      this.crumb,
      h('div', { class: 'view-head' }, this.heading, this.actions),
      this.others,
      this.banner,
      h('section', { class: 'panel record', 'aria-label': 'Details' }, this.fields, this.meta),
      this.relatedEl,
      this.timelineSection,
    )
  }

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handle(change)),
      sync.onResync((table) => this.tables().has(table) && this.load()),
      lookups.onChange(() => this.render()),
      presence.onChange(() => this.renderPresence()),
    )
    presence.setFocus(this.table, this.id)
    await this.load()
  }

  destroy() {
    this.loadSeq++ // any load still running is dropped
    this.cleanups.forEach((fn) => fn())
    this.reloadSection.cancel()
    presence.clearFocus(this.table, this.id)
  }

  /** The tables this page shows rows of: its own and those of its related lists and timeline. */
  tables() {
    return new Set([this.table, ...[...this.sections, ...this.timeline].map((s) => s.table)])
  }

  async load() {
    const seq = ++this.loadSeq
    this.loading = true
    this.held = []
    const tables = new Set([this.table, 'activities', 'interactions', 'deals', 'contacts'])
    await Promise.all([...tables].map((t) => sync.whenJoined(t)))
    if (seq !== this.loadSeq) return
    const { data: row, error } = await supabase.from(this.table).select('*').eq('id', this.id).maybeSingle()
    if (seq !== this.loadSeq) return // a newer load started, or the page was left
    if (error || !row) {
      this.loading = false
      this.el.dataset.state = 'ready'
      this.gone = error ? `Could not load this ${this.def.singular}: ${error.message}` : `There is no ${this.def.singular} here, or you may not see it.`
      this.render()
      return
    }
    this.row = row
    this.gone = null
    this.versions = new Versions()
    this.versions.loaded(row)
    this.sections = this.layout.related(row).map((spec) => new Section(spec))
    this.timeline = this.layout.timeline(row).map((spec) => new Section(spec))
    try {
      // Sections that others draw their values from load first.
      const all = [...this.sections, ...this.timeline]
      await Promise.all(all.filter((s) => !s.from).map((s) => s.load(all)))
      await Promise.all(all.filter((s) => s.from).map((s) => s.load(all)))
    } catch (err) {
      if (seq === this.loadSeq) notify(err.message, { kind: 'error' })
    }
    if (seq !== this.loadSeq) return
    this.loading = false
    this.el.dataset.state = 'ready'
    for (const change of this.held.splice(0)) this.apply(change)
    this.render()
  }

  async refetch(section) {
    const seq = this.loadSeq
    const all = [...this.sections, ...this.timeline]
    await section.load(all).catch((err) => notify(err.message, { kind: 'error' }))
    if (seq === this.loadSeq) this.render()
  }

  // --- changes ------------------------------------------------------------------------------------

  handle(change) {
    if (this.loading) {
      this.held.push(change)
      return
    }
    if (this.apply(change)) this.render()
  }

  /** Applies one change to the record or a section; returns true when something shown changed. */
  apply(change) {
    let changed = false
    const subject = change.record ?? change.old
    if (change.table === this.table && subject?.id === this.id && this.row) {
      changed = this.applyOwn(change) || changed
    }
    const all = [...this.sections, ...this.timeline]
    for (const section of all) {
      if (section.table !== change.table) continue
      const before = section.from ? null : [...section.rows.keys()].join()
      const outcome = section.apply(change, all)
      if (outcome === 'recount') this.reloadSection(section)
      if (outcome) {
        changed = true
        // A section others draw values from changed membership: refetch those.
        if (before !== null && before !== [...section.rows.keys()].join()) {
          for (const dependent of all.filter((s) => s.from === section.table)) this.reloadSection(dependent)
        }
      }
    }
    return changed
  }

  applyOwn(change) {
    if (change.type === 'DELETE') {
      if (this.deleting) return false // the echo of our own delete (it can beat the HTTP response)
      if (!this.versions.deleted(this.id)) return false
      this.gone = `This ${this.def.singular} was deleted by someone else (or is no longer visible to you).`
      notify(`${capital(this.def.singular)} “${describe(this.table, this.row)}” was deleted`, { kind: 'error' })
      return true
    }
    const row = change.record
    if (!this.versions.fresh(change)) return false // stale, or delivered twice (a record made visible again is not)
    const previous = this.row
    this.row = row
    this.gone = null
    this.flashUntil = performance.now() + FLASH_MS
    if (!this.ownVersions.delete(Number(row.version)) && !this.saving) {
      notify(`${capital(this.def.singular)} “${describe(this.table, row)}” updated${byWhom(row, this.me)}`)
    }
    // A deal moving to another contact shows that contact's interactions.
    const relationMoved = this.layout.timeline(previous).some((spec, i) => spec.value !== this.layout.timeline(row)[i]?.value)
    if (relationMoved) this.load()
    return true
  }

  // --- actions ------------------------------------------------------------------------------------

  async edit() {
    await openRecordForm({
      table: this.table, row: this.row, me: this.me,
      // The echo of our own save can beat its HTTP response: no "updated by you" notice for it.
      onSaving: () => { this.saving = true },
      onFailed: () => { this.saving = false },
      onSaved: (saved) => {
        this.saving = false
        this.ownVersions.add(Number(saved.version))
        this.applyOwn({ table: this.table, type: 'UPDATE', record: saved })
        this.render()
      },
    })
    this.heading.focus()
  }

  async remove() {
    const name = describe(this.table, this.row)
    const ok = await confirmDialog({
      title: `Delete ${this.def.singular}?`,
      message: `“${name}” will be deleted for everyone. This cannot be undone.`,
      confirmLabel: 'Delete',
      danger: true,
    })
    if (!ok) return
    this.deleting = true
    const { data, error } = await supabase.from(this.table).delete().eq('id', this.id).select('id')
    if (error || data.length === 0) {
      this.deleting = false
      notify(`Could not delete “${name}”: ${error?.message ?? 'it is already gone, or you may not delete it.'}`, { kind: 'error' })
      return
    }
    notify(`${capital(this.def.singular)} “${name}” deleted`)
    history.pushState(null, '', `/${this.table}`)
    dispatchEvent(new PopStateEvent('popstate'))
  }

  async quickAdd(table, defaults) {
    const saved = await openRecordForm({ table, row: null, defaults, me: this.me })
    if (saved) {
      // Our own insert: place it now (the live echo is then a stale duplicate).
      this.apply({ table, type: 'INSERT', record: saved })
      this.render()
      notify(`${capital(DEFS[table].singular)} “${describe(table, saved)}” added`)
    }
  }

  // --- rendering ----------------------------------------------------------------------------------

  render() {
    const row = this.row
    this.banner.hidden = !this.gone
    this.banner.textContent = this.gone ?? ''
    if (!row) {
      this.heading.textContent = `${capital(this.def.singular)} not found`
      document.title = `${this.def.title} · WeXlot`
      mount(this.fields)
      this.relatedEl.hidden = true
      this.timelineSection.hidden = true
      return
    }
    const name = describe(this.table, row)
    this.heading.textContent = name
    document.title = `${name} · ${this.def.title} · WeXlot`
    const writable = !this.gone && canWrite(this.table, this.me, row)
    mount(this.actions,
      row.visibility === 'private' ? h('span', { class: 'badge badge-private' }, 'Private') : null,
      writable ? h('button', { type: 'button', onclick: () => this.edit() }, 'Edit') : null,
      writable ? h('button', { type: 'button', class: 'button-quiet', onclick: () => this.remove() }, 'Delete') : null,
      this.gone ? null : this.layout.quick(row)
        .filter(([table]) => canWrite(table, this.me))
        .map(([table, defaults]) => h('button', { type: 'button', class: 'button-quiet', onclick: () => this.quickAdd(table, defaults) }, `Add ${DEFS[table].singular}`)),
    )
    const record = this.fields.closest('.record')
    record.classList.toggle('flash', performance.now() < this.flashUntil)
    if (performance.now() < this.flashUntil) record.style.animationDelay = `-${Math.round(FLASH_MS - (this.flashUntil - performance.now()))}ms`
    mount(this.fields, this.def.fields.map((field) => [
      h('dt', {}, plainLabel(field)),
      h('dd', { dataset: { field: field.name } }, this.value(field, row[field.name], row)),
    ]))
    this.meta.textContent = `Created ${formatTimestamp(row.created_at)} · last changed ${formatTimestamp(row.updated_at)}${byWhom(row, this.me)} · version ${row.version}`
    this.meta.dataset.version = String(row.version)
    this.relatedEl.hidden = this.sections.length === 0
    mount(this.relatedEl, this.sections.map((section) => this.renderSection(section)))
    this.timelineSection.hidden = this.timeline.length === 0
    this.renderTimeline()
    this.renderPresence()
  }

  value(field, value, row) {
    if (value === null || value === undefined || value === '') return h('span', { class: 'muted' }, '—')
    if (field.type === 'ref') return h('a', { href: `/${field.ref}/${value}` }, lookups.name(field.ref, value))
    if (field.type === 'money') return formatMoney(value, row.currency)
    // Only web addresses become links: the database stores any text, and a javascript: URL would run here.
    if (field.type === 'url') return /^https?:\/\//i.test(value) ? h('a', { href: value, rel: 'noopener noreferrer', target: '_blank' }, value) : value
    if (field.type === 'email') return h('a', { href: `mailto:${value}` }, value)
    const kind = { datetime: 'timestamp', checkbox: 'bool', select: 'enum', tags: 'tags', date: 'date', number: 'number' }[field.type] ?? 'text'
    return formatCell(value, kind, row, field)
  }

  renderSection(section) {
    const def = DEFS[section.table]
    const titleId = uid('related')
    const rows = [...section.rows.values()]
    const filterable = def.filters?.some((f) => f.key === section.key && f.ref) && section.value
    const more = section.total > rows.length && filterable
      ? h('p', {}, h('a', { href: `/${section.table}?${section.key}=${section.value}` }, `All ${section.total} ${def.title.toLowerCase()}`))
      : null
    return h('section', { class: 'panel', 'aria-labelledby': titleId, dataset: { related: section.table } },
      h('h2', { id: titleId }, `${def.title} `, h('span', { class: 'badge', dataset: { testid: `${section.table}-total` } }, String(section.total))),
      rows.length
        ? h('ul', { class: 'related-list' }, rows.map((r) => h('li', { dataset: { id: r.id } },
          h('a', { href: `/${section.table}/${r.id}` }, describe(section.table, r)),
          r.visibility === 'private' ? [' ', h('span', { class: 'badge badge-private' }, 'Private')] : null,
          h('span', { class: 'muted' }, ` ${this.summary(section.table, r)}`))))
        : h('p', { class: 'muted' }, `No ${def.title.toLowerCase()} yet.`),
      more)
  }

  summary(table, row) {
    if (table === 'deals') return `· ${formatMoney(row.amount, row.currency)} · ${capital(row.stage)}`
    if (table === 'contacts') return row.email ? `· ${row.email}` : ''
    return ''
  }

  renderTimeline() {
    const items = this.timeline.flatMap((section) => [...section.rows.values()].map((row) => ({ table: section.table, row, at: when(section.table, row) })))
    items.sort((a, b) => (Date.parse(b.at ?? 0) || 0) - (Date.parse(a.at ?? 0) || 0))
    if (!items.length) {
      mount(this.timelineEl, h('li', { class: 'muted' }, 'No activities or interactions yet.'))
      return
    }
    mount(this.timelineEl, items.map(({ table, row, at }) => {
      const what = table === 'interactions'
        ? `${capital(row.kind)} (${row.direction}) with ${lookups.name('contacts', row.contact_id)}${row.staff_id ? ` by ${lookups.name('staff', row.staff_id)}` : ''}`
        : `${capital(row.type)}: ${row.subject}${row.completed ? ' — done' : row.due_at && Date.parse(row.due_at) < Date.now() ? ' — overdue' : ''}`
      return h('li', { class: `timeline-item timeline-${table}`, dataset: { id: row.id, table } },
        h('time', { datetime: at ?? '' }, at ? formatTimestamp(at) : 'No date'),
        h('a', { href: `/${table}/${row.id}` }, what),
        table === 'interactions' && row.summary ? h('p', { class: 'muted' }, row.summary) : null)
    }))
  }

  renderPresence() {
    if (!this.row) return
    const list = presence.onRecord(this.table, this.id)
    this.others.hidden = list.length === 0
    this.others.textContent = list.length ? `Also here: ${list.map((p) => `${p.name} (${p.editing ? 'editing' : 'viewing'})`).join(', ')}` : ''
  }
}
