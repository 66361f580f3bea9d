// PLACEHOLDER (being built): replaced before commit.
import { h } from './dom.js'

export class StatusPage {
  constructor() {
    this.heading = h('h1', { tabindex: '-1' }, 'StatusPage')
    this.el = h('section', {}, this.heading)
  }

  async start() {}

  destroy() {}
}
