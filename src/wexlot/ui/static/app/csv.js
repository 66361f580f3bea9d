// CSV on the list pages: "Export CSV" on every list (the rows as searched, filtered and sorted, all
// pages) and "Import CSV" on contacts and companies (csvimport.js).
//
// Export fetches JSON page by page and writes the file here rather than asking the server for CSV:
// references then get a readable name column next to their id (company_id, company; owner_id, owner),
// tags are written "a, b" (what the import and the forms read back), and cells a spreadsheet would run
// as formulas are defused (csvparse.js).

import { supabase } from './client.js'
import { openImportDialog } from './csvimport.js'
import { toCsv } from './csvparse.js'
import { h } from './dom.js'
import { addListExtra } from './listextras.js'
import { lookups } from './lookups.js'
import { notify } from './notices.js'
import { DEFS, LABEL_COLUMNS, canWrite, describe } from './schema.js'

const PAGE = 1000 // the server's default max rows per read; a smaller server limit is handled too
const NAME_CHUNK = 100
export const IMPORT_TABLES = ['contacts', 'companies']

/** Reference columns of a table → the table they point to. */
function refColumns(def) {
  const refs = new Map()
  for (const field of def.fields) if (field.type === 'ref') refs.set(field.name, field.ref)
  for (const column of def.columns) if (column.kind === 'ref') refs.set(column.key, column.ref)
  return refs
}

/** The header of a reference's name column: company_id → company, assigned_to → assigned_to_name. */
function nameHeader(key, taken) {
  const base = key.endsWith('_id') ? key.slice(0, -3) : `${key}_name`
  return taken.has(base) ? `${key}_name` : base
}

/** Every row of the list as it is searched, filtered and sorted, in pages (de-duplicated by id). */
async function fetchAll(view, onProgress) {
  const rows = []
  const seen = new Set()
  let total = null
  let from = 0
  for (;;) {
    const { data, count, error } = await view.query('*', { count: from === 0 ? 'exact' : undefined }).range(from, from + PAGE - 1)
    if (error) throw new Error(error.message)
    if (from === 0) total = count ?? null
    for (const row of data) {
      if (seen.has(row.id)) continue // a row moved up a page while we were paging
      seen.add(row.id)
      rows.push(row)
    }
    from += data.length
    onProgress?.(rows.length, total)
    if (data.length === 0 || (total !== null ? from >= total : data.length < PAGE)) return rows
  }
}

/** id → readable name for every referenced id (staff and companies are cached; others fetched in chunks). */
async function referenceNames(rows, refs) {
  const names = new Map() // `${table}:${id}` -> name
  const missing = new Map() // table -> Set(id)
  for (const [key, table] of refs) {
    for (const row of rows) {
      const id = row[key]
      if (!id || names.has(`${table}:${id}`)) continue
      const cached = lookups.map(table).get(id)
      if (cached) names.set(`${table}:${id}`, describe(table, cached))
      else {
        if (!missing.has(table)) missing.set(table, new Set())
        missing.get(table).add(id)
      }
    }
  }
  for (const [table, idSet] of missing) {
    const ids = [...idSet]
    for (let i = 0; i < ids.length; i += NAME_CHUNK) {
      const { data, error } = await supabase.from(table).select(['id', ...LABEL_COLUMNS[table]].join(',')).in('id', ids.slice(i, i + NAME_CHUNK))
      if (error) throw new Error(error.message)
      for (const row of data) names.set(`${table}:${row.id}`, describe(table, row))
    }
  }
  return names
}

function cellValue(value) {
  if (value === null || value === undefined) return ''
  if (Array.isArray(value)) return value.join(', ')
  if (typeof value === 'object') return JSON.stringify(value)
  return value
}

/** Header and rows for the file: the server's columns, each reference followed by its name column. */
export function exportTable(def, rows, names, refs) {
  const keys = rows.length ? Object.keys(rows[0]) : ['id', ...def.fields.map((f) => f.name)]
  const taken = new Set(keys)
  const header = []
  const cells = []
  for (const key of keys) {
    header.push(key)
    cells.push((row) => cellValue(row[key]))
    const table = refs.get(key)
    if (table) {
      const label = nameHeader(key, taken)
      taken.add(label)
      header.push(label)
      cells.push((row) => (row[key] ? names.get(`${table}:${row[key]}`) ?? '' : ''))
    }
  }
  return { header, body: rows.map((row) => cells.map((cell) => cell(row))) }
}

function localDate() {
  const d = new Date()
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

function download(filename, text) {
  // The byte-order mark makes spreadsheet apps read the file as UTF-8.
  const url = URL.createObjectURL(new Blob(['\uFEFF', text], { type: 'text/csv;charset=utf-8' }))
  h('a', { href: url, download: filename }).click() // the app's link router leaves `download` links alone
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

async function exportList(view, button) {
  const label = button.textContent
  button.disabled = true
  button.setAttribute('aria-busy', 'true')
  const title = view.def.title.toLowerCase()
  try {
    const rows = await fetchAll(view, (n, total) => {
      button.textContent = total ? `Exporting ${n} of ${total}…` : `Exporting ${n}…`
    })
    const refs = refColumns(view.def)
    const names = await referenceNames(rows, refs)
    const { header, body } = exportTable(view.def, rows, names, refs)
    download(`${view.table}-${localDate()}.csv`, toCsv(header, body))
    notify(`Exported ${rows.length} ${rows.length === 1 ? view.def.singular : title}`)
  } catch (err) {
    notify(`Could not export ${title}: ${err.message ?? err}`, { kind: 'error' })
  } finally {
    button.textContent = label
    button.disabled = false
    button.removeAttribute('aria-busy')
  }
}

addListExtra({
  toolbar(view) {
    const buttons = []
    const exportButton = h('button', {
      type: 'button', class: 'button-quiet csv-button', dataset: { csv: 'export' },
      title: 'Download the rows of this list, as searched and sorted, as a CSV file',
      onclick: () => exportList(view, exportButton),
    }, 'Export CSV')
    buttons.push(exportButton)
    const def = DEFS[view.table]
    if (IMPORT_TABLES.includes(view.table) && def.canCreate !== false && canWrite(view.table, view.me)) {
      buttons.push(h('button', {
        type: 'button', class: 'button-quiet csv-button', dataset: { csv: 'import' },
        onclick: () => openImportDialog(view),
      }, 'Import CSV'))
    }
    return buttons
  },
})
