// Status (/status): what this browser's realtime connection is doing, how fast the server answers,
// and (for admins) the server's own view from GET /realtime/v1/api/status.
//
// The latency probe sends a Phoenix heartbeat with its own ref on the open socket (the same frame the
// SDK sends every 25-30 s; using our own ref leaves the SDK's heartbeat bookkeeping alone) and times
// the reply, then times one HTTP GET of the status endpoint.

import { realtimeApi, supabase } from './client.js'
import { h, mount, uid } from './dom.js'
import { tableTitle } from './schema.js'
import { sync } from './sync.js'

const LOCAL_REFRESH_MS = 1000
const SERVER_REFRESH_MS = 5000
const PROBE_TIMEOUT_MS = 10_000
const STATE_TEXT = { live: 'Live', reconnecting: 'Reconnecting', offline: 'Offline' }

const ms = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`

function ago(date) {
  if (!date) return 'never'
  const seconds = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000))
  if (seconds < 60) return `${seconds} s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s ago`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`
}

const clock = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
const fromEpoch = (seconds) => (Number.isFinite(seconds) ? new Date(seconds * 1000) : null)

function duration(seconds) {
  if (!Number.isFinite(seconds)) return '—'
  if (seconds < 90) return `${Math.round(seconds)} s`
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`
  return `${(seconds / 86_400).toFixed(1)} days`
}

function bytes(n) {
  if (!Number.isFinite(n)) return '—'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

/** A value from the server's JSON as short text (nested objects as key: value pairs). */
function plain(value) {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (Array.isArray(value)) return value.length ? value.map(plain).join(', ') : '—'
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}: ${plain(v)}`).join(', ')
  return String(value)
}

const label = (key) => key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase())

/** A definition list from [term, value, testid?] triples. */
function facts(items) {
  return h('dl', { class: 'facts' }, items.flatMap(([term, value, testid]) => [
    h('dt', {}, term),
    h('dd', { dataset: testid ? { testid } : {} }, value),
  ]))
}

/** The phoenix Socket under supabase-js's RealtimeClient (null when this SDK version hides it). */
function phoenixSocket() {
  return supabase.realtime?.socketAdapter?.socket ?? null
}

/** Round trip of one Phoenix heartbeat on the open socket, in ms. */
function heartbeatRoundTrip() {
  const socket = phoenixSocket()
  if (!socket?.isConnected?.() || typeof socket.onMessage !== 'function') {
    return Promise.reject(new Error('the realtime socket is not connected'))
  }
  return new Promise((resolve, reject) => {
    const ref = socket.makeRef()
    let listener = null
    const finish = () => {
      clearTimeout(timer)
      if (listener !== null) socket.off([listener])
    }
    const timer = setTimeout(() => {
      finish()
      reject(new Error(`no reply within ${PROBE_TIMEOUT_MS / 1000} s`))
    }, PROBE_TIMEOUT_MS)
    const started = performance.now()
    listener = socket.onMessage((message) => {
      if (message.ref !== ref) return
      finish()
      if (message.payload?.status === 'ok') resolve(performance.now() - started)
      else reject(new Error(`the server answered ${message.payload?.status ?? 'an error'}`))
    })
    socket.push({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref })
  })
}

/** GET /realtime/v1/api/status with the session token: { response, elapsed ms, body }. */
async function fetchServerStatus() {
  const started = performance.now()
  const response = await realtimeApi('status', { timeoutMs: PROBE_TIMEOUT_MS })
  const body = await response.json().catch(() => null)
  return { response, elapsed: performance.now() - started, body }
}

export class StatusPage {
  constructor({ me }) {
    this.me = me
    this.cleanups = []
    this.destroyed = false
    this.server = null // { at, body } or { at, error }
    this.probing = false
    const headingId = uid('status-title')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, 'Status')

