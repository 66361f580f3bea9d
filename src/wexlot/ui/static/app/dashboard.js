// The dashboard: revenue, pipeline, activities due, latest interactions, who is online, row counts and
// the changes seen since sign-in, all live.
//
// Every figure is an aggregate or head-count query answered by the server (never a fetch of every
// row). A change to a table re-runs the queries that depend on it, debounced, so a burst of changes
// costs one round trip; a resync does the same. Answers that arrive out of order are dropped by a
// per-query sequence number. "This month" and "today" are the browser's local calendar, sent as ISO
// timestamps; a timer re-runs the time-bound queries when the day changes.
//
// Test hooks: each figure is a <data data-figure="…" data-value="<raw number>"> (money figures also
// carry data-currency; per-stage ones data-stage).

import { supabase } from './client.js'
import { debounce, h, mount } from './dom.js'
import { formatMoney, formatTimestamp, timeBounds } from './format.js'
import { byWhom, lookups } from './lookups.js'
import { presence } from './presence.js'
import { DEFS, STAGES, TABLES, VERBS, capital, describe, isElevated } from './schema.js'
import { sync } from './sync.js'

const FEED_SIZE = 15
const INTERACTIONS_SHOWN = 8
const REFRESH_MS = 250
const CARD_ORDER = ['contacts', 'companies', 'deals', 'activities', 'interactions', 'platforms', 'staff']
const OPEN_STAGES = STAGES.filter((s) => s !== 'won' && s !== 'lost')
const DEFAULT_CURRENCY = 'USD'

// Changes seen since sign-in (newest first), kept while the user moves between pages.
const feed = []
export function recordChange(change) {
  // A change can arrive twice (live and through the catch-up after a reconnect): show it once.
  const row = change.record ?? change.old ?? {}
  const key = `${change.table}:${row.id}:${change.type === 'DELETE' ? 'deleted' : row.version}`
  if (feed.some((item) => item.key === key)) return
  feed.unshift({ ...change, key, at: new Date() })
  feed.length = Math.min(feed.length, FEED_SIZE)
}
export function clearFeed() {
  feed.length = 0
}

/** Money values as the API returns them (numbers or numeric strings), rounded to cents. */
const cents = (value) => Math.round(Number(value ?? 0) * 100) / 100

/** [{ currency, sum, count }] from aggregate groups, summed per currency, in a stable order. */
function perCurrency(groups) {
  const by = new Map()
  for (const g of groups) {
    const known = by.get(g.currency) ?? { currency: g.currency, sum: 0, count: 0 }
    known.sum = cents(known.sum + Number(g.sum ?? 0))
    known.count += Number(g.count ?? 0)
    by.set(g.currency, known)
  }
  return [...by.values()].sort((a, b) => a.currency.localeCompare(b.currency))
}

const countOf = (groups) => groups.reduce((n, g) => n + Number(g.count ?? 0), 0)

// Which queries depend on which table (staff: names only, so only the row count).
const QUERIES_BY_TABLE = {
  deals: ['pipeline', 'closed'],
  activities: ['activities'],
  interactions: ['interactions'],
}

export class Dashboard {
  constructor({ me }) {
    this.me = me
    this.elevated = isElevated(me)
    this.counts = new Map() // table -> row count (null: could not be counted)
    this.data = {} // query name -> last answer
    this.errors = {} // query name -> message
    this.seq = {} // query name -> sequence of the latest request
    this.values = new Map() // figure key -> last shown value (flash on change)
    this.cleanups = []
    this.refreshers = new Map() // query name or `count:<table>` -> debounced runner
    this.ready = false
    this.changed = new Set() // selectors of figures whose value changed in the render under way
    this.build()
  }

