// Who receives what, through the unmodified supabase-js: a rep never receives another rep's private
// deal; rows moved out of / into a rep's view arrive as DELETE / INSERT, children of a parent made
// private too; a client that never signed in receives nothing; token refresh keeps delivery going.
// Run by tests/compat/test_realtime_js.py (it provides WEXLOT_RT_CONTROL); registers no tests otherwise.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { env, ok, signIn, tag } from './env.mjs'
import { randomUUID } from 'node:crypto'

import {
  about, assertPayload, closeAll, enabled, idsOf, outsideTransaction, rtClient, signInRt, sleep, subscribe,
} from './realtime-support.mjs'

const t = tag()
const WATCHED = ['deals', 'activities', 'interactions', 'contacts', 'companies']
const everything = WATCHED.map((table) => ({ event: '*', schema: 'public', table }))
let repA
let repB
let manager
let anon
const bFrames = []

if (enabled) {
  before(async () => {
    ;[repA, repB, manager] = await Promise.all([signInRt('rep_a'), signInRt('rep_b', { frames: bFrames }), signInRt('manager')])
    anon = rtClient()
  })
  after(() => closeAll(repA?.client, repB?.client, manager?.client, anon))

  test("private rows: rep B never receives rep A's private deal; moves out of and into view; children follow", async () => {
    const [b, m, a, nobody] = await Promise.all([
      subscribe(repB.client, `access-b-${t}`, everything),
      subscribe(manager.client, `access-m-${t}`, everything),
      subscribe(repA.client, `access-a-${t}`, [{ event: '*', schema: 'public', table: 'deals' }]),
      subscribe(anon, `access-anon-${t}`, everything),
    ])
    const insert = async (table, row) => ok(await repA.client.from(table).insert(row).select().single(), `insert ${table}`)
    const update = async (table, id, change) => ok(await repA.client.from(table).update(change).eq('id', id), `update ${table}`)

    const secret = await insert('deals', { title: `Secret ${t}`, amount: 1, visibility: 'private' })
    const secretTask = await insert('activities', { subject: `Secret task ${t}`, deal_id: secret.id })
    const shared = await insert('deals', { title: `Shared ${t}`, amount: 2 })
    const sharedTask = await insert('activities', { subject: `Shared task ${t}`, deal_id: shared.id })
    const contact = await insert('contacts', { first_name: 'Cleo', last_name: t })
    const platform = ok(await (await signIn('admin')).client.from('platforms').insert({ name: `RT Access ${t}` }).select().single())
    const note = await insert('interactions', { contact_id: contact.id, platform_id: platform.id, kind: 'call', direction: 'outbound' })
    const company = await insert('companies', { name: `Access Co ${t}` })
    const companyTask = await insert('activities', { subject: `Company task ${t}`, company_id: company.id })
    await update('deals', secret.id, { title: `Secret renamed ${t}` })

    // The owner and the manager see the private deal and its activity; B sees the team ones.
    await a.feed.waitFor(about('INSERT', secret.id), 'owner: INSERT of the private deal')
    await a.feed.waitFor(about('UPDATE', secret.id), 'owner: UPDATE of the private deal')
    await m.feed.waitFor(about('INSERT', secret.id), 'manager: INSERT of the private deal')
    await m.feed.waitFor(about('INSERT', secretTask.id), "manager: INSERT of the private deal's activity")
    await b.feed.waitFor(about('INSERT', shared.id), 'B: INSERT of the team deal')
    await b.feed.waitFor(about('INSERT', sharedTask.id), "B: INSERT of the team deal's activity")
    await b.feed.waitFor(about('INSERT', note.id), 'B: INSERT of the interaction')
    await b.feed.waitFor(about('INSERT', companyTask.id), "B: INSERT of the company's activity")

    // Made private: B is told the deal and its activity are gone (DELETE, old = the key only).
    await update('deals', shared.id, { visibility: 'private' })
    const gone = await b.feed.waitFor(about('DELETE', shared.id), 'B: DELETE when the deal is made private')
    assertPayload(gone, 'deals', 'DELETE')
    assert.deepEqual(gone.old, { id: shared.id })
    const goneTask = await b.feed.waitFor(about('DELETE', sharedTask.id), "B: DELETE of the now-private deal's activity")
    assertPayload(goneTask, 'activities', 'DELETE')
    assert.deepEqual(goneTask.old, { id: sharedTask.id })
    // Hidden while private: B hears nothing about edits of the deal or of its activity.
    await update('activities', sharedTask.id, { subject: `Hidden edit ${t}` })
    await update('deals', shared.id, { amount: 3 })
    await m.feed.waitFor((e) => about('UPDATE', sharedTask.id)(e) && e.new.subject === `Hidden edit ${t}`, 'manager: hidden edit')
    await m.feed.waitFor((e) => about('UPDATE', shared.id)(e) && e.new.amount === 3, 'manager: hidden amount')
    // Made team again: INSERT with the current row, for the deal and for its activity.
    await update('deals', shared.id, { visibility: 'team' })
    const back = await b.feed.waitFor((e) => about('INSERT', shared.id)(e) && e.new.version > 1, 'B: INSERT when made team')
    assert.equal(back.new.amount, 3)
    assert.equal(back.new.version, 4)
    const backTask = await b.feed.waitFor((e) => about('INSERT', sharedTask.id)(e) && e.new.subject === `Hidden edit ${t}`, 'B: INSERT of the activity')
    assert.equal(backTask.new.version, 2)

    // Other parents: a contact made private hides its interactions, a company its activities.
    await update('contacts', contact.id, { visibility: 'private' })
    await update('companies', company.id, { visibility: 'private' })
    assert.deepEqual((await b.feed.waitFor(about('DELETE', note.id), 'B: DELETE of the interaction')).old, { id: note.id })
    assert.deepEqual((await b.feed.waitFor(about('DELETE', companyTask.id), "B: DELETE of the company's activity")).old, { id: companyTask.id })
    await b.feed.waitFor(about('DELETE', contact.id), 'B: DELETE of the contact')

    // A last team write as a barrier, then: nothing about the private deal or its activity ever reached B,
    // nothing about hidden rows while hidden, and the anon client received nothing at all.
    const barrier = await insert('deals', { title: `Barrier ${t}`, amount: 4 })
    await b.feed.waitFor(about('INSERT', barrier.id), 'B: barrier')
    const leaked = b.feed.events.filter((e) => idsOf(e).includes(secret.id))
    assert.deepEqual(leaked, [], "B received an event about rep A's private deal")
    const leakedChild = b.feed.events.filter((e) => idsOf(e).includes(secretTask.id))
    assert.deepEqual(leakedChild, [], "B received an event about the activity of rep A's private deal (never visible to B)")
    const whileHidden = b.feed.events.filter((e) => e.eventType === 'UPDATE' && [shared.id, sharedTask.id].includes(e.new.id))
    assert.deepEqual(whileHidden, [], 'B received updates of rows hidden from it')
    assert.deepEqual(
      b.feed.events.filter((e) => idsOf(e).includes(shared.id)).map((e) => e.eventType),
      ['INSERT', 'DELETE', 'INSERT'],
    )
    await nobody.feed.none(() => true, 'event for a client that never signed in', 300)

    for (const [table, row] of [['activities', sharedTask], ['activities', secretTask], ['activities', companyTask],
      ['interactions', note], ['deals', shared], ['deals', secret], ['deals', barrier], ['contacts', contact], ['companies', company]]) {
      ok(await repA.client.from(table).delete().eq('id', row.id), `clean up ${table}`)
    }
  })

  test('a private deal and its activity committed in one transaction: rep B hears nothing about either', async () => {
    const { feed } = await subscribe(repB.client, `one-txn-b-${t}`, everything)
    const m = await subscribe(manager.client, `one-txn-m-${t}`, everything)
    const deal = randomUUID()
    const task = randomUUID()
    await outsideTransaction(
      ['INSERT INTO deals (id, title, owner_id, visibility) VALUES (%s, %s, %s, %s)', [deal, `One txn ${t}`, repA.staff.id, 'private']],
      ['INSERT INTO activities (id, subject, deal_id, owner_id) VALUES (%s, %s, %s, %s)', [task, `One txn task ${t}`, deal, repA.staff.id]],
    )
    await m.feed.waitFor(about('INSERT', task), 'manager: INSERT of the activity')
    const barrier = ok(await repA.client.from('deals').insert({ title: `Barrier 2 ${t}`, amount: 1 }).select().single())
    await feed.waitFor(about('INSERT', barrier.id), 'B: barrier')
    const heard = feed.events.filter((e) => idsOf(e).some((id) => [deal, task].includes(id)))
    assert.deepEqual(heard, [], 'B received events about a private deal / its activity it never could read')
    for (const [table, id] of [['activities', task], ['deals', deal], ['deals', barrier.id]]) {
      ok(await repA.client.from(table).delete().eq('id', id), `clean up ${table}`)
    }
  })

  test('token refresh: the new token is pushed in-band and delivery carries on', async () => {
    const joinFrame = bFrames.find((f) => f.kind === 'push' && f.msg.includes(`access-b-${t} phx_join`))
    assert.ok(joinFrame, 'the join was logged')
    assert.equal(joinFrame.data.access_token, repB.session.access_token, 'setAuth() before subscribing: the join carries the token')

    const { feed } = await subscribe(repB.client, `refresh-${t}`, [{ event: '*', schema: 'public', table: 'contacts', filter: `last_name=eq.r${t}` }])
    const first = ok(await repA.client.from('contacts').insert({ first_name: 'Before', last_name: `r${t}` }).select().single())
    await feed.waitFor(about('INSERT', first.id), 'INSERT before the refresh')

    await sleep(1100) // iat has one-second resolution: the refreshed token must differ
    const { data, error } = await repB.client.auth.refreshSession()
    assert.equal(error, null)
    const fresh = data.session.access_token
    assert.notEqual(fresh, repB.session.access_token)
    const pushed = async () => {
      for (let i = 0; i < 50; i++) {
        const frame = bFrames.find((f) => f.kind === 'push' && f.msg.includes(`refresh-${t} access_token`) && f.data.access_token === fresh)
        if (frame) return frame
        await sleep(100)
      }
      assert.fail(`no access_token push with the refreshed token: ${JSON.stringify(bFrames.filter((f) => f.kind === 'push').map((f) => f.msg))}`)
    }
    await pushed()
    await sleep(200)
    const second = ok(await repA.client.from('contacts').insert({ first_name: 'After', last_name: `r${t}` }).select().single())
    const got = await feed.waitFor(about('INSERT', second.id), 'INSERT after the refresh')
    assert.equal(got.new.first_name, 'After')
    // The refreshed session works for catch-up too (same authorization as the live stream).
    const since = 0
    const response = await fetch(`${env.url}/realtime/v1/api/changes?since=${since}&tables=contacts&limit=5000`, {
      headers: { apikey: env.anonKey, Authorization: `Bearer ${fresh}` },
    })
    assert.equal(response.status, 200, await response.clone().text())
    const body = await response.json()
    assert.ok(body.changes.some((c) => c.type === 'INSERT' && c.record.id === second.id), 'catch-up lists the insert')
    ok(await repA.client.from('contacts').delete().in('id', [first.id, second.id]))
  })
}