    this.stateEl = h('p', { class: 'status-state', dataset: { testid: 'connection-state' } })
    this.localFacts = h('div')
    this.channelBody = h('tbody')
    const channelsId = uid('channels-title')
    const localTitle = uid('local-title')
    const local = h('section', { class: 'panel', 'aria-labelledby': localTitle },
      h('h2', { id: localTitle }, 'This browser'),
      this.stateEl,
      this.localFacts,
      h('h3', { id: channelsId }, 'Channels'),
      h('div', { class: 'table-scroll' },
        h('table', { class: 'status-table', 'aria-labelledby': channelsId, dataset: { testid: 'channels' } },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Topic'), h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col' }, 'State'))),
          this.channelBody)),
    )

    this.probeButton = h('button', { type: 'button', onclick: () => this.probe() }, 'Measure round trip')
    this.probeResult = h('div', { class: 'probe-result', role: 'status', 'aria-live': 'polite', dataset: { testid: 'probe' } },
      h('p', { class: 'muted' }, 'Not measured yet.'))
    const probeTitle = uid('probe-title')
    const probe = h('section', { class: 'panel', 'aria-labelledby': probeTitle },
      h('h2', { id: probeTitle }, 'Round trip'),
      h('p', { class: 'hint' }, 'A heartbeat over the realtime WebSocket, then one HTTP request to the status endpoint.'),
      this.probeButton,
      this.probeResult,
    )

    this.serverEl = h('div', { dataset: { testid: 'server-view' } }, h('p', { class: 'muted' }, 'Loading…'))
    this.serverUpdated = h('p', { class: 'hint' })
    const serverTitle = uid('server-title')
    const server = h('section', { class: 'panel panel-wide', 'aria-labelledby': serverTitle },
      h('h2', { id: serverTitle }, 'Server'),
      this.serverUpdated,
      this.serverEl,
    )

    this.el = h('section', { class: 'admin-page status-page', 'aria-labelledby': headingId, dataset: { state: 'loading' } },
      h('div', { class: 'view-head' }, this.heading),
      h('div', { class: 'status-grid' }, local, probe, server),
    )
  }

  async start() {
    this.cleanups.push(
      sync.onState(() => this.renderLocal()),
      sync.onChange(() => this.renderLocal()),
      sync.onJoined(() => this.renderLocal()),
    )
    // Channel states change without a sync event (e.g. joining → joined between two ticks).
    const local = setInterval(() => this.renderLocal(), LOCAL_REFRESH_MS)
    const server = setInterval(() => {
      if (!document.hidden && !this.probing && !this.forbidden) this.refreshServer()
    }, SERVER_REFRESH_MS)
    this.cleanups.push(() => clearInterval(local), () => clearInterval(server))
    this.renderLocal()
    await this.refreshServer()
    if (!this.destroyed) this.el.dataset.state = 'ready'
  }

  destroy() {
    this.destroyed = true
    this.cleanups.forEach((fn) => fn())
    this.cleanups = []
  }

  // --- this browser -------------------------------------------------------------------------------

  renderLocal() {
    if (this.destroyed) return
    this.stateEl.dataset.state = sync.state
    this.stateEl.replaceChildren(
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      `Real-time updates: ${STATE_TEXT[sync.state] ?? sync.state}`,
      sync.detail && sync.detail !== STATE_TEXT[sync.state] ? ` (${sync.detail})` : '',
    )
    const socket = phoenixSocket()
    const last = sync.lastEventAt
    mount(this.localFacts, facts([
      ['Last change received', last ? h('time', { datetime: last.toISOString() }, `${clock(last)} (${ago(last)})`) : 'None yet', 'last-event'],
      ['WebSocket', supabase.realtime.isConnected() ? 'Connected' : 'Not connected', 'socket'],
      ['Transport', socket?.transport?.name ?? (socket ? 'WebSocket' : '—')],
    ]))

    const channels = supabase.getChannels()
      .map((c) => ({ topic: c.topic, state: c.state }))
      .sort((a, b) => a.topic.localeCompare(b.topic))
    // Rebuilt only when something changed, so a selection in the table survives the ticks.
    const signature = channels.map((c) => `${c.topic}=${c.state}`).join(' ')
    if (signature === this.channelSignature) return
    this.channelSignature = signature
    const rows = channels.map(({ topic, state }) => {
      const table = topic.replace(/^realtime:/, '')
      return h('tr', { dataset: { topic, state } },
        h('td', { 'data-label': 'Topic' }, h('code', {}, topic)),
        h('td', { 'data-label': 'Table' }, tableTitle(table)),
        h('td', { 'data-label': 'State' }, h('span', { class: `chip chip-${state}` }, state)))
    })
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No channels: this page is not receiving changes.')))
    this.channelBody.replaceChildren(...rows)
  }

  // --- round trip ---------------------------------------------------------------------------------

  async probe() {
    if (this.probing) return
    this.probing = true
    this.probeButton.disabled = true
    mount(this.probeResult, h('p', { class: 'muted' }, 'Measuring…'))
    const results = []
    try {
      results.push(['WebSocket heartbeat', ms(await heartbeatRoundTrip()), 'heartbeat-ms'])
    } catch (err) {
      results.push(['WebSocket heartbeat', `failed: ${err.message}`, 'heartbeat-ms'])
    }
    try {
      const { response, elapsed, body } = await fetchServerStatus()
      results.push(['HTTP GET /realtime/v1/api/status', `${ms(elapsed)} (HTTP ${response.status})`, 'http-ms'])
      if (!this.destroyed) this.showServer(response, body)
    } catch (err) {
      results.push(['HTTP GET /realtime/v1/api/status', `failed: ${err.message}`, 'http-ms'])
    }
    this.probing = false
    if (this.destroyed) return
    this.probeButton.disabled = false
    mount(this.probeResult, facts(results), h('p', { class: 'hint' }, `Measured at ${clock(new Date())}.`))
  }

  // --- the server's view --------------------------------------------------------------------------

  async refreshServer() {
    try {
      const { response, body } = await fetchServerStatus()
      if (!this.destroyed) this.showServer(response, body)
    } catch (err) {
      if (!this.destroyed) this.showServerError(`Could not reach the server: ${err.message}`)
    }
  }

  showServer(response, body) {
    this.forbidden = response.status === 403 // not an admin: no point asking every few seconds
    if (this.forbidden) {
      this.showServerError('Only administrators can see the server’s view of all connections.', 'info')
      return
    }
    if (!response.ok || !body) {
      this.showServerError(`The server answered HTTP ${response.status}${body?.message ? `: ${body.message}` : ''}.`)
      return
    }
    this.serverUpdated.textContent = `Updated ${clock(new Date())}; refreshes every ${SERVER_REFRESH_MS / 1000} s.`
    mount(this.serverEl, this.renderServer(body))
  }

  showServerError(message, kind = 'error') {
    this.serverUpdated.textContent = ''
    mount(this.serverEl, h('p', { class: kind === 'error' ? 'form-error' : 'form-info', dataset: { testid: 'server-message' } }, message))
  }

  renderServer(s) {
    const started = fromEpoch(s.started_at)
    const channels = Array.isArray(s.channels) ? s.channels : []
    const parts = []
    parts.push(facts([
      ['Connections', String(s.connections ?? '—'), 'server-connections'],
      ['Channels joined', String(channels.length), 'server-channels'],
      ['Presence entries', plain(s.presence)],
      ['Deliveries', plain(s.deliveries)],
      ['Change position', plain(s.position), 'server-position'],
      ['Oldest kept position', plain(s.oldest_position)],
      ['Missed changes kept for', duration(s.retention_seconds)],
      ['Running since', started ? `${started.toLocaleString()} (${duration((Date.now() - started.getTime()) / 1000)})` : '—'],
      ['Last error', plain(s.last_error)],
    ]))

    if (s.capture && typeof s.capture === 'object') {
      const captureTitle = uid('capture')
      parts.push(h('h3', { id: captureTitle }, 'Change capture'),
        facts(Object.entries(s.capture).map(([key, value]) => [label(key), plain(value)])))
    }

    const events = Object.entries(s.events_by_table ?? {})
    if (events.length) {
      const eventsTitle = uid('events')
      parts.push(h('h3', { id: eventsTitle }, 'Changes sent, by table'),
        h('div', { class: 'table-scroll' }, h('table', { class: 'status-table', 'aria-labelledby': eventsTitle },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col', class: 'num' }, 'Changes'))),
          h('tbody', {}, events.map(([table, n]) => h('tr', {},
            h('td', { 'data-label': 'Table' }, tableTitle(table)), h('td', { 'data-label': 'Changes', class: 'num' }, plain(n))))))))
    }

    // Per topic: how many subscribers and how many events went out, instead of one row per channel.
    const topics = new Map()
    for (const ch of channels) {
      const t = topics.get(ch.topic) ?? { subscribers: 0, sent: 0, presence: 0 }
      t.subscribers++
      t.sent += Number(ch.events_sent) || 0
      t.presence = Math.max(t.presence, Number(ch.presence) || 0)
      topics.set(ch.topic, t)
    }
    if (topics.size) {
      const topicsTitle = uid('topics')
      parts.push(h('h3', { id: topicsTitle }, 'Channels by topic'),
        h('div', { class: 'table-scroll' }, h('table', { class: 'status-table', 'aria-labelledby': topicsTitle, dataset: { testid: 'server-topics' } },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Topic'), h('th', { scope: 'col', class: 'num' }, 'Subscribers'),
            h('th', { scope: 'col', class: 'num' }, 'Present'), h('th', { scope: 'col', class: 'num' }, 'Events sent'))),
          h('tbody', {}, [...topics].sort(([a], [b]) => a.localeCompare(b)).map(([topic, t]) => h('tr', { dataset: { topic } },
            h('td', { 'data-label': 'Topic' }, h('code', {}, topic)),
            h('td', { 'data-label': 'Subscribers', class: 'num' }, String(t.subscribers)),
            h('td', { 'data-label': 'Present', class: 'num' }, String(t.presence)),
            h('td', { 'data-label': 'Events sent', class: 'num' }, String(t.sent))))))))
    }

    const conns = Array.isArray(s.connection_details) ? s.connection_details : []
    if (conns.length) {
      const connsTitle = uid('conns')
      parts.push(h('h3', { id: connsTitle }, 'Connections'),
        h('div', { class: 'table-scroll' }, h('table', { class: 'status-table', 'aria-labelledby': connsTitle },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Connection'), h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col', class: 'num' }, 'Channels'),
            h('th', { scope: 'col', class: 'num' }, 'Waiting to send'), h('th', { scope: 'col' }, 'Open for'))),
          h('tbody', {}, conns.map((c) => {
            const opened = fromEpoch(c.opened_at)
            return h('tr', {},
              h('td', { 'data-label': 'Connection' }, h('code', {}, String(c.id ?? '').slice(0, 8) || '—')),
              h('td', { 'data-label': 'From' }, plain(c.remote)),
              h('td', { 'data-label': 'Channels', class: 'num' }, plain(c.channels)),
              h('td', { 'data-label': 'Waiting to send', class: 'num' }, `${bytes(c.outbox_bytes)} in ${plain(c.outbox_frames)} frames`),
              h('td', { 'data-label': 'Open for' }, opened ? duration((Date.now() - opened.getTime()) / 1000) : '—'))
          })))))
    }
    return parts
  }
}
