// The pipeline board: one column per stage, deals as cards ordered by `position` then id.
//
// Moving a card (drag and drop, or the stage select and move buttons on each card for keyboard and
// touch) gives it a `position` between its new neighbours (the midpoint; when they are too close, a
// run of cards around it is re-spaced) and saves { stage, position } only if the deal still has the version shown
// (update … where version = N). No row back means someone changed it meanwhile: the card is reloaded
// and the user told. The database sets closed_at when a deal reaches Won or Lost.
//
// Live: every change from the stream re-places just that card (version checked, so echoes and
// duplicates are ignored) and the column totals follow; a resync reloads the board. Changes that
// arrive while the board loads are held and applied after it.

import { supabase } from './client.js'
import { h, mount, onSettledChange, uid } from './dom.js'
import { formatDate, formatMoney, formatTimestamp } from './format.js'
import { lookups } from './lookups.js'
import { notify } from './notices.js'
import { Versions } from './rows.js'
import { STAGES, canWrite, capital, describe } from './schema.js'
import { sync } from './sync.js'

const COLUMNS = 'id, title, amount, currency, stage, probability, expected_close_date, closed_at, position, owner_id, visibility, version, updated_by, updated_at'
const PAGE = 1000
const MAX_CARDS = 10_000
const STEP = 1000 // spacing of fresh positions
const MIN_GAP = 1e-6 // neighbours closer than this: re-space instead of taking the midpoint
const MIN_SPREAD = 1 // re-spaced cards end up at least this far apart
const FLASH_MS = 2400
const JOIN_WAIT_MS = 8000
const DRAG_TYPE = 'application/x-wexlot-deal'

const byPosition = (a, b) => (a.position - b.position) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

export class Pipeline {
  constructor({ me }) {
    this.me = me
    this.deals = new Map() // id -> row
    this.versions = new Versions()
    this.cardEls = new Map() // id -> card element
    this.saving = new Set() // ids being written from this tab
    this.loading = false
    this.loadSeq = 0
    this.held = []
    this.cleanups = []
    this.flashTimers = new Map()
    this.dragId = null
    this.build()
  }

