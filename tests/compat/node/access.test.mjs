// The access rules as supabase-js sees them: private rows are simply absent for other reps,
// foreign rows cannot be changed, and a client that never signed in (anon key) sees nothing.
import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { env, fails, newClient, ok, signIn, sorted, tag } from './env.mjs'

const TABLES = ['staff', 'platforms', 'companies', 'contacts', 'deals', 'activities', 'interactions']
const t = tag()
let repA
let repB
let manager
let admin
let privateDeal
let teamDeal

before(async () => {
  ;[repA, repB, manager, admin] = await Promise.all(['rep_a', 'rep_b', 'manager', 'admin'].map(signIn))
  ;[privateDeal, teamDeal] = ok(
    await repA.client
      .from('deals')
      .insert([
        { title: `Private ${t}`, amount: 100, visibility: 'private' },
        { title: `Team ${t}`, amount: 200, visibility: 'team' },
      ])
      .select(),
  )
  // At least one row in every table, so that "anon sees nothing" means something.
  const platform = ok(await admin.client.from('platforms').insert({ name: `Web ${t}` }).select().single())
  const company = ok(await repA.client.from('companies').insert({ name: `Anon Co ${t}` }).select().single())
  const contact = ok(await repA.client.from('contacts').insert({ first_name: 'Pat', last_name: t, company_id: company.id }).select().single())
  ok(await repA.client.from('activities').insert({ subject: `Private follow-up ${t}`, deal_id: privateDeal.id }))
  ok(await repA.client.from('activities').insert({ subject: `Team follow-up ${t}`, deal_id: teamDeal.id }))
  ok(await repA.client.from('interactions').insert({ contact_id: contact.id, platform_id: platform.id, summary: t }))
})

const myDeals = (client) => client.from('deals').select('id, title').like('title', `% ${t}`).order('title')

test('rep A (owner), the manager and the admin see the private deal', async () => {
  for (const who of [repA, manager, admin]) {
    assert.deepEqual(sorted(ok(await myDeals(who.client)), 'title'), [`Private ${t}`, `Team ${t}`])
  }
  const own = ok(await repA.client.from('deals').select('title, owner_id').eq('id', privateDeal.id).single())
  assert.deepEqual(own, { title: `Private ${t}`, owner_id: repA.staff.id })
})

test("rep B cannot read rep A's private deal: absent from lists, PGRST116 by id", async () => {
  assert.deepEqual(ok(await myDeals(repB.client)), [{ id: teamDeal.id, title: `Team ${t}` }])
  fails(await repB.client.from('deals').select('*').eq('id', privateDeal.id).single(), 'PGRST116', 406)
  const maybe = await repB.client.from('deals').select('*').eq('id', privateDeal.id).maybeSingle()
  assert.equal(maybe.error, null)
  assert.equal(maybe.data, null)
  const count = await repB.client.from('deals').select('*', { count: 'exact', head: true }).like('title', `% ${t}`)
  assert.equal(count.count, 1)
  // Children of the hidden deal are hidden too, and embedding never leaks it.
  const activities = ok(await repB.client.from('activities').select('subject, deal:deals(title)').like('subject', `% ${t}`))
  assert.deepEqual(activities, [{ subject: `Team follow-up ${t}`, deal: { title: `Team ${t}` } }])
})

test("rep B cannot change or delete rep A's rows, nor create rows owned by rep A", async () => {
  const hijack = ok(await repB.client.from('deals').update({ title: 'hijacked' }).eq('id', teamDeal.id).select())
  assert.deepEqual(hijack, [])
  const removed = ok(await repB.client.from('deals').delete().eq('id', teamDeal.id).select())
  assert.deepEqual(removed, [])
  fails(await repB.client.from('deals').insert({ title: `Forged ${t}`, owner_id: repA.staff.id }), '42501', 403)
  const still = ok(await admin.client.from('deals').select('title, version').eq('id', teamDeal.id).single())
  assert.deepEqual(still, { title: `Team ${t}`, version: 1 })
  // The manager may change any CRM record.
  const managed = ok(await manager.client.from('deals').update({ stage: 'qualified' }).eq('id', teamDeal.id).select('stage, updated_by').single())
  assert.deepEqual(managed, { stage: 'qualified', updated_by: manager.staff.id })
})

test('a client that never signed in (anon key) sees [] on every table and cannot write', async () => {
  const service = newClient(env.serviceKey)
  const anon = newClient()
  for (const table of TABLES) {
    const all = await service.from(table).select('*', { count: 'exact', head: true })
    assert.equal(all.error, null)
    assert.ok(all.count > 0, `service_role sees no ${table}`)
    assert.deepEqual(ok(await anon.from(table).select('*'), `anon select ${table}`), [], table)
    const counted = await anon.from(table).select('*', { count: 'exact', head: true })
    assert.equal(counted.error, null)
    assert.equal(counted.count, 0, table)
  }
  fails(await anon.from('contacts').insert({ first_name: 'Anon' }), '42501', 401)
  fails(await anon.from('deals').delete().eq('id', teamDeal.id), '42501', 401)
  fails(await anon.from('deals').select('*').eq('id', teamDeal.id).single(), 'PGRST116', 406)
})
