// What the app knows about the 7 CRM tables: titles, list columns, search, sorting, form fields and who
// may write. It mirrors src/wexlot/crm/tables.py (columns, enums) and crm/access.py (write rules); the
// server stays the authority: it refuses what it must, and the forms show its errors at the field.

export const TABLES = ['staff', 'contacts', 'companies', 'deals', 'activities', 'interactions', 'platforms']

export const STAGES = ['lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost']
const ROLES = ['admin', 'manager', 'rep']
const VISIBILITIES = ['team', 'private']
const CONTACT_STATUSES = ['lead', 'prospect', 'customer', 'churned']
const ACTIVITY_TYPES = ['call', 'meeting', 'email', 'task', 'note']
const INTERACTION_KINDS = ['email', 'call', 'meeting', 'chat', 'social', 'other']
const DIRECTIONS = ['inbound', 'outbound']
const CURRENCIES = ['USD', 'EUR', 'GBP', 'CAD', 'AUD', 'JPY', 'CHF']

const capital = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s)
const options = (values) => values.map((v) => ({ value: v, label: capital(v) }))
const BOOL_OPTIONS = [{ value: 'true', label: 'Yes' }, { value: 'false', label: 'No' }]

const visibilityField = { name: 'visibility', label: 'Visibility', type: 'select', options: options(VISIBILITIES), required: true, default: 'team', hint: 'Private: only the owner, managers and admins see it.' }
const ownerField = { name: 'owner_id', label: 'Owner', type: 'ref', ref: 'staff', elevatedOnly: true, defaultMe: true }
const updatedColumn = { key: 'updated_at', label: 'Updated', kind: 'timestamp', sortable: true }

/**
 * Per table:
 *   title / singular      headings and messages
 *   columns               list columns: key, label, kind (text|number|money|bool|date|timestamp|enum|ref|tags), ref
 *   search                columns searched with or=(col.ilike.*q*,…)
 *   defaultSort           [{ key, asc }] (id is always the final tie-breaker)
 *   fields                form fields: name, label, type, required, options, ref, min, max, hint, wide
 *   writers               'admin' (admins only) or the columns naming the rep responsible for a row
 *   canCreate             false: rows are not created from this list (staff are invited by admins)
 *   sum                   a money column the list totals over its filtered rows (an aggregate query)
 *   filters               list filters: key, label, and options (values) or ref (a staff id; "me" = mine)
 */
