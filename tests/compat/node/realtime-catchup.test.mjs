// Catch-up must bring what the live stream brought for the same positions — here for the rows whose
// visibility depends on a parent: activities of a deal and interactions of a contact that is made
// private (they leave rep B's view) or team (they enter it). Uses the unmodified supabase-js for the
// live side and GET /realtime/v1/api/changes?since=<checkpoint> for the catch-up side.
// Run by tests/compat/test_realtime_js.py (it provides WEXLOT_RT_CONTROL); registers no tests otherwise.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { env, ok, tag } from './env.mjs'
import { closeAll, enabled, signInRt, sleep } from './realtime-support.mjs'

const t = tag()

if (enabled) {
  test('catch-up replays what the live stream delivered: children of a parent made private or team', async () => {
    const repA = await signInRt('rep_a')
    const viewer = await signInRt('rep_b', { params: { checkpoints: '1' } })
    try {
      const insert = async (table, row) => ok(await repA.client.from(table).insert(row).select().single(), `insert ${table}`)
      // Before rep B subscribes: a team deal with an activity (B has both), a private deal with an
      // activity (B has neither), a team contact with an interaction (B has both).
      const platform = ok(await viewer.client.from('platforms').select('id').limit(1), 'a platform')[0]
      const teamDeal = await insert('deals', { title: `Team ${t}`, amount: 1 })
      const teamTask = await insert('activities', { subject: `Team task ${t}`, deal_id: teamDeal.id })
      const privDeal = await insert('deals', { title: `Private ${t}`, amount: 2, visibility: 'private' })
      const privTask = await insert('activities', { subject: `Private task ${t}`, deal_id: privDeal.id })
      const contact = await insert('contacts', { first_name: 'Cy', last_name: `c${t}` })
      const note = await insert('interactions', { contact_id: contact.id, platform_id: platform?.id ?? null, kind: 'call', direction: 'inbound' })

      const live = []
      const positions = [] // [position, live events received before it]
      const tables = ['deals', 'activities', 'contacts', 'interactions']
      let channel = viewer.client.channel(`children-${t}`)
      for (const table of tables) {
        channel = channel.on('postgres_changes', { event: '*', schema: 'public', table }, (p) => live.push(p))
      }
      channel = channel.on('broadcast', { event: 'position' }, ({ payload }) => positions.push([payload.position, live.length]))
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('not SUBSCRIBED')), 15_000)
        channel.subscribe((status) => { if (status === 'SUBSCRIBED') { clearTimeout(timer); resolve() } })
      })
      const waitLive = async (id) => {
        for (let i = 0; !live.some((e) => e.new.id === id) && i < 200; i++) await sleep(50)
        const at = live.findIndex((e) => e.new.id === id)
        assert.ok(at >= 0, `live INSERT of ${id}`)
        return at
      }
      // A first barrier: everything before it is delivered (the stream may lag behind the commits);
      // the checkpoint right after its event is where a client that drops now would resume from.
      const start = await waitLive((await insert('deals', { title: `Start ${t}`, amount: 0 })).id)
      for (let i = 0; !positions.some(([, seen]) => seen > start) && i < 100; i++) await sleep(50)
      const [since] = positions.find(([, seen]) => seen > start)
      assert.ok(Number.isInteger(since), 'a checkpoint after the first barrier')

      // Then the team deal and the contact are made private, the private deal team.
      ok(await repA.client.from('deals').update({ visibility: 'private' }).eq('id', teamDeal.id))
      ok(await repA.client.from('deals').update({ visibility: 'team' }).eq('id', privDeal.id))
      ok(await repA.client.from('contacts').update({ visibility: 'private' }).eq('id', contact.id))
      const barrier = await insert('deals', { title: `Barrier ${t}`, amount: 3 })
      await waitLive(barrier.id)
      const key = (type, table, id) => `${type} ${table} ${id}`
      const mine = new Set([teamDeal, teamTask, privDeal, privTask, contact, note, barrier].map((r) => r.id))
      const liveEvents = live.slice(start + 1)
        .map((e) => key(e.eventType, e.table, e.eventType === 'DELETE' ? e.old.id : e.new.id))
        .filter((k) => mine.has(k.split(' ')[2]))
      assert.deepEqual(liveEvents, [
        key('DELETE', 'deals', teamDeal.id), key('DELETE', 'activities', teamTask.id),
        key('INSERT', 'deals', privDeal.id), key('INSERT', 'activities', privTask.id),
        key('DELETE', 'contacts', contact.id), key('DELETE', 'interactions', note.id),
        key('INSERT', 'deals', barrier.id),
      ], 'the live stream')

      // A client that lost its connection right after `since` asks for the same range.
      const { data } = await viewer.client.auth.getSession()
      const response = await fetch(`${env.url}/realtime/v1/api/changes?since=${since}&tables=${tables.join(',')}`, {
        headers: { apikey: env.anonKey, Authorization: `Bearer ${data.session.access_token}` },
      })
      assert.equal(response.status, 200)
      const body = await response.json()
      const caughtUp = body.changes
        .map((c) => key(c.type, c.table, c.type === 'DELETE' ? c.old_record.id : c.record.id))
        .filter((k) => mine.has(k.split(' ')[2]))
      assert.deepEqual(caughtUp, liveEvents, 'catch-up must bring what the live stream brought for the same positions')
    } finally {
      await closeAll(viewer.client, repA.client)
    }
  })
}
