// Presence through the UNMODIFIED supabase-js realtime client: track → the other client's join and sync
// events and presenceState(); untrack → leave; a connection that goes away without untracking (a
// disconnect, and a process killed with SIGKILL) → the others get a leave, because the server drops
// the presence of a closed socket. Run by tests/compat/test_broadcast_presence_js.py.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

import { env, tag } from './env.mjs'

const WAIT_MS = 5000
const CHILD_READY_MS = 20_000 // a fresh node process: start, import supabase-js, join, track

async function makeClient(who) {
  const client = createClient(env.url, env.anonKey, { realtime: { transport: WebSocket } })
  if (who) {
    const user = env.users[who]
    const { error } = await client.auth.signInWithPassword({ email: user.email, password: user.password })
    assert.equal(error, null, `sign-in as ${who} failed: ${error?.message}`)
  }
  return client
}

function subscribed(channel, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${channel.topic}: not SUBSCRIBED within ${ms} ms`)), ms)
    channel.subscribe((status, err) => {
      clearTimeout(timer)
      if (status === 'SUBSCRIBED') resolve(channel)
      else reject(new Error(`${channel.topic}: ${status} ${err?.message ?? ''}`))
    })
  })
}

/** Waits (bounded) until `check()` returns something truthy; the message shows `state()` on failure. */
async function until(check, what, state, ms = WAIT_MS) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms; ${JSON.stringify(state())}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A channel with presence listeners recording every join/leave/sync event, keyed like realtime-js reports them. */
function watch(client, name, key) {
  const events = []
  const config = key === undefined ? {} : { presence: { key } }
  const channel = client
    .channel(name, { config })
    .on('presence', { event: 'sync' }, () => events.push({ event: 'sync' }))
    .on('presence', { event: 'join' }, ({ key: k, newPresences }) => events.push({ event: 'join', key: k, newPresences }))
    .on('presence', { event: 'leave' }, ({ key: k, leftPresences }) =>
      events.push({ event: 'leave', key: k, leftPresences }),
    )
  const state = () => ({ events, presenceState: channel.presenceState() })
  const joined = (predicate, what) =>
    until(() => events.find((e) => e.event === 'join' && predicate(e)), `join of ${what}`, state)
  const left = (predicate, what) =>
    until(() => events.find((e) => e.event === 'leave' && predicate(e)), `leave of ${what}`, state)
  return { channel, events, state, joined, left }
}

const metaOf = (presences, field, value) => presences.some((p) => p[field] === value)

let repA
let repB
const clients = []

before(async () => {
  ;[repA, repB] = await Promise.all([makeClient('rep_a'), makeClient('rep_b')])
  clients.push(repA, repB)
})

after(async () => {
  for (const client of clients) {
    await client.removeAllChannels()
    await client.realtime.disconnect()
  }
})

test('track → the other client gets join + sync and presenceState() shows both; untrack → leave', async () => {
  const name = `lobby-${tag()}`
  const a = watch(repA, name, `a-${name}`)
  const b = watch(repB, name, `b-${name}`)
  await subscribed(a.channel)
  const aOnline = new Date().toISOString()
  assert.equal(await a.channel.track({ online_at: aOnline, who: 'a' }), 'ok')
  await a.joined((e) => e.key === `a-${name}`, 'A itself') // the server's diff reaches the tracker too

  await subscribed(b.channel)
  // B's first sync comes from the presence_state sent after its join: A is already there.
  await b.joined((e) => e.key === `a-${name}` && metaOf(e.newPresences, 'online_at', aOnline), 'A (state)')
  const bOnline = new Date().toISOString()
  assert.equal(await b.channel.track({ online_at: bOnline, who: 'b' }), 'ok')
  const join = await a.joined((e) => e.key === `b-${name}`, 'B')
  assert.equal(join.newPresences.length, 1)
  assert.equal(join.newPresences[0].online_at, bOnline)
  assert.equal(join.newPresences[0].who, 'b')
  assert.equal(typeof join.newPresences[0].presence_ref, 'string')
  assert.ok(a.events.some((e) => e.event === 'sync'), 'A got no sync event')
  assert.ok(b.events.some((e) => e.event === 'sync'), 'B got no sync event')

  for (const watcher of [a, b]) {
    const state = await until(
      () => {
        const s = watcher.channel.presenceState()
        return Object.keys(s).length === 2 ? s : null
      },
      'presenceState with both keys',
      watcher.state,
    )
    assert.deepEqual(Object.keys(state).sort(), [`a-${name}`, `b-${name}`])
    assert.deepEqual(state[`a-${name}`].map((p) => [p.online_at, p.who]), [[aOnline, 'a']])
    assert.deepEqual(state[`b-${name}`].map((p) => [p.online_at, p.who]), [[bOnline, 'b']])
    for (const presences of Object.values(state)) {
      assert.ok(presences.every((p) => typeof p.presence_ref === 'string' && !('phx_ref' in p)))
    }
  }

  assert.equal(await b.channel.untrack(), 'ok')
  const leave = await a.left((e) => e.key === `b-${name}`, 'B after untrack')
  assert.equal(leave.leftPresences[0].online_at, bOnline)
  await until(() => !(`b-${name}` in a.channel.presenceState()), 'B gone from presenceState', a.state)
  assert.deepEqual(Object.keys(a.channel.presenceState()), [`a-${name}`])
})

test('a second track updates the meta: one presence under the key, the new payload', async () => {
  const name = `lobby-${tag()}`
  const a = watch(repA, name, `a-${name}`)
  const b = watch(repB, name, `b-${name}`)
  await Promise.all([subscribed(a.channel), subscribed(b.channel)])
  assert.equal(await b.channel.track({ status: 'online' }), 'ok')
  await a.joined((e) => e.key === `b-${name}` && metaOf(e.newPresences, 'status', 'online'), 'B online')
  assert.equal(await b.channel.track({ status: 'away' }), 'ok')
  await a.joined((e) => e.key === `b-${name}` && metaOf(e.newPresences, 'status', 'away'), 'B away')
  const state = await until(
    () => {
      const metas = a.channel.presenceState()[`b-${name}`]
      return metas?.length === 1 && metas[0].status === 'away' ? metas : null
    },
    'a single "away" meta for B',
    a.state,
  )
  assert.equal(state.length, 1)
})

test('a connection that goes away without untrack: disconnect() → leave for the others', async () => {
  const name = `lobby-${tag()}`
  const a = watch(repA, name, `a-${name}`)
  const gone = await makeClient('rep_b')
  const g = watch(gone, name, `gone-${name}`)
  await Promise.all([subscribed(a.channel), subscribed(g.channel)])
  assert.equal(await g.channel.track({ who: 'gone' }), 'ok')
  await a.joined((e) => e.key === `gone-${name}`, 'the leaving client')
  await gone.realtime.disconnect() // closes the socket; no untrack, no phx_leave
  const leave = await a.left((e) => e.key === `gone-${name}`, 'the disconnected client')
  assert.equal(leave.leftPresences[0].who, 'gone')
  assert.equal(a.channel.presenceState()[`gone-${name}`], undefined)
})

// The child joins with the anon key and a server-generated presence key, tracks, reports, then idles
// until it is killed; nothing in it gets a chance to say goodbye.
const CHILD = `
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'
const client = createClient(process.env.WEXLOT_URL, process.env.WEXLOT_ANON_KEY, { realtime: { transport: WebSocket } })
const channel = client.channel(process.env.CHANNEL_NAME)
channel.subscribe(async (status) => {
  if (status !== 'SUBSCRIBED') return
  const result = await channel.track({ who: process.env.CHILD_ID })
  process.stdout.write('TRACKED ' + result + '\\n')
})
setInterval(() => {}, 1000)
`

test('a process killed with SIGKILL: the server removes its presence and the others get a leave', async () => {
  const name = `lobby-${tag()}`
  const childId = `child-${tag()}`
  const a = watch(repA, name, `a-${name}`)
  await subscribed(a.channel)
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    env: { ...process.env, CHANNEL_NAME: name, CHILD_ID: childId },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  try {
    await until(() => output.includes('TRACKED'), 'TRACKED from the child', () => output, CHILD_READY_MS)
    assert.match(output, /TRACKED ok/)
    const join = await a.joined((e) => metaOf(e.newPresences, 'who', childId), 'the child')
    const exited = new Promise((resolve) => child.once('exit', resolve))
    assert.ok(child.kill('SIGKILL'))
    await exited
    const leave = await a.left((e) => metaOf(e.leftPresences, 'who', childId), 'the killed child')
    assert.equal(leave.key, join.key)
    assert.equal(a.channel.presenceState()[join.key], undefined)
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})
