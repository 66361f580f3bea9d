// Feature modules add their buttons to the list pages here, so listview.js stays generic:
//   addListExtra({ toolbar(view) → nodes, rowActions(view, row) → nodes })
// `view` is the ListView (view.table, view.me, view.def, view.query(columns) for the list's current
// search and filters, view.reload()). Registered at import time; main.js imports the feature modules.

const extras = []

export function addListExtra(extra) {
  extras.push(extra)
}

export function toolbarFor(view) {
  return extras.flatMap((extra) => extra.toolbar?.(view) ?? [])
}

export function rowActionsFor(view, row) {
  return extras.flatMap((extra) => extra.rowActions?.(view, row) ?? [])
}
