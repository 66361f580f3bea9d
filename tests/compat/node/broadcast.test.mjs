// Broadcast through the UNMODIFIED supabase-js realtime client at vsn 2.0.0, where every send() is a
// binary kind-3 frame and binary payloads come back as kind-4 frames (JSON ones may come back as kind 4
// or as a JSON-array text frame: realtime-js decodes both). Covers self, ack, REST delivery (httpSend
// and the send()-before-subscribe fallback, both 202), the payload limit, and private channels: refused
// to the anon key, accepted for signed-in staff, separate from the public channel of the same name.
// Run by tests/compat/test_broadcast_presence_js.py, one live server per backend.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

import { env, tag } from './env.mjs'

const WAIT_MS = 5000 // longest wait for anything that should arrive
const QUIET_MS = 400 // how long "nothing arrives" is watched, after a later message proved delivery
const KIND_PUSH = 3
const KIND_BROADCAST = 4

/** A ws transport that records every frame (so a test can see binary kinds) and otherwise is plain ws. */
function recordingTransport(frames) {
  return class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args)
      this.on('message', (data, isBinary) => frames.push({ dir: 'in', binary: isBinary, data: Buffer.from(data) }))
    }

    send(data, ...rest) {
      const binary = typeof data !== 'string'
      frames.push({ dir: 'out', binary, data: binary ? Buffer.from(data) : data })
      return super.send(data, ...rest)
    }
  }
}

/** A client with a recording transport, a recording fetch and a recording logger; signed in when `who` is given. */
async function makeClient(who) {
  const frames = []
  const requests = []
  const logs = []
  const recordingFetch = async (input, init) => {
    const response = await fetch(input, init)
    const url = new URL(String(input?.url ?? input))
    requests.push({ path: url.pathname, query: url.searchParams, method: init?.method ?? 'GET', status: response.status })
    return response
  }
  const client = createClient(env.url, env.anonKey, {
    realtime: { transport: recordingTransport(frames), logger: (kind, msg) => logs.push(`${kind}: ${msg}`) },
    global: { fetch: recordingFetch },
  })
  if (who) {
    const user = env.users[who]
    const { error } = await client.auth.signInWithPassword({ email: user.email, password: user.password })
    assert.equal(error, null, `sign-in as ${who} failed: ${error?.message}`)
  }
  return { client, frames, requests, logs, who: who ?? 'anon' }
}

/** Resolves with the channel on SUBSCRIBED; rejects on anything else or after `ms`. */
function subscribed(channel, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${channel.topic}: not SUBSCRIBED within ${ms} ms`)), ms)
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') {
        clearTimeout(timer)
        resolve(channel)
      } else {
        clearTimeout(timer)
        reject(new Error(`${channel.topic}: ${status} ${err?.message ?? ''}`))
      }
    })
  })
}

/** The first subscribe status other than SUBSCRIBED, with its error (for joins that must fail). */
function subscribeFailure(channel, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${channel.topic}: no subscribe status within ${ms} ms`)), ms)
    channel.subscribe((status, err) => {
      clearTimeout(timer)
      if (status === 'SUBSCRIBED') reject(new Error(`${channel.topic}: SUBSCRIBED, expected a refusal`))
      else resolve({ status, err })
    })
  })
}

/** Collects callback arguments; waitFor/none are bounded. */
function inbox(name) {
  const items = []
  let wake = () => {}
  return {
    items,
    add: (item) => {
      items.push(item)
      wake()
    },
    async waitFor(predicate, what, ms = WAIT_MS) {
      const deadline = Date.now() + ms
      for (;;) {
        const found = items.find(predicate)
        if (found) return found
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`${name}: no ${what} within ${ms} ms; got ${JSON.stringify(items)}`)
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, left)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
      }
    },
    async none(predicate, what, ms = QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, ms))
      const found = items.filter(predicate)
      assert.deepEqual(found, [], `${name}: unexpected ${what}`)
    },
  }
}

/** A channel whose broadcasts (any event) land in an inbox. */
function listen(who, name, config = {}) {
  const box = inbox(`${who.who} on ${name}`)
  const channel = who.client.channel(name, { config }).on('broadcast', { event: '*' }, (message) => box.add(message))
  return { channel, box }
}

const kindOf = (frame) => (frame.binary ? frame.data[0] : null)
const ofEvent = (event) => (m) => m.event === event

/** Is this received frame a broadcast of `event` on `realtime:<name>` (kind 4, or a 2.0.0 JSON-array text)? */
function isDelivery(frame, name, event) {
  const topic = `realtime:${name}`
  if (frame.binary) {
    const [kind, topicLen, eventLen] = frame.data
    return (
      kind === KIND_BROADCAST &&
      frame.data.subarray(5, 5 + topicLen).toString() === topic &&
      frame.data.subarray(5 + topicLen, 5 + topicLen + eventLen).toString() === event
    )
  }
  const text = JSON.parse(frame.data.toString())
  return Array.isArray(text) && text[2] === topic && text[3] === 'broadcast' && text[4]?.event === event
}

