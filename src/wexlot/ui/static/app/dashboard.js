// The dashboard: how many rows each table holds, the pipeline by stage and the changes seen since
// sign-in, all live. Counts follow the change stream (+1 / -1; a catch-up or a resync recounts); the
// pipeline is one aggregate query (stage, currency, sum, count), re-run when deals change.

import { supabase } from './client.js'
import { debounce, h, mount } from './dom.js'
import { formatMoney, formatTimestamp } from './format.js'
import { lookups } from './lookups.js'
import { DEFS, STAGES, TABLES, capital, describe } from './schema.js'
import { sync } from './sync.js'

const FEED_SIZE = 15
const VERBS = { INSERT: 'added', UPDATE: 'updated', DELETE: 'deleted' }
const CARD_ORDER = ['contacts', 'companies', 'deals', 'activities', 'interactions', 'platforms', 'staff']

// Changes seen since sign-in (newest first), kept while the user moves between pages.
const feed = []
export function recordChange(change) {
  feed.unshift({ ...change, at: new Date() })
  feed.length = Math.min(feed.length, FEED_SIZE)
}
export function clearFeed() {
  feed.length = 0
}

export class Dashboard {
  constructor({ me }) {
    this.me = me
    this.counts = new Map()
    this.cleanups = []
    this.recount = debounce(() => this.loadCounts(), 300)
    this.reloadPipeline = debounce(() => this.loadPipeline(), 300)
    this.build()
  }

  build() {
    this.heading = h('h1', { id: 'dashboard-title', tabindex: '-1' }, 'Dashboard')
    this.cards = h('div', { class: 'cards' })
    this.pipeline = h('div', { class: 'pipeline' }, h('p', { class: 'muted' }, 'Loading…'))
    this.feedList = h('ol', { class: 'feed', 'aria-live': 'polite' })
    this.el = h('section', { class: 'dashboard', 'aria-labelledby': 'dashboard-title' },
      h('div', { class: 'view-head' }, this.heading, h('p', { class: 'count' }, `Signed in as ${this.me.full_name} (${this.me.role})`)),
      h('h2', { class: 'sr-only' }, 'Records'),
      this.cards,
      h('div', { class: 'panels' },
        h('section', { class: 'panel', 'aria-labelledby': 'pipeline-title' }, h('h2', { id: 'pipeline-title' }, 'Pipeline by stage'), this.pipeline),
        h('section', { class: 'panel', 'aria-labelledby': 'feed-title' }, h('h2', { id: 'feed-title' }, 'Live changes since you signed in'), this.feedList),
      ),
    )
  }

  async start() {
    this.cleanups.push(
      sync.onChange((change) => this.handleChange(change)),
      sync.onResync(() => {
        this.recount()
        this.reloadPipeline()
      }),
      lookups.onChange(() => this.renderFeed()),
    )
    this.renderFeed()
    await Promise.all(TABLES.map((t) => sync.whenJoined(t)))
    await Promise.all([this.loadCounts(), this.loadPipeline()])
  }

  destroy() {
    this.cleanups.forEach((fn) => fn())
    this.recount.cancel()
    this.reloadPipeline.cancel()
  }

  async loadCounts() {
    const results = await Promise.all(TABLES.map((t) => supabase.from(t).select('id', { count: 'exact', head: true })))
    TABLES.forEach((t, i) => this.counts.set(t, results[i].error ? null : results[i].count))
    this.renderCards()
  }

  async loadPipeline() {
    const { data, error } = await supabase.from('deals').select('stage, currency, amount.sum(), id.count()')
    if (error) {
      mount(this.pipeline, h('p', { class: 'list-status' }, `Could not load the pipeline: ${error.message}`))
      return
    }
    const rows = STAGES.map((stage) => {
      const groups = data.filter((g) => g.stage === stage)
      const count = groups.reduce((n, g) => n + Number(g.count), 0)
      const value = groups.map((g) => formatMoney(g.sum ?? 0, g.currency)).join(' + ') || formatMoney(0)
      return h('tr', { dataset: { stage } }, h('th', { scope: 'row' }, capital(stage)), h('td', { class: 'num' }, String(count)), h('td', { class: 'num' }, value))
    })
    mount(this.pipeline, h('table', { class: 'stage-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stage'), h('th', { scope: 'col', class: 'num' }, 'Deals'), h('th', { scope: 'col', class: 'num' }, 'Value'))),
      h('tbody', {}, rows)))
  }

  handleChange(change) {
    if (change.source === 'catchup') this.recount()
    else if (this.counts.has(change.table) && this.counts.get(change.table) !== null) {
      const delta = change.type === 'INSERT' ? 1 : change.type === 'DELETE' ? -1 : 0
      if (delta) {
        this.counts.set(change.table, Math.max(0, this.counts.get(change.table) + delta))
        this.renderCards(change.table)
      }
    }
    if (change.table === 'deals') this.reloadPipeline()
    this.renderFeed()
  }

  renderCards(flashTable = null) {
    const cards = CARD_ORDER.map((t) => {
      const count = this.counts.get(t)
      return h('article', { class: `card${t === flashTable ? ' flash' : ''}`, dataset: { table: t } },
        h('a', { href: `/${t}`, 'data-nav': true },
          h('span', { class: 'figure' }, count === null || count === undefined ? '–' : String(count)),
          h('span', { class: 'what' }, DEFS[t].title)))
    })
    mount(this.cards, cards)
  }

  renderFeed() {
    if (!feed.length) {
      mount(this.feedList, h('li', { class: 'muted' }, 'No changes yet. Changes made on any machine appear here as they happen.'))
      return
    }
    mount(this.feedList, feed.map((c) => {
      const row = c.record ?? c.old ?? {}
      const by = c.type !== 'DELETE' && row.updated_by ? ` by ${row.updated_by === this.me.id ? 'you' : lookups.name('staff', row.updated_by)}` : ''
      return h('li', {},
        h('time', { datetime: c.at.toISOString() }, formatTimestamp(c.at)),
        `${capital(DEFS[c.table].singular)} “${describe(c.table, row)}” ${VERBS[c.type]}${by}`,
        c.source === 'catchup' ? h('span', { class: 'badge' }, 'caught up') : null)
    }))
  }
}
