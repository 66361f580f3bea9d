// Tasks: the signed-in person's open activities (assigned to them), grouped Overdue / Due today /
// Upcoming / No date by the browser's local calendar, with one checkbox to complete each.
//
// Completing saves { completed } only if the activity still has the version shown (update … where
// version = N); no row back means someone changed it meanwhile: it is reloaded and the user told. An
// activity completed here stays in place, ticked, while the page is open (so a slip can be undone);
// "Show recently completed" lists the last week's completed ones. Changes from other machines are
// applied in place as they arrive, version checked.

import { supabase } from './client.js'
import { h, mount, uid } from './dom.js'
import { formatTimestamp, timeBounds } from './format.js'
import { lookups } from './lookups.js'
import { notify } from './notices.js'
import { Versions } from './rows.js'
import { capital, describe } from './schema.js'
import { sync } from './sync.js'

const COLUMNS = 'id, type, subject, description, due_at, completed, completed_at, assigned_to, owner_id, contact_id, company_id, deal_id, version, updated_by, updated_at'
const MAX_OPEN = 1000
const MAX_DONE = 100
const RECENT_DAYS = 7
const FLASH_MS = 2400
const JOIN_WAIT_MS = 8000
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' })

const GROUPS = [
  { key: 'overdue', title: 'Overdue' },
  { key: 'today', title: 'Due today' },
  { key: 'upcoming', title: 'Upcoming' },
  { key: 'nodate', title: 'No date' },
  { key: 'done', title: 'Recently completed' },
]

