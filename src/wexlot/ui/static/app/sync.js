// Live data: one realtime channel per CRM table, checkpoints, catch-up after a reconnect, connection state.
//
// Lifecycle. start() logs the setup line once, sets the user's token on the socket (so the first join
// already carries it), then joins `realtime:<table>` for the 7 tables, each with a postgres_changes
// binding and a listener for the server's `position` checkpoints. Every change, live or caught up, is
// handed to the listeners registered with onChange() as
//   { table, type: 'INSERT'|'UPDATE'|'DELETE', record, old, commitTimestamp, source: 'live'|'catchup' }
// and logged as "<Table> data changed: <TYPE> <name>".
//
// Reconnects. supabase-js rejoins every channel by itself after the socket comes back; each rejoin
// reports SUBSCRIBED again. At that moment the channel's last checkpoint is captured (the `position`
// broadcast that follows a rejoin already belongs to the new join), live events are held back, and
// GET /realtime/v1/api/changes?since=<checkpoint>&tables=<table> is fetched page by page and applied;
// then the held-back events follow. Listeners keep rows by id and apply a change only when its
// `version` is newer, so an event delivered both ways is harmless. A 410 (position_expired), a
// catch-up that keeps failing, or no checkpoint at all makes the table "resync": its views refetch.
//
// Publication. Which tables broadcast is read at start, after every rejoin, every minute and whenever
// the server hints (a `publication` broadcast after an admin's change): a table that is off is reported
// through onPublication() (the shell says the screen is not live for it); one that is back resyncs.

import { realtimeApi, supabase } from './client.js'
import { Listeners, debounce } from './dom.js'
import { TABLES, describe, tableTitle } from './schema.js'

export const SETUP_LINE = '[CRM] Setting up real-time subscriptions...'
const OFFLINE_AFTER_MS = 20_000 // disconnected this long (browser online): shown as offline, still retrying
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000]
const MAX_CATCHUP_PAGES = 200
const PUBLICATION_EVERY_MS = 60_000 // also re-read after every (re)join and on the server's hint

class TableFeed {
  constructor(table) {
    this.table = table
    this.channel = null
    this.joined = false
    this.everJoined = false
    this.position = null // last checkpoint of the current join, or the caught-up position
    this.pendingPosition = null // checkpoints seen while catching up (they belong to the new join)
    this.catchUps = 0 // catch-ups scheduled and not finished
    this.held = [] // live events received while catching up
    this.chain = Promise.resolve()
  }
}

class Sync {
  constructor() {
    this.feeds = new Map()
    this.changeListeners = new Listeners()
    this.resyncListeners = new Listeners()
    this.stateListeners = new Listeners()
    this.closedListeners = new Listeners()
    this.joinedListeners = new Listeners()
    this.presenceListeners = new Listeners()
    this.publicationListeners = new Listeners()
    this.unpublished = new Set() // tables whose changes are not broadcast (Realtime settings)
    this.checkPublicationSoon = debounce(() => this.checkPublication(), 200)
    this.started = false
    this.loggedSetup = false
    this.state = 'offline'
    this.detail = 'Offline'
    this.disconnectedSince = null
    this.lastEventAt = null
    this.timer = null
    this.generation = 0
    this.joinWaiters = new Map() // table -> Set of resolve functions (whenJoined)
    window.addEventListener('online', () => this.updateState())
    window.addEventListener('offline', () => this.updateState())
  }

  /** fn(change) for every change; returns an unsubscribe function. */
  onChange(fn) {
    return this.changeListeners.add(fn)
  }

  /** fn(table, reason) when a table's local copies must be refetched; returns an unsubscribe function. */
  onResync(fn) {
    return this.resyncListeners.add(fn)
  }

  /**
   * fn(table) when the server closes a channel by itself (supabase-js does not rejoin those): the
   * user's access was revoked, e.g. their staff row was deactivated. Returns an unsubscribe function.
   */
  onClosedByServer(fn) {
    return this.closedListeners.add(fn)
  }

  /** fn(table, channel) each time a table's channel (re)joins: presence is tracked again then. */
  onJoined(fn) {
    return this.joinedListeners.add(fn)
  }

  /** fn(table) when the presence state of a table's channel changed (see presence.js). */
  onPresence(fn) {
    return this.presenceListeners.add(fn)
  }

  /**
   * fn(tables) with the set of tables whose changes are not broadcast, now and whenever it changes: a
   * screen showing them is not live and must say so. Returns an unsubscribe function.
   */
  onPublication(fn) {
    fn(this.unpublished)
    return this.publicationListeners.add(fn)
  }