let repA
let repB
let anon
const clients = []

before(async () => {
  ;[repA, repB, anon] = await Promise.all([makeClient('rep_a'), makeClient('rep_b'), makeClient()])
  clients.push(repA, repB, anon)
})

after(async () => {
  for (const { client } of clients) {
    await client.removeAllChannels()
    await client.realtime.disconnect()
  }
})

test('send() with self+ack: resolves ok, the sender gets its own message and so does the other client', async (t) => {
  const name = `room1-${tag()}`
  const a = listen(repA, name, { broadcast: { self: true, ack: true } })
  const b = listen(repB, name)
  await Promise.all([subscribed(a.channel), subscribed(b.channel)])
  assert.equal(repA.client.realtime.vsn, '2.0.0')

  const payload = { text: 'hello', n: 1, nested: { ok: true, list: [1, 'two'] } }
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'ping', payload }), 'ok')
  const own = await a.box.waitFor(ofEvent('ping'), 'own ping (self: true)')
  const other = await b.box.waitFor(ofEvent('ping'), 'ping from rep A')
  for (const message of [own, other]) {
    assert.equal(message.type, 'broadcast')
    assert.deepEqual(message.payload, payload)
  }

  // On the wire: the push was a binary kind-3 frame for this topic; each delivery came in a form
  // realtime-js 2.0.0 decodes (a kind-4 frame or a JSON-array text frame), never another binary kind.
  const pushes = repA.frames.filter((f) => f.dir === 'out' && kindOf(f) === KIND_PUSH)
  assert.ok(pushes.some((f) => f.data.includes(Buffer.from(`realtime:${name}`))), 'no kind-3 push for the topic')
  for (const who of [repA, repB]) {
    const delivery = who.frames.find((f) => f.dir === 'in' && isDelivery(f, name, 'ping'))
    assert.ok(delivery, `${who.who}: no broadcast frame for ping`)
    t.diagnostic(`${who.who} received the JSON broadcast as ${delivery.binary ? 'binary kind 4' : 'a text array'}`)
    const wrongKinds = who.frames.filter((f) => f.dir === 'in' && f.binary && kindOf(f) !== KIND_BROADCAST)
    assert.deepEqual(wrongKinds.map(kindOf), [], `${who.who} got binary kinds realtime-js cannot decode`)
  }
})

test('a binary payload (ArrayBuffer) travels as kind 3 and is delivered as kind 4 with the same bytes', async () => {
  const name = `room1-${tag()}`
  const a = listen(repA, name, { broadcast: { ack: true } })
  const b = listen(repB, name)
  await Promise.all([subscribed(a.channel), subscribed(b.channel)])
  const bytes = Uint8Array.from([0, 1, 2, 250, 255, 10, 13])
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'bin', payload: bytes.buffer }), 'ok')
  const message = await b.box.waitFor(ofEvent('bin'), 'binary broadcast')
  assert.ok(message.payload instanceof ArrayBuffer, `payload is ${Object.prototype.toString.call(message.payload)}`)
  assert.deepEqual([...new Uint8Array(message.payload)], [...bytes])
  const frame = repB.frames.find((f) => f.dir === 'in' && f.binary && isDelivery(f, name, 'bin'))
  assert.ok(frame, 'no kind-4 frame for the binary broadcast')
  assert.equal(frame.data[4], 0, 'kind-4 encoding byte should be 0 (raw bytes)')
})

test('self:false: the sender does not get its own message, the other client does', async () => {
  const name = `room1-${tag()}`
  const a = listen(repA, name, { broadcast: { self: false, ack: true } })
  const b = listen(repB, name, { broadcast: { self: false } })
  await Promise.all([subscribed(a.channel), subscribed(b.channel)])
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'quiet', payload: { n: 1 } }), 'ok')
  await b.box.waitFor(ofEvent('quiet'), 'quiet from rep A')
  // B answers (ack false: resolves at once); A getting that reply proves A's socket delivers, so the
  // absence of A's own message is meaningful.
  assert.equal(await b.channel.send({ type: 'broadcast', event: 'reply', payload: { n: 2 } }), 'ok')
  await a.box.waitFor(ofEvent('reply'), 'reply from rep B')
  await b.box.none(ofEvent('reply'), 'own reply (self: false)')
  await a.box.none(ofEvent('quiet'), 'own message (self: false)')
})

