// postgres_changes through the unmodified supabase-js: INSERT/UPDATE/DELETE on all 7 tables, the
// payload app code sees, filters, and writes made outside the server (psql / the sqlite3 module).
// Run by tests/compat/test_realtime_js.py (it provides WEXLOT_RT_CONTROL); registers no tests otherwise.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'

import { ok, signIn, tag } from './env.mjs'
import { TABLES, about, assertPayload, closeAll, enabled, idsOf, outside, signInRt, subscribe } from './realtime-support.mjs'

const t = tag()
let admin
let repA
let repB

if (enabled) {
  before(async () => {
    ;[admin, repA] = await Promise.all([signIn('admin'), signIn('rep_a')])
    repB = await signInRt('rep_b')
  })
  after(() => closeAll(repB?.client))

  test('INSERT, UPDATE and DELETE on all 7 tables reach rep B with the fields app code reads', async () => {
    const { feed } = await subscribe(
      repB.client,
      `all-tables-${t}`,
      TABLES.map((table) => ({ event: '*', schema: 'public', table })),
    )
    const write = async (who, table, row, change) => {
      const created = ok(await who.client.from(table).insert(row).select().single(), `insert ${table}`)
      const updated = ok(await who.client.from(table).update(change).eq('id', created.id).select().single(), `update ${table}`)
      return { created, updated }
    }
    const remove = async (who, table, id) => ok(await who.client.from(table).delete().eq('id', id), `delete ${table}`)

    // staff and platforms: only the admin writes them; every active staff member reads them.
    const staff = await write(admin, 'staff', { full_name: `RT Temp ${t}`, email: `rt-${t}@example.com`, role: 'rep' }, { title: 'Intern' })
    const platform = await write(admin, 'platforms', { name: `RT Fax ${t}`, kind: 'fax' }, { url: 'https://fax.example' })
    // The CRM tables: rep A owns the (team) rows.
    const company = await write(repA, 'companies', { name: `RT Co ${t}` }, { industry: 'Tools' })
    const contact = await write(repA, 'contacts', { first_name: 'Rita', last_name: t, tags: ['vip', 'west'], company_id: company.created.id }, { status: 'customer' })
    const deal = await write(repA, 'deals', { title: `RT Deal ${t}`, amount: 1234.5, contact_id: contact.created.id }, { stage: 'won' })
    const activity = await write(repA, 'activities', { subject: `RT Call ${t}`, deal_id: deal.created.id, completed: false }, { completed: true })
    const interaction = await write(
      repA, 'interactions',
      { contact_id: contact.created.id, platform_id: platform.created.id, kind: 'chat', direction: 'inbound', summary: t },
      { summary: `edited ${t}` },
    )
    await remove(repA, 'interactions', interaction.created.id)
    await remove(repA, 'activities', activity.created.id)
    await remove(repA, 'deals', deal.created.id)
    await remove(repA, 'contacts', contact.created.id)
    await remove(repA, 'companies', company.created.id)
    await remove(admin, 'platforms', platform.created.id)
    await remove(admin, 'staff', staff.created.id)

    const rows = { staff, platforms: platform, companies: company, contacts: contact, deals: deal, activities: activity, interactions: interaction }
    const changed = { staff: 'title', platforms: 'url', companies: 'industry', contacts: 'status', deals: 'stage', activities: 'completed', interactions: 'summary' }
    for (const table of TABLES) {
      const { created, updated } = rows[table]
      const ins = await feed.waitFor(about('INSERT', created.id, table), `INSERT on ${table}`)
      assertPayload(ins, table, 'INSERT')
      assert.deepEqual(ins.new, created, `${table}: INSERT new = the row REST returned`)
      assert.equal(ins.binding, TABLES.indexOf(table), `${table}: dispatched to its own binding`)

      const upd = await feed.waitFor(about('UPDATE', created.id, table), `UPDATE on ${table}`)
      assertPayload(upd, table, 'UPDATE')
      assert.deepEqual(upd.new, updated, `${table}: UPDATE new = the updated row`)
      assert.equal(upd.new.version, 2)
      assert.equal(upd.old.id, created.id)
      assert.equal(upd.old.version, 1, `${table}: old row (replica identity full) is version 1`)
      assert.deepEqual(upd.old[changed[table]], created[changed[table]], `${table}: old value of ${changed[table]}`)

      const del = await feed.waitFor(about('DELETE', created.id, table), `DELETE on ${table}`)
      assertPayload(del, table, 'DELETE')
      assert.equal(del.old.id, created.id)
      const order = [ins, upd, del].map((e) => feed.events.indexOf(e))
      assert.deepEqual(order, [...order].sort((x, y) => x - y), `${table}: events in commit order`)
      assert.ok(ins.commit_timestamp <= upd.commit_timestamp && upd.commit_timestamp <= del.commit_timestamp)
    }
    // Values arrive typed the way the REST API returns them.
    const ins = (table) => feed.events.find(about('INSERT', rows[table].created.id, table))
    assert.deepEqual(ins('contacts').new.tags, ['vip', 'west'])
    assert.equal(ins('deals').new.amount, 1234.5)
    assert.equal(ins('activities').new.completed, false)
    assert.equal(ins('staff').new.is_active, true)
    assert.equal(typeof ins('deals').new.probability, 'number')
    assert.equal(ins('contacts').new.owner_id, repA.staff.id)
    assert.equal(feed.events.filter((e) => e.eventType === 'UPDATE' && e.table === 'deals' && e.new.id === deal.created.id)[0].new.closed_at !== null, true)
    // Exactly the 21 changes were delivered for these rows, once each.
    const mine = new Set(Object.values(rows).map((r) => r.created.id))
    const delivered = feed.events.filter((e) => mine.has(e.new.id ?? e.old.id))
    assert.equal(delivered.length, 21, JSON.stringify(delivered.map((e) => `${e.table} ${e.eventType}`)))
  })

  test('filters: only matching changes reach each binding, moves into/out of a filter included', async () => {
    const { feed } = await subscribe(repB.client, `filters-${t}`, [
      { event: '*', schema: 'public', table: 'deals', filter: 'stage=eq.won' },
      { event: 'INSERT', schema: 'public', table: 'contacts', filter: `last_name=eq.${t}` },
      { event: 'DELETE', schema: 'public', table: 'deals' },
      { event: '*', schema: 'public', table: 'contacts', filter: 'status=in.(customer,prospect)' },
      { event: 'UPDATE', schema: 'public', table: 'deals', filter: `title=eq.Filter ${t}` },
    ])
    const deal = ok(await repA.client.from('deals').insert({ title: `Filter ${t}`, amount: 5 }).select().single())
    const other = ok(await repA.client.from('contacts').insert({ first_name: 'Other', last_name: `x${t}` }).select().single())
    const mine = ok(await repA.client.from('contacts').insert({ first_name: 'Mine', last_name: t }).select().single())
    ok(await repA.client.from('deals').update({ stage: 'won' }).eq('id', deal.id))
    ok(await repA.client.from('deals').update({ probability: 90 }).eq('id', deal.id))
    ok(await repA.client.from('contacts').update({ status: 'customer' }).eq('id', mine.id))
    ok(await repA.client.from('contacts').update({ status: 'prospect' }).eq('id', mine.id))
    ok(await repA.client.from('contacts').update({ status: 'churned' }).eq('id', mine.id))
    ok(await repA.client.from('deals').delete().eq('id', deal.id))

    const on = (binding) => feed.events.filter((e) => e.binding === binding && idsOf(e).some((id) => [deal.id, mine.id, other.id].includes(id)))
    const last = await feed.waitFor((e) => e.binding === 2 && e.old.id === deal.id, 'DELETE on the DELETE-only binding')
    assertPayload(last, 'deals', 'DELETE')
    await feed.waitFor((e) => e.binding === 0 && e.eventType === 'DELETE' && e.old.id === deal.id, 'DELETE of the won deal')
    // stage=eq.won: the update into "won" arrives as INSERT (the row enters the filter), then UPDATE, DELETE.
    assert.deepEqual(on(0).map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE'])
    assert.equal(on(0)[0].new.stage, 'won')
    assert.equal(on(0)[1].new.probability, 90)
    // INSERT-only with last_name=eq.<tag>: the one matching insert, no updates, not the other contact.
    assert.deepEqual(on(1).map((e) => [e.eventType, e.new.id]), [['INSERT', mine.id]])
    // DELETE-only without filter: just the delete.
    assert.deepEqual(on(2).map((e) => e.eventType), ['DELETE'])
    // status=in.(customer,prospect): enters (INSERT), changes within (UPDATE), leaves (DELETE, key only).
    assert.deepEqual(on(3).map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE'])
    assert.deepEqual(on(3)[2].old, { id: mine.id })
    // UPDATE-only with title=eq.<title>: every update of the deal (stage, probability), nothing else.
    assert.deepEqual(on(4).map((e) => [e.eventType, e.new.stage]), [['UPDATE', 'won'], ['UPDATE', 'won']])
    assert.equal(feed.events.filter((e) => idsOf(e).includes(other.id)).length, 0)
    ok(await repA.client.from('contacts').delete().in('id', [mine.id, other.id]))
  })

  test('writes made directly in the database (psql / sqlite3) reach the subscriber', async () => {
    const { feed } = await subscribe(repB.client, `outside-${t}`, [
      { event: '*', schema: 'public', table: 'contacts', filter: `last_name=eq.out${t}` },
      { event: '*', schema: 'public', table: 'deals' },
    ])
    const id = randomUUID()
    await outside('INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)', [id, 'Outside', `out${t}`])
    await outside('UPDATE contacts SET first_name = %s WHERE id = %s', ['Changed', id])
    await outside('DELETE FROM contacts WHERE id = %s', [id])
    const ins = await feed.waitFor(about('INSERT', id), 'outside INSERT')
    assertPayload(ins, 'contacts', 'INSERT')
    assert.equal(ins.new.first_name, 'Outside')
    assert.equal(ins.new.version, 1)
    assert.equal(ins.new.updated_by, null)
    assert.deepEqual(ins.new.tags, [])
    const upd = await feed.waitFor(about('UPDATE', id), 'outside UPDATE')
    assert.equal(upd.new.first_name, 'Changed')
    assert.equal(upd.new.version, 2, 'an outside update is re-stamped once: version 2')
    assert.equal(upd.old.first_name, 'Outside')
    const del = await feed.waitFor(about('DELETE', id), 'outside DELETE')
    assert.equal(del.old.id, id)
    assert.equal(feed.events.filter((e) => idsOf(e).includes(id)).length, 3, 'one event per outside statement')

    // An outside change of visibility moves rep A's deal out of rep B's view, and back in.
    const deal = ok(await repA.client.from('deals').insert({ title: `Outside deal ${t}`, amount: 3 }).select().single())
    await feed.waitFor(about('INSERT', deal.id), 'INSERT of the team deal')
    await outside('UPDATE deals SET visibility = %s WHERE id = %s', ['private', deal.id])
    const gone = await feed.waitFor(about('DELETE', deal.id), 'DELETE when made private from outside')
    assert.deepEqual(gone.old, { id: deal.id })
    await outside('UPDATE deals SET visibility = %s, title = %s WHERE id = %s', ['team', `Back ${t}`, deal.id])
    const back = await feed.waitFor((e) => about('INSERT', deal.id)(e) && e.new.title === `Back ${t}`, 'INSERT when made team from outside')
    assert.equal(back.new.version, 3)
    ok(await repA.client.from('deals').delete().eq('id', deal.id))
    await feed.waitFor(about('DELETE', deal.id), 'DELETE of the deal')
  })
}