  // --- lifecycle --------------------------------------------------------------------------------

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handleChange(change)),
      sync.onResync((table) => table === 'deals' && this.load()),
      lookups.onChange(() => this.renderNames()),
    )
    await this.load()
  }

  destroy() {
    this.loadSeq++
    this.destroyed = true
    this.cleanups.forEach((fn) => fn())
    this.cleanups = []
    for (const timer of this.flashTimers.values()) clearTimeout(timer)
  }

  async load() {
    const seq = ++this.loadSeq
    this.loading = true
    this.held = []
    this.setBusy(true)
    await sync.whenJoined('deals', JOIN_WAIT_MS)
    if (seq !== this.loadSeq) return
    const rows = []
    let error = null
    while (rows.length < MAX_CARDS) {
      const answer = await supabase.from('deals').select(COLUMNS)
        .order('position', { ascending: true }).order('id', { ascending: true })
        .range(rows.length, rows.length + PAGE - 1)
      if (seq !== this.loadSeq) return
      if (answer.error) {
        error = answer.error
        break
      }
      rows.push(...answer.data)
      if (answer.data.length < PAGE) break
    }
    this.loading = false
    this.setBusy(false)
    if (error) {
      this.status.hidden = false
      this.status.textContent = `Could not load the pipeline: ${error.message}`
      return
    }
    this.status.hidden = true
    this.deals.clear()
    this.cardEls.clear()
    for (const row of rows) {
      this.deals.set(row.id, row)
      this.versions.loaded(row)
    }
    for (const change of this.held.splice(0)) this.apply(change)
    this.renderAll()
  }

  // --- changes ----------------------------------------------------------------------------------

  handleChange(change) {
    if (change.table !== 'deals') return
    if (this.loading) {
      this.held.push(change)
      return
    }
    const touched = this.apply(change)
    if (touched) this.renderStages(touched.stages, touched.flash)
  }

  /** Applies one change to the model; returns { stages, flash } to re-render, or null (stale). */
  apply(change) {
    if (change.type === 'DELETE') {
      const id = change.old?.id
      if (!this.versions.deleted(id)) return null
      const known = this.deals.get(id)
      this.deals.delete(id)
      this.cardEls.delete(id)
      return known ? { stages: [known.stage], flash: null } : null
    }
    const row = change.record
    if (!this.versions.fresh(change)) return null
    const before = this.deals.get(row.id)
    this.deals.set(row.id, row)
    this.cardEls.delete(row.id) // rebuilt with the new values
    return { stages: [...new Set([before?.stage, row.stage].filter(Boolean))], flash: row.id }
  }

  /** Reloads one deal from the server (after a refused move) and shows it as it is now. */
  async reloadDeal(id) {
    const { data, error } = await supabase.from('deals').select(COLUMNS).eq('id', id).maybeSingle()
    if (this.destroyed || error) return null
    const known = this.deals.get(id)
    if (!data) {
      if (known) this.apply({ type: 'DELETE', old: { id } })
      this.renderStages([known?.stage].filter(Boolean))
      return null
    }
    // Force the server's copy even when it has the version we hold (our local move is undone).
    this.versions.reopen(id, data.version)
    const touched = this.apply({ type: 'UPDATE', record: data })
    this.renderStages([...new Set([known?.stage, ...(touched?.stages ?? [])].filter(Boolean))], id)
    return data
  }

  // --- moving -----------------------------------------------------------------------------------

  /** Cards of `stage` in board order, optionally without one id. */
  column(stage, without = null) {
    return [...this.deals.values()].filter((d) => d.stage === stage && d.id !== without).sort(byPosition)
  }

  /** The stage select: to the end of the chosen column (back to the current stage if refused). */
  async choose(id, select) {
    const stage = select.value
    const moved = await this.move(id, stage, this.column(stage, id).length)
    if (!moved && select.isConnected) select.value = this.deals.get(id)?.stage ?? select.value
  }

  /** One place up (-1) or down (+1) in its column. */
  step(id, delta) {
    const deal = this.deals.get(id)
    if (!deal) return
    const at = this.column(deal.stage).findIndex((d) => d.id === id)
    this.move(id, deal.stage, at + delta)
  }

  /** Moves deal `id` to `stage` at `index` (among the other cards of that column) and saves it. */
  async move(id, stage, index) {
    const deal = this.deals.get(id)
    // One write per card at a time: the next one needs the version the first one produces.
    if (!deal || this.saving.has(id) || !canWrite('deals', this.me, deal)) return false
    const others = this.column(stage, id)
    index = Math.max(0, Math.min(index, others.length))
    const sameSpot = deal.stage === stage && this.column(stage).findIndex((d) => d.id === id) === index
    if (sameSpot) return false
    const prev = others[index - 1]
    const next = others[index]
    let position
    if (prev && next) position = (prev.position + next.position) / 2
    else if (prev) position = prev.position + STEP
    else if (next) position = next.position - STEP
    else position = STEP
    if (prev && next && !(next.position - prev.position >= MIN_GAP && position > prev.position && position < next.position)) {
      return this.respace([...others.slice(0, index), deal, ...others.slice(index)], index, stage)
    }
    return this.save(deal, { stage, position })
  }

  /**
   * No room between the neighbours: re-spaces a run of cards around the moved one (widened over
   * cards this user may write until there is room, or to the end of the column), each with its own
   * conditional update. Only cards whose position changes are written.
   */
  async respace(ordered, at, stage) {
    const moving = ordered[at]
    const writable = (d) => d.id === moving.id || canWrite('deals', this.me, d)
    let lo = at
    let hi = at
    let positions = null
    while (!positions) {
      const below = ordered[lo - 1]
      const above = ordered[hi + 1]
      const n = hi - lo + 1
      if (!below) positions = Array.from({ length: n }, (_, i) => (above ? above.position : 0) - STEP * (n - i))
      else if (!above) positions = Array.from({ length: n }, (_, i) => below.position + STEP * (i + 1))
      else if ((above.position - below.position) / (n + 1) >= MIN_SPREAD) {
        const gap = (above.position - below.position) / (n + 1)
        positions = Array.from({ length: n }, (_, i) => below.position + gap * (i + 1))
      } else if (writable(above) && (n % 2 || !writable(below))) hi++
      else if (writable(below)) lo--
      else break
    }
    const name = describe('deals', moving)
    if (!positions) {
      notify(`There is no room to put “${name}” there among deals you may not move. Try one place further.`, { kind: 'error' })
      return false
    }
    const writes = ordered.slice(lo, hi + 1).map((deal, i) => {
      const values = deal.id === moving.id ? { stage, position: positions[i] } : { position: positions[i] }
      return deal.id === moving.id || deal.position !== positions[i] ? this.save(deal, values, { quiet: true }) : true
    })
    const ok = (await Promise.all(writes)).every(Boolean)
    if (ok) notify(`“${name}” ${moving.stage === stage ? 'reordered' : 'moved to'} ${capital(stage)}`)
    return ok
  }

  /** Saves { stage, position } if the deal still has the version shown; shows the move at once. */
  async save(deal, values, { quiet = false } = {}) {
    const name = describe('deals', deal)
    const fromStage = deal.stage
    const local = { ...deal, ...values }
    this.deals.set(deal.id, local)
    this.cardEls.delete(deal.id)
    this.saving.add(deal.id)
    this.renderStages([...new Set([fromStage, values.stage])], null, deal.id)
    const { data, error } = await supabase.from('deals').update(values)
      .eq('id', deal.id).eq('version', deal.version).select(COLUMNS)
    this.saving.delete(deal.id)
    this.cardEls.get(deal.id)?.classList.remove('saving')
    if (this.destroyed) return false
    if (error || !data?.length) {
      await this.reloadDeal(deal.id)
      this.refocus(deal.id)
      if (error) notify(`Could not move “${name}”: ${error.message}`, { kind: 'error' })
      else notify(`“${name}” was not moved: someone changed it meanwhile (or it was deleted). It is shown as it is now.`, { kind: 'error' })
      return false
    }
    const saved = data[0]
    const touched = this.apply({ type: 'UPDATE', record: saved })
    if (touched) this.renderStages(touched.stages)
    if (!quiet) {
      const where = fromStage === saved.stage ? `reordered in ${capital(saved.stage)}` : `moved to ${capital(saved.stage)}`
      notify(`“${name}” ${where}`)
    }
    return true
  }

  // --- drag and drop ----------------------------------------------------------------------------

  onDragStart(event, id) {
    this.dragId = id
    event.dataTransfer.effectAllowed = 'move'
    event.dataTransfer.setData(DRAG_TYPE, id)
    event.dataTransfer.setData('text/plain', this.deals.get(id)?.title ?? id)
    this.cardEls.get(id)?.classList.add('dragging')
  }

  onDragEnd(id) {
    this.dragId = null
    this.cardEls.get(id)?.classList.remove('dragging')
    this.clearDropMarks()
  }

  /** Where in `stage`'s column a drop at clientY lands: the index among the other cards. */
  dropIndex(stage, clientY) {
    const cards = this.lists[stage].querySelectorAll(':scope > li[data-id]')
    let index = 0
    for (const card of cards) {
      if (card.dataset.id === this.dragId) continue
      const box = card.getBoundingClientRect()
      if (clientY > box.top + box.height / 2) index++
    }
    return index
  }

  onDragOver(event, stage) {
    if (!this.dragId) return
    event.preventDefault()
    event.dataTransfer.dropEffect = 'move'
    this.clearDropMarks()
    const index = this.dropIndex(stage, event.clientY)
    const others = [...this.lists[stage].querySelectorAll(':scope > li[data-id]')].filter((c) => c.dataset.id !== this.dragId)
    if (others[index]) others[index].classList.add('drop-before')
    else this.lists[stage].classList.add('drop-end')
    this.columns[stage].classList.add('drop-target')
  }

  onDrop(event, stage) {
    const id = this.dragId ?? event.dataTransfer.getData(DRAG_TYPE)
    if (!id) return
    event.preventDefault()
    const index = this.dropIndex(stage, event.clientY)
    this.onDragEnd(id)
    this.move(id, stage, index)
  }

  clearDropMarks() {
    for (const el of this.el.querySelectorAll('.drop-before, .drop-end, .drop-target')) {
      el.classList.remove('drop-before', 'drop-end', 'drop-target')
    }
  }

  // --- rendering --------------------------------------------------------------------------------

  build() {
    const headingId = uid('pipeline-title')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, 'Pipeline')
    this.status = h('p', { class: 'list-status', role: 'alert', hidden: true })
    this.columns = {}
    this.lists = {}
    this.heads = {}
    const columns = STAGES.map((stage) => {
      const titleId = uid(`stage-${stage}`)
      this.heads[stage] = h('p', { class: 'stage-totals' })
      this.lists[stage] = h('ol', { class: 'stage-cards', 'aria-labelledby': titleId })
      const column = h('section', {
        class: `stage-column stage-${stage}`, 'aria-labelledby': titleId, dataset: { stage },
        ondragover: (e) => this.onDragOver(e, stage),
        ondragleave: (e) => { if (!e.currentTarget.contains(e.relatedTarget)) this.clearDropMarks() },
        ondrop: (e) => this.onDrop(e, stage),
      }, h('header', { class: 'stage-head' }, h('h2', { id: titleId }, capital(stage)), this.heads[stage]), this.lists[stage])
      this.columns[stage] = column
      return column
    })
    this.board = h('div', { class: 'board', 'aria-busy': 'true' }, columns)
    this.el = h('section', { class: 'pipeline-view', 'aria-labelledby': headingId, dataset: { state: 'loading' } },
      h('div', { class: 'view-head' }, this.heading,
        h('p', { class: 'count' }, 'Drag a card to another place, or use its stage menu and move buttons.')),
      this.status,
      this.board)
  }

  setBusy(busy) {
    this.board.setAttribute('aria-busy', busy ? 'true' : 'false')
    this.el.dataset.state = busy ? 'loading' : 'ready'
  }

  renderAll() {
    this.renderStages(STAGES)
  }

  /** Re-renders the given columns (cards kept, only changed ones rebuilt); keeps keyboard focus. */
  renderStages(stages, flashId = null, focusId = null) {
    const active = document.activeElement
    const focusCard = this.board.contains(active) ? active.closest('li[data-id]') : null
    const keep = focusCard ? { id: focusCard.dataset.id, action: active.dataset.action } : null
    for (const stage of stages) {
      if (!this.lists[stage]) continue
      const cards = this.column(stage)
      this.lists[stage].replaceChildren(...cards.map((deal) => this.card(deal)))
      cards.forEach((deal, i) => {
        const el = this.cardEls.get(deal.id)
        const up = el.querySelector('[data-action="up"]')
        const down = el.querySelector('[data-action="down"]')
        if (up) up.disabled = i === 0
        if (down) down.disabled = i === cards.length - 1
      })
      if (!cards.length) this.lists[stage].append(h('li', { class: 'stage-empty muted' }, 'No deals'))
      this.renderHead(stage, cards)
    }
    if (flashId) this.flash(flashId)
    if (keep && !this.board.contains(document.activeElement)) this.refocus(keep.id, keep.action)
    else if (focusId && keep?.id === focusId) this.refocus(focusId, keep.action)
  }

  refocus(id, action = 'stage') {
    const card = this.cardEls.get(id)
    if (!card?.isConnected) return
    ;(card.querySelector(`[data-action="${action}"]:not(:disabled)`) ?? card.querySelector('[data-action="stage"]') ?? card.querySelector('a'))?.focus()
  }

  renderHead(stage, cards) {
    const totals = new Map()
    for (const deal of cards) totals.set(deal.currency, (totals.get(deal.currency) ?? 0) + Number(deal.amount ?? 0))
    const money = [...totals].sort(([a], [b]) => a.localeCompare(b))
    const head = this.heads[stage]
    head.dataset.count = String(cards.length)
    head.dataset.total = String(Math.round(money.reduce((n, [, v]) => n + v, 0) * 100) / 100)
    mount(head,
      h('span', { class: 'stage-count' }, `${cards.length} ${cards.length === 1 ? 'deal' : 'deals'}`),
      h('span', { class: 'stage-value' }, money.length ? money.map(([c, v]) => formatMoney(Math.round(v * 100) / 100, c)).join(' + ') : formatMoney(0)))
  }

  card(deal) {
    const known = this.cardEls.get(deal.id)
    if (known) return known
    const name = describe('deals', deal)
    const writable = canWrite('deals', this.me, deal)
    const stageId = uid('card-stage')
    const closed = deal.closed_at && (deal.stage === 'won' || deal.stage === 'lost')
    const stageSelect = h('select', { id: stageId, dataset: { action: 'stage' } },
      STAGES.map((s) => h('option', { value: s, selected: s === deal.stage }, capital(s))))
    onSettledChange(stageSelect, () => this.choose(deal.id, stageSelect))
    const controls = writable
      ? h('div', { class: 'card-controls' },
        h('label', { for: stageId, class: 'sr-only' }, `Stage of ${name}`),
        stageSelect,
        h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'up' }, 'aria-label': `Move ${name} up`, onclick: () => this.step(deal.id, -1) }, h('span', { 'aria-hidden': 'true' }, '↑'), ' Up'),
        h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'down' }, 'aria-label': `Move ${name} down`, onclick: () => this.step(deal.id, 1) }, h('span', { 'aria-hidden': 'true' }, '↓'), ' Down'))
      : h('p', { class: 'card-readonly muted' }, 'View only')
    const el = h('li', {
      class: `deal-card${writable ? ' is-draggable' : ''}${this.saving.has(deal.id) ? ' saving' : ''}`,
      draggable: writable ? 'true' : null,
      dataset: { id: deal.id, version: deal.version, stage: deal.stage, position: deal.position },
      ondragstart: writable ? (e) => this.onDragStart(e, deal.id) : null,
      ondragend: writable ? () => this.onDragEnd(deal.id) : null,
    },
    h('h3', { class: 'deal-title' }, h('a', { href: `/deals/${deal.id}`, draggable: 'false' }, name),
      deal.visibility === 'private' ? [' ', h('span', { class: 'badge badge-private' }, 'Private')] : null),
    h('p', { class: 'deal-amount' }, h('data', { value: String(deal.amount), dataset: { amount: String(deal.amount) } }, formatMoney(deal.amount, deal.currency)),
      deal.probability !== null && deal.probability !== undefined ? h('span', { class: 'muted' }, ` · ${deal.probability}%`) : null),
    h('dl', { class: 'deal-facts' },
      h('div', {}, h('dt', {}, 'Owner'), h('dd', { dataset: { owner: deal.owner_id ?? '' } }, deal.owner_id ? lookups.name('staff', deal.owner_id) : 'Nobody')),
      closed
        ? h('div', { class: 'closed' }, h('dt', {}, deal.stage === 'won' ? 'Won' : 'Lost'), h('dd', {}, h('time', { datetime: deal.closed_at, dataset: { closedAt: deal.closed_at } }, formatTimestamp(deal.closed_at))))
        : h('div', {}, h('dt', {}, 'Expected close'), h('dd', {}, deal.expected_close_date ? h('time', { datetime: deal.expected_close_date }, formatDate(deal.expected_close_date)) : '—'))),
    controls)
    this.cardEls.set(deal.id, el)
    return el
  }

  /** Owner names arrive late (lookups): update them in place. */
  renderNames() {
    for (const dd of this.board.querySelectorAll('dd[data-owner]')) {
      if (dd.dataset.owner) dd.textContent = lookups.name('staff', dd.dataset.owner)
    }
  }

  flash(id) {
    const el = this.cardEls.get(id)
    if (!el) return
    el.classList.remove('flash')
    void el.offsetWidth // restart the animation
    el.classList.add('flash')
    clearTimeout(this.flashTimers.get(id))
    this.flashTimers.set(id, setTimeout(() => {
      this.flashTimers.delete(id)
      this.cardEls.get(id)?.classList.remove('flash')
    }, FLASH_MS))
  }
}