export const DEFS = {
  staff: {
    title: 'Staff', singular: 'staff member', canCreate: false, writers: 'admin',
    search: ['full_name', 'email', 'title'],
    defaultSort: [{ key: 'full_name', asc: true }],
    filters: [
      { key: 'role', label: 'Role', options: options(ROLES) },
      { key: 'is_active', label: 'Active', options: BOOL_OPTIONS },
    ],
    columns: [
      { key: 'full_name', label: 'Name', kind: 'text', sortable: true },
      { key: 'email', label: 'Email', kind: 'text', sortable: true },
      { key: 'role', label: 'Role', kind: 'enum', sortable: true },
      { key: 'title', label: 'Title', kind: 'text', sortable: true },
      { key: 'phone', label: 'Phone', kind: 'text' },
      { key: 'is_active', label: 'Active', kind: 'bool', sortable: true },
    ],
    fields: [
      { name: 'full_name', label: 'Full name', type: 'text', required: true },
      { name: 'email', label: 'Email', type: 'email', required: true },
      { name: 'role', label: 'Role', type: 'select', options: options(ROLES), required: true, default: 'rep' },
      { name: 'title', label: 'Job title', type: 'text' },
      { name: 'phone', label: 'Phone', type: 'tel' },
      { name: 'is_active', label: 'Active (may sign in and see data)', type: 'checkbox', default: true },
    ],
  },
  contacts: {
    title: 'Contacts', singular: 'contact', writers: ['owner_id'],
    search: ['first_name', 'last_name', 'email'],
    defaultSort: [{ key: 'updated_at', asc: false }],
    filters: [
      { key: 'status', label: 'Status', options: options(CONTACT_STATUSES) },
      { key: 'owner_id', label: 'Owner', ref: 'staff' },
      { key: 'visibility', label: 'Visibility', options: options(VISIBILITIES) },
    ],
    columns: [
      { key: 'name', label: 'Name', kind: 'text', sortable: true, sortKeys: ['last_name', 'first_name'], value: (r) => fullName(r) },
      { key: 'email', label: 'Email', kind: 'text', sortable: true },
      { key: 'phone', label: 'Phone', kind: 'text' },
      { key: 'company_id', label: 'Company', kind: 'ref', ref: 'companies' },
      { key: 'status', label: 'Status', kind: 'enum', sortable: true },
      { key: 'owner_id', label: 'Owner', kind: 'ref', ref: 'staff' },
      updatedColumn,
    ],
    fields: [
      { name: 'first_name', label: 'First name', type: 'text', required: true },
      { name: 'last_name', label: 'Last name', type: 'text' },
      { name: 'email', label: 'Email', type: 'email' },
      { name: 'phone', label: 'Phone', type: 'tel' },
      { name: 'title', label: 'Job title', type: 'text' },
      { name: 'company_id', label: 'Company', type: 'ref', ref: 'companies' },
      { name: 'status', label: 'Status', type: 'select', options: options(CONTACT_STATUSES), required: true, default: 'lead' },
      { name: 'source', label: 'Source', type: 'text' },
      { name: 'tags', label: 'Tags', type: 'tags', hint: 'Separate tags with commas.' },
      ownerField,
      visibilityField,
      { name: 'notes', label: 'Notes', type: 'textarea', wide: true },
    ],
  },
  companies: {
    title: 'Companies', singular: 'company', writers: ['owner_id'],
    search: ['name', 'domain', 'industry'],
    defaultSort: [{ key: 'name', asc: true }],
    filters: [
      { key: 'owner_id', label: 'Owner', ref: 'staff' },
      { key: 'visibility', label: 'Visibility', options: options(VISIBILITIES) },
    ],
    columns: [
      { key: 'name', label: 'Name', kind: 'text', sortable: true },
      { key: 'industry', label: 'Industry', kind: 'text', sortable: true },
      { key: 'size', label: 'Size', kind: 'text' },
      { key: 'domain', label: 'Domain', kind: 'text', sortable: true },
      { key: 'owner_id', label: 'Owner', kind: 'ref', ref: 'staff' },
      updatedColumn,
    ],
    fields: [
      { name: 'name', label: 'Name', type: 'text', required: true },
      { name: 'domain', label: 'Domain', type: 'text', hint: 'For example example.com' },
      { name: 'industry', label: 'Industry', type: 'text' },
      { name: 'size', label: 'Size', type: 'text', hint: 'Employees, for example 51-200' },
      { name: 'website', label: 'Website', type: 'url' },
      { name: 'phone', label: 'Phone', type: 'tel' },
      { name: 'address', label: 'Address', type: 'text', wide: true },
      ownerField,
      visibilityField,
      { name: 'notes', label: 'Notes', type: 'textarea', wide: true },
    ],
  },
  deals: {
    title: 'Deals', singular: 'deal', writers: ['owner_id'],
    sum: 'amount', // the list shows the total of its filtered rows (per currency)
    search: ['title'],
    defaultSort: [{ key: 'updated_at', asc: false }],
    filters: [
      { key: 'stage', label: 'Stage', options: options(STAGES) },
      { key: 'owner_id', label: 'Owner', ref: 'staff' },
      { key: 'visibility', label: 'Visibility', options: options(VISIBILITIES) },
    ],
    columns: [
      { key: 'title', label: 'Title', kind: 'text', sortable: true },
      { key: 'amount', label: 'Amount', kind: 'money', sortable: true },
      { key: 'stage', label: 'Stage', kind: 'enum', sortable: true },
      { key: 'probability', label: 'Probability', kind: 'number', sortable: true, suffix: '%' },
      { key: 'expected_close_date', label: 'Expected close', kind: 'date', sortable: true },
      { key: 'owner_id', label: 'Owner', kind: 'ref', ref: 'staff' },
      updatedColumn,
    ],
    fields: [
      { name: 'title', label: 'Title', type: 'text', required: true, wide: true },
      { name: 'amount', label: 'Amount', type: 'money', required: true, min: 0, default: 0 },
      { name: 'currency', label: 'Currency', type: 'select', options: CURRENCIES.map((c) => ({ value: c, label: c })), required: true, default: 'USD' },
      { name: 'stage', label: 'Stage', type: 'select', options: options(STAGES), required: true, default: 'lead' },
      { name: 'probability', label: 'Probability (%)', type: 'number', min: 0, max: 100, required: true, default: 10 },
      { name: 'expected_close_date', label: 'Expected close date', type: 'date' },
      { name: 'contact_id', label: 'Contact', type: 'ref', ref: 'contacts' },
      { name: 'company_id', label: 'Company', type: 'ref', ref: 'companies' },
      ownerField,
      visibilityField,
    ],
  },
  activities: {
    title: 'Activities', singular: 'activity', writers: ['owner_id', 'assigned_to'],
    search: ['subject', 'description'],
    defaultSort: [{ key: 'due_at', asc: true }],
    filters: [
      { key: 'completed', label: 'State', options: [{ value: 'false', label: 'Open' }, { value: 'true', label: 'Done' }] },
      { key: 'type', label: 'Type', options: options(ACTIVITY_TYPES) },
      { key: 'assigned_to', label: 'Assigned to', ref: 'staff' },
    ],
    columns: [
      { key: 'subject', label: 'Subject', kind: 'text', sortable: true },
      { key: 'type', label: 'Type', kind: 'enum', sortable: true },
      { key: 'due_at', label: 'Due', kind: 'timestamp', sortable: true },
      { key: 'completed', label: 'Done', kind: 'bool', sortable: true },
      { key: 'assigned_to', label: 'Assigned to', kind: 'ref', ref: 'staff' },
      { key: 'contact_id', label: 'Contact', kind: 'ref', ref: 'contacts' },
      updatedColumn,
    ],
    fields: [
      { name: 'subject', label: 'Subject', type: 'text', required: true, wide: true },
      { name: 'type', label: 'Type', type: 'select', options: options(ACTIVITY_TYPES), required: true, default: 'task' },
      { name: 'due_at', label: 'Due', type: 'datetime' },
      { name: 'completed', label: 'Completed', type: 'checkbox', default: false },
      { name: 'assigned_to', label: 'Assigned to', type: 'ref', ref: 'staff', defaultMe: true },
      { name: 'contact_id', label: 'Contact', type: 'ref', ref: 'contacts' },
      { name: 'company_id', label: 'Company', type: 'ref', ref: 'companies' },
      { name: 'deal_id', label: 'Deal', type: 'ref', ref: 'deals' },
      { name: 'description', label: 'Description', type: 'textarea', wide: true },
    ],
  },
  interactions: {
    title: 'Interactions', singular: 'interaction', writers: ['staff_id'],
    search: ['summary'],
    defaultSort: [{ key: 'occurred_at', asc: false }],
    filters: [
      { key: 'kind', label: 'Kind', options: options(INTERACTION_KINDS) },
      { key: 'direction', label: 'Direction', options: options(DIRECTIONS) },
      { key: 'staff_id', label: 'Staff', ref: 'staff' },
    ],
    columns: [
      { key: 'occurred_at', label: 'When', kind: 'timestamp', sortable: true },
      { key: 'kind', label: 'Kind', kind: 'enum', sortable: true },
      { key: 'direction', label: 'Direction', kind: 'enum', sortable: true },
      { key: 'contact_id', label: 'Contact', kind: 'ref', ref: 'contacts' },
      { key: 'platform_id', label: 'Platform', kind: 'ref', ref: 'platforms' },
      { key: 'staff_id', label: 'Staff', kind: 'ref', ref: 'staff' },
      { key: 'summary', label: 'Summary', kind: 'text' },
    ],
    fields: [
      { name: 'contact_id', label: 'Contact', type: 'ref', ref: 'contacts', required: true },
      { name: 'kind', label: 'Kind', type: 'select', options: options(INTERACTION_KINDS), required: true, default: 'other' },
      { name: 'direction', label: 'Direction', type: 'select', options: options(DIRECTIONS), required: true, default: 'outbound' },
      { name: 'platform_id', label: 'Platform', type: 'ref', ref: 'platforms' },
      { name: 'occurred_at', label: 'When', type: 'datetime', required: true, defaultNow: true },
      { name: 'staff_id', label: 'Staff member', type: 'ref', ref: 'staff', elevatedOnly: true, defaultMe: true },
      { name: 'summary', label: 'Summary', type: 'textarea', wide: true },
    ],
  },
  platforms: {
    title: 'Platforms', singular: 'platform', writers: 'admin',
    search: ['name', 'kind'],
    defaultSort: [{ key: 'name', asc: true }],
    filters: [
      { key: 'is_active', label: 'Active', options: BOOL_OPTIONS },
    ],
    columns: [
      { key: 'name', label: 'Name', kind: 'text', sortable: true },
      { key: 'kind', label: 'Kind', kind: 'text', sortable: true },
      { key: 'url', label: 'URL', kind: 'text' },
      { key: 'is_active', label: 'Active', kind: 'bool', sortable: true },
    ],
    fields: [
      { name: 'name', label: 'Name', type: 'text', required: true },
      { name: 'kind', label: 'Kind', type: 'text', hint: 'For example email, chat, social' },
      { name: 'url', label: 'URL', type: 'url' },
      { name: 'is_active', label: 'Active', type: 'checkbox', default: true },
    ],
  },
}