  /** Reads which tables broadcast; a table broadcasting again is resynced (its missed changes never came). */
  async checkPublication() {
    const generation = this.generation
    let body = null
    try {
      const response = await realtimeApi('publication')
      if (response.ok) body = await response.json()
    } catch {
      // offline: the next check will tell
    }
    if (!body || generation !== this.generation) return
    const off = new Set(body.tables.filter((t) => !t.published).map((t) => t.name))
    const back = [...this.unpublished].filter((t) => !off.has(t))
    const changed = back.length > 0 || [...off].some((t) => !this.unpublished.has(t))
    this.unpublished = off
    for (const table of back) {
      console.warn(`[CRM] ${tableTitle(table)} is broadcast again; reloading`)
      this.resyncListeners.emit(table, 'broadcasting again')
    }
    if (changed) this.publicationListeners.emit(off)
  }

  /** The joined (or joining) channel of `table`, or null when not started. */
  channel(table) {
    return this.feeds.get(table)?.channel ?? null
  }

  /** fn(state, detail) on every connection-state change (state: live | reconnecting | offline). */
  onState(fn) {
    fn(this.state, this.detail)
    return this.stateListeners.add(fn)
  }

  /** Resolves true once `table`'s channel has joined (at once if it has), false after `timeoutMs`. */
  whenJoined(table, timeoutMs = 8000) {
    if (this.feeds.get(table)?.everJoined) return Promise.resolve(true)
    return new Promise((resolve) => {
      const waiters = this.joinWaiters.get(table) ?? new Set()
      this.joinWaiters.set(table, waiters)
      const done = (joined) => {
        clearTimeout(timer)
        waiters.delete(done)
        resolve(joined)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      waiters.add(done)
    })
  }

  resolveWaiters(table, joined) {
    for (const done of [...(this.joinWaiters.get(table) ?? [])]) done(joined)
  }

  async start() {
    if (this.started) return
    this.started = true
    const generation = ++this.generation
    if (!this.loggedSetup) {
      console.log(SETUP_LINE)
      this.loggedSetup = true
    }
    // First, so that the first phx_join already carries the user's token (else it joins as anon).
    const { data } = await supabase.auth.getSession()
    await supabase.realtime.setAuth()
    if (generation !== this.generation) return // stopped meanwhile (signed out)
    if (!data.session) {
      this.started = false // never join as anon: there is nothing an anonymous tab may see
      return
    }
    for (const table of TABLES) {
      const feed = new TableFeed(table)
      this.feeds.set(table, feed)
      feed.channel = supabase
        .channel(table)
        .on('postgres_changes', { event: '*', schema: 'public', table }, (payload) => this.live(feed, payload))
        .on('broadcast', { event: 'position' }, (message) => this.checkpoint(feed, message?.payload?.position))
        .on('presence', { event: 'sync' }, () => this.presenceChanged(feed))
        .on('broadcast', { event: 'publication' }, () => this.checkPublicationSoon())
        .subscribe((status, err) => this.status(feed, status, err))
    }
    this.timer = setInterval(() => this.updateState(), 1000)
    this.publicationTimer = setInterval(() => this.checkPublication(), PUBLICATION_EVERY_MS)
    this.checkPublicationSoon()
    this.updateState()
  }

  async stop() {
    this.generation++
    this.started = false
    clearInterval(this.timer)
    clearInterval(this.publicationTimer)
    this.checkPublicationSoon.cancel()
    this.feeds.clear()
    if (this.unpublished.size) {
      this.unpublished = new Set()
      this.publicationListeners.emit(this.unpublished)
    }
    for (const table of TABLES) this.resolveWaiters(table, false)
    await supabase.removeAllChannels()
    this.disconnectedSince = null
    this.updateState()
  }

  // --- channel callbacks ------------------------------------------------------------------------

  status(feed, status, err) {
    if (this.feeds.get(feed.table) !== feed) return // a channel of an earlier session
    if (status === 'SUBSCRIBED') {
      feed.joined = true
      this.joinedListeners.emit(feed.table, feed.channel)
      if (!feed.everJoined) {
        feed.everJoined = true
        this.resolveWaiters(feed.table, true)
      } else {
        // A rejoin: what happened while we were away comes from the catch-up endpoint.
        this.checkPublicationSoon()
        const since = feed.position
        feed.catchUps++
        feed.chain = feed.chain.then(() => this.catchUp(feed, since))
      }
    } else {
      feed.joined = false
      if (err) console.warn(`[CRM] realtime:${feed.table} ${status}: ${err.message ?? err}`)
      // Our own stop() forgets the feeds first, so a CLOSED on a current feed came from the server.
      if (status === 'CLOSED') this.closedListeners.emit(feed.table)
    }
    this.updateState()
  }

  presenceChanged(feed) {
    if (this.feeds.get(feed.table) !== feed) return
    this.presenceListeners.emit(feed.table)
  }

  checkpoint(feed, position) {
    if (!Number.isFinite(position)) return
    if (feed.catchUps > 0) feed.pendingPosition = Math.max(feed.pendingPosition ?? position, position)
    else feed.position = Math.max(feed.position ?? position, position)
  }

  live(feed, payload) {
    const change = {
      table: feed.table,
      type: payload.eventType,
      record: payload.eventType === 'DELETE' ? null : payload.new,
      old: payload.old && Object.keys(payload.old).length ? payload.old : null,
      commitTimestamp: payload.commit_timestamp,
      source: 'live',
    }
    if (feed.catchUps > 0) feed.held.push(change)
    else this.dispatch(change)
  }

  // --- catch-up ---------------------------------------------------------------------------------

  async catchUp(feed, since) {
    const generation = this.generation
    this.updateState()
    let outcome = null
    try {
      outcome = since === null ? { resync: 'no checkpoint before the disconnect' } : await this.fetchChanges(feed, since)
    } catch (err) {
      outcome = { resync: `catch-up failed: ${err.message ?? err}` }
    }
    if (generation !== this.generation) return
    feed.catchUps--
    if (outcome.resync) {
      // Everything up to the new join's checkpoint will be in the refetched rows.
      feed.position = feed.pendingPosition ?? feed.position
      console.warn(`[CRM] ${tableTitle(feed.table)}: ${outcome.resync}; reloading`)
      this.resyncListeners.emit(feed.table, outcome.resync)
    } else {
      feed.position = Math.max(outcome.position, feed.pendingPosition ?? outcome.position)
      console.info(`[CRM] ${tableTitle(feed.table)} caught up: ${outcome.count} changes since position ${since}`)
    }
    if (feed.catchUps === 0) {
      feed.pendingPosition = null
      const held = feed.held.splice(0)
      for (const change of held) this.dispatch(change)
    }
    this.updateState()
  }

  /** Pages through the catch-up endpoint from `since`; applies each change as it comes. */
  async fetchChanges(feed, since) {
    let position = since
    let count = 0
    for (let page = 0; page < MAX_CATCHUP_PAGES; page++) {
      const response = await this.fetchWithRetry(`changes?since=${position}&tables=${feed.table}`)
      if (response.status === 410) return { resync: 'the missed changes are no longer kept (position expired)' }
      if (!response.ok) return { resync: `catch-up answered HTTP ${response.status}` }
      const body = await response.json()
      for (const c of body.changes) {
        this.dispatch({
          table: c.table,
          type: c.type,
          record: c.type === 'DELETE' ? null : c.record,
          old: c.old_record ?? null,
          commitTimestamp: c.commit_timestamp,
          source: 'catchup',
        })
      }
      count += body.changes.length
      position = Math.max(position, body.position)
      if (body.complete) return { position, count }
    }
    return { resync: 'catch-up did not complete' }
  }

  async fetchWithRetry(path) {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await realtimeApi(path)
        if (response.status < 500 || attempt >= RETRY_DELAYS_MS.length) return response
      } catch (err) {
        if (attempt >= RETRY_DELAYS_MS.length) throw err
      }
      // The network may still be settling right after the socket came back.
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]))
    }
  }

  // --- fan-out and state ------------------------------------------------------------------------

  dispatch(change) {
    this.lastEventAt = new Date()
    const row = change.record ?? change.old ?? {}
    const suffix = change.source === 'catchup' ? ' (caught up)' : ''
    console.log(`${tableTitle(change.table)} data changed: ${change.type} ${describe(change.table, row)}${suffix}`)
    for (const fn of this.changeListeners.fns) {
      try {
        fn(change)
      } catch (err) {
        console.error('[CRM] a change listener failed', err)
      }
    }
  }

  updateState() {
    let state
    let detail
    const feeds = [...this.feeds.values()]
    const connected = supabase.realtime.isConnected()
    if (connected || !this.started) this.disconnectedSince = null
    else this.disconnectedSince ??= Date.now()
    if (!this.started) {
      ;[state, detail] = ['offline', 'Offline']
    } else if (!navigator.onLine) {
      ;[state, detail] = ['offline', 'Offline']
    } else if (!connected && Date.now() - this.disconnectedSince > OFFLINE_AFTER_MS) {
      ;[state, detail] = ['offline', 'Offline, retrying']
    } else if (feeds.some((f) => f.catchUps > 0) && connected) {
      ;[state, detail] = ['reconnecting', 'Catching up…']
    } else if (connected && feeds.length === TABLES.length && feeds.every((f) => f.joined)) {
      ;[state, detail] = ['live', 'Live']
    } else {
      ;[state, detail] = ['reconnecting', feeds.some((f) => f.everJoined) ? 'Reconnecting…' : 'Connecting…']
    }
    if (state === this.state && detail === this.detail) return
    this.state = state
    this.detail = detail
    this.stateListeners.emit(state, detail)
  }
}

export const sync = new Sync()