const time = (value) => (value ? Date.parse(value) : null)
const byDue = (a, b) => {
  const x = time(a.due_at)
  const y = time(b.due_at)
  if (x !== y) return x === null ? 1 : y === null ? -1 : x - y
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
const byCompleted = (a, b) => (time(b.completed_at) ?? 0) - (time(a.completed_at) ?? 0) || (a.id < b.id ? -1 : 1)

export class Tasks {
  constructor({ me, params, onParams }) {
    this.me = me
    this.onParams = onParams
    this.showDone = params.get('done') === '1'
    this.rows = new Map() // id -> activity shown
    this.versions = new Versions()
    this.completedHere = new Set() // ticked on this page: kept in place so it can be undone
    this.saving = new Set()
    this.flashes = new Map() // id -> { timer, start }
    this.loading = false
    this.loadSeq = 0
    this.held = []
    this.cleanups = []
    this.build()
  }

  // --- lifecycle --------------------------------------------------------------------------------

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handleChange(change)),
      sync.onResync((table) => table === 'activities' && this.load()),
      lookups.onChange(() => this.render()),
    )
    this.scheduleDayChange()
    await this.load()
  }

  destroy() {
    this.loadSeq++
    this.destroyed = true
    this.cleanups.forEach((fn) => fn())
    this.cleanups = []
    clearTimeout(this.dayTimer)
    for (const { timer } of this.flashes.values()) clearTimeout(timer)
  }

  /** Today becomes yesterday at midnight: regroup then. */
  scheduleDayChange() {
    const ms = Math.min(timeBounds().tomorrow.getTime() - Date.now() + 1000, 2 ** 31 - 1)
    this.dayTimer = setTimeout(() => {
      this.render()
      this.scheduleDayChange()
    }, ms)
  }

  recentSince() {
    return new Date(Date.now() - RECENT_DAYS * 86_400_000)
  }

  async load() {
    const seq = ++this.loadSeq
    this.loading = true
    this.held = []
    this.setBusy(true)
    await sync.whenJoined('activities', JOIN_WAIT_MS)
    if (seq !== this.loadSeq) return
    const open = supabase.from('activities').select(COLUMNS)
      .eq('assigned_to', this.me.id).eq('completed', false)
      .order('due_at', { ascending: true, nullsFirst: false }).order('id', { ascending: true })
      .limit(MAX_OPEN)
    const done = this.showDone
      ? supabase.from('activities').select(COLUMNS)
        .eq('assigned_to', this.me.id).eq('completed', true).gte('completed_at', this.recentSince().toISOString())
        .order('completed_at', { ascending: false }).order('id', { ascending: true })
        .limit(MAX_DONE)
      : Promise.resolve({ data: [] })
    const [a, b] = await Promise.all([open, done])
    if (seq !== this.loadSeq) return
    this.loading = false
    this.setBusy(false)
    const error = a.error ?? b.error
    this.status.hidden = !error
    this.status.textContent = error ? `Could not load your tasks: ${error.message}` : ''
    if (error) return
    const kept = [...this.completedHere].map((id) => this.rows.get(id)).filter(Boolean)
    this.rows.clear()
    for (const row of [...a.data, ...b.data, ...kept]) {
      if (this.rows.has(row.id) && Number(this.rows.get(row.id).version) >= Number(row.version)) continue
      this.rows.set(row.id, row)
      this.versions.loaded(row)
    }
    for (const change of this.held.splice(0)) this.apply(change)
    this.render()
  }

  /** Whether this page shows `row`. */
  belongs(row) {
    if (row.assigned_to !== this.me.id) return false
    if (!row.completed || this.completedHere.has(row.id)) return true
    return this.showDone && (time(row.completed_at) ?? 0) >= this.recentSince().getTime()
  }

  // --- changes ----------------------------------------------------------------------------------

  handleChange(change) {
    if (change.table !== 'activities') return
    if (this.loading) {
      this.held.push(change)
      return
    }
    const id = this.apply(change)
    if (id === null) return
    this.render()
    if (id) this.flash(id)
  }

  /** Applies a change: null when stale or not ours, else the id to highlight ('' for none). */
  apply(change) {
    if (change.type === 'DELETE') {
      const id = change.old?.id
      if (!this.versions.deleted(id)) return null
      this.completedHere.delete(id)
      return this.rows.delete(id) ? '' : null
    }
    const row = change.record
    if (!this.versions.fresh(change)) return null
    if (!row.completed) this.completedHere.delete(row.id) // reopened (here or elsewhere)
    if (this.belongs(row)) {
      this.rows.set(row.id, row)
      return row.id
    }
    return this.rows.delete(row.id) ? '' : null
  }

  // --- completing -------------------------------------------------------------------------------

  async setCompleted(id, completed, checkbox) {
    const row = this.rows.get(id)
    if (!row || this.saving.has(id)) {
      checkbox.checked = Boolean(row?.completed)
      return
    }
    const name = describe('activities', row)
    this.saving.add(id)
    if (completed) this.completedHere.add(id)
    checkbox.closest('li')?.classList.toggle('is-done', completed)
    const { data, error } = await supabase.from('activities').update({ completed })
      .eq('id', id).eq('version', row.version).select(COLUMNS)
    this.saving.delete(id)
    if (this.destroyed) return
    if (error || !data?.length) {
      if (completed) this.completedHere.delete(id)
      await this.reload(id)
      this.focusRow(id)
      if (error) notify(`Could not update “${name}”: ${error.message}`, { kind: 'error' })
      else notify(`“${name}” was not changed: someone changed it meanwhile (or it was deleted). It is shown as it is now.`, { kind: 'error' })
      return
    }
    this.apply({ type: 'UPDATE', record: data[0] })
    this.render()
    notify(completed ? `“${name}” completed` : `“${name}” reopened`)
  }

  /** The server's copy of one activity (after a refused write). */
  async reload(id) {
    const { data, error } = await supabase.from('activities').select(COLUMNS).eq('id', id).maybeSingle()
    if (this.destroyed || error) return
    if (!data || !this.belongs(data)) this.rows.delete(id)
    else this.rows.set(id, data)
    if (data) this.versions.loaded(data)
    this.render()
  }

  toggleDone(show) {
    this.showDone = show
    const params = new URLSearchParams()
    if (show) params.set('done', '1')
    this.onParams(params)
    this.load()
  }

  // --- rendering --------------------------------------------------------------------------------

  build() {
    const headingId = uid('tasks-title')
    const toggleId = uid('show-done')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, 'Tasks')
    this.countEl = h('p', { class: 'count', 'aria-live': 'polite' })
    this.doneToggle = h('input', { id: toggleId, type: 'checkbox', checked: this.showDone, onchange: (e) => this.toggleDone(e.target.checked) })
    this.status = h('p', { class: 'list-status', role: 'alert', hidden: true })
    this.groupsEl = h('div', { class: 'task-groups', 'aria-busy': 'true' })
    this.el = h('section', { class: 'tasks-view', 'aria-labelledby': headingId, dataset: { state: 'loading' } },
      h('div', { class: 'view-head' }, this.heading, this.countEl),
      h('div', { class: 'toolbar' },
        h('div', { class: 'field field-check' }, this.doneToggle, h('label', { for: toggleId }, `Show recently completed (last ${RECENT_DAYS} days)`))),
      this.status,
      this.groupsEl)
  }

  setBusy(busy) {
    this.groupsEl.setAttribute('aria-busy', busy ? 'true' : 'false')
    this.el.dataset.state = busy ? 'loading' : 'ready'
  }

  groupOf(row, bounds) {
    if (row.completed && !this.completedHere.has(row.id)) return 'done'
    const due = time(row.due_at)
    if (due === null) return 'nodate'
    if (due < bounds.today.getTime()) return 'overdue'
    if (due < bounds.tomorrow.getTime()) return 'today'
    return 'upcoming'
  }

  render() {
    if (this.loading && !this.rows.size) return
    const active = document.activeElement
    const focusId = this.groupsEl.contains(active) ? active.closest('li[data-id]')?.dataset.id : null
    const focusAction = focusId ? active.dataset.action : null

    const bounds = timeBounds()
    const grouped = new Map(GROUPS.map((g) => [g.key, []]))
    for (const row of this.rows.values()) grouped.get(this.groupOf(row, bounds)).push(row)
    const open = [...this.rows.values()].filter((r) => !r.completed).length
    this.countEl.textContent = `${open} open ${open === 1 ? 'task' : 'tasks'} assigned to you`
    this.countEl.dataset.total = String(open)

    const sections = GROUPS.filter((g) => g.key !== 'done' || this.showDone).map((g) => {
      const rows = grouped.get(g.key).sort(g.key === 'done' ? byCompleted : byDue)
      const titleId = uid(`tasks-${g.key}`)
      return h('section', { class: `task-group task-group-${g.key}`, 'aria-labelledby': titleId, dataset: { group: g.key, count: String(rows.length) } },
        h('h2', { id: titleId }, g.title, ' ', h('span', { class: 'badge' }, String(rows.length))),
        rows.length
          ? h('ul', { class: 'task-list' }, rows.map((row) => this.item(row, g.key, bounds)))
          : h('p', { class: 'muted task-empty' }, g.key === 'done' ? 'Nothing completed recently.' : 'Nothing here.'))
    })
    mount(this.groupsEl, sections)
    if (focusId) {
      const li = this.groupsEl.querySelector(`li[data-id="${CSS.escape(focusId)}"]`)
      ;(li?.querySelector(`[data-action="${focusAction}"]`) ?? li?.querySelector('input'))?.focus()
    }
  }

  item(row, group, bounds) {
    const checkId = uid('task')
    const dueId = uid('task-due')
    const due = time(row.due_at)
    let dueText = 'No due date'
    if (due !== null) {
      const d = new Date(due)
      dueText = group === 'today' || (due >= bounds.today.getTime() && due < bounds.tomorrow.getTime())
        ? `Due today at ${timeOnly.format(d)}`
        : `Due ${formatTimestamp(row.due_at)}`
    }
    const related = [
      row.contact_id ? h('a', { href: `/contacts/${row.contact_id}` }, lookups.name('contacts', row.contact_id)) : null,
      row.deal_id ? h('a', { href: `/deals/${row.deal_id}` }, lookups.name('deals', row.deal_id)) : null,
      row.company_id ? h('a', { href: `/companies/${row.company_id}` }, lookups.name('companies', row.company_id)) : null,
    ].filter(Boolean)
    const flash = this.flashes.get(row.id)
    const li = h('li', {
      class: `task${row.completed ? ' is-done' : ''}${group === 'overdue' ? ' is-overdue' : ''}${flash ? ' flash' : ''}`,
      // A re-render continues a running highlight instead of restarting it.
      style: flash ? `animation-delay: -${Math.round(performance.now() - flash.start)}ms` : null,
      dataset: { id: row.id, version: row.version, completed: String(Boolean(row.completed)) },
    },
    h('input', {
      id: checkId, type: 'checkbox', checked: row.completed, 'aria-describedby': dueId, dataset: { action: 'complete' },
      onchange: (e) => this.setCompleted(row.id, e.target.checked, e.target),
    }),
    h('div', { class: 'task-body' },
      h('label', { for: checkId, class: 'task-subject' }, row.subject),
      h('p', { class: 'task-meta' },
        h('span', { class: 'badge' }, capital(row.type)), ' ',
        h('span', { id: dueId }, row.completed && row.completed_at ? `Completed ${formatTimestamp(row.completed_at)}` : dueText),
        related.length ? [' · ', related.flatMap((a, i) => [i ? ', ' : null, a])] : null,
        ' · ', h('a', { href: `/activities/${row.id}`, 'aria-label': `Details of ${row.subject}` }, 'Details'))))
    return li
  }

  flash(id) {
    clearTimeout(this.flashes.get(id)?.timer)
    const timer = setTimeout(() => {
      this.flashes.delete(id)
      this.groupsEl.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.classList.remove('flash')
    }, FLASH_MS)
    this.flashes.set(id, { timer, start: performance.now() })
    this.groupsEl.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.classList.add('flash')
  }

  focusRow(id) {
    this.groupsEl.querySelector(`li[data-id="${CSS.escape(id)}"] input`)?.focus()
  }
}