  // --- lifecycle --------------------------------------------------------------------------------

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handleChange(change)),
      sync.onResync((table) => this.refreshTable(table)),
      lookups.onChange(() => {
        this.renderInteractions()
        this.renderFeed()
      }),
      presence.onChange(() => this.renderOnline()),
    )
    this.renderFeed()
    this.renderOnline()
    this.scheduleDayChange()
    // Queries start after the channels joined, so no change can fall between answer and stream.
    await Promise.all(TABLES.map((t) => sync.whenJoined(t)))
    if (this.destroyed) return
    await Promise.all([
      this.loadCounts(),
      ...['pipeline', 'closed', 'activities', 'interactions'].map((name) => this.run(name)),
    ])
    this.ready = true
    this.el.dataset.state = 'ready'
    this.body.setAttribute('aria-busy', 'false')
  }

  destroy() {
    this.destroyed = true
    this.cleanups.forEach((fn) => fn())
    this.cleanups = []
    for (const fn of this.refreshers.values()) fn.cancel()
    clearTimeout(this.dayTimer)
    clearTimeout(this.flashTimer)
  }

  /** Re-runs the time-bound queries when the local day (and maybe the month) changes. */
  scheduleDayChange() {
    const { tomorrow } = timeBounds()
    const ms = Math.min(tomorrow.getTime() - Date.now() + 1000, 2 ** 31 - 1)
    this.dayTimer = setTimeout(() => {
      this.refresh('closed')
      this.refresh('activities')
      this.scheduleDayChange()
    }, ms)
  }

  refresh(name) {
    if (!this.refreshers.has(name)) {
      const run = name.startsWith('count:') ? () => this.loadCount(name.slice(6)) : () => this.run(name)
      this.refreshers.set(name, debounce(run, REFRESH_MS))
    }
    this.refreshers.get(name)()
  }

  refreshTable(table) {
    if (TABLES.includes(table)) this.refresh(`count:${table}`)
    for (const name of QUERIES_BY_TABLE[table] ?? []) this.refresh(name)
  }

  handleChange(change) {
    this.refreshTable(change.table)
    this.renderFeed()
  }

  // --- queries ----------------------------------------------------------------------------------

  /** Runs query `name`; a newer request supersedes the answer of an older one. */
  async run(name) {
    const seq = (this.seq[name] ?? 0) + 1
    this.seq[name] = seq
    let result
    try {
      result = await this[`query_${name}`]()
    } catch (err) {
      result = { error: err }
    }
    if (this.destroyed || seq !== this.seq[name]) return
    if (result.error) {
      this.errors[name] = result.error.message ?? String(result.error)
    } else {
      delete this.errors[name]
      this.data[name] = result.data
    }
    this.render(name)
  }

  /** Deals by stage and currency: open pipeline and all-time won. */
  async query_pipeline() {
    return supabase.from('deals').select('stage, currency, amount.sum(), id.count()')
  }

  /** Deals won or lost this month (closed_at is set by the database when a deal closes). */
  async query_closed() {
    const { month, nextMonth } = timeBounds()
    return supabase.from('deals').select('stage, currency, amount.sum(), id.count()')
      .in('stage', ['won', 'lost'])
      .gte('closed_at', month.toISOString())
      .lt('closed_at', nextMonth.toISOString())
  }

  /** Open activities due today and overdue: the team's for managers, the rep's own for reps. */
  async query_activities() {
    const { today, tomorrow } = timeBounds()
    const base = () => {
      let q = supabase.from('activities').select('id', { count: 'exact', head: true }).eq('completed', false)
      if (!this.elevated) q = q.eq('assigned_to', this.me.id)
      return q
    }
    const [due, overdue] = await Promise.all([
      base().gte('due_at', today.toISOString()).lt('due_at', tomorrow.toISOString()),
      base().lt('due_at', today.toISOString()),
    ])
    const error = due.error ?? overdue.error
    return error ? { error } : { data: { dueToday: due.count ?? 0, overdue: overdue.count ?? 0 } }
  }

  async query_interactions() {
    return supabase.from('interactions')
      .select('id, kind, direction, summary, occurred_at, contact_id, staff_id, version')
      .order('occurred_at', { ascending: false })
      .order('id', { ascending: true })
      .limit(INTERACTIONS_SHOWN)
  }

  async loadCounts() {
    await Promise.all(TABLES.map((t) => this.loadCount(t)))
  }

  async loadCount(table) {
    const name = `count:${table}`
    const seq = (this.seq[name] ?? 0) + 1
    this.seq[name] = seq
    const { count, error } = await supabase.from(table).select('id', { count: 'exact', head: true })
    if (this.destroyed || seq !== this.seq[name]) return
    this.counts.set(table, error ? null : count)
    this.renderCards()
  }

  // --- rendering --------------------------------------------------------------------------------

  build() {
    this.heading = h('h1', { id: 'dashboard-title', tabindex: '-1' }, 'Dashboard')
    const scope = this.elevated ? 'the whole team' : 'you (what you may see)'
    this.kpis = {
      wonMonth: this.kpi('Won this month', 'won-this-month'),
      wonAll: this.kpi('Won all time', 'won-all-time'),
      open: this.kpi('Open pipeline', 'open-pipeline'),
      dueToday: this.kpi(this.elevated ? 'Activities due today' : 'Your activities due today', 'due-today', '/tasks'),
      overdue: this.kpi(this.elevated ? 'Overdue activities' : 'Your overdue activities', 'overdue', '/tasks'),
    }
    this.pipelineBox = h('div', { class: 'dash-pipeline' }, h('p', { class: 'muted' }, 'Loading…'))
    this.interactionsList = h('ol', { class: 'dash-interactions' }, h('li', { class: 'muted' }, 'Loading…'))
    this.onlineList = h('ul', { class: 'dash-online' })
    this.onlineCount = h('span', { class: 'muted' })
    this.cards = h('div', { class: 'cards' })
    // Not a live region: the notices already announce each change once.
    this.feedList = h('ol', { class: 'feed' })
    this.body = h('div', { class: 'dash-body', 'aria-busy': 'true' },
      h('section', { class: 'kpis', 'aria-labelledby': 'kpi-title' },
        h('h2', { id: 'kpi-title', class: 'sr-only' }, 'Key figures'),
        Object.values(this.kpis).map((k) => k.el)),
      h('div', { class: 'panels' },
        h('section', { class: 'panel', 'aria-labelledby': 'dash-pipeline-title' },
          h('h2', { id: 'dash-pipeline-title' }, 'Open pipeline by stage'), this.pipelineBox,
          h('p', { class: 'panel-link' }, h('a', { href: '/pipeline' }, 'Open the pipeline board'))),
        h('section', { class: 'panel', 'aria-labelledby': 'dash-interactions-title' },
          h('h2', { id: 'dash-interactions-title' }, 'Latest interactions'), this.interactionsList),
        h('section', { class: 'panel', 'aria-labelledby': 'dash-online-title' },
          h('h2', { id: 'dash-online-title' }, 'Who is online ', this.onlineCount), this.onlineList),
        h('section', { class: 'panel', 'aria-labelledby': 'feed-title' },
          h('h2', { id: 'feed-title' }, 'Live changes since you signed in'), this.feedList),
      ),
      h('section', { class: 'dash-records', 'aria-labelledby': 'records-title' },
        h('h2', { id: 'records-title' }, 'Records'), this.cards),
    )
    this.el = h('section', { class: 'dashboard', 'aria-labelledby': 'dashboard-title', dataset: { state: 'loading' } },
      h('div', { class: 'view-head' }, this.heading,
        h('p', { class: 'count' }, `Signed in as ${this.me.full_name} (${this.me.role}); figures cover ${scope}.`)),
      this.body,
    )
  }

  kpi(title, figure, href = null) {
    const value = h('p', { class: 'kpi-value' }, '–')
    const sub = h('p', { class: 'kpi-sub muted' })
    const heading = h('h3', {}, href ? h('a', { href }, title) : title)
    const el = h('article', { class: 'kpi', dataset: { kpi: figure } }, heading, value, sub)
    return { el, value, sub }
  }

  /** <data data-figure data-value>text</data>, and a flash on the KPI when the value changed. */
  figure(name, value, text, extra = {}) {
    const key = [name, extra.stage, extra.currency].filter(Boolean).join(':')
    const previous = this.values.get(key)
    this.values.set(key, value)
    if (this.ready && previous !== undefined && previous !== value) {
      this.changed.add(`[data-figure="${name}"]${extra.stage ? `[data-stage="${extra.stage}"]` : ''}`)
    }
    return h('data', { value: String(value), dataset: { figure: name, value: String(value), ...extra } }, text)
  }

  /** Money per currency ("$1,200 + €300"); a zero in the default currency when there is none. */
  moneyFigures(name, totals) {
    const list = totals.length ? totals : [{ currency: DEFAULT_CURRENCY, sum: 0 }]
    return list.flatMap((t, i) => [
      i ? h('span', { class: 'plus', 'aria-hidden': 'true' }, ' + ') : null,
      this.figure(name, cents(t.sum), formatMoney(t.sum, t.currency), { currency: t.currency }),
    ])
  }

  render(name) {
    if (name === 'pipeline') this.renderPipeline()
    else if (name === 'closed') this.renderClosed()
    else if (name === 'activities') this.renderActivities()
    else if (name === 'interactions') this.renderInteractions()
    this.flashChanged()
  }

  /** Highlights the KPI, stage row or record card of each figure that changed. */
  flashChanged() {
    for (const selector of this.changed) {
      const box = this.el.querySelector(selector)?.closest('tr, article')
      if (!box) continue
      box.classList.remove('flash')
      void box.offsetWidth // restart the animation
      box.classList.add('flash')
    }
    this.changed.clear()
  }

  showError(target, name, what) {
    if (!this.errors[name]) return false
    mount(target, h('span', { class: 'list-status' }, `Could not load ${what}: ${this.errors[name]}`))
    return true
  }

  renderPipeline() {
    if (this.showError(this.pipelineBox, 'pipeline', 'the pipeline')) return
    const groups = this.data.pipeline ?? []
    const open = groups.filter((g) => OPEN_STAGES.includes(g.stage))
    const won = groups.filter((g) => g.stage === 'won')
    mount(this.kpis.wonAll.value, this.moneyFigures('won-all-time', perCurrency(won)))
    mount(this.kpis.wonAll.sub, this.figure('won-count-all-time', countOf(won), String(countOf(won))), countOf(won) === 1 ? ' deal won' : ' deals won')
    mount(this.kpis.open.value, this.moneyFigures('open-pipeline', perCurrency(open)))
    mount(this.kpis.open.sub, this.figure('open-count', countOf(open), String(countOf(open))), countOf(open) === 1 ? ' open deal' : ' open deals')
    const rows = OPEN_STAGES.map((stage) => {
      const inStage = groups.filter((g) => g.stage === stage)
      const count = countOf(inStage)
      return h('tr', { dataset: { stage } },
        h('th', { scope: 'row' }, h('a', { href: '/pipeline' }, capital(stage))),
        h('td', { class: 'num' }, this.figure('stage-count', count, String(count), { stage })),
        h('td', { class: 'num' }, perCurrency(inStage).length
          ? perCurrency(inStage).flatMap((t, i) => [i ? h('br') : null, this.figure('stage-value', t.sum, formatMoney(t.sum, t.currency), { stage, currency: t.currency })])
          : this.figure('stage-value', 0, formatMoney(0, DEFAULT_CURRENCY), { stage, currency: DEFAULT_CURRENCY })))
    })
    mount(this.pipelineBox, h('table', { class: 'stage-table' },
      h('caption', { class: 'sr-only' }, 'Open deals and their value per stage'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stage'), h('th', { scope: 'col', class: 'num' }, 'Deals'), h('th', { scope: 'col', class: 'num' }, 'Value'))),
      h('tbody', {}, rows)))
  }

  renderClosed() {
    if (this.showError(this.kpis.wonMonth.value, 'closed', 'this month’s deals')) return
    const groups = this.data.closed ?? []
    const won = groups.filter((g) => g.stage === 'won')
    const lost = groups.filter((g) => g.stage === 'lost')
    mount(this.kpis.wonMonth.value, this.moneyFigures('won-this-month', perCurrency(won)))
    mount(this.kpis.wonMonth.sub,
      this.figure('won-count-this-month', countOf(won), String(countOf(won))), ' won · ',
      this.figure('lost-count-this-month', countOf(lost), String(countOf(lost))), ' lost this month')
  }

  renderActivities() {
    if (this.showError(this.kpis.dueToday.value, 'activities', 'activities')) return
    const { dueToday, overdue } = this.data.activities ?? { dueToday: 0, overdue: 0 }
    mount(this.kpis.dueToday.value, this.figure('due-today', dueToday, String(dueToday)))
    mount(this.kpis.dueToday.sub, 'open, due before midnight')
    mount(this.kpis.overdue.value, this.figure('overdue', overdue, String(overdue)))
    mount(this.kpis.overdue.sub, 'open, due before today')
    this.kpis.overdue.el.classList.toggle('kpi-alert', overdue > 0)
  }

  renderInteractions() {
    if (this.showError(this.interactionsList, 'interactions', 'interactions')) return
    if (!this.data.interactions) return
    const rows = this.data.interactions
    if (!rows.length) {
      mount(this.interactionsList, h('li', { class: 'muted' }, 'No interactions yet.'))
      return
    }
    mount(this.interactionsList, rows.map((r) => h('li', { dataset: { id: r.id } },
      h('time', { datetime: r.occurred_at }, formatTimestamp(r.occurred_at)),
      h('span', { class: 'badge' }, `${capital(r.kind)}${r.direction ? ` · ${r.direction}` : ''}`), ' ',
      r.contact_id ? h('a', { href: `/contacts/${r.contact_id}` }, lookups.name('contacts', r.contact_id)) : 'No contact',
      r.staff_id ? h('span', { class: 'muted' }, ` with ${lookups.name('staff', r.staff_id)}`) : null,
      r.summary ? h('p', { class: 'summary' }, r.summary) : null)))
  }

  renderOnline() {
    const people = presence.online()
    mount(this.onlineCount, '(', h('data', { value: String(people.length), dataset: { figure: 'online-count', value: String(people.length) } }, String(people.length)), ')')
    if (!people.length) {
      mount(this.onlineList, h('li', { class: 'muted' }, 'Nobody else yet.'))
      return
    }
    mount(this.onlineList, people.map((p) => h('li', { dataset: { staff: p.staff_id } },
      h('span', { class: 'online-dot', 'aria-hidden': 'true' }),
      p.name, p.self ? ' (you)' : '', p.role ? h('span', { class: 'muted' }, ` · ${p.role}`) : null)))
  }

  renderCards() {
    mount(this.cards, CARD_ORDER.map((t) => {
      const count = this.counts.get(t)
      const known = count !== null && count !== undefined
      return h('article', { class: 'card', dataset: { table: t } },
        h('a', { href: `/${t}` },
          h('span', { class: 'figure' }, known ? this.figure(`count-${t}`, count, String(count)) : '–'),
          h('span', { class: 'what' }, DEFS[t].title)))
    }))
    this.flashChanged()
  }

  renderFeed() {
    if (!feed.length) {
      mount(this.feedList, h('li', { class: 'muted' }, 'No changes yet. Changes made on any machine appear here as they happen.'))
      return
    }
    mount(this.feedList, feed.map((c) => {
      const row = c.record ?? c.old ?? {}
      const by = c.type !== 'DELETE' ? byWhom(row, this.me) : ''
      return h('li', {},
        h('time', { datetime: c.at.toISOString() }, formatTimestamp(c.at)),
        `${capital(DEFS[c.table].singular)} “${describe(c.table, row)}” ${VERBS[c.type]}${by}`,
        c.source === 'catchup' ? h('span', { class: 'badge' }, 'caught up') : null)
    }))
  }
}
