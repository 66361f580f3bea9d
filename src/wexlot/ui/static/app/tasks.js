// PLACEHOLDER (being built): replaced before commit.
import { h } from './dom.js'

export class Tasks {
  constructor() {
    this.heading = h('h1', { tabindex: '-1' }, 'Tasks')
    this.el = h('section', {}, this.heading)
  }

  async start() {}

  destroy() {}
}
