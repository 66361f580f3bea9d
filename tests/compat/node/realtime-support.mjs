// Shared set-up for the realtime*.test.mjs files: clients built with the UNMODIFIED supabase-js,
// a bounded way to wait for events, and the test side's control server (tests/compat/test_realtime_js.py).
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

import { env, ok } from './env.mjs'

/** Set by test_realtime_js.py only; without it the realtime files register no tests. */
export const controlUrl = process.env.WEXLOT_RT_CONTROL
export const proxyUrl = process.env.WEXLOT_PROXY_URL
export const enabled = Boolean(controlUrl)

export const TABLES = ['staff', 'platforms', 'companies', 'contacts', 'deals', 'activities', 'interactions']
export const COMMIT_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
export { sleep }

/** A call to the test side's control server (outside writes, the reconnect scenario's writer, reports). */
export async function control(path, body) {
  const init = body === undefined
    ? { method: 'GET' }
    : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
  const response = await fetch(controlUrl + path, { ...init, signal: AbortSignal.timeout(70_000) })
  const answer = await response.json()
  assert.equal(response.status, 200, `control ${path}: ${JSON.stringify(answer)}`)
  return answer
}

/** A write that bypasses the server: psql (psycopg2) on PostgreSQL, the sqlite3 module on SQLite. */
export const outside = (sql, params = []) => control('/outside', { statements: [[sql, params]] })

/** Several outside statements in one transaction. */
export const outsideTransaction = (...statements) => control('/outside', { statements })

/**
 * A supabase-js client with realtime over the `ws` package (Node 20 has no global WebSocket).
 * `frames` collects what realtime-js logs (every push it sends and every message it receives).
 */
export function rtClient({ url = env.url, key = env.anonKey, params, frames } = {}) {
  const realtime = { transport: WebSocket }
  if (params) realtime.params = params
  if (frames) realtime.logger = (kind, msg, data) => frames.push({ kind, msg, data })
  return createClient(url, key, { realtime, auth: { persistSession: false, autoRefreshToken: false } })
}

/**
 * Signs in with signInWithPassword, then `await supabase.realtime.setAuth()` so that the first
 * phx_join already carries the user's token (the documented workaround for the first-join race).
 */
export async function signInRt(who, options = {}) {
  const user = env.users[who]
  assert.ok(user, `no test user ${who}`)
  const client = rtClient(options)
  const { data, error } = await client.auth.signInWithPassword({ email: user.email, password: user.password })
  assert.equal(error, null, `sign-in as ${who} failed: ${error?.message}`)
  await client.realtime.setAuth()
  const staff = ok(await client.from('staff').select('id, role').eq('user_id', data.user.id).single(), `staff of ${who}`)
  return { who, client, session: data.session, user: data.user, staff }
}

/** Events received by one channel's callbacks, in arrival order, with bounded waits. */
export class Feed {
  constructor(name) {
    this.name = name
    this.events = []
    this.statuses = []
    this._wake = null
  }

  push(event) {
    this.events.push(event)
    this._wake?.()
  }

  status(status, err) {
    this.statuses.push(err ? `${status}: ${err.message}` : status)
    this._wake?.()
  }

  /** The first event matching `predicate`, waiting at most `timeout` ms. */
  async waitFor(predicate, what = 'event', timeout = 10_000) {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.events.find(predicate)
      if (found) return found
      const left = deadline - Date.now()
      if (left <= 0) {
        const last = JSON.stringify(this.events.slice(-6)).slice(0, 1500)
        assert.fail(`${this.name}: no ${what} within ${timeout} ms (statuses ${this.statuses}); last events: ${last}`)
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200))
        this._wake = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  /** Asserts that no event matching `predicate` arrives (or has arrived) within `ms`. */
  async none(predicate, what = 'event', ms = 700) {
    await sleep(ms)
    const found = this.events.filter(predicate)
    assert.deepEqual(found, [], `${this.name}: unexpected ${what}`)
  }
}

/**
 * `client.channel(name).on('postgres_changes', binding, cb)…subscribe(cb)`; resolves on SUBSCRIBED.
 * Each event is recorded with the index of the binding whose callback got it.
 */
export async function subscribe(client, name, bindings, { onStatus, onPosition, timeout = 15_000 } = {}) {
  const feed = new Feed(name)
  let channel = client.channel(name)
  bindings.forEach((binding, index) => {
    channel = channel.on('postgres_changes', binding, (payload) => feed.push({ binding: index, ...payload }))
  })
  if (onPosition) channel = channel.on('broadcast', { event: 'position' }, (message) => onPosition(message.payload.position))
  await new Promise((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      reject(new Error(`${name}: not SUBSCRIBED within ${timeout} ms (${feed.statuses})`))
    }, timeout)
    channel.subscribe((status, err) => {
      feed.status(status, err)
      onStatus?.(status, err)
      if (settled) return
      if (status === 'SUBSCRIBED') {
        settled = true
        clearTimeout(timer)
        resolve()
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT' || status === 'CLOSED') {
        settled = true
        clearTimeout(timer)
        reject(new Error(`${name}: ${status} ${err?.message ?? ''}`))
      }
    })
  })
  return { channel, feed }
}

/**
 * Leaves every channel and closes the socket, so the node process can end.
 *
 * realtime-js 2.119.1 `SocketAdapter.disconnect` arms a 10 s `setTimeout` it never clears, which keeps
 * Node alive for 10 s after every disconnect; the timer created during our `disconnect()` call is
 * unref'd so that each test file ends when its work does.
 */
export async function closeAll(...clients) {
  for (const c of clients) {
    if (!c) continue
    await Promise.all(c.realtime.getChannels().map((channel) => c.removeChannel(channel).catch(() => 'gone')))
    const realSetTimeout = globalThis.setTimeout
    globalThis.setTimeout = (...args) => realSetTimeout(...args).unref()
    let closing
    try {
      closing = c.realtime.disconnect()
    } finally {
      globalThis.setTimeout = realSetTimeout
    }
    await Promise.race([closing, sleep(2000, 'timeout', { ref: false })])
  }
}

/** Checks the fields every postgres_changes payload hands to app code. */
export function assertPayload(event, table, type) {
  assert.equal(event.eventType, type, JSON.stringify(event))
  assert.equal(event.schema, 'public')
  assert.equal(event.table, table)
  assert.match(event.commit_timestamp, COMMIT_TIMESTAMP)
  assert.equal(event.errors, null)
  if (type === 'INSERT') assert.deepEqual(event.old, {}, `INSERT has no old: ${JSON.stringify(event)}`)
  if (type === 'DELETE') assert.deepEqual(event.new, {}, `DELETE has no new: ${JSON.stringify(event)}`)
}

/** Matches an event by type and the id of its row (new for INSERT/UPDATE, old for DELETE). */
export const about = (type, id, table) => (e) =>
  e.eventType === type && (table === undefined || e.table === table) && (type === 'DELETE' ? e.old.id : e.new.id) === id

/** Every id an event mentions (new or old). */
export const idsOf = (e) => [e.new?.id, e.old?.id].filter(Boolean)
