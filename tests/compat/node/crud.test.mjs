// Create / read / update / delete on all 7 tables through supabase-js with user tokens:
// staff and platforms as the admin (only admins write them), the CRM tables as a rep who owns the rows.
import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { UUID, ok, signIn, tag } from './env.mjs'

let admin
let rep
const t = tag()

before(async () => {
  admin = await signIn('admin')
  rep = await signIn('rep_a')
})

/** insert → select by id → update → delete → gone, as `who`; returns the inserted row. */
async function crud(who, table, row, change) {
  const { client, staff } = who
  const inserted = await client.from(table).insert(row).select().single()
  const created = ok(inserted, `insert into ${table}`)
  assert.equal(inserted.status, 201)
  assert.match(created.id, UUID)
  assert.equal(created.version, 1)
  for (const [key, value] of Object.entries(row)) assert.deepEqual(created[key], value, `${table}.${key}`)

  const read = ok(await client.from(table).select('*').eq('id', created.id).single(), `read ${table}`)
  assert.deepEqual(read, created)

  const updated = ok(
    await client.from(table).update(change).eq('id', created.id).select().single(),
    `update ${table}`,
  )
  for (const [key, value] of Object.entries(change)) assert.deepEqual(updated[key], value, `${table}.${key}`)
  assert.equal(updated.version, 2)
  assert.equal(updated.updated_by, staff.id)
  assert.ok(updated.updated_at >= created.updated_at)

  // Without .select() the client asks for no representation: data is null, status 204.
  const minimal = await client.from(table).update(change).eq('id', created.id)
  assert.equal(minimal.error, null)
  assert.equal(minimal.data, null)
  assert.equal(minimal.status, 204)

  const deleted = ok(await client.from(table).delete().eq('id', created.id).select('id'), `delete from ${table}`)
  assert.deepEqual(deleted, [{ id: created.id }])
  assert.equal(ok(await client.from(table).select('id').eq('id', created.id).maybeSingle()), null)
  return created
}

test('staff: an admin creates, reads, updates and deletes a staff row', async () => {
  const row = { full_name: `Temp ${t}`, email: `temp-${t}@example.com`, role: 'rep', title: null }
  const created = await crud(admin, 'staff', row, { title: 'Intern', phone: '+1 555 0100' })
  assert.equal(created.is_active, true)
  assert.equal(created.user_id, null)
})

test('platforms: an admin creates, reads, updates and deletes a platform', async () => {
  await crud(admin, 'platforms', { name: `Fax ${t}`, kind: 'fax', url: null }, { url: 'https://fax.example', is_active: false })
})

test('companies, contacts, deals, activities, interactions: a rep works on their own records', async () => {
  const platform = ok(await admin.client.from('platforms').insert({ name: `Chat ${t}` }).select().single())
  const parents = async (table, row) =>
    ok(await rep.client.from(table).insert(row).select().single(), `insert parent into ${table}`)
  const company = await parents('companies', { name: `Parent Co ${t}` })
  const contact = await parents('contacts', { first_name: 'Parent', last_name: t, company_id: company.id })
  const deal = await parents('deals', { title: `Parent deal ${t}`, amount: 10, contact_id: contact.id })

  const c = await crud(rep, 'companies', { name: `Acme ${t}`, domain: 'acme.example', visibility: 'private' }, {
    industry: 'Tools',
    notes: 'renamed',
  })
  assert.equal(c.owner_id, rep.staff.id) // owner defaults to the creating rep

  const p = await crud(
    rep,
    'contacts',
    { first_name: 'Ann', last_name: t, email: `ann-${t}@example.com`, company_id: company.id, tags: ['vip', 'west'] },
    { status: 'customer', tags: ['vip'] },
  )
  assert.equal(p.status, 'lead')
  assert.equal(p.owner_id, rep.staff.id)

  const d = await crud(
    rep,
    'deals',
    { title: `Deal ${t}`, amount: 1234.5, currency: 'EUR', contact_id: contact.id, company_id: company.id },
    { stage: 'won', probability: 100, expected_close_date: '2030-01-31' },
  )
  assert.equal(d.stage, 'lead')
  assert.equal(d.closed_at, null)

  const a = await crud(
    rep,
    'activities',
    { subject: `Call ${t}`, type: 'call', deal_id: deal.id, contact_id: contact.id, completed: false },
    { completed: true, description: 'done' },
  )
  assert.equal(a.owner_id, rep.staff.id)

  const i = await crud(
    rep,
    'interactions',
    { contact_id: contact.id, platform_id: platform.id, kind: 'chat', direction: 'inbound', summary: `Hi ${t}` },
    { summary: 'edited', direction: 'outbound' },
  )
  assert.equal(i.staff_id, rep.staff.id)
  assert.ok(i.occurred_at)

  // Clean up the parents children-first, the platform as the admin.
  for (const [table, row] of [['deals', deal], ['contacts', contact], ['companies', company]]) {
    ok(await rep.client.from(table).delete().eq('id', row.id))
  }
  ok(await admin.client.from('platforms').delete().eq('id', platform.id))
})

test('bulk insert returns the rows in order; delete with a filter removes exactly them', async () => {
  const rows = ['One', 'Two', 'Three'].map((first_name) => ({ first_name, last_name: `bulk ${t}` }))
  const inserted = ok(await rep.client.from('contacts').insert(rows).select('first_name, last_name'))
  assert.deepEqual(inserted, rows)
  const gone = ok(await rep.client.from('contacts').delete().eq('last_name', `bulk ${t}`).select('first_name'))
  assert.deepEqual(gone.map((r) => r.first_name).sort(), ['One', 'Three', 'Two'])
  assert.deepEqual(ok(await rep.client.from('contacts').select('id').eq('last_name', `bulk ${t}`)), [])
})