/** How each table's rows are named in lists of choices and messages (columns fetched for lookups). */
export const LABEL_COLUMNS = {
  staff: ['full_name'],
  contacts: ['first_name', 'last_name'],
  companies: ['name'],
  deals: ['title'],
  activities: ['subject'],
  interactions: ['kind', 'summary'],
  platforms: ['name'],
}

export function fullName(row) {
  return [row.first_name, row.last_name].filter(Boolean).join(' ')
}

/** A short human name for a row: "Jane Smith", "Acme Corp", "Q3 renewal"… (id when nothing else). */
export function describe(table, row) {
  let text
  if (table === 'contacts') text = fullName(row)
  else if (table === 'staff') text = row.full_name
  else if (table === 'deals') text = row.title
  else if (table === 'activities') text = row.subject
  else if (table === 'interactions') text = [capital(row.kind), row.summary].filter(Boolean).join(': ')
  else text = row.name
  if (text && text.length > 80) text = `${text.slice(0, 77)}…`
  return text || (row.id ? `#${String(row.id).slice(0, 8)}` : '(unknown)')
}

export const tableTitle = (table) => DEFS[table]?.title ?? capital(table)

/** Whether `me` (the signed-in staff row) may change `row` of `table` (crm/access.py's write rule). */
export function canWrite(table, me, row = null) {
  const def = DEFS[table]
  if (!me?.is_active) return false
  if (def.writers === 'admin') return me.role === 'admin'
  if (me.role === 'admin' || me.role === 'manager') return true
  if (!row) return true // reps may create; the server makes them the owner
  return def.writers.some((col) => row[col] === me.id)
}

export const isElevated = (me) => me?.role === 'admin' || me?.role === 'manager'

/** A field's label without its parenthesised note: "Probability (%)" → "Probability". */
export const plainLabel = (field) => field.label.replace(/\s*\(.*\)$/, '')

/** What the app accepts as an email address (the server checks nothing more). */
export const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** How a change is told in notices and the feed. */
export const VERBS = { INSERT: 'added', UPDATE: 'updated', DELETE: 'deleted' }
export { capital }