test('httpSend() delivers to subscribers with 202; the anon key may not broadcast', async () => {
  const name = `room1-${tag()}`
  const b = listen(repB, name)
  await subscribed(b.channel)
  const sender = repA.client.channel(name) // never subscribed: httpSend needs no socket
  assert.deepEqual(await sender.httpSend('http-ping', { via: 'httpSend', n: 7 }), { success: true })
  const message = await b.box.waitFor(ofEvent('http-ping'), 'http-ping')
  assert.deepEqual(message.payload, { via: 'httpSend', n: 7 })
  const single = repA.requests.filter((r) => r.path === `/realtime/v1/api/broadcast/${name}/events/http-ping`)
  assert.deepEqual(single.map((r) => [r.method, r.status]), [['POST', 202]])

  const anonSender = anon.client.channel(name)
  await assert.rejects(anonSender.httpSend('anon-ping', { n: 0 }), /Unauthorized/)
  await b.box.none(ofEvent('anon-ping'), 'a broadcast sent with the anon key')
  await repA.client.removeChannel(sender)
  await anon.client.removeChannel(anonSender)
})

test('send() before subscribing falls back to REST (POST /api/broadcast, 202) and is delivered', async () => {
  const name = `room1-${tag()}`
  const b = listen(repB, name)
  await subscribed(b.channel)
  const sender = repA.client.channel(name)
  assert.equal(await sender.send({ type: 'broadcast', event: 'fallback', payload: { via: 'rest' } }), 'ok')
  const message = await b.box.waitFor(ofEvent('fallback'), 'fallback')
  assert.deepEqual(message.payload, { via: 'rest' })
  const batch = repA.requests.filter((r) => r.path === '/realtime/v1/api/broadcast')
  assert.deepEqual(batch.map((r) => [r.method, r.status]), [['POST', 202]])
  assert.ok(repA.logs.some((line) => line.includes('falling back to REST')), 'the client did not use its REST fallback')
  await repA.client.removeChannel(sender)
})

test('a payload over the size limit: send() with ack resolves error, nobody gets it, the channel stays usable', async () => {
  const name = `room1-${tag()}`
  const a = listen(repA, name, { broadcast: { self: true, ack: true } })
  const b = listen(repB, name)
  await Promise.all([subscribed(a.channel), subscribed(b.channel)])
  const big = { blob: 'x'.repeat(3_100 * 1024) } // the server's default limit is 3,000 KB
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'big', payload: big }), 'error')
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'small', payload: { n: 1 } }), 'ok')
  await b.box.waitFor(ofEvent('small'), 'small after big')
  await a.box.waitFor(ofEvent('small'), 'own small after big')
  assert.equal(b.box.items.filter(ofEvent('big')).length, 0, 'the oversize broadcast was delivered')
  assert.equal(a.box.items.filter(ofEvent('big')).length, 0, 'the oversize broadcast was echoed')
})

test('private channel: refused for the anon key with the Unauthorized reason, accepted for signed-in staff', async () => {
  const name = `private-${tag()}`
  const refused = anon.client.channel(name, { config: { private: true } })
  const { status, err } = await subscribeFailure(refused)
  assert.equal(status, 'CHANNEL_ERROR')
  assert.equal(err?.message, `Unauthorized: You do not have permissions to read from this Channel topic: ${name}`)
  await anon.client.removeChannel(refused) // stops the client's automatic rejoin loop

  // Staff: the documented `await realtime.setAuth()` puts the user's token into the first join.
  await repA.client.realtime.setAuth()
  await repB.client.realtime.setAuth()
  const a = listen(repA, name, { private: true, broadcast: { ack: true } })
  const b = listen(repB, name, { private: true })
  const outsider = listen(anon, name, { broadcast: { self: true, ack: true } }) // public channel, same name
  await Promise.all([subscribed(a.channel), subscribed(b.channel), subscribed(outsider.channel)])
  assert.equal(await a.channel.send({ type: 'broadcast', event: 'secret', payload: { n: 1 } }), 'ok')
  await b.box.waitFor(ofEvent('secret'), 'secret (private) from rep A')
  assert.deepEqual(await a.channel.httpSend('secret-http', { n: 2 }), { success: true })
  await b.box.waitFor(ofEvent('secret-http'), 'secret-http (private) from rep A')
  const privateSend = repA.requests.filter((r) => r.path === `/realtime/v1/api/broadcast/${name}/events/secret-http`)
  assert.deepEqual(privateSend.map((r) => [r.query.get('private'), r.status]), [['true', 202]])
  // The public channel of the same name is another channel: its own message comes back (so it is
  // live), the private ones never reach it, and its message never reaches the private members.
  assert.equal(await outsider.channel.send({ type: 'broadcast', event: 'public', payload: {} }), 'ok')
  await outsider.box.waitFor(ofEvent('public'), 'own public broadcast')
  await outsider.box.none((m) => m.event.startsWith('secret'), 'a private broadcast on the public channel')
  await b.box.none(ofEvent('public'), 'a public broadcast on the private channel')
})
